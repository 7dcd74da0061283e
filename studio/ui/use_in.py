"""'Use in its tab': from a finished job in the Training tab straight to the tab that uses what it
made — a text adapter or fine-tune in the Text tab, an image LoRA or model in the Image tab, a GAN in
the GAN tab — with that version picked. Wired by `build_ui` once every tab is built, through the
components the tabs share by name (`common.share`)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.services import Studio
from studio.ui.common import require_admin, shows_errors

# artifact type → (tab id, the shared model picker, the shared variant picker or None)
TARGETS = {
    "text_adapter": ("text", "text.model", "text.adapter"),
    "text_model": ("text", "text.model", None),
    "image_lora": ("image", "image.model", "image.lora"),
    "image_model": ("image", "image.model", None),
    "gan": ("gan", "gan.model", None),
    "speech_model": ("speech", "speech.model", None),
}
TAB_NAMES = {"text": "Text", "image": "Image", "gan": "GAN", "speech": "Speech"}


def button() -> gr.Button:
    return gr.Button("Use it in its tab", size="sm", elem_id="train-use")


def target(job: dict[str, Any] | None) -> tuple[str, str, str | None, str, str | None]:
    """(tab, model picker, variant picker, model id, variant id) for a finished job's artifact."""
    if not job:
        raise gr.Error("Pick a job first.")
    artifact = job.get("artifact")
    if job["status"] != "completed" or not artifact:
        raise gr.Error(f"This job is {job['status']}: it has nothing to use until it completes.")
    if artifact["type"] not in TARGETS:
        raise gr.Error("What this job made is used in the Models / Settings tab (exports and reward models).")
    tab, model_part, variant_part = TARGETS[artifact["type"]]
    if variant_part is None:
        return tab, model_part, None, artifact["id"], None
    return tab, model_part, variant_part, job["base_model"], artifact["id"]


def wire(studio: Studio, parts: dict[str, Any], tabs: gr.Tabs) -> None:
    use, job_pick, note = parts.get("train.use"), parts.get("train.job"), parts.get("train.note")
    if use is None or job_pick is None:
        return
    pickers = [parts[name] for name in ("text.model", "text.adapter", "image.model", "image.lora", "gan.model",
                                             "speech.model")]
    names = ["text.model", "text.adapter", "image.model", "image.lora", "gan.model", "speech.model"]

    @shows_errors
    def go(job_id: str | None, request: gr.Request):
        require_admin(studio, request)  # the Training tab is an admin's
        job = studio.jobs.get(job_id) if job_id else None
        tab, model_part, variant_part, model, variant = target(job)
        updates = {name: gr.skip() for name in names}
        # the choices come along, so a version trained a moment ago is there to pick
        updates[model_part] = gr.update(choices=_with(_choices(studio, model_part), model), value=model)
        if variant_part is not None:
            updates[variant_part] = gr.update(choices=_with(_choices(studio, variant_part, model), variant),
                                               value=variant)
        return (gr.Tabs(selected=tab), f"Now in the {TAB_NAMES[tab]} tab: `{variant or model}`.",
                *[updates[n] for n in names])

    use.click(go, inputs=[job_pick], outputs=[tabs, note, *pickers], api_visibility="private")


def _choices(studio: Studio, part: str, model: str | None = None) -> list[tuple[str, str]]:
    from studio.ui import gan_tab, image_tab, speech_tab, text_tab

    if part == "text.model":
        return text_tab.model_choices(studio)[0]
    if part == "text.adapter":
        return text_tab.adapter_choices(studio, model)
    if part == "image.model":
        return image_tab.model_choices(studio)[0]
    if part == "image.lora":
        return image_tab.lora_choices(studio, model)
    if part == "speech.model":
        return [(c, c) if isinstance(c, str) else c for c in speech_tab.model_choices(studio)[0]]
    return gan_tab.model_choices(studio)


def _with(choices: list[tuple[str, str]], value: str) -> list[tuple[str, str]]:
    return choices if any(v == value for _, v in choices) else [*choices, (value, value)]
