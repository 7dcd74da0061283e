"""Tiny "starter" models built locally, deterministically and without network access.

Each starter is a real, loadable model folder (standard ``from_pretrained`` layout) with
random weights drawn from a fixed seed and a tokenizer trained on a small bundled corpus.
They exist so the studio can be tried fully offline; they produce noise, not quality.

Public API: :data:`STARTER_IDS`, :func:`starter_path`, :func:`is_built`,
:func:`ensure_starter`, :func:`build_starter` and :func:`train_clip_bpe` (also used by the
`image-scratch` trainer for its captions). Heavy libraries (torch, transformers,
diffusers, tokenizers) are only imported inside the builders.

Why one file a little over ~450 lines: the three tiny builders and the two BPE trainers they share
belong together; the trained starters live beside it (shipped.py, build.py, build_image.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

STARTER_TEXT = "starter/gpt2-tiny"
STARTER_IMAGE = "starter/sd-tiny"
STARTER_SPEECH = "starter/vits-tiny"

STARTER_IDS: dict[str, str] = {"text": STARTER_TEXT, "image": STARTER_IMAGE, "speech": STARTER_SPEECH}

DESCRIPTION = "Tiny model with random weights built locally; for trying the studio offline, not for quality."
MARKER_FILE = "starter.json"
CORPUS_PATH = Path(__file__).resolve().parents[2] / "assets" / "starter" / "corpus.txt"

SEED = 1234
EOT = "<|endoftext|>"
SOT = "<|startoftext|>"
_TMP_PREFIX = ".tmp-"
# One build at a time in a process: a build seeds torch's process-wide RNG, sets the libraries'
# log levels, and its first `import transformers` must not overlap another thread's (a half-imported
# transformers answers "cannot import name 'GPT2Config'"). The file lock only serialises one model.
_BUILD_LOCK = threading.Lock()

# Files (relative to the model folder) that must exist for a folder to count as built.
_REQUIRED_FILES: dict[str, tuple[str, ...]] = {
    STARTER_TEXT: ("config.json", "model.safetensors", "tokenizer_config.json", "tokenizer.json"),
    STARTER_IMAGE: (
        "model_index.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/config.json",
        "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/config.json",
        "text_encoder/model.safetensors",
        "tokenizer/tokenizer_config.json",
        "scheduler/scheduler_config.json",
    ),
    STARTER_SPEECH: ("config.json", "model.safetensors", "vocab.json", "tokenizer_config.json"),
}


def _name(model_id: str) -> str:
    """Return the folder name of a starter id, raising ``KeyError`` for unknown ids."""
    if model_id not in _REQUIRED_FILES:
        raise KeyError(f"unknown starter model id: {model_id!r} (known: {sorted(_REQUIRED_FILES)})")
    return model_id.split("/", 1)[1]


def starter_path(model_id: str, models_root: Path) -> Path:
    """Folder of a starter model: ``models_root / "starter" / <name>``."""
    return Path(models_root) / "starter" / _name(model_id)


def _marker_ok(folder: Path, model_id: str) -> bool:
    """True when ``folder`` holds a complete starter build of ``model_id``."""
    try:
        meta = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if (
        not isinstance(meta, dict)
        or meta.get("id") != model_id
        or meta.get("aigc_studio_starter") is not True
    ):
        return False
    return all((folder / rel).is_file() for rel in _REQUIRED_FILES[model_id])


def is_built(model_id: str, models_root: Path) -> bool:
    """Whether the starter folder exists and is complete (marker written last, required files present)."""
    return _marker_ok(starter_path(model_id, models_root), model_id)


@contextlib.contextmanager
def _file_lock(lock_path: Path) -> Iterator[bool]:
    """Exclusive inter-process lock on ``lock_path``; yields whether a real lock is held."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX platforms: rely on the atomic rename only
        yield False
        return
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def ensure_starter(model_id: str, models_root: Path) -> Path:
    """Return the starter folder, building it first if needed.

    The model is built into a temporary folder next to its final place and renamed into
    place only when complete, so an interrupted build is never mistaken for a finished one.
    Concurrent callers serialise on a lock file; a caller that loses a race reuses the
    winner's folder.
    """
    final = starter_path(model_id, models_root)
    if _marker_ok(final, model_id):
        return final
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(parent / f".{final.name}.lock") as locked:
        if _marker_ok(final, model_id):
            return final
        if locked:  # nobody else can be building this model now: temp folders are crash leftovers
            for stale in parent.glob(f"{_TMP_PREFIX}{final.name}-*"):
                shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{final.name}-", dir=parent))
        try:
            tmp.chmod(0o755)  # mkdtemp makes it private; the model folder should be readable
            build_starter(model_id, tmp)
            if _marker_ok(final, model_id):  # another builder won (only possible without a lock)
                return final
            if final.exists():  # incomplete leftovers: never accepted as built
                shutil.rmtree(final)
            try:
                os.replace(tmp, final)
            except OSError:
                if not _marker_ok(final, model_id):  # lost a race without a lock (e.g. no fcntl)
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final


