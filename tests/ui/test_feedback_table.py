"""The dashboard's table of latest ratings reads at 1366 px: rounded times, the output itself, names."""

from studio.ui.feedback_tab import LATEST_COLUMNS, latest_frame


def row(**kw):
    base = {"updated_at": "2026-12-01T20:58:31.123456+00:00", "user": "ada", "rating": "up", "comment": None,
            "id": "out_1", "kind": "text", "model": "starter/gpt2-stories", "adapter": None,
            "prompt": "Once upon a time", "text": "a | b " + "word " * 40}
    return base | kw


def test_each_kind_shows_its_output_and_no_internal_ids():
    frame = latest_frame([row(), row(id="out_2", kind="image", text=None, adapter="ad_9", rating="down"),
                          row(id="out_3", kind="speech", text=None)], {"ad_9": "my fox tales · LoRA · 20 steps"})
    assert list(frame.columns) == LATEST_COLUMNS
    text, image, speech = frame.to_dict("records")
    assert text["when"] == "2026-12-01 20:58" and text["rating"] == "👍 up"
    assert len(text["output"]) <= 82 and text["output"].endswith("…") and "\\|" in text["output"]
    assert image["output"] == "![image output](/api/v1/outputs/out_2/file)"
    assert image["version"] == "starter/gpt2-stories + my fox tales · LoRA · 20 steps"
    assert speech["output"] == "[▶ listen](/api/v1/outputs/out_3/file)"
    assert "out_1" not in frame.to_string()
