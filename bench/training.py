"""Training throughput: the studio's trainers (run in-process, exactly as a job runs them) against the
plain libraries on the same data and settings.

- `train.text_lora`: the `text-lora` trainer (LoRA on the starter GPT-2) vs peft + `transformers.Trainer`.
- `train.gan`: the `gan` trainer (DCGAN, 32 px) vs a plain PyTorch loop over the same networks.

Both sides are timed over a window of steps (wall clock between step ends, logging and all), whole
runs alternating studio / plain; the first few steps warm up, and the studio's last step also scores
and saves, so both are left out. The median run counts; the ratio is the median over neighbouring
(studio, plain) pairs of runs.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import fixtures
from bench.core import Context, Figure, median, paired_ratio

SKIP = 3  # warm-up steps left out of the window
PAIRS, PAIRS_QUICK = 7, 3  # whole runs per side, alternating


def _window_rate(stamps: list[float], per_step: float) -> float:
    """Items per second between the ends of step SKIP and of the second-to-last step: the whole window,
    so a side that stalls now and then (saving, syncing files) pays for it."""
    window = stamps[SKIP:-1]
    return per_step * (len(window) - 1) / (window[-1] - window[0])


def _event_times(run_dir) -> list[float]:
    return [float(e["time"]) for e in sorted(run_dir.events(), key=lambda e: e["step"])]


def _reset_accelerate() -> None:
    """Studio trainer and HF Trainer each make an Accelerator; start each run from a clean state."""
    try:
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)
    except Exception:  # pragma: no cover - older/newer accelerate: the runs still work
        pass


def _job(ctx: Context, kind: str, params: dict[str, Any], dataset: Path, base_model: str | None, tag: str):
    from engines.training import JobConfig, RunDir

    job_id = f"bench_{kind.replace('-', '_')}_{tag}_{time.monotonic_ns()}"
    run_dir = RunDir(ctx.data_dir / "runs" / job_id)
    run_dir.write_job(JobConfig(job_id=job_id, kind=kind, params=params, base_model=base_model,
                                dataset_id="bench", dataset_path=str(dataset), output_dir=str(ctx.work_dir / "out" / job_id),
                                models_root=str(ctx.data_dir / "models"),
                                device=ctx.device, offline=True))
    return run_dir


# -- text-lora ---------------------------------------------------------------------------------------
def run_text_lora(ctx: Context, names: set[str]) -> list[Figure]:
    import torch

    from engines.starter import STARTER_TEXT
    from engines.text.train import TextLoraConfig, run
    from engines.training import resolve_params

    base = fixtures.starter(ctx, "text")
    dataset = fixtures.text_dataset(ctx)
    steps = 40 if ctx.quick else 80  # a step is ~50 ms: long enough runs that a hiccup is not the result
    mixed = "bf16" if ctx.device == "cuda" and torch.cuda.is_bf16_supported() else "no"
    params = dict(method="lora", max_steps=steps, batch_size=8, block_size=128, learning_rate=2e-4, lora_rank=8,
                  lora_alpha=16.0, lora_dropout=0.05, save_every=0, eval_fraction=0.1, seed=0, mixed_precision=mixed)
    per_step = params["batch_size"] * params["block_size"]  # documents are packed: every block is full

    compute_only: list[float] = []  # the trainer's own per-step tokens/s (its step, without logging it)

    def studio() -> float:
        _reset_accelerate()
        run_dir = _job(ctx, "text-lora", params, dataset, STARTER_TEXT, "studio")
        run(resolve_params(TextLoraConfig, params), run_dir)
        torch.set_num_threads(ctx.threads)  # the trainer may have changed it for the tiny model
        events = sorted(run_dir.events(), key=lambda e: e["step"])[SKIP:-1]
        compute_only.append(statistics.median(e["tokens_per_s"] for e in events))
        return _window_rate(_event_times(run_dir), per_step)

    def plain() -> float:
        _reset_accelerate()
        return _plain_lora(base, dataset, params, ctx, per_step)

    runs: dict[str, list[float]] = {"studio": [], "plain": []}
    for _ in range(PAIRS_QUICK if ctx.quick else PAIRS):  # whole runs, alternating
        runs["studio"].append(studio())
        runs["plain"].append(plain())
    s, p = median(runs["studio"]), median(runs["plain"])
    return [Figure("train.text_lora", s, "tok/s", p, paired_ratio(runs["studio"], runs["plain"], higher_is_better=True),
                   f"LoRA r=8 on starter GPT-2, batch 8×128 tokens, {steps} steps, "
                   f"{'bf16 autocast' if mixed == 'bf16' else 'fp32'}; vs peft + transformers.Trainer",
                   {"runs": runs, "steps": steps, "studio_compute_only_tok_s": median(compute_only),
                    "event_append_ms": _event_append_ms(ctx)})]


def _event_append_ms(ctx: Context) -> float:
    """What logging one step costs the studio's trainers (a durable JSON line + TensorBoard), median ms."""
    from engines.training import EventLog, RunDir

    times = []
    with tempfile.TemporaryDirectory(dir=ctx.work_dir) as tmp:
        log = EventLog(RunDir(Path(tmp)))
        for step in range(1, 21):
            t0 = time.perf_counter()
            log.append(step, loss=1.0, lr=2e-4, tokens_per_s=1000.0, epoch=0.1)
            times.append((time.perf_counter() - t0) * 1000)
        log.close()
    return statistics.median(times)


