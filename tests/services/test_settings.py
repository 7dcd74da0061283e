"""Admin settings (precision per engine, the image content filter) survive a restart, and a stored
value that no longer validates is skipped, not fatal."""

from __future__ import annotations

import json

import pytest

from studio.config import StudioConfig
from studio.services import Studio
from studio.services.errors import Invalid


def test_settings_are_kept_across_a_restart(tmp_path):
    first = Studio(StudioConfig(data_dir=tmp_path, offline=True))
    assert first.config.precision == {"text": "auto", "image": "auto", "speech": "fp32"}
    first.settings.set_precision("image", "bf16", "admin")
    first.settings.set_precision("speech", "float16", "admin")  # any accepted spelling, stored plainly
    first.settings.set_content_filter(False, "admin")
    with pytest.raises(Invalid, match="Unknown precision"):
        first.settings.set_precision("text", "int4", "admin")
    assert first.config.precision["text"] == "auto"  # a refused value changes nothing
    first.store.close()

    again = Studio(StudioConfig(data_dir=tmp_path, offline=True))
    assert again.config.precision == {"text": "auto", "image": "bf16", "speech": "fp16"}
    assert again.config.image_content_filter is False
    row = again.store.query_one("SELECT value, updated_by FROM settings WHERE key = 'precision.image'")
    assert json.loads(row["value"]) == "bf16" and row["updated_by"] == "admin"
    assert again.models.precision()["image"] == "bf16"


def test_a_stored_value_that_no_longer_validates_is_skipped(tmp_path):
    studio = Studio(StudioConfig(data_dir=tmp_path, offline=True))
    with studio.store.transaction() as c:
        c.execute("INSERT INTO settings (key, value, updated_at) VALUES ('precision.text', '\"int2\"', 'x')")
        c.execute("INSERT INTO settings (key, value, updated_at) VALUES ('precision.image', '\"bf16\"', 'x')")
    studio.store.close()
    again = Studio(StudioConfig(data_dir=tmp_path, offline=True))
    assert again.config.precision["text"] == "auto" and again.config.precision["image"] == "bf16"
