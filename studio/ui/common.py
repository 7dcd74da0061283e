"""Small pieces every tab uses: who is asking, and how errors are shown."""

from __future__ import annotations

import gradio as gr

from studio.services import Studio
from studio.services.auth import GUEST, User
from studio.services.errors import Forbidden, StudioError, Unauthorized


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
        raise gr.Error(f"'{user.name}' may not do this: only admins upload, train, import or delete.")
    return user


def ui_error(exc: Exception) -> gr.Error:
    """A StudioError's message for the page; anything else becomes a short generic message."""
    if isinstance(exc, StudioError | Forbidden | Unauthorized):
        return gr.Error(exc.message)
    return gr.Error(f"Something went wrong: {type(exc).__name__}. See the server log.")
