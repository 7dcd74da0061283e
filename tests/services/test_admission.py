"""Every generation path passes the one admission point: the caller's size limits, then a fair
turn at the gate. The REST routes and the page's generation handlers are enumerated from the app
itself, so a door added later without a case here fails these tests."""

from __future__ import annotations

import threading
import time

import gradio as gr
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from studio.app import build_app
from studio.config import RequestLimits, StudioConfig
from studio.services import Studio
from studio.services.auth import User
from studio.services.limits import RequestGate

TINY = RequestLimits(max_new_tokens=2, text_outputs=1, image_steps=1, image_pixels=32 * 32, image_outputs=1,
                     speech_chars=5, gan_outputs=1, gan_frames=4, score_chars=20)

def _png_b64() -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


PNG = _png_b64()
CHAT = [{"role": "user", "content": "Hi"}]
# Every door's POST routes that generate → a body over the tiny limits (each must be refused) …
OVER_LIMIT = {
    "/api/v1/text/generate": {"prompt": "Once", "max_new_tokens": 3},
    "/api/v1/text/perplexity": {"text": "Once upon a time there was a dog."},
    "/api/v1/image/generate": {"prompt": "a red circle", "steps": 2},
    "/api/v1/image/grid": {"params": {"prompt": "a red circle", "steps": 2}, "x": {"name": "seed", "values": [1]}},
    "/api/v1/speech/generate": {"text": "Hello there."},
    "/api/v1/gan/generate": {"model": "gan_nope", "num_outputs": 2},
    "/api/v1/gan/walk": {"model": "gan_nope", "seed_a": 1, "seed_b": 2, "frames": 5},
    "/api/v1/compare": {"prompt": "Once", "a": {"model": "starter/gpt2-tiny"}, "b": {"model": "x"},
                        "max_new_tokens": 3},
    "/v1/chat/completions": {"model": "starter/gpt2-tiny", "messages": CHAT, "max_tokens": 3},
    "/v1/completions": {"model": "starter/gpt2-tiny", "prompt": "Once", "max_tokens": 3},
    "/v1/audio/speech": {"model": "tts-1", "input": "Hello there.", "voice": "default"},
    "/v1/images/generations": {"prompt": "a red circle", "size": "64x64"},
    "/sdapi/v1/txt2img": {"prompt": "a red circle", "steps": 2, "width": 32, "height": 32},
    "/sdapi/v1/img2img": {"prompt": "a red circle", "init_images": [PNG], "steps": 1, "batch_size": 2,
                          "denoising_strength": 1.0},
}
# … and the same routes within the limits.
WITHIN = {
    "/api/v1/text/generate": {"prompt": "Once", "max_new_tokens": 2},
    "/api/v1/text/perplexity": {"text": "Once upon a time"},
    "/api/v1/image/generate": {"prompt": "a red circle", "steps": 1, "width": 32, "height": 32},
    "/api/v1/image/grid": {"params": {"prompt": "a red circle", "steps": 1, "width": 32, "height": 32},
                           "x": {"name": "seed", "values": [1]}},
    "/api/v1/speech/generate": {"text": "Hi."},
    "/api/v1/gan/generate": {"model": "gan_nope"},
    "/api/v1/gan/walk": {"model": "gan_nope", "seed_a": 1, "seed_b": 2, "frames": 3},
    "/api/v1/compare": {"prompt": "Once", "a": {"model": "starter/gpt2-tiny"}, "b": {"model": "x"},
                        "max_new_tokens": 2},
    "/v1/chat/completions": {"model": "starter/gpt2-tiny", "messages": CHAT, "max_tokens": 2},
    "/v1/completions": {"model": "starter/gpt2-tiny", "prompt": "Once", "max_tokens": 2},
    "/v1/audio/speech": {"model": "tts-1", "input": "Hi.", "voice": "default"},
    "/v1/images/generations": {"prompt": "a red circle", "size": "32x32"},
    "/sdapi/v1/txt2img": {"prompt": "a red circle", "steps": 1, "width": 32, "height": 32},
    "/sdapi/v1/img2img": {"prompt": "a red circle", "init_images": [PNG], "steps": 1, "width": 32, "height": 32,
                          "denoising_strength": 1.0},
}
# Every other state-changing route of every door: none of them generates.
NOT_GENERATION = {f"/api/v1{p}" for p in (
    "/datasets", "/datasets/{dataset_id}", "/datasets/demo", "/jobs", "/jobs/{job_id}/cancel",
    "/jobs/{job_id}/resume", "/image/pnginfo", "/feedback", "/compare/{comparison_id}/vote", "/tokens",
    "/tokens/{token_id}", "/settings/precision", "/adapters/{adapter_id}", "/adapters/mix", "/adapters/import",
    "/experiments", "/experiments/{experiment_id}/stop", "/experiments/{experiment_id}/promote",
)} | {"/sdapi/v1/png-info", "/sdapi/v1/options", "/sdapi/v1/interrupt", "/sdapi/v1/skip"}
DOORS = ("/api/v1", "/v1", "/sdapi/v1")


