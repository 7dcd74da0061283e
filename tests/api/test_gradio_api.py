"""The Gradio API as a script uses it: `gradio_client` against a live studio with accounts.

The studio signs people in with its own /signin page (a session cookie), not Gradio's /login, so
`Client(auth=...)` cannot sign in; a client posts /signin and sends the cookie it gets back."""

from __future__ import annotations

import httpx
import pytest
from PIL import Image

from tests.conftest import start_studio

PUBLIC = {"/generate_text", "/generate_image", "/generate_speech", "/generate_gan", "/chat", "/rate"}
ADMIN, USER = ("admin", "pw-admin"), ("bob", "pw-bob")


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    data = tmp_path_factory.mktemp("gradio-api") / "data"
    live = start_studio(["--offline", "--auth", ":".join(ADMIN), "--auth", ":".join(USER)], data)
    yield live
    live.stop()


def session_cookie(studio, account) -> dict:
    r = httpx.post(studio.url + "/signin", data={"username": account[0], "password": account[1]})
    assert r.status_code == 303, r.text
    return {"Cookie": f"studio_session={r.cookies['studio_session']}"}


def client_for(studio, tmp_path, account=ADMIN):
    from gradio_client import Client

    return Client(studio.url, headers=session_cookie(studio, account), verbose=False, download_files=str(tmp_path))


def stored(studio, output_id: str) -> dict:
    r = httpx.get(f"{studio.url}/api/v1/outputs/{output_id}", auth=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def test_only_the_named_endpoints_are_listed_and_callable(studio, tmp_path):
    headers = session_cookie(studio, ADMIN)
    info = httpx.get(studio.url + "/gradio_api/info", params={"all_endpoints": "true"}, headers=headers).json()
    assert set(info["named_endpoints"]) == PUBLIC and not info["unnamed_endpoints"]
    client = client_for(studio, tmp_path)
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == PUBLIC
    # A page handler (the Text tab's streaming generate, named after its function) is not offered.
    with pytest.raises(ValueError, match="Cannot find"):
        client.predict("hi", api_name="/run")
    # Without a session the accounts-only studio refuses the API, as it refuses the page.
    assert httpx.get(studio.url + "/gradio_api/info").status_code == 401


def test_generate_text_with_only_a_prompt_then_rate_it(studio, tmp_path):
    client = client_for(studio, tmp_path)
    text, result = client.predict("Once upon a time", api_name="/generate_text")
    output_id = result["outputs"][0]["id"]
    assert text and text == result["outputs"][0]["text"]
    assert stored(studio, output_id)["text"] == text
    # Any listed model id is accepted as text (the dropdown's choices are not needed) ...
    _, again = client.predict("Once upon a time", model=result["model"], seed=3, max_new_tokens=8,
                              api_name="/generate_text")
    assert again["model"] == result["model"] and again["outputs"][0]["seed"] == 3
    # ... and an unknown one gets the service's answer.
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="no-such/model"):
        client.predict("hi", model="no-such/model", api_name="/generate_text")
    saved = client.predict(output_id, "up", api_name="/rate")
    assert saved["rating"] == "up" and stored(studio, output_id)["rating"] == "up"


def test_a_non_admin_gets_the_same_limits_as_in_the_page(studio, tmp_path):
    from gradio_client.exceptions import AppError

    client = client_for(studio, tmp_path, USER)
    with pytest.raises(AppError, match="at most"):
        client.predict("Once upon a time", max_new_tokens=1000, api_name="/generate_text")


def test_generate_image_gives_a_png(studio, tmp_path):
    images, result = client_for(studio, tmp_path).predict("a red circle", seed=1, api_name="/generate_image")
    assert len(images) == 1 and result["outputs"][0]["seed"] == 1
    with Image.open(images[0]["image"]) as png:
        assert png.format == "PNG" and png.size[0] > 0
    assert stored(studio, result["outputs"][0]["id"])["kind"] == "image"


def test_generate_speech_and_gan(studio, tmp_path):
    from gradio_client.exceptions import AppError

    client = client_for(studio, tmp_path)
    clip, result = client.predict("Hello there.", seed=2, api_name="/generate_speech")
    with open(clip, "rb") as f:
        assert f.read(4) == b"RIFF"
    assert stored(studio, result["outputs"][0]["id"])["kind"] == "speech"
    with pytest.raises(AppError, match="No GAN"):  # none trained yet: the hint says how to get one
        client.predict(api_name="/generate_gan")


def test_chat_two_turns(studio, tmp_path):
    client = client_for(studio, tmp_path)
    reply, first = client.predict("Hello, who are you?", system_prompt="Be brief.", max_new_tokens=12,
                                  api_name="/chat")
    assert first["messages"][-1] == {"role": "assistant", "content": reply}
    _, second = client.predict("Tell me more.", history=first["messages"], max_new_tokens=12, api_name="/chat")
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user", "assistant"]
    prompt = stored(studio, second["outputs"][0]["id"])["prompt"]
    assert "Hello, who are you?" in prompt and reply in prompt and "Tell me more." in prompt
    assert "Be brief." not in prompt  # the system prompt belongs to the request that sent it
