"""Browser tests: a real studio process driven through Debian's Chromium with Playwright.

Playwright's own browser download is not used: Chromium comes from the system
(`/usr/bin/chromium`, or $STUDIO_CHROMIUM). Without it these tests skip, except under CI=true,
where a missing browser is a failure. A screenshot of the page is saved for every failed test
under test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import start_studio

CHROMIUM = os.environ.get("STUDIO_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def _need_browser() -> None:
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"no Chromium at {CHROMIUM} (install with: apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed (pip install -e '.[dev]')"
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests cannot run under CI: {missing}")
        pytest.skip(missing)


@pytest.fixture(scope="session")
def browser():
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def studio_server(tmp_path_factory):
    """One offline studio for the browser suite (admin account + visitors may generate)."""
    _need_browser()
    data = tmp_path_factory.mktemp("browser") / "data"
    live = start_studio(["--offline", "--auth", "admin:admin-pass", "--guest-access", "generate"], data)
    yield live
    live.stop()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        page = item.funcargs.get("page") or item.funcargs.get("admin_page")
        if page is not None:
            ARTIFACTS.mkdir(exist_ok=True)
            try:
                page.screenshot(path=str(ARTIFACTS / f"{item.name}.png"), full_page=True)
            except Exception:
                pass


def _open(browser, url: str, http_credentials=None):
    context = browser.new_context(http_credentials=http_credentials, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_selector("#text-prompt textarea")
    return context, page


@pytest.fixture
def page(browser, studio_server):
    """A visitor without an account."""
    context, page = _open(browser, studio_server.url)
    yield page
    context.close()


def _sign_in(page, url: str) -> None:
    page.goto(url + "/signin")
    page.fill("#username", "admin")
    page.fill("#password", "admin-pass")
    page.click("#signin")
    page.locator("#studio-user").get_by_text("Signed in as").wait_for()


@pytest.fixture(scope="session")
def admin_cookies(browser, studio_server):
    """The admin's session, signed in once through the sign-in page; each admin page starts with it."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    _sign_in(page, studio_server.url)
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture
def admin_page(browser, studio_server, admin_cookies):
    """An admin, signed in (the session cookie of one sign-in through the sign-in page)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, storage_state=admin_cookies)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(studio_server.url)
    user = page.locator("#studio-user")
    user.get_by_text("Signed in as").or_(user.get_by_text("Visitor")).first.wait_for()
    if not user.get_by_text("Signed in as").count():  # the session was ended: sign in again
        _sign_in(page, studio_server.url)
    yield page
    context.close()


def pick(page, elem_id: str, option: str) -> None:
    """Choose `option` in a Gradio dropdown."""
    page.click(f"#{elem_id} input")
    page.get_by_role("option", name=option, exact=True).first.click()


def put_file(page, elem_id: str, path) -> None:
    """Drop a file into a Gradio File component and wait until its upload finished: the row with the
    file's download link (while it uploads, the name shows in a passing "Uploading…" line)."""
    page.set_input_files(f"#{elem_id} input[type=file]", str(path))
    page.locator(f'#{elem_id} a[download="{path.name}"]').first.wait_for()


def open_tab(page, label: str) -> None:
    page.locator("button[role=tab]:visible", has_text=label).first.click()


def type_params_json(page, kind: str, text: str) -> None:
    """Replace the Training tab's JSON view (under "Advanced: parameters as JSON") with `text`, once
    the form of `kind` is shown (a kind's pick resets the JSON to its defaults)."""
    page.locator(f"#train-form-{kind}").first.wait_for()
    editor = page.locator("#train-params .cm-content")
    if not editor.is_visible():
        page.locator("#train-json").get_by_text("Advanced: parameters as JSON").first.click()
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)