def shared_config(tmp_path, **kw) -> StudioConfig:
    return StudioConfig(data_dir=tmp_path / "d", offline=True, accounts=[("admin", "pw-admin")],
                        guest_access="generate", limits=TINY, **kw)


def state_changing_routes(client) -> set[str]:
    routes = set()
    for door in DOORS:
        doc = client.get(door + "/openapi.json", auth=("admin", "pw-admin")).json()
        routes |= {door + path for path, ops in doc["paths"].items() if set(ops) & {"post", "put", "patch", "delete"}}
    return routes


def test_every_rest_generation_route_holds_a_visitor_to_the_limits(tmp_path):
    with TestClient(build_app(shared_config(tmp_path), ui=False)) as c:
        routes = state_changing_routes(c)
        assert routes == set(OVER_LIMIT) | NOT_GENERATION, "classify the new route here"
        for path, body in OVER_LIMIT.items():
            r = c.post(path, json=body)
            assert r.status_code == 422, (path, r.text)
            assert "at most" in r.text, (path, r.text)


def test_image_pixels_count_the_model_defaults_too(tmp_path):
    with TestClient(build_app(shared_config(tmp_path), ui=False)) as c:
        # no width/height given: the starter's 64×64 default is over the 32×32 limit
        r = c.post("/api/v1/image/generate", json={"prompt": "x", "steps": 1})
        assert r.status_code == 422 and "pixels" in r.json()["error"]["message"]
        img2img = c.post("/api/v1/image/generate", json={"prompt": "x", "steps": 1, "num_outputs": 2,
                                                          "width": 32, "height": 32})
        assert img2img.status_code == 422 and "images" in img2img.json()["error"]["message"]


def test_every_rest_generation_route_waits_at_the_gate(tmp_path):
    """With the only slot taken and no room to wait, every generation route answers 429 busy."""
    config = StudioConfig(data_dir=tmp_path / "d", offline=True, accounts=[("admin", "pw-admin")],
                          guest_access="generate", max_running=1, max_queue=0)
    with TestClient(build_app(config, ui=False)) as c:
        for path, body in WITHIN.items():
            for auth in (None, ("admin", "pw-admin")):  # admins skip size limits, never the gate
                r = c.post(path, json=body, auth=auth)
                assert r.status_code == 429, (path, auth, r.text)
                assert "busy" in r.text


