"""The field's clients drive a studio with accounts through its OpenAI and A1111 dialects: the real
`openai` and `webuiapi` packages against a live server. Every output is a studio output: its id
comes back, it can be rated, and it counts in the dashboard."""

from __future__ import annotations

import base64
import io

import httpx
import pytest

ADMIN = ("admin", "pw-admin")


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from tests.conftest import start_studio

    data = tmp_path_factory.mktemp("dialects") / "data"
    live = start_studio(["--offline", "--auth", ":".join(ADMIN), "--auth", "bob:pw-bob",
                         "--guest-access", "generate"], data)
    token = httpx.post(live.url + "/api/v1/tokens", json={"label": "clients"}, auth=ADMIN).json()["token"]
    live.token = token
    yield live
    live.stop()


def rate(studio, output_id: str) -> None:
    r = httpx.post(studio.url + "/api/v1/feedback", json={"output_id": output_id, "rating": "up"},
                   headers={"Authorization": f"Bearer {studio.token}"})
    assert r.status_code == 200, r.text


def test_openai_client_chat_completion_speech_and_images(studio):
    import openai
    import soundfile as sf
    from PIL import Image

    client = openai.OpenAI(base_url=studio.url + "/v1", api_key=studio.token, max_retries=0)
    assert "starter/gpt2-tiny" in [m.id for m in client.models.list().data]
    before = httpx.get(studio.url + "/api/v1/feedback/stats", auth=ADMIN).json()["total"]

    # chat, whole: the header and each choice name the stored output
    raw = client.chat.completions.with_raw_response.create(
        model="starter/gpt2-tiny", messages=[{"role": "system", "content": "Be brief."},
                                             {"role": "user", "content": "Tell me a story."}],
        max_tokens=8, seed=3, n=2, logprobs=True, top_logprobs=2)
    chat = raw.parse()
    ids = raw.headers["x-studio-output-id"].split(",")
    assert len(chat.choices) == 2 and [c.model_extra["output_id"] for c in chat.choices] == ids
    assert chat.choices[0].logprobs.content[0].top_logprobs and chat.usage.completion_tokens > 0
    stored = httpx.get(f"{studio.url}/api/v1/outputs/{ids[0]}", auth=ADMIN).json()
    assert stored["text"] == chat.choices[0].message.content
    assert "User: Tell me a story." in stored["prompt"]  # the conversation, in the model's chat format

    # chat, streamed: the deltas add up to the stored reply
    stream = client.chat.completions.create(model="starter/gpt2-tiny", stream=True, max_tokens=12, seed=5,
                                            messages=[{"role": "user", "content": "Hello"}])
    parts, output_id = [], None
    for chunk in stream:
        for choice in chunk.choices:
            parts.append(choice.delta.content or "")
            output_id = (choice.model_extra or {}).get("output_id") or output_id
    assert output_id
    assert "".join(parts) == httpx.get(f"{studio.url}/api/v1/outputs/{output_id}", auth=ADMIN).json()["text"]

    # a plain completion
    completion = client.completions.create(model="starter/gpt2-tiny", prompt="Once upon a time", max_tokens=6,
                                           seed=1)
    assert completion.choices[0].text and completion.choices[0].finish_reason in ("stop", "length")

    # speech: audio that decodes
    speech = client.audio.speech.with_raw_response.create(model="tts-1", voice="default", input="Hello there.",
                                                          response_format="wav")
    audio, rate_hz = sf.read(io.BytesIO(speech.content))
    speech_id = speech.headers["x-studio-output-id"]
    assert rate_hz > 0 and len(audio) > rate_hz // 10

    # images: a PNG that decodes
    images = client.images.generate(model="starter/sd-tiny", prompt="a red circle", size="64x64",
                                    response_format="b64_json", n=1)
    picture = Image.open(io.BytesIO(base64.b64decode(images.data[0].b64_json)))
    assert picture.format == "PNG" and picture.size == (64, 64)
    image_id = images.data[0].model_extra["output_id"]

    # every output can be rated by id and shows in the dashboard
    for output_id_ in [*ids, output_id, completion.choices[0].model_extra["output_id"], speech_id, image_id]:
        rate(studio, output_id_)
    stats = httpx.get(studio.url + "/api/v1/feedback/stats", auth=ADMIN).json()
    assert stats["total"] == before + 6
    assert {(row["kind"], row["model"]) for row in stats["by_model"]} >= {
        ("text", "starter/gpt2-tiny"), ("image", "starter/sd-tiny"), ("speech", "starter/vits-tiny")}


