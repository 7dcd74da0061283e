"""Who is using the page: a signed session cookie for accounts, a per-browser id for visitors.

`/signin` and `/signout` are small plain pages; the Gradio app asks `user_id(request)` on every
request (its `auth_dependency`). Visitors, when guest access allows, get an anonymous id that
stays with their browser so their ratings are theirs."""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
import time
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from studio.services import Studio

SESSION_COOKIE = "studio_session"
VISITOR_COOKIE = "studio_visitor"
VISITOR_PREFIX = "visitor-"
SESSION_DAYS = 14


def _secret(studio: Studio) -> bytes:
    path = studio.data_dir / "session.key"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(secrets.token_bytes(32))
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_bytes()


def _sign(studio: Studio, value: str) -> str:
    return hmac.new(_secret(studio), value.encode(), hashlib.sha256).hexdigest()


def make_session(studio: Studio, user: str) -> str:
    expires = int(time.time()) + SESSION_DAYS * 86400
    payload = f"{user}|{expires}"
    return f"{payload}|{_sign(studio, payload)}"


def session_user(studio: Studio, cookie: str | None) -> str | None:
    if not cookie or cookie.count("|") != 2:
        return None
    user, expires, signature = cookie.split("|")
    if not hmac.compare_digest(signature, _sign(studio, f"{user}|{expires}")):
        return None
    if not expires.isdigit() or int(expires) < time.time() or studio.auth.user_named(user) is None:
        return None
    return user


def user_id(studio: Studio, request: Request) -> str | None:
    """The Gradio auth dependency: an account name, a visitor id, or None (not allowed in)."""
    user = session_user(studio, request.cookies.get(SESSION_COOKIE))
    if user:
        return user
    if studio.auth.anonymous() is not None:  # guests may generate
        visitor = request.cookies.get(VISITOR_COOKIE, "")
        if visitor.startswith(VISITOR_PREFIX) and len(visitor) == len(VISITOR_PREFIX) + 16:
            return visitor
        return VISITOR_PREFIX + "anonymous"
    return None


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Sign in · AIGC Studio</title>
<style>body{{font-family:system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;background:#f6f7f9}}
form{{background:#fff;padding:2em;border-radius:12px;box-shadow:0 2px 12px #0001;display:grid;gap:.8em;width:18em}}
input,button{{font-size:1em;padding:.5em}}.err{{color:#b00020}}</style></head><body>
<form method="post" action="signin"><h2>AIGC Studio</h2>{error}
<label>User <input name="username" id="username" autocomplete="username" required></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label>
<button type="submit" id="signin">Sign in</button>{guest}</form></body></html>"""


def router(studio: Studio) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    def page(error: str = "") -> HTMLResponse:
        guest = '<a href="./" id="as-visitor">Continue as a visitor</a>' if studio.auth.anonymous() else ""
        err = f'<p class="err">{html.escape(error)}</p>' if error else ""
        return HTMLResponse(PAGE.format(error=err, guest=guest), status_code=401 if error else 200)

    @r.get("/signin")
    def signin_form() -> HTMLResponse:
        return page()

    @r.post("/signin")
    def signin(username: str = Form(..., max_length=200), password: str = Form(..., max_length=1000)) -> Response:
        if studio.auth.check_password(username, password) is None:
            return page("Wrong user name or password.")
        response = RedirectResponse("./", status_code=303)
        response.set_cookie(SESSION_COOKIE, make_session(studio, username), max_age=SESSION_DAYS * 86400,
                            httponly=True, samesite="lax")
        return response

    @r.get("/signout")
    def signout() -> Response:
        response = RedirectResponse("./signin", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    return r


def install(app, studio: Studio) -> None:
    """Sign-in routes, a visitor cookie for new browsers, and a redirect to /signin when needed."""
    app.include_router(router(studio))

    @app.middleware("http")
    async def _ui_session(request: Request, call_next):
        path = request.url.path
        is_page = request.method == "GET" and path in ("/", "")
        if is_page and user_id(studio, request) is None:
            return RedirectResponse("./signin?next=" + quote(path), status_code=303)
        response = await call_next(request)
        if is_page and studio.auth.enabled and not request.cookies.get(VISITOR_COOKIE):
            response.set_cookie(VISITOR_COOKIE, VISITOR_PREFIX + secrets.token_hex(8), max_age=365 * 86400,
                                httponly=True, samesite="lax")
        return response
