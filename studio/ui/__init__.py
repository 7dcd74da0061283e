"""The Gradio door: one Blocks app, one module per tab, each built by a function."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from studio.services import Studio
from studio.services.changes import DATASETS, MODELS, RATINGS
from studio.ui import (
    adapters_panel,
    datasets_tab,
    feedback_tab,
    gan_tab,
    image_tab,
    models_tab,
    speech_tab,
    text_tab,
    training_tab,
    use_in,
)
from studio.ui.common import api_endpoint, save_rating, sharing, shows_errors, user_for
from studio.ui.live import Loader, redraw_on_select, redraw_when_changed
from studio.ui.visitor_view import role_updates

CSS_PATH = Path(__file__).resolve().parents[2] / "assets" / "studio.css"

# Tabs only admins see (the server refuses their actions to others anyway).
ADMIN_TABS = {"Datasets", "Training"}

# Tab label → the module whose `build(studio)` lays the tab out and returns what it wants run when a
# page opens ((fn, inputs, outputs), or None), and the change topics (studio/services/changes.py) that
# loader shows: it runs again when the tab is selected and, live, when one of them changes.
TABS = [
    ("Text", text_tab, (MODELS,)),
    ("Image", image_tab, (MODELS,)),
    ("GAN", gan_tab, (MODELS,)),
    ("Speech", speech_tab, (MODELS,)),
    ("Datasets", datasets_tab, (DATASETS,)),
    ("Training", training_tab, (DATASETS, MODELS)),
    ("Feedback", feedback_tab, (RATINGS, MODELS)),
]


def build_ui(studio: Studio) -> gr.Blocks:
    with gr.Blocks(title="AIGC Studio", analytics_enabled=False) as demo:
        with gr.Row(elem_id="studio-header"):
            gr.Markdown("# AIGC Studio\nGenerate · fine-tune · rate — text, images and speech in one place.")
            who = gr.Markdown(elem_id="studio-user")
        banner = gr.Markdown(visible=False, elem_id="offline-banner")
        loaders: list[Loader] = []  # what a tab wants run when a page opens, is selected, or its topics change
        admin_tabs = []
        with sharing() as shared, gr.Tabs() as tabs:
            for label, module, topics in TABS:
                # Admin tabs start hidden when accounts exist and are shown to admins on load
                # (a shown tab cannot be hidden again by an update).
                visible = label not in ADMIN_TABS or not studio.auth.enabled
                with gr.Tab(label, id=label.lower(), elem_id=f"tab-{label.lower()}", visible=visible) as tab:
                    if label in ADMIN_TABS:
                        admin_tabs.append(tab)
                    loader = module.build(studio)
                    if loader:
                        loaders.append(Loader(*loader, topics=topics))
                        redraw_on_select(tab, loaders[-1:])
            with gr.Tab("Models / Settings", id="models") as tab:
                mine = [Loader(*models_tab.build(studio), topics=(MODELS,)),
                        Loader(*adapters_panel.build(studio), topics=(MODELS,))]
                loaders.extend(mine)
                redraw_on_select(tab, mine)
        use_in.wire(studio, shared, tabs)  # "Use it in its tab" on a finished job (studio/ui/use_in.py)

        # What only admins may use, and the sliders capped at a non-admin's limits (common.admin_only,
        # common.visitor_cap), shown and capped per user when a page opens.
        role_outputs, for_user = role_updates(studio, demo)

        @shows_errors
        def on_load(request: gr.Request):
            text = studio.models.offline_banner()
            user = user_for(studio, request)
            if not studio.auth.enabled:
                who_text = ""
            elif user.is_guest:
                who_text = "Visitor · [Sign in](signin)"
            else:
                who_text = f"Signed in as **{user.name}**{' (admin)' if user.is_admin else ''} · [Sign out](signout)"
            tabs = [gr.update(visible=user.is_admin) for _ in admin_tabs]
            return (gr.update(value=f"⚠️ {text}" if text else "", visible=bool(text)), who_text, *tabs,
                    *for_user(user))

        demo.load(on_load, outputs=[banner, who, *admin_tabs, *role_outputs], api_visibility="private")
        for loader in loaders:
            demo.load(loader.fn, inputs=loader.inputs, outputs=loader.outputs, api_visibility="private")
        redraw_when_changed(studio, demo, loaders)
        rate_endpoint(studio)
    return demo


def rate_endpoint(studio: Studio) -> None:
    """`/rate` for Gradio API clients: one thumb on any output, as the page's buttons store it."""
    output_id = gr.Textbox(visible=False, label="Output id (from a generate endpoint's result)")
    rating = gr.Radio(["up", "down"], value="up", visible=False, label="Rating")
    saved = gr.JSON(visible=False, label="Saved rating")

    @shows_errors
    def rate(output_id: str, rating: str, request: gr.Request) -> dict:
        """Rate an output 👍 ("up") or 👎 ("down"); rating it again replaces your earlier thumb."""
        return save_rating(studio, request, output_id, rating, missing="output_id: give the id of an output.")

    api_endpoint(rate, api_name="rate", inputs={"output_id": output_id, "rating": rating}, outputs=[saved])
