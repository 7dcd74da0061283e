"""`build_app` as a library call: building and serving the studio changes nothing process-wide."""

from __future__ import annotations

import os
import tempfile

import gradio as gr
from fastapi.testclient import TestClient

from studio.app import build_app
from studio.config import StudioConfig


def test_building_and_serving_the_app_leaves_the_environment_and_tempfile_alone(tmp_path):
    with gr.Blocks(analytics_enabled=False):  # Gradio's own doing, at its first Blocks without telemetry:
        pass  # HF_HUB_DISABLE_TELEMETRY=True. Made here first, so what remains to see is the studio's.
    environment, temp_folder = dict(os.environ), tempfile.tempdir
    # Not --offline: the hub probe runs (and, the hub being off in tests, finds it unreachable).
    app = build_app(StudioConfig(data_dir=tmp_path / "data"))
    with TestClient(app) as client:
        health = client.get("/api/v1/health").json()  # waits for the probe's answer
        assert health["offline"] is True
        assert client.get("/").status_code == 200
    assert tempfile.tempdir == temp_folder
    assert dict(os.environ) == environment


def test_an_unreachable_hub_reaches_training_jobs_as_an_argument(tmp_path, monkeypatch):
    """With the probe no longer writing HF_HUB_OFFLINE into the process, its answer must still reach
    the trainers: in their job config and their own environment."""
    from studio.services import Studio

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # what the probe sees as an unreachable hub
    studio = Studio(StudioConfig(data_dir=tmp_path / "data"))
    try:
        assert studio.config.offline is False and studio.jobs.offline() is True
    finally:
        studio.close()
