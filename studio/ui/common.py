"""Small pieces every tab uses: who is asking, how errors are shown (`shows_errors`), streaming from
a worker thread (`stream_in_thread`), the thumbs (`save_rating`, `rate_buttons`), and declaring an
endpoint for API clients (`api_endpoint`)."""

from __future__ import annotations

import functools
import inspect
import logging
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import gradio as gr

from studio.services import Studio
from studio.services.auth import GUEST, User
from studio.services.errors import Forbidden, StudioError, Unauthorized, only_admins

log = logging.getLogger("studio.ui")

T = TypeVar("T")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])
RATING_MARKS = {"up": "👍", "down": "👎"}


def user_for(studio: Studio, request: gr.Request | None) -> User:
    """The signed-in account, the visitor (with a per-browser id), or the local owner when no
    accounts are configured."""
    name = getattr(request, "username", None) if request is not None else None
    if name:
        user = studio.auth.user_named(name)
        if user is not None:
            return user
    anonymous = studio.auth.anonymous()
    if anonymous is None:
        raise gr.Error("Please sign in.")
    if anonymous.is_guest and name and name.startswith("visitor-"):
        return User(name=name, is_admin=False, is_guest=True)
    return anonymous if anonymous is not None else GUEST


def require_admin(studio: Studio, request: gr.Request | None) -> User:
    user = user_for(studio, request)
    if not user.is_admin:
        raise ui_error(only_admins(user, "upload, train, import or delete"))
    return user


def ui_error(exc: Exception) -> gr.Error:
    """A StudioError's message for the page; anything else becomes a short generic message (and the
    traceback goes to the server log)."""
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, StudioError | Forbidden | Unauthorized):
        return gr.Error(exc.message)
    log.error("A page handler failed", exc_info=exc)
    return gr.Error(f"Something went wrong: {type(exc).__name__}. See the server log.")


