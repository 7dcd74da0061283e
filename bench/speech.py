"""Speech: `engines.speech.SpeechEngine` against a plain transformers `VitsModel` call on the same text
and seed (the starter VITS). The figure is the real-time factor: seconds of compute per second of
speech (lower is better), both over the plain model's clip length, since the studio appends the
pause that follows a sentence."""

from __future__ import annotations

from bench import fixtures
from bench.core import Context, Figure, device_sync, interleaved, median, paired_ratio, timed

TEXT = "the lighthouse keeper climbed the stairs every evening and wrote down the color of the sea"
SEED = 5
REPEAT = 5  # clips per timed run


def run(ctx: Context, names: set[str]) -> list[Figure]:
    import torch
    from transformers import AutoTokenizer, VitsModel

    from engines.speech import SpeechEngine, SpeechRequest

    folder = fixtures.starter(ctx, "speech")
    studio = SpeechEngine(folder, device=ctx.device, language="eng").load()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = VitsModel.from_pretrained(folder).to(ctx.device).eval()
    sync = device_sync(ctx.device)

    def studio_say():
        return studio.synthesize(SpeechRequest(text=TEXT, seed=SEED)).audio

    def plain_say():
        inputs = tokenizer(TEXT, return_tensors="pt").to(ctx.device)
        torch.manual_seed(SEED)
        with torch.no_grad():
            return model(**inputs).waveform[0].cpu().numpy()

    plain_samples = len(plain_say())
    studio_samples = len(studio_say())
    seconds = plain_samples / model.config.sampling_rate

    def rtf(say) -> float:  # one run = REPEAT clips: a clip takes tens of ms, too short to time alone
        return timed(lambda: [say() for _ in range(REPEAT)], sync)[0] / (seconds * REPEAT)

    runs = interleaved({"studio": lambda: rtf(studio_say), "plain": lambda: rtf(plain_say)}, 2 * ctx.reps, ctx.warmup)
    s, p = median(runs["studio"]), median(runs["plain"])
    return [Figure("speech.generate", s, "RTF", p, paired_ratio(runs["studio"], runs["plain"], higher_is_better=False),
                   f"starter VITS, {seconds:.2f} s of speech, real-time factor (lower is better)",
                   {"plain_samples": plain_samples, "studio_samples": studio_samples, "clips_per_run": REPEAT,
                    "runs": runs})]