def test_five_concurrent_visitor_image_requests_at_most_two_run(tmp_path):
    config = shared_config(tmp_path, max_running=4)
    with TestClient(build_app(config, ui=False)) as c:
        studio: Studio = c.app.state.studio
        running, peak, lock = [0], [0], threading.Lock()
        engine_generate = type(studio.image.engine(studio.image.resolve(None)[0])).generate

        def slow_generate(self, *a, **kw):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.5)
            try:
                return engine_generate(self, *a, **kw)
            finally:
                with lock:
                    running[0] -= 1

        body = {"prompt": "a circle", "steps": 1, "width": 32, "height": 32}
        statuses = []
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(type(studio.image.engine(studio.image.resolve(None)[0])), "generate", slow_generate)
            threads = [threading.Thread(target=lambda: statuses.append(
                c.post("/api/v1/image/generate", json=body).status_code)) for _ in range(5)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        assert sorted(statuses) == [200, 200, 429, 429, 429]
        assert peak[0] <= 2


# -- the page ------------------------------------------------------------------------------------
# Generation listeners of the page and the Gradio API (module, function) → inputs by label or by
# parameter name; the rest take their defaults.
A_REPLY = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
UI_CASES = {
    ("studio.ui.text_tab", "run"): {"Prompt": "Once upon a time"},
    ("studio.ui.text_tab", "run_compare"): {"Prompt": "Once", "version_a": "starter/gpt2-tiny",
                                           "version_b": "starter/gpt2-tiny"},
    ("studio.ui.text_tab", "generate_text"): {"prompt": "Once upon a time"},
    ("studio.ui.text_insight", "run_score"): {"text": "Once upon a time there was a dog."},
    ("studio.ui.chat_panel", "send_message"): {"text": "Hi"},
    ("studio.ui.chat_panel", "regenerate_reply"): {"turns": A_REPLY},
    ("studio.ui.chat_panel", "continue_reply"): {"turns": A_REPLY},
    ("studio.ui.chat_panel", "chat"): {"message": "Hi"},
    # (the same handler inpaints when the editor holds an image with a painted area)
    ("studio.ui.image_tab", "run"): {"Prompt": "a red circle", "Image and mask (paint the area to regenerate)": {
        "background": Image.new("RGB", (64, 64), "blue"), "layers": [Image.new("RGBA", (64, 64), "white")]}},
    ("studio.ui.image_tab", "generate_image"): {"prompt": "a red circle"},
    ("studio.ui.image_grid", "make_grid"): {"Prompt": "a red circle"},
    ("studio.ui.gan_tab", "run"): {"Trained GAN": "gan_nope"},
    ("studio.ui.gan_tab", "on_walk"): {"Trained GAN": "gan_nope"},
    ("studio.ui.gan_tab", "generate_gan"): {"model": "gan_nope"},
    ("studio.ui.speech_tab", "run"): {"Text": "Hello there, this is a test."},
    ("studio.ui.speech_tab", "generate_speech"): {"text": "Hello there, this is a test."},
    ("studio.ui.feedback_tab", "start_compare"): {"Version 1": "starter/gpt2-tiny", "Version 2": "x",
                                                  "Prompt": "Once"},
    ("studio.ui.feedback_tab", "start_image_compare"): {"Version 1": "starter/sd-tiny",
                                                        "Version 2": "local/image/sd-copy", "Prompt": "a red circle"},
    ("studio.ui.feedback_tab", "start_speech_compare"): {"Version 1": "starter/vits-tiny", "Version 2": "x",
                                                         "Prompt": "Hello there, this is a test."},
}


def generation_listeners(studio: Studio):
    from studio.ui import build_ui

    # an image comparison weighs each side's model defaults before admission: a second image model to
    # compare with (listed, never loaded)
    (studio.data_dir / "models" / "local" / "image" / "sd-copy").mkdir(parents=True, exist_ok=True)
    demo = build_ui(studio)
    return [f for f in demo.fns.values() if f.concurrency_id in ("text", "image", "speech", "gan")]


def call_listener(fn, overrides: dict, request: gr.Request) -> None:
    """Call a Gradio listener as the page would (its `inputs_kwargs` as keywords), draining a
    generator's updates."""
    import inspect

    names = fn.input_parameter_names or [None] * len(fn.inputs)
    values = [overrides.get(name, overrides.get(c.label, c.value)) for name, c in zip(names, fn.inputs, strict=True)]
    positional = len(values) - len(fn.input_keyword_names)
    args = values[:positional]
    kwargs = dict(zip(fn.input_keyword_names, values[positional:], strict=True)) | {"request": request}
    if "progress" in inspect.signature(fn.fn).parameters:
        kwargs["progress"] = lambda *a, **k: None
    result = fn.fn(*args, **kwargs)
    if inspect.isgenerator(result):
        for _ in result:
            pass


def test_every_page_generation_handler_holds_a_visitor_to_the_limits(tmp_path):
    studio = Studio(shared_config(tmp_path))
    try:
        listeners = generation_listeners(studio)
        assert {(f.fn.__module__, f.fn.__name__) for f in listeners} == set(UI_CASES), "add a case here"
        visitor = gr.Request(username="visitor-0123456789abcdef")
        for fn in listeners:
            with pytest.raises(gr.Error, match="at most"):
                call_listener(fn, UI_CASES[(fn.fn.__module__, fn.fn.__name__)], visitor)
    finally:
        studio.close()


def test_every_page_generation_handler_waits_at_the_gate(tmp_path):
    studio = Studio(StudioConfig(data_dir=tmp_path / "d", offline=True, max_running=1, max_queue=0))
    try:
        for fn in generation_listeners(studio):
            with pytest.raises(gr.Error, match="busy"):
                call_listener(fn, UI_CASES[(fn.fn.__module__, fn.fn.__name__)], gr.Request())
    finally:
        studio.close()


def test_admission_is_required_before_an_engine_runs(tmp_path):
    """A service path that forgot admission fails loudly instead of running unchecked."""
    studio = Studio(StudioConfig(data_dir=tmp_path / "d", offline=True))
    try:
        with pytest.raises(RuntimeError, match="admission"):
            studio.admission.require()
        with studio.admission.admit(User("local", is_admin=True), "text", {}):
            studio.admission.require()
        assert isinstance(studio.gate, RequestGate)
    finally:
        studio.close()