def shows_errors(fn: F) -> F:
    """Every handler's error policy in one place: what a service refuses (a StudioError) reaches the
    page as that message, a `gr.Error` as it is, anything else as a short generic message. Works for
    plain and generator handlers; Gradio still sees the handler's own signature (request, progress,
    keyword inputs) and docstring."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streaming(*args, **kwargs):
            try:
                return (yield from fn(*args, **kwargs))
            except Exception as exc:
                raise ui_error(exc) from exc

        return streaming  # type: ignore[return-value]

    @functools.wraps(fn)
    def plain(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise ui_error(exc) from exc

    return plain  # type: ignore[return-value]


_DONE = object()


def stream_in_thread(work: Callable[[Callable[[T], None]], R],
                     show: Callable[[T], Any] = lambda item: item) -> Generator[Any, None, R]:
    """Run `work(report)` in a thread and yield `show(report)` for what it reports while it runs;
    `yield from` returns work's result or raises its exception. When the page is slower than the
    model, only the newest report is shown: a stale partial text is not worth a round trip."""
    updates: queue.Queue = queue.Queue()
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = work(updates.put)
        except Exception as exc:
            result["error"] = exc
        finally:
            updates.put(_DONE)

    threading.Thread(target=run, daemon=True).start()
    while (item := updates.get()) is not _DONE:
        while not updates.empty():  # skip to the newest report
            newer = updates.get()
            if newer is _DONE:
                updates.put(_DONE)
                break
            item = newer
        yield show(item)
    if "error" in result:
        raise result["error"]
    return result["value"]


def stop_button(button: gr.Button, stop_state: gr.State, note: gr.components.Component) -> None:
    """Wire a Stop button: it sets the stop event the running generation left in `stop_state` (this
    session's), without waiting in the queue, and says "Stopping…" in `note`."""

    def stop_generation(event: threading.Event | None) -> str:
        if event is not None:
            event.set()
        return "Stopping…"

    button.click(stop_generation, inputs=[stop_state], outputs=[note], queue=False, api_visibility="private")


def save_rating(studio: Studio, request: gr.Request | None, output_id: str | None, rating: str | None,
                missing: str = "Generate something first.") -> dict:
    """Store this user's thumb on an output (None removes it); what every rate button and the
    `/rate` endpoint call."""
    if not output_id:
        raise gr.Error(missing)
    user = user_for(studio, request)
    return studio.feedback.rate(output_id, rating, user.name)


def saved_note(rating: str | None) -> str:
    return f"Saved {RATING_MARKS[rating]}" if rating in RATING_MARKS else "Rating removed"


def rate_buttons(studio: Studio, up: gr.Button, down: gr.Button, *, output: gr.components.Component,
                 note: gr.components.Component, missing: str = "Generate something first.",
                 pick: Callable[[Any], str | None] = lambda value: value) -> list:
    """Wire a 👍 and a 👎 button: a click stores this user's thumb on the output that `output` holds
    (`pick` takes the id out of its value, e.g. one slot of a list of ids) and says so in `note`.
    Returns the two click events, for a `.then(...)`."""

    def rater(rating: str):
        @shows_errors
        def rate_output(value, request: gr.Request) -> str:
            save_rating(studio, request, pick(value), rating, missing=missing)
            return saved_note(rating)

        return rate_output

    return [button.click(rater(rating), inputs=[output], outputs=[note], api_visibility="private")
            for button, rating in ((up, "up"), (down, "down"))]


MODEL_ID_LABEL = "Model id (empty: the default; GET /api/v1/models lists them)"


def api_id_input(label: str = MODEL_ID_LABEL) -> gr.Textbox:
    """A model, adapter or voice id as API clients send it: text, not a dropdown, because a dropdown
    knows its choices only once a page has loaded them. The service checks the id (a clear 404)."""
    return gr.Textbox("", visible=False, label=label)


def api_endpoint(fn: Callable, *, api_name: str, inputs: dict[str, gr.components.Component],
                 outputs: list[gr.components.Component], concurrency_id: str | None = None):
    """An endpoint for Gradio API clients only: no button in the page triggers it. `inputs` maps the
    function's keyword parameters (the API's parameter names) to components, whose values are the
    defaults a client may leave out."""
    dependency = gr.on([], fn, inputs_kwargs=inputs, outputs=outputs, api_name=api_name, show_progress="hidden",
                       concurrency_id=concurrency_id)
    if dependency["api_name"] != api_name:  # Gradio renames a taken name (private listeners take names too)
        raise RuntimeError(f"API name '{api_name}' is taken by another listener: rename that function.")
    return dependency


def admin_only(studio: Studio, *blocks: gr.blocks.Block) -> None:
    """Controls only admins can use: hidden from everyone else from the first paint, shown to admins
    when their page loads (`build_ui` finds them by this mark), so nobody sees a control that would
    only answer with a refusal. The services refuse the action anyway."""
    for block in blocks:
        block.studio_admin_only = True
        block.elem_classes = [*(block.elem_classes or []), "admin-only"]  # findable in the page, for tests
        if studio.auth.enabled:
            block.visible = False


def visitor_cap(slider: gr.Slider, limit: str) -> gr.Slider:
    """A slider whose maximum, for everyone but admins, is the request limit `limit` (a field of
    `studio.config.limits`): `build_ui` lowers it when a non-admin's page loads, so the slider never
    offers a value the studio would refuse."""
    slider.studio_visitor_cap = limit
    return slider


# -- components one tab acts on in another ---------------------------------------------------------
_SHARED: ContextVar[dict[str, Any] | None] = ContextVar("studio_shared_parts", default=None)


def share(name: str, component: T) -> T:
    """Offer a component to handlers in other tabs by name (e.g. "text.model", which a "Use in the
    Text tab" button sets); `build_ui` wires them once every tab is built."""
    parts = _SHARED.get()
    if parts is not None:
        parts[name] = component
    return component


@contextmanager
def sharing() -> Iterator[dict[str, Any]]:
    """The components shared while the page is built, by name."""
    parts: dict[str, Any] = {}
    token = _SHARED.set(parts)
    try:
        yield parts
    finally:
        _SHARED.reset(token)
