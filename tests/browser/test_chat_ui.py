"""The Text tab's chat view as a person uses it: two turns, a thumb on a reply, edit, regenerate, continue."""

import sqlite3
import time

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import open_tab

pytestmark = pytest.mark.browser
ADMIN = ("admin", "admin-pass")


def replies_of(studio_server, user: str = ADMIN[0]) -> list[str]:
    """Ids of the user's text outputs, oldest first."""
    db = sqlite3.connect(studio_server.data_dir / "studio.db")
    try:
        rows = db.execute("SELECT id FROM outputs WHERE kind = 'text' AND user = ? ORDER BY created_at, rowid",
                          (user,)).fetchall()
        return [r[0] for r in rows]
    finally:
        db.close()


def stored(studio_server, output_id: str) -> dict:
    r = httpx.get(f"{studio_server.url}/api/v1/outputs/{output_id}", auth=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def click_and_wait_for_reply(page, studio_server, button: str) -> str:
    """Click, then wait until the reply is stored and the page shows it finished; its output id."""
    known = set(replies_of(studio_server))
    page.click(button)
    deadline = time.monotonic() + 60
    while not (new := [i for i in replies_of(studio_server) if i not in known]):
        assert time.monotonic() < deadline, "no reply was stored"
        time.sleep(0.2)
    # The status names the reply's seed once the page has the finished reply.
    page.locator("#chat-status").get_by_text(f"seed {stored(studio_server, new[0])['seed']} ").wait_for()
    return new[0]


def send(page, studio_server, text: str) -> str:
    page.fill("#chat-message textarea", text)
    return click_and_wait_for_reply(page, studio_server, "#chat-send")


def test_two_turns_then_a_thumb_up_on_a_reply(admin_page, studio_server):
    page = admin_page
    open_tab(page, "Chat")
    bots = page.locator("#chat-bot [data-testid=bot]")

    first = send(page, studio_server, "Hello there")
    expect(bots).to_have_count(1)
    second = send(page, studio_server, "Tell me a story")
    expect(bots).to_have_count(2)
    expect(page.locator("#chat-bot [data-testid=user]")).to_have_count(2)

    # The second request carried the first exchange (the starter model has no chat template, so the
    # conversation is a plain User:/Assistant: transcript).
    asked = stored(studio_server, second)
    assert "User: Hello there" in asked["prompt"] and "User: Tell me a story" in asked["prompt"]
    assert asked["params"]["messages"][:2] == [
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": stored(studio_server, first)["text"].strip()},
    ]

    up_before = httpx.get(f"{studio_server.url}/api/v1/feedback/stats", auth=ADMIN).json()["up"]
    bots.last.hover()  # the thumbs sit under each reply
    page.locator("#chat-bot button[aria-label='Like']").last.click()
    page.locator("#chat-status").get_by_text("Saved 👍").wait_for()
    assert stored(studio_server, second)["rating"] == "up"
    assert stored(studio_server, first)["rating"] is None
    assert httpx.get(f"{studio_server.url}/api/v1/feedback/stats", auth=ADMIN).json()["up"] == up_before + 1


def test_edit_last_regenerate_and_continue(admin_page, studio_server):
    page = admin_page
    open_tab(page, "Chat")
    bots = page.locator("#chat-bot [data-testid=bot]")
    send(page, studio_server, "First message")
    send(page, studio_server, "Second messsage with a typo")
    page.click("#chat-edit-last")
    expect(page.locator("#chat-message textarea")).to_have_value("Second messsage with a typo")
    expect(bots).to_have_count(1)

    regenerated = stored(studio_server, click_and_wait_for_reply(page, studio_server, "#chat-regenerate"))
    expect(bots).to_have_count(1)
    assert "First message" in regenerated["prompt"] and "Second" not in regenerated["prompt"]  # edited out

    continued = stored(studio_server, click_and_wait_for_reply(page, studio_server, "#chat-continue"))
    expect(bots).to_have_count(1)
    # A continuation asks the model to go on from inside its last reply.
    assert continued["prompt"].endswith("Assistant: " + regenerated["text"].strip())
