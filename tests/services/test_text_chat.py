"""Chat through the text service on the starter GPT-2 (a plain User:/Assistant: transcript)."""

from __future__ import annotations

import pytest

from studio.config import StudioConfig
from studio.services import Studio
from studio.services.auth import LOCAL_ADMIN
from studio.services.errors import Invalid
from studio.services.text import ChatMessage, TextGenerateParams

PARAMS = TextGenerateParams(prompt="", max_new_tokens=6, seed=1)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    s = Studio(StudioConfig(data_dir=tmp_path_factory.mktemp("chat") / "data", offline=True))
    yield s
    s.close()


def prompt_of(studio, answer: dict) -> str:
    return studio.outputs.get(answer["outputs"][0]["id"])["prompt"]


def test_a_reply_is_a_new_assistant_turn(studio):
    turns = [ChatMessage(role="system", content="Be kind."), ChatMessage(role="user", content="Hello")]
    answer = studio.text.chat(turns, PARAMS, user=LOCAL_ADMIN)
    assert prompt_of(studio, answer) == "Be kind.\n\nUser: Hello\nAssistant:"


def test_continue_extends_the_last_reply_instead(studio):
    turns = [ChatMessage(role="user", content="Hello"), ChatMessage(role="assistant", content="Hi, I am")]
    answer = studio.text.chat(turns, PARAMS, user=LOCAL_ADMIN, continue_final=True)
    assert prompt_of(studio, answer) == "User: Hello\nAssistant: Hi, I am"
    with pytest.raises(Invalid, match="last message must be the assistant's"):
        studio.text.chat(turns[:1], PARAMS, user=LOCAL_ADMIN, continue_final=True)