def test_openai_errors_and_limits(studio):
    import openai

    wrong = httpx.get(studio.url + "/v1/models", headers={"Authorization": "Bearer aigc_not-a-token"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
    client = openai.OpenAI(base_url=studio.url + "/v1", api_key=studio.token, max_retries=0)
    with pytest.raises(openai.NotFoundError, match="Available text models"):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    # a visitor (guest access, no credentials) gets the native routes' refusal over the limits
    native = httpx.post(studio.url + "/api/v1/text/generate", json={"prompt": "hi", "max_new_tokens": 300})
    r = httpx.post(studio.url + "/v1/chat/completions", json={
        "model": "starter/gpt2-tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 300})
    assert native.status_code == r.status_code == 422
    assert r.json()["error"]["message"] == native.json()["error"]["message"]
    streamed = httpx.post(studio.url + "/v1/chat/completions", json={
        "model": "starter/gpt2-tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 300,
        "stream": True})
    assert streamed.status_code == 422  # refused before the stream starts


def test_webuiapi_txt2img_img2img_and_png_info(studio):
    import webuiapi

    api = webuiapi.WebUIApi(host="127.0.0.1", port=studio.port, username=ADMIN[0], password=ADMIN[1])
    assert "starter/sd-tiny" in [m["title"] for m in api.get_sd_models()]
    result = api.txt2img(prompt="a red circle", negative_prompt="blurry", seed=7, steps=3, cfg_scale=5,
                         width=64, height=64, enable_hr=True, restore_faces=True)
    assert result.image.size == (128, 128)  # the hires fix: hr_scale 2 (webuiapi's default)
    assert "restore_faces" in result.info["ignored"] and "enable_hr" not in result.info["ignored"]
    assert "Hires upscale: 2.0" in result.info["infotexts"][0]
    back = api.png_info(result.image)  # the parameters travel inside the PNG and read back
    assert back.info == result.info["infotexts"][0]
    assert back.info.startswith("a red circle") and "Seed: 7" in back.info and "Steps: 3" in back.info
    assert back.parameters["seed"] == 7 and back.parameters["negative_prompt"] == "blurry"
    again = api.img2img(images=[result.image], prompt="a blue circle", denoising_strength=0.5, steps=4, seed=2,
                        width=64, height=64)
    assert again.image.size == (64, 64)
    assert "Denoising strength: 0.5" in api.png_info(again.image).info
    from PIL import Image

    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    small = again.image.convert("RGB")
    inpainted = api.img2img(images=[small], mask_image=mask, mask_blur=1, prompt="x", steps=2, seed=2, width=64, height=64,
                            denoising_strength=1.0)
    kept = [(x, y) for x in (0, 5, 60, 63) for y in (0, 5, 60, 63)]  # far from the mask
    assert [inpainted.image.convert("RGB").getpixel(p) for p in kept] == [small.getpixel(p) for p in kept]
    assert "Mask blur: 1" in inpainted.info["infotexts"][0]
    for output_id in result.info["output_ids"] + again.info["output_ids"]:
        rate(studio, output_id)
        assert httpx.get(f"{studio.url}/api/v1/outputs/{output_id}", auth=ADMIN).json()["rating"] == "up"


def test_a1111_needs_credentials_and_holds_visitors_to_the_limits(studio):
    assert httpx.get(studio.url + "/sdapi/v1/sd-models").status_code in (200, 401)  # visitors may generate
    wrong = httpx.get(studio.url + "/sdapi/v1/sd-models", auth=("admin", "wrong"))
    assert wrong.status_code == 401
    r = httpx.post(studio.url + "/sdapi/v1/txt2img", json={"prompt": "x", "steps": 40, "width": 64, "height": 64})
    assert r.status_code == 422 and "at most 30 steps" in r.json()["detail"]
    switch = httpx.post(studio.url + "/sdapi/v1/options", json={"sd_model_checkpoint": "starter/sd-tiny"})
    assert switch.status_code == 403  # visitors can't switch the checkpoint
    ok = httpx.post(studio.url + "/sdapi/v1/options", json={"sd_model_checkpoint": "starter/sd-tiny"}, auth=ADMIN)
    assert ok.status_code == 200 and ok.json()["sd_model_checkpoint"] == "starter/sd-tiny"


def test_without_guest_access_both_dialects_need_credentials(tmp_path):
    from fastapi.testclient import TestClient

    from studio.app import build_app
    from studio.config import StudioConfig

    config = StudioConfig(data_dir=tmp_path / "data", offline=True, device="cpu", accounts=[ADMIN])
    with TestClient(build_app(config, ui=False)) as client:
        for path in ("/v1/models", "/sdapi/v1/sd-models"):
            assert client.get(path).status_code == 401
        assert client.post("/v1/chat/completions", json={"model": "x", "messages": []}).status_code == 401
        assert client.post("/sdapi/v1/txt2img", json={"prompt": "x"}).status_code == 401
        assert client.get("/v1/models", auth=ADMIN).status_code == 200  # an account's credentials open both
        assert client.get("/sdapi/v1/sd-models", auth=ADMIN).status_code == 200
