"""'Use it in its tab': where a finished job's artifact goes, and the plain refusals."""

import gradio as gr
import pytest

from studio.ui.use_in import target


def job(status="completed", artifact=None, base="starter/gpt2-tiny"):
    return {"status": status, "artifact": artifact, "base_model": base}


@pytest.mark.parametrize("kind, expected", [
    ("text_adapter", ("text", "text.model", "text.adapter", "starter/gpt2-tiny", "ad_1")),
    ("text_model", ("text", "text.model", None, "ad_1", None)),
    ("image_lora", ("image", "image.model", "image.lora", "starter/gpt2-tiny", "ad_1")),
    ("image_model", ("image", "image.model", None, "ad_1", None)),
    ("gan", ("gan", "gan.model", None, "ad_1", None)),
])
def test_each_artifact_goes_to_the_tab_that_uses_it(kind, expected):
    assert target(job(artifact={"type": kind, "id": "ad_1"})) == expected


def test_nothing_to_use_says_why():
    with pytest.raises(gr.Error, match="Pick a job"):
        target(None)
    with pytest.raises(gr.Error, match="This job is running"):
        target(job(status="running"))
    with pytest.raises(gr.Error, match="Models / Settings"):
        target(job(artifact={"type": "reward_model", "id": "ad_2"}))