def build_starter(model_id: str, out_dir: Path) -> None:
    """Build the starter ``model_id`` into ``out_dir`` deterministically (same bytes every time)."""
    _name(model_id)  # raises KeyError for unknown ids
    builder = _BUILDERS[model_id]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _BUILD_LOCK, _quiet(), _seeded(SEED):
        builder(out_dir)
    meta = {"id": model_id, "aigc_studio_starter": True, "description": DESCRIPTION}
    # Written last: its presence marks a complete build.
    (out_dir / MARKER_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch inside a forked RNG so the caller's global RNG state is left untouched."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the (harmless) warnings transformers/diffusers print while building."""
    import warnings

    from diffusers.utils import logging as d_logging
    from transformers.utils import logging as t_logging

    t_level, d_level = t_logging.get_verbosity(), d_logging.get_verbosity()
    t_bars, d_bars = t_logging.is_progress_bar_enabled(), d_logging.is_progress_bar_enabled()
    t_logging.set_verbosity_error()
    d_logging.set_verbosity_error()
    t_logging.disable_progress_bar()
    d_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        t_logging.set_verbosity(t_level)
        d_logging.set_verbosity(d_level)
        if t_bars:
            t_logging.enable_progress_bar()
        if d_bars:
            d_logging.enable_progress_bar()


def _corpus_lines() -> list[str]:
    """Non-empty lines of the bundled training corpus."""
    text = CORPUS_PATH.read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def _bpe_vocab_merges(tokenizer: Any) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Extract vocab and merges from a trained ``tokenizers.Tokenizer`` with a BPE model."""
    model = json.loads(tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges  # type: ignore[return-value]


def _train_gpt2_bpe(
    vocab_size: int, lines: Iterable[str] | None = None
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a GPT-2 style byte-level BPE on `lines` (default: the bundled corpus)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus_lines() if lines is None else lines, trainer=trainer)
    return _bpe_vocab_merges(tok)


def train_clip_bpe(
    vocab_size: int, lines: list[str] | None = None
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a CLIP style BPE (lowercased, byte-level, ``</w>`` word-final suffix) on ``lines``
    (default: the bundled corpus); returns the (vocab, merges) ``transformers.CLIPTokenizer`` takes.

    The ``tokenizers`` trainer's own ``end_of_word_suffix`` support assigns ids in hash-map
    order, which differs between processes. To stay deterministic, word-final symbols are
    instead spelled as private-use characters (one per byte symbol) and trained as plain
    symbols, then renamed to ``<symbol></w>`` afterwards.
    """
    from collections import Counter

    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    # Same normalizer / pre-tokenizer as transformers.CLIPTokenizer builds for itself.
    normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(
                    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
                ),
                behavior="removed",
                invert=True,
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    final_of = {c: chr(0xE000 + i) for i, c in enumerate(alphabet)}  # private-use area
    plain_of = {f: c + "</w>" for c, f in final_of.items()}

    words: Counter[str] = Counter()
    for line in _corpus_lines() if lines is None else lines:
        for piece, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line)):
            words[piece[:-1] + final_of[piece[-1]]] += 1
    # Byte-level symbols never contain whitespace, so a whitespace split recovers the words.
    training_lines = [" ".join([word] * count) for word, count in sorted(words.items())]

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[SOT, EOT],
        initial_alphabet=[*alphabet, *final_of.values()],
        show_progress=False,
    )
    tok.train_from_iterator(training_lines, trainer=trainer)
    vocab, merges = _bpe_vocab_merges(tok)

    def rename(token: str) -> str:
        return token[:-1] + plain_of[token[-1]] if token and token[-1] in plain_of else token

    return {rename(t): i for t, i in vocab.items()}, [(rename(a), rename(b)) for a, b in merges]


