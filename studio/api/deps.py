"""FastAPI dependencies shared by the routes: the Studio, and who is asking."""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from studio.services import Studio
from studio.services.auth import SESSION_COOKIE, User
from studio.services.errors import Unauthorized, only_admins


def get_studio(request: Request) -> Studio:
    return request.app.state.studio


def client_address(request: Request) -> str | None:
    """The caller's address (a trusted proxy's X-Forwarded-For already applied by the app)."""
    return request.client.host if request.client else None


def current_user(request: Request) -> User:
    """HTTP Basic, a bearer API token, or the browser's session cookie from /signin; without
    credentials → the anonymous user, if allowed. Failed guesses are throttled (429)."""
    cached = getattr(request.state, "user", None)
    if cached is not None:
        return cached
    studio: Studio = request.app.state.studio
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    user: User | None
    if scheme.lower() == "basic" and value:
        try:
            name, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Unauthorized("Malformed Basic credentials.") from exc
        user = studio.auth.check_password(name, password, address=client_address(request))
        if user is None:
            raise Unauthorized("Wrong user name or password.")
    elif scheme.lower() == "bearer" and value:
        user = studio.auth.user_for_token(value.strip(), address=client_address(request))
    elif header:
        raise Unauthorized("Use HTTP Basic credentials or 'Authorization: Bearer <API token>'.")
    else:
        # A stale or signed-out cookie counts as no credentials: the visitor, or 401.
        user = studio.auth.user_for_session(request.cookies.get(SESSION_COOKIE)) or studio.auth.anonymous()
        if user is None:
            raise Unauthorized("Sign in: this studio needs an account (HTTP Basic, an API token, or /signin).")
    request.state.user = user
    return user


def require_user(request: Request) -> User:
    return current_user(request)


def require_admin(request: Request) -> User:
    user = current_user(request)
    if not user.is_admin:
        raise only_admins(user, "upload, train, import or delete")
    return user
