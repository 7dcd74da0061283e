"""Sign-out ends the session on the server, and pages of other sites cannot write to the studio."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

pytestmark = pytest.mark.browser


def sign_in(context, studio_server):
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(studio_server.url + "/signin")
    page.fill("#username", "admin")
    page.fill("#password", "admin-pass")
    page.click("#signin")
    page.locator("#studio-user").get_by_text("Signed in as").wait_for()
    return page


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(browser, studio_server):
    context = browser.new_context()
    try:
        page = sign_in(context, studio_server)
        session = next(c for c in context.cookies() if c["name"] == "studio_session")
        assert session["httpOnly"] is True and session["sameSite"] == "Lax"
        copied = {"studio_session": session["value"]}
        assert httpx.get(studio_server.url + "/api/v1/me", cookies=copied).json()["user"] == "admin"
        with context.expect_page() as opened:  # the page's "Sign out" link opens in a new tab
            page.locator("#studio-user").get_by_text("Sign out").click()
        opened.value.wait_for_url("**/signin")
        # this studio lets visitors in: the copied cookie is now worth a visitor, not the admin
        assert httpx.get(studio_server.url + "/api/v1/me", cookies=copied).json()["role"] == "guest"
        other = browser.new_context()
        other.add_cookies([{"name": "studio_session", "value": session["value"], "url": studio_server.url}])
        again = other.new_page()
        again.goto(studio_server.url)
        again.locator("#studio-user").get_by_text("Visitor").wait_for(timeout=60_000)
        other.close()
    finally:
        context.close()


class _Elsewhere(BaseHTTPRequestHandler):
    """A page on another port: another origin, but the same site, so SameSite cookies still go along."""

    target = ""

    def do_GET(self):
        body = (f'<form method="post" action="{self.target}" enctype="text/plain">'
                '<input name=\'{"n": 16, "name": "Planted", "x": "\' value=\'"}\'>'
                '<button id="go">go</button></form>').encode()
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_page_elsewhere_cannot_write_through_a_signed_in_browser(browser, studio_server):
    target = studio_server.url + "/api/v1/datasets/demo"
    handler = type("Handler", (_Elsewhere,), {"target": target})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        page = sign_in(context, studio_server)
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        with page.expect_response(target) as answer:
            page.click("#go")
        assert answer.value.status == 403 and "cross_origin" in answer.value.text()
        names = [d["name"] for d in httpx.get(studio_server.url + "/api/v1/datasets",
                                              auth=("admin", "admin-pass")).json()["datasets"]]
        assert "Planted" not in names
    finally:
        context.close()
        server.shutdown()
