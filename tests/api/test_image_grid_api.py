"""POST /image/grid: an X/Y plot whose cells are ordinary, ratable image outputs."""

from __future__ import annotations

import base64
import io
import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from engines.starter import STARTER_IMAGE, starter_path
from studio.config import RequestLimits, StudioConfig
from tests.api.test_image_api import pixels, png
from tests.api.test_image_prompt_api import api_fixture, one_thread_fixture, sd_tiny_fixture  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")
FORM = {"prompt": "a red square", "steps": 2, "width": 64, "height": 64}


def grid(client, **body):
    return client.post("/api/v1/image/grid", json={"params": FORM, **body})


def test_a_2x3_grid_stores_six_ratable_cells_and_a_labelled_picture(api):
    r = grid(api, x={"name": "seed", "values": [1, 2]}, y={"name": "steps", "values": [1, 2, 3]})
    assert r.status_code == 200, r.text
    body = r.json()
    cells = body["cells"]
    assert len(cells) == 6 and len({c["id"] for c in cells}) == 6
    assert [(c["x"], c["y"]) for c in cells] == [(1, 1), (2, 1), (1, 2), (2, 2), (1, 3), (2, 3)]
    assert [c["seed"] for c in cells] == [1, 2] * 3 and [c["steps"] for c in cells] == [1, 1, 2, 2, 3, 3]
    picture = Image.open(io.BytesIO(base64.b64decode(body["grid"])))
    assert picture.width >= 2 * 64 and picture.height >= 3 * 64
    # a cell is the image /image/generate gives for its settings
    one = api.post("/api/v1/image/generate", json={**FORM, "seed": 2, "steps": 3}).json()["outputs"][0]
    assert np.array_equal(pixels(png(api, one)), pixels(png(api, cells[5])))
    for cell, rating in ((cells[0], "up"), (cells[3], "down")):
        stored = api.get(f"/api/v1/outputs/{cell['id']}").json()
        assert stored["kind"] == "image" and stored["params"]["grid"] == body["id"]
        assert api.post("/api/v1/feedback", json={"output_id": cell["id"], "rating": rating}).status_code == 200
        assert api.get(f"/api/v1/outputs/{cell['id']}").json()["rating"] == rating
    # prompt S/R: the first value is the search term
    r = grid(api, params={**FORM, "seed": 5, "steps": 1}, x={"name": "prompt S/R", "values": ["red", "blue"]})
    assert [c["x"] for c in r.json()["cells"]] == ["red", "blue"]
    prompts = [api.get(f"/api/v1/outputs/{c['id']}").json()["prompt"] for c in r.json()["cells"]]
    assert prompts == ["a red square", "a blue square"]


def test_bad_grids_are_refused_with_what_to_change(api):
    before = api.studio.store.query("SELECT COUNT(*) AS n FROM outputs")[0]["n"]
    cases = [
        ({"x": {"name": "colour", "values": [1]}}, "unknown"),
        ({"x": {"name": "steps", "values": [1, 0]}}, "steps"),
        ({"x": {"name": "scheduler", "values": ["Euler", "Nope"]}}, "scheduler"),
        ({"x": {"name": "prompt_sr", "values": ["green", "blue"]}}, "must occur in the prompt"),
        ({"x": {"name": "lora_scale", "values": [0, 1]}}, "names no LoRA"),
        ({"x": {"name": "seed", "values": [1]}, "y": {"name": "seed", "values": [2]}}, "its own parameter"),
        ({"x": {"name": "seed", "values": list(range(9))}, "y": {"name": "steps", "values": list(range(1, 9))}},
         "at most 64 cells"),
    ]
    for body, words in cases:
        r = grid(api, **body)
        assert r.status_code == 422 and words in r.json()["error"]["message"], (body, r.text)
    assert api.studio.store.query("SELECT COUNT(*) AS n FROM outputs")[0]["n"] == before


def test_visitors_are_held_to_the_grid_cell_limit(tmp_path, sd_tiny):
    data = tmp_path / "d"
    shutil.copytree(sd_tiny, starter_path(STARTER_IMAGE, data / "models"))
    config = StudioConfig(data_dir=data, offline=True, accounts=[("admin", "pw-admin")], guest_access="generate",
                          limits=RequestLimits(image_grid_cells=2))
    from studio.app import build_app

    with TestClient(build_app(config, ui=False)) as visitor:
        r = grid(visitor, x={"name": "seed", "values": [1, 2, 3]})
        assert r.status_code == 422 and "at most 2 grid cells" in r.json()["error"]["message"], r.text
