"""SpeechT5 voices the studio trains itself: the folder layout, a new voice, and loading one.

Why SpeechT5 (`SpeechT5ForTextToSpeech`) for voices that learn: it trains with `labels` in
transformers — mel-frame L1 loss, stop-token loss and a guided-attention loss that makes a new
voice learn its text-to-sound alignment quickly — and the same code runs `microsoft/speecht5_tts`
when the hub is reachable. transformers' `VitsModel` has no training losses: fine-tuning VITS means
adding its discriminator and five losses (as the public finetune-hf-vits scripts do), a GAN to tune
on a 2-core CPU. SpeechT5 is autoregressive and attention-based, which a small model trained on
clean speech learns well.

A voice folder is a plain `from_pretrained` folder:

    config.json, model.safetensors          SpeechT5ForTextToSpeech (transformers loads it as is)
    spm_char.model, tokenizer_config.json   SpeechT5Tokenizer: characters, case-folded
    preprocessor_config.json                SpeechT5FeatureExtractor: 80 log-mel bins at 16 kHz
    voices/<name>.npy                       speaker vectors (`speaker_embeddings` of generate_speech)
    vocoder.json                            {"type": "griffin-lim"}: mels → waveform with no weights
                                            (engines/speech/griffin_lim.py); a `vocoder/` HiFi-GAN
                                            folder is used instead where there is one
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

VOCODER_FILE = "vocoder.json"
VOICES_DIR = "voices"
DEFAULT_VOICE = "default"
SAMPLE_RATE = 16_000
# What the character tokenizer knows: text reaches it lower-cased, with numbers written out
CHARACTERS = "abcdefghijklmnopqrstuvwxyz'.,!?-;: "
SPEAKER_DIM = 16

# The sizes a new voice can have; "small" is the starter's (3.0M weights)
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(hidden_size=64, encoder_layers=1, decoder_layers=1, encoder_ffn_dim=128, decoder_ffn_dim=128,
                 speech_decoder_prenet_units=64, speech_decoder_postnet_layers=2, speech_decoder_postnet_units=64),
    "small": dict(hidden_size=192, encoder_layers=3, decoder_layers=3, encoder_ffn_dim=512, decoder_ffn_dim=512,
                  speech_decoder_prenet_units=128, speech_decoder_postnet_layers=3,
                  speech_decoder_postnet_units=192),
}


def is_voice_folder(folder: Path) -> bool:
    """A SpeechT5 folder this module can load without the hub (its own vocoder and voices)."""
    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return config.get("model_type") == "speecht5" and (
        (folder / VOCODER_FILE).is_file() or (folder / "vocoder").is_dir())


def voice_names(folder: Path) -> list[str]:
    """The voices a folder ships, its default first."""
    names = sorted(p.stem for p in (Path(folder) / VOICES_DIR).glob("*.npy"))
    return sorted(names, key=lambda n: n != DEFAULT_VOICE)


def speaker_vector(folder: Path, name: str | None = None) -> np.ndarray:
    """(1, dim) float32 speaker embedding of voice `name` (the default when None)."""
    names = voice_names(folder)
    if not names:
        raise ValueError(f"The voice folder {Path(folder).name} has no {VOICES_DIR}/*.npy speaker vector.")
    chosen = name or names[0]
    if chosen not in names:
        raise ValueError(f"Unknown voice '{chosen}'. Voices: {', '.join(names)}.")
    return np.load(Path(folder) / VOICES_DIR / f"{chosen}.npy", allow_pickle=False).astype(np.float32).reshape(1, -1)


def train_tokenizer(out_dir: Path, sentences: list[str]) -> Any:
    """A SpeechT5Tokenizer whose pieces are CHARACTERS, trained (sentencepiece, char model) and saved."""
    import tempfile

    import sentencepiece as spm
    from transformers import SpeechT5Tokenizer

    lines = [CHARACTERS.strip(), *(s.lower() for s in sentences)]  # every character seen at least once
    with tempfile.TemporaryDirectory(prefix=".spm-", dir=out_dir) as tmp:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_prefix=f"{tmp}/spm_char", model_type="char",
            vocab_size=len(CHARACTERS) + 8, hard_vocab_limit=False, character_coverage=1.0,
            bos_id=0, pad_id=1, eos_id=2, unk_id=3, normalization_rule_name="nmt_nfkc_cf", minloglevel=2,
        )  # fmt: skip
        tokenizer = SpeechT5Tokenizer(f"{tmp}/spm_char.model")
        tokenizer.save_pretrained(out_dir)
    return tokenizer


def new_voice(out_dir: Path, sentences: list[str], *, size: str = "small", seed: int = 0) -> Path:
    """A voice with random weights in `out_dir`: what `speech-finetune` trains a voice from scratch from."""
    import torch
    from transformers import SpeechT5Config, SpeechT5FeatureExtractor, SpeechT5ForTextToSpeech

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(out_dir, sentences)
    config = SpeechT5Config(
        vocab_size=len(tokenizer), encoder_attention_heads=2, decoder_attention_heads=2,
        speaker_embedding_dim=SPEAKER_DIM, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
        max_text_positions=600, max_speech_positions=1000, encoder_layerdrop=0.0, decoder_layerdrop=0.0,
        # 4 frames per decoder step and a narrow guided-attention band: measured on espeak-ng speech, the
        # attention was diagonal by step 500 (correlation 0.98); with SpeechT5's defaults (2, 0.4) it had
        # collapsed onto one character at step 1000
        reduction_factor=4, guided_attention_loss_sigma=0.2,
        **SIZES[size],
    )  # fmt: skip
    torch.manual_seed(seed)
    SpeechT5ForTextToSpeech(config).save_pretrained(out_dir, safe_serialization=True)
    SpeechT5FeatureExtractor(sampling_rate=SAMPLE_RATE).save_pretrained(out_dir)
    vector = torch.nn.functional.normalize(torch.randn(1, SPEAKER_DIM, generator=torch.Generator().manual_seed(seed)))
    save_voice(out_dir, DEFAULT_VOICE, vector.numpy())
    write_vocoder(out_dir)
    return out_dir


def save_voice(folder: Path, name: str, vector: np.ndarray) -> None:
    (Path(folder) / VOICES_DIR).mkdir(parents=True, exist_ok=True)
    np.save(Path(folder) / VOICES_DIR / f"{name}.npy", np.asarray(vector, dtype=np.float32).reshape(1, -1))


def write_vocoder(folder: Path) -> None:
    (Path(folder) / VOCODER_FILE).write_text(json.dumps({"type": "griffin-lim"}) + "\n", encoding="utf-8")


def load_processor(folder: Path) -> Any:
    from transformers import SpeechT5Processor

    return SpeechT5Processor.from_pretrained(str(folder))


def synthesize(model: Any, processor: Any, text: str, speaker: Any, *, vocoder: Any = None,
               max_seconds: float = 20.0) -> np.ndarray:
    """One sentence → (samples,) float32 at 16 kHz: mel frames from the model, then the vocoder
    (HiFi-GAN module) or Griffin-Lim. The caller holds `torch.inference_mode()` and the seed."""
    from engines.speech.griffin_lim import mel_to_audio

    ids = processor(text=text, return_tensors="pt")["input_ids"].to(model.device)
    frames_per_s = SAMPLE_RATE / processor.feature_extractor.sample_stride
    # generate_speech's cap is in decoder steps per input token: at most `max_seconds` of audio
    ratio = max(2.0, max_seconds * frames_per_s / max(ids.shape[1], 1))
    speaker = speaker.to(device=model.device, dtype=model.dtype)
    if vocoder is not None:
        return model.generate_speech(ids, speaker, vocoder=vocoder, maxlenratio=ratio).float().cpu().numpy()
    mel = model.generate_speech(ids, speaker, maxlenratio=ratio)  # (frames, 80)
    return mel_to_audio(mel.float().cpu().numpy(), processor.feature_extractor)


def median_pitch_hz(audio: np.ndarray, rate: int = SAMPLE_RATE) -> float | None:
    """Median fundamental frequency of the voiced frames (Praat's autocorrelation pitch, through
    parselmouth); None when nothing in the clip is voiced."""
    import parselmouth

    if len(audio) < rate // 10:
        return None
    pitch = parselmouth.Sound(np.asarray(audio, dtype=np.float64), sampling_frequency=rate).to_pitch(
        pitch_floor=60.0, pitch_ceiling=500.0)
    f0 = pitch.selected_array["frequency"]
    voiced = f0[f0 > 0]
    return round(float(np.median(voiced)), 1) if len(voiced) else None
