"""Models / Settings: what is available and loaded, where the studio runs, and the offline state."""

from __future__ import annotations

import gradio as gr

from studio.services import Studio
from studio.ui.common import require_admin


def _models_table(studio: Studio) -> list[list]:
    listing = studio.models.list_models()
    rows = []
    for kind in ("text", "image", "gan", "speech"):
        for m in listing[kind]:
            rows.append([kind, m["id"], m["source"], "yes" if m["loaded"] else "", "default" if m["default"] else ""])
    for key, label in (("text_adapters", "text adapter"), ("image_loras", "image LoRA")):
        for a in listing[key]:
            rows.append([label, a["id"], f"trained on {a['base_model']}", "", a.get("name", "")])
    return rows


def _status(studio: Studio) -> str:
    h = studio.models.health()
    mem = studio.models.memory
    lines = [
        f"**Version** {h['version']} · **device** `{h['device']}` · **offline** {'yes' if h['offline'] else 'no'}",
        f"**Data dir** `{studio.data_dir}`",
        f"**Memory budget** {mem.budget_bytes / 1024**3:.1f} GiB · in use by models {mem.used_bytes / 1024**2:.0f} MiB",
    ]
    return "\n\n".join(lines)


def build(studio: Studio):
    """Returns (loader, inputs, outputs) so the shell fills the tab when a page opens."""
    status = gr.Markdown()
    table = gr.Dataframe(
        headers=["kind", "id", "source", "loaded", "note"],
        datatype=["str", "str", "str", "str", "str"],
        interactive=False,
        label="Models",
    )
    refresh = gr.Button("Refresh", size="sm")
    content_filter = gr.Checkbox(value=studio.config.image_content_filter, elem_id="settings-content-filter",
                                 label="Image content filter (the model's safety checker, where it ships one)")

    def set_filter(on: bool, request: gr.Request):
        require_admin(studio, request)
        studio.config.image_content_filter = bool(on)
        gr.Info(f"Image content filter {'on' if on else 'off'}.")

    content_filter.input(set_filter, inputs=[content_filter])

    def load():
        return _status(studio), _models_table(studio)

    refresh.click(load, outputs=[status, table])
    return load, [], [status, table]
