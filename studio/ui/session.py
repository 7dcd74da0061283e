"""Who is using the page: a server-side session for accounts, a per-browser id for visitors.

`/signin` and `/signout` are small plain pages; the Gradio app asks `user_id(request)` on every
request (its `auth_dependency`). The session cookie holds only a random token whose session row
(see `AuthService.start_session`) is deleted at sign-out, so a copied cookie dies with it.
Visitors, when guest access allows, get an anonymous id that stays with their browser so their
ratings are theirs."""

from __future__ import annotations

import html
import secrets
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from studio.services import Studio
from studio.services.auth import SESSION_COOKIE, SESSION_DAYS
from studio.services.signin_throttle import SigninThrottled

VISITOR_COOKIE = "studio_visitor"
VISITOR_PREFIX = "visitor-"


def session_user(studio: Studio, cookie: str | None) -> str | None:
    user = studio.auth.user_for_session(cookie)
    return user.name if user else None


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


def _secure(request: Request) -> bool:
    """https as the browser used it (a trusted proxy's X-Forwarded-Proto is already applied)."""
    return request.url.scheme == "https"


# The studio's own look (Gradio's default theme: its font stack, orange primary button, soft
# panels), so signing in feels like part of the page it leads back to.
PAGE = """<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Sign in · AIGC Studio</title>
<style>body{{font-family:"Source Sans Pro",ui-sans-serif,system-ui,sans-serif;margin:0;background:#fff;color:#1f2937}}
header{{max-width:1280px;margin:0 auto;padding:16px 32px}}header h1{{margin:0;font-size:2em}}
header p{{margin:.3em 0 0;color:#4b5563}}main{{display:grid;place-items:center;padding:48px 16px}}
form{{border:1px solid #e5e7eb;border-radius:8px;padding:24px;display:grid;gap:14px;width:20em;background:#fff}}
form h2{{margin:0;font-size:1.2em}}label{{display:grid;gap:6px;font-size:.9em;color:#4b5563}}
input{{font:inherit;padding:10px 12px;border:1px solid #e5e7eb;border-radius:8px;background:#fff}}
input:focus{{outline:none;border-color:#fdba74;box-shadow:0 0 0 3px #ffedd5}}
button{{font:inherit;font-weight:600;padding:10px;border:0;border-radius:8px;background:#f97316;color:#fff;cursor:pointer}}
button:hover{{background:#ea580c}}a{{color:#ea580c}}.err{{color:#b91c1c;margin:0}}</style></head><body>
<header><h1>AIGC Studio</h1><p>Generate · fine-tune · rate — text, images and speech in one place.</p></header>
<main><form method="post" action="signin"><h2>Sign in</h2>{error}
<label>User <input name="username" id="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label>
<button type="submit" id="signin">Sign in</button>{guest}</form></main></body></html>"""


def router(studio: Studio) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    def page(error: str = "", status: int = 401, headers: dict | None = None) -> HTMLResponse:
        guest = '<a href="./" id="as-visitor">Continue as a visitor</a>' if studio.auth.anonymous() else ""
        err = f'<p class="err">{html.escape(error)}</p>' if error else ""
        return HTMLResponse(PAGE.format(error=err, guest=guest), status_code=status if error else 200,
                            headers=headers)

    @r.get("/signin")
    def signin_form() -> HTMLResponse:
        return page()

    @r.post("/signin")
    def signin(request: Request, username: str = Form(..., max_length=200),
               password: str = Form(..., max_length=1000)) -> Response:
        address = request.client.host if request.client else None
        try:
            user = studio.auth.check_password(username, password, address=address)
        except SigninThrottled as exc:
            return page(exc.message, status=429, headers=exc.headers)
        if user is None:
            return page("Wrong user name or password.")
        # A fresh token at every sign-in; the one this browser held before ends now.
        studio.auth.end_session(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("./", status_code=303)
        response.set_cookie(SESSION_COOKIE, studio.auth.start_session(user), max_age=SESSION_DAYS * 86400,
                            httponly=True, samesite="lax", secure=_secure(request))
        return response

    # POST from forms (cross-site ones are refused by the app's origin check); GET stays for the
    # link on the page: it can only end the caller's own session.
    @r.api_route("/signout", methods=["GET", "POST"])
    def signout(request: Request) -> Response:
        studio.auth.end_session(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("./signin", status_code=303)
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=_secure(request))
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
                                httponly=True, samesite="lax", secure=_secure(request))
        return response
