"""Versions shown by the name their creator chose: `name · kind · steps · date`, ids only in details."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from studio.services.errors import Invalid
from studio.services.version_names import check_name, default_name, read_name, version_title, write_name


def test_the_form_proposes_dataset_kind_and_date():
    when = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
    assert default_name("foxes", "text-lora", when) == "foxes · text-lora · 2026-12-01 15:30"
    assert default_name(None, "selftest", when) == "selftest · 2026-12-01 15:30"


def test_titles_name_the_kind_the_steps_and_the_date_but_no_id():
    row = {"id": "ad_0123456789abcdef", "name": "my stories", "type": "text_model",
           "created_at": "2026-12-01T15:30:12.000Z", "meta": {"kind": "text-lora", "metrics": {"step": 1200}}}
    assert version_title(row) == "my stories · full fine-tune · 1,200 steps · 2026-12-01 15:30"
    imported = {"id": "ad_1", "name": "theirs", "type": "text_adapter", "created_at": "2026-12-02T08:00:00Z",
                "meta": {"source": "import"}}
    assert version_title(imported) == "theirs · adapter · 2026-12-02 08:00"


def test_a_chosen_name_travels_in_the_run_folder(tmp_path):
    write_name(tmp_path, "  my shapes\n")
    assert read_name(tmp_path) == "my shapes"
    assert read_name(tmp_path / "missing") is None
    assert check_name("   ") is None
    with pytest.raises(Invalid):
        check_name("x" * 101)