def _plain_lora(base: Path, dataset: Path, params: dict[str, Any], ctx: Context, per_step: int) -> float:
    """peft + transformers.Trainer, the way their docs show it; step ends timed by a callback."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(base)
    texts = [json.loads(line)["text"] for line in (dataset / "data.jsonl").read_text(encoding="utf-8").splitlines()]
    stream: list[int] = []
    for ids in tokenizer(texts, add_special_tokens=False).input_ids:
        stream += ids + [tokenizer.eos_token_id]
    block = params["block_size"]
    blocks = [stream[i : i + block] for i in range(0, len(stream) - block + 1, block)]
    # as transformers' run_clm recipe groups texts: the tokenizer's attention mask comes along
    train = [{"input_ids": torch.tensor(b), "attention_mask": torch.ones(len(b), dtype=torch.long),
              "labels": torch.tensor(b)} for b in blocks]

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=params["lora_rank"],
                                             lora_alpha=params["lora_alpha"], lora_dropout=params["lora_dropout"],
                                             target_modules=["c_attn", "c_proj"], fan_in_fan_out=True))
    stamps: list[float] = []

    class StepEnds(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if ctx.device == "cuda":
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=params["batch_size"], max_steps=params["max_steps"],
            learning_rate=params["learning_rate"], lr_scheduler_type="linear", max_grad_norm=1.0, seed=0,
            logging_strategy="no", save_strategy="no", report_to=[], disable_tqdm=True,
            use_cpu=ctx.device == "cpu", bf16=params["mixed_precision"] == "bf16", dataloader_num_workers=0,
        )
        Trainer(model=model, args=args, train_dataset=train, callbacks=[StepEnds()]).train()
    return _window_rate(stamps, per_step)


# -- gan ---------------------------------------------------------------------------------------------
def run_gan(ctx: Context, names: set[str]) -> list[Figure]:
    import torch

    from engines.gan.train import GanTrainConfig, run
    from engines.training import resolve_params

    dataset = fixtures.image_dataset(ctx)
    steps = 24 if ctx.quick else 50
    # the tutorial's algorithm on both sides: the trainer's R1 penalty, EMA generator, classes, lr decay
    # and D's translations off
    params = dict(resolution=32, max_steps=steps, batch_size=64, save_every=0, eval_every=0, log_every=1,
                  quality_samples=8, augment=["flip"], seed=0, r1_gamma=0.0, ema_decay=0.0,
                  conditional="off", lr_schedule="constant", translate=0.0)
    config = resolve_params(GanTrainConfig, params)

    def studio() -> float:
        run_dir = _job(ctx, "gan", params, dataset, None, "studio")
        # the trainer picks its threads from the machine's load; OMP_NUM_THREADS (its documented
        # override) gives it the baseline's count instead, so both sides run the same settings
        before = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = str(ctx.threads)
        try:
            run(config, run_dir)
        finally:
            if before is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = before
        torch.set_num_threads(ctx.threads)
        return _window_rate(_event_times(run_dir), params["batch_size"])

    images = _load_images(dataset, 32)
    runs: dict[str, list[float]] = {"studio": [], "plain": []}
    for _ in range(PAIRS_QUICK if ctx.quick else PAIRS):
        runs["studio"].append(studio())
        runs["plain"].append(_plain_dcgan(images, config, ctx))
    s, p = median(runs["studio"]), median(runs["plain"])
    model = config.model_config()
    return [Figure("train.gan", s, "images/s", p, paired_ratio(runs["studio"], runs["plain"], higher_is_better=True),
                   f"DCGAN 32 px (ngf={model.ngf}, ndf={model.ndf}), batch 64, {steps} steps; vs a plain PyTorch loop",
                   {"runs": runs, "steps": steps})]


def _load_images(folder: Path, resolution: int):
    """(N, 3, R, R) uint8: resized, as a plain script would do with Pillow."""
    import numpy as np
    import torch
    from PIL import Image

    arrays = []
    for path in sorted(folder.glob("*.png")):
        with Image.open(path) as im:
            arrays.append(np.asarray(im.convert("RGB").resize((resolution, resolution), Image.BICUBIC)))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _plain_dcgan(images, config, ctx: Context) -> float:
    """The PyTorch DCGAN tutorial's loop over the same networks, data and batch size."""
    import torch
    import torch.nn.functional as F

    from engines.gan.model import build_models

    device = ctx.device
    netG, netD = build_models(config.model_config(), seed=0)
    netG.to(device).train()
    netD.to(device).train()
    optD = torch.optim.Adam(netD.parameters(), lr=config.learning_rate, betas=(config.beta1, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=config.learning_rate, betas=(config.beta1, 0.999))
    data = images.to(device)
    g = torch.Generator().manual_seed(0)
    stamps = []
    for _ in range(config.max_steps):
        idx = torch.randint(0, len(data), (config.batch_size,), generator=g)
        real = data[idx.to(device)].float() / 127.5 - 1.0  # (B, 3, R, R)
        flip = (torch.rand(config.batch_size, generator=g) < 0.5).to(device)
        real = torch.where(flip[:, None, None, None], real.flip(-1), real)
        noise = torch.randn(config.batch_size, config.nz, 1, 1, generator=g).to(device)
        fake = netG(noise)
        out_real, out_fake = netD(real), netD(fake.detach())
        errD = F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real)) + \
            F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
        optD.zero_grad()
        errD.backward()
        optD.step()
        out = netD(fake)
        errG = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        optG.zero_grad()
        errG.backward()
        optG.step()
        _stats = (errD.item(), errG.item(), torch.sigmoid(out_real).mean().item(), torch.sigmoid(out_fake).mean().item())
        stamps.append(time.perf_counter())
    return _window_rate(stamps, config.batch_size)
