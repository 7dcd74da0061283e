"""What the shipped trained starters make means something, by the project's own measures
(engines/text/quality.py, engines/shapes/detect.py); and a fine-tune moves them where it should."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engines.starter import shipped
from engines.text.quality import PROMPTS, default_vocabulary, english_share, generate_samples, perplexity

TEXT = shipped.shipped_path(shipped.TRAINED_TEXT)


@pytest.fixture(scope="module")
def text_engine():
    from engines.text.generate import TextEngine

    assert shipped.is_shipped(shipped.TRAINED_TEXT), "the text starter must ship in assets/starter/"
    return TextEngine(str(TEXT), device="cpu", dtype="float32").load()


def test_the_text_starter_writes_english(text_engine):
    samples = generate_samples(text_engine, PROMPTS, max_new_tokens=40, temperature=0.8)
    share, n = english_share(samples, default_vocabulary())
    assert n >= 20 * 20 and share >= 0.9, (share, samples[:3])
    card = shipped.read_card(shipped.TRAINED_TEXT)
    assert card["measures"]["english_word_share"] >= 0.9 and card["measures"]["held_out_perplexity"] > 1


def test_held_out_perplexity_is_low_on_stories_and_high_on_shuffled_words(text_engine):
    from engines.starter.corpus import generate_stories

    stories = generate_stories(8, seed=424242)
    shuffled = [" ".join(sorted(s.split(), key=lambda w: hash(w) % 97)) for s in stories]
    good = perplexity(text_engine.model, text_engine.tokenizer, stories)
    bad = perplexity(text_engine.model, text_engine.tokenizer, shuffled)
    assert good < 20 and bad > 3 * good, (good, bad)


def test_a_fine_tune_shifts_the_starter_toward_a_style(tmp_path):
    """Stories full of sea words: after a short full fine-tune the starter writes more of them."""
    import random

    from engines.text.generate import TextEngine
    from engines.text.train import TextLoraConfig, run
    from engines.training import JobConfig, RunDir

    sea = ["ship", "sail", "waves", "anchor", "captain", "harbor", "island", "sea"]
    rng = random.Random(3)
    lines = [
        f"The {rng.choice(['old', 'brave', 'happy'])} captain took the ship across the sea. The waves were high, "
        f"and the sail was full. At the harbor they dropped the anchor near the island {rng.randint(1, 9)}."
        for _ in range(40)
    ]
    data = tmp_path / "data" / "datasets" / "sea"
    data.mkdir(parents=True)
    (data / "data.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in lines))
    run_dir = RunDir(tmp_path / "data" / "runs" / "sea")
    run_dir.path.mkdir(parents=True)
    run_dir.write_job(JobConfig(job_id="sea", kind="text-lora", base_model=shipped.TRAINED_TEXT,
                                dataset_path=str(data), output_dir=str(tmp_path / "data" / "models" / "sea"),
                                models_root=str(tmp_path / "data" / "models"), device="cpu", offline=True))  # fmt: skip
    config = TextLoraConfig(method="full", max_steps=12, batch_size=8, block_size=64, save_every=0, eval_fraction=0.1)
    result = run(config, run_dir)
    assert result["metrics"]["method"] == "full"

    def sea_share(folder: str | Path) -> float:
        engine = TextEngine(str(folder), device="cpu", dtype="float32").load()
        texts = generate_samples(engine, PROMPTS[:8], max_new_tokens=30, temperature=0.8)
        words = [w for t in texts for w in t.lower().split()]
        return sum(w.strip('.,"!?') in sea for w in words) / max(len(words), 1)

    before, after = sea_share(TEXT), sea_share(result["artifact"]["path"])
    assert after >= before + 0.1, (before, after)



def test_the_image_starter_draws_unseen_combinations_as_asked():
    """Every held-out colour/shape/background combination (the starter never saw one), drawn with the
    card's settings and fresh seeds, read back by the shapes detector. The card's measures (54 prompts)
    must reach the targets, 80 % / 80 % / 60 % (the shipped build: 81 / 81 / 70 %); on these 27 prompts it
    drew 89 / 89 / 81 % (85-93 / 78-85 % with other seeds), a random model 0 %."""
    from engines.image.generate import ImageEngine, ImageGenerationRequest
    from engines.shapes import held_out_combos
    from engines.shapes.detect import adherence

    assert shipped.is_shipped(shipped.TRAINED_IMAGE), "the image starter must ship in assets/starter/"
    card = shipped.read_card(shipped.TRAINED_IMAGE)
    inference = card["inference"]
    engine = ImageEngine(str(shipped.shipped_path(shipped.TRAINED_IMAGE)), device="cpu").load()
    combos = held_out_combos()
    images = [
        engine.generate(ImageGenerationRequest(prompt=c.caption, width=inference["width"], height=inference["height"],
                                               steps=inference["steps"], guidance_scale=inference["guidance_scale"],
                                               seed=7 + i)).images[0].image  # fmt: skip
        for i, c in enumerate(combos)
    ]
    scores = adherence(images, combos)
    assert len(combos) >= 27 and scores["background"] >= 0.75 and scores["colour"] >= 0.75, scores
    assert scores["shape"] >= 0.6, scores
    measures = card["measures"]
    assert measures["held_out_prompts"] >= 40, measures
    assert measures["background"] >= 0.8 and measures["colour"] >= 0.8 and measures["shape"] >= 0.6, measures
