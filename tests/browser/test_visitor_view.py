"""A visitor's page shows no control they cannot use, checked element by element against an
admin's page; their sliders stop at their limits; refusals say why in plain words."""

import httpx
import pytest
from playwright.sync_api import expect

from studio.config import RequestLimits
from tests.browser.conftest import open_tab

pytestmark = pytest.mark.browser

# Tab → the admin-only controls in it (elem ids; a tab label for a whole sub-tab).
ADMIN_CONTROLS = {
    "GAN": ["#gan-demo"],
    "Feedback": ["button[role=tab]:has-text('Train from ratings')"],
    "Models / Settings": ["#settings-content-filter", "#settings-precision-text", "#settings-precision-image",
                          "#adapters-name", "#adapters-rename", "#adapters-merge", "#adapters-confirm-delete",
                          "#adapters-delete", "#adapters-import-form", "#adapters-mix-form"],
}
LIMITS = RequestLimits()
# (tab, the accordion it sits in or None) → slider elem id → (the visitor's maximum, the admin's).
SLIDERS = {
    ("Text", "Sampling"): {"text-max-new-tokens": (LIMITS.max_new_tokens, 1024),
                           "text-num-outputs": (LIMITS.text_outputs, 8)},
    ("Image", None): {"image-steps": (LIMITS.image_steps, 150), "image-num-outputs": (LIMITS.image_outputs, 8),
                      "image-width": (int(LIMITS.image_pixels ** 0.5), 1024)},
    ("GAN", "Latent walk between two seeds"): {"gan-frames": (LIMITS.gan_frames, 32),
                                               "gan-num-outputs": (LIMITS.gan_outputs, 16)},
}


def slider_max(page, elem_id: str) -> int:
    return int(float(page.locator(f"#{elem_id} input[type=range]").get_attribute("max")))


# Every visible element with an id in the open tab (ids Gradio makes up, `component-N` and
# `html-<random>`, and ids a chart draws inside its SVG, such as Vega's `clip1` clip paths, which
# count the charts drawn on the page so far, aside), and
# whether it is (inside) a control marked admin-only, or the button of a sub-tab so marked.
VISIBLE_IDS = """() => Object.fromEntries([...document.querySelectorAll('[id]')]
  .filter(e => !/^(component-\\d+|html-[a-z0-9]+)$/.test(e.id) && !e.closest('svg')
               && e.checkVisibility && e.checkVisibility())
  .map(e => [e.id, !!e.closest('.admin-only') || (e.id.endsWith('-button')
                 && !!document.getElementById(e.id.slice(0, -7))?.classList.contains('admin-only'))]))"""


def tab_labels(page) -> list[str]:
    return [t.inner_text().strip() for t in page.locator("button[role=tab]:visible").all()]


def test_admin_controls_are_the_admins_only(page, admin_page):
    """Element by element: what the visitor sees is what the admin sees, less exactly the controls
    marked admin-only, which the visitor sees none of."""
    admin_tabs = tab_labels(admin_page)
    visitor_tabs = tab_labels(page)
    assert set(visitor_tabs) <= set(admin_tabs)
    assert set(admin_tabs) - set(visitor_tabs) == {"Datasets", "Training"}
    for tab in visitor_tabs:
        if tab not in ("Text", "Image", "GAN", "Speech", "Feedback", "Models / Settings"):
            continue  # a sub-tab's label
        open_tab(admin_page, tab)
        open_tab(page, tab)
        for selector in ADMIN_CONTROLS.get(tab, []):
            expect(admin_page.locator(selector).first).to_be_visible()
            expect(page.locator(selector).first).not_to_be_visible()
        admin = admin_page.evaluate(VISIBLE_IDS)
        visitor = page.evaluate(VISIBLE_IDS)
        assert not [i for i, marked in visitor.items() if marked], f"{tab}: a visitor sees admin controls"
        assert set(visitor) <= set(admin), f"{tab}: only the visitor sees {set(visitor) - set(admin)}"
        hidden = set(admin) - set(visitor)
        unmarked = {i for i in hidden if not admin[i]} - {"tab-datasets-button", "tab-training-button"}
        assert not unmarked, f"{tab}: hidden from the visitor but not marked admin-only: {unmarked}"


def test_a_visitors_sliders_stop_at_their_limits(page, admin_page):
    for (tab, accordion), sliders in SLIDERS.items():
        for p in (page, admin_page):
            open_tab(p, tab)
            if accordion:
                p.get_by_text(accordion, exact=True).first.click()
        for elem_id, (visitor, admin) in sliders.items():
            expect(page.locator(f"#{elem_id} input[type=range]")).to_have_attribute("max", str(visitor))
            assert slider_max(admin_page, elem_id) == admin, elem_id


def test_refusals_are_plain_words_without_internal_ids(studio_server):
    r = httpx.post(studio_server.url + "/api/v1/jobs", json={"kind": "selftest", "params": {}})
    message = r.json()["error"]["message"]
    assert r.status_code == 403 and message.startswith("Only admins can"), message
    assert "visitor-" not in message and "'" not in message