# --------------------------------------------------------------------------- builders


def _build_text(out_dir: Path) -> None:
    """Tiny GPT-2 (2 layers, 64 dims) with a 1024-token byte-level BPE."""
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    n_positions = 256
    vocab, merges = _train_gpt2_bpe(1024)
    tokenizer = GPT2TokenizerFast(
        vocab=vocab,
        merges=merges,
        bos_token=EOT,
        eos_token=EOT,
        unk_token=EOT,
        pad_token=EOT,
        model_max_length=n_positions,
    )
    eos_id = tokenizer.convert_tokens_to_ids(EOT)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=64,
        n_layer=2,
        n_head=2,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    model = GPT2LMHeadModel(config).eval()
    model.generation_config.pad_token_id = eos_id
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def _build_image(out_dir: Path) -> None:
    """Tiny Stable Diffusion (v1 layout): 2-block UNet and VAE, 3-layer CLIP text encoder."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab, merges = train_clip_bpe(1280)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)

    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=32,
        sample_size=64,
    )
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=3,
        max_position_embeddings=77,
        projection_dim=32,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    text_encoder = CLIPTextModel(text_config).eval()
    scheduler = DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet.eval(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out_dir, safe_serialization=True)


# Character vocabulary of the VITS starter; id 0 is the blank/pad token VitsTokenizer intersperses.
_VITS_SYMBOLS: tuple[str, ...] = (
    "<pad>",
    " ",
    *"abcdefghijklmnopqrstuvwxyz",
    *"0123456789",
    *"',.!?-",
    "<unk>",
)


def _build_speech(out_dir: Path) -> None:
    """Tiny VITS (MMS-TTS layout) with a character-level tokenizer, 16 kHz output."""
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    vocab = {symbol: i for i, symbol in enumerate(_VITS_SYMBOLS)}
    # next to the build folder, named after it: inside the models dir, and swept with a killed build's leftovers
    with tempfile.TemporaryDirectory(prefix=f"{out_dir.name}-vocab-", dir=out_dir.parent) as tmp:
        vocab_file = Path(tmp) / "vocab.json"
        vocab_file.write_text(json.dumps(vocab, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tokenizer = VitsTokenizer(
            vocab_file=str(vocab_file),
            pad_token="<pad>",
            unk_token="<unk>",
            language=None,
            add_blank=True,
            normalize=True,
            phonemize=False,
            is_uroman=False,
        )
        tokenizer.save_pretrained(out_dir)

    config = VitsConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        ffn_dim=64,
        flow_size=32,
        spectrogram_bins=513,
        upsample_initial_channel=32,
        upsample_rates=(8, 8, 2, 2),
        upsample_kernel_sizes=(16, 16, 4, 4),
        resblock_kernel_sizes=(3, 7),
        resblock_dilation_sizes=((1, 3), (1, 3)),
        duration_predictor_filter_channels=32,
        duration_predictor_num_flows=2,
        prior_encoder_num_flows=2,
        prior_encoder_num_wavenet_layers=2,
        posterior_encoder_num_wavenet_layers=2,
        sampling_rate=16_000,
        pad_token_id=vocab["<pad>"],
    )
    model = VitsModel(config).eval()
    with torch.no_grad():
        # Random weights drive the HiFi-GAN output into its tanh limits (full-scale noise);
        # shrink the last conv so the starter "speaks" at a comfortable level (RMS ~0.1).
        model.decoder.conv_post.weight.mul_(0.02)
    model.save_pretrained(out_dir, safe_serialization=True)


_BUILDERS: dict[str, Callable[[Path], None]] = {
    STARTER_TEXT: _build_text,
    STARTER_IMAGE: _build_image,
    STARTER_SPEECH: _build_speech,
}
