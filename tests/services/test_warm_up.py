"""The studio loads its default text and image models in the background as it is built when they are
shipped trained starters (the first answer and the first image then pay no load), and nothing else."""

from __future__ import annotations

import json
import shutil

import pytest

from engines.starter import STARTER_IMAGE, STARTER_TEXT, ensure_starter, shipped
from studio.config import StudioConfig
from studio.services import Studio


@pytest.fixture
def shipped_starters(tmp_path_factory, tmp_path, monkeypatch):
    """Trained starters "shipped" under a temporary assets folder (the tiny models' files stand in for
    their weights: what is checked is what gets loaded, not what it makes)."""
    assets = tmp_path / "assets"
    monkeypatch.setattr(shipped, "ASSETS", assets)
    built = tmp_path_factory.mktemp("built")
    for tiny_id, trained_id in ((STARTER_TEXT, shipped.TRAINED_TEXT), (STARTER_IMAGE, shipped.TRAINED_IMAGE)):
        folder = shipped.shipped_path(trained_id, assets)
        shutil.copytree(ensure_starter(tiny_id, built), folder)
        (folder / shipped.CARD_FILE).write_text(json.dumps({"id": trained_id, "measures": {}}), encoding="utf-8")
        assert shipped.is_shipped(trained_id)
    return assets


def warmed(tmp_path, monkeypatch, tiny_first: bool) -> tuple[bool, bool, bool]:
    monkeypatch.setenv(shipped.TINY_ENV, "1" if tiny_first else "0")
    studio = Studio(StudioConfig(data_dir=tmp_path / "data", offline=True, device="cpu"))
    try:
        studio.warm_up()
        studio.warm_up()  # once per studio
        studio._warming.join(120)
        assert not studio._warming.is_alive()
        built = (tmp_path / "data" / "models" / "starter").exists()
        return studio.text.is_loaded(None), studio.image.is_loaded(None), built
    finally:
        studio.close()


def test_shipped_default_starters_are_loaded_in_the_background(shipped_starters, tmp_path, monkeypatch):
    assert warmed(tmp_path, monkeypatch, tiny_first=False) == (True, True, False)  # loaded, nothing built


def test_random_weight_defaults_are_not_warmed(shipped_starters, tmp_path, monkeypatch):
    assert warmed(tmp_path, monkeypatch, tiny_first=True) == (False, False, False)
