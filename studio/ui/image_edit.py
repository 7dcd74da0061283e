"""The Image tab's editing controls: the hires fix, an inpainting editor (paint over an image with
the brush, regenerate only what was painted) and buttons that send a result to img2img or to the
editor. Generation itself stays the tab's own handler; these controls add fields to its form
(`form_params` turns them into the service's `mask_image`, `hires`, …)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.services import Studio
from studio.services.errors import StudioError

# Keys the editing controls add to the tab's form; `form_params` takes them out again.
HIRES_KEYS = ("hires", "hires_scale", "hires_strength", "hires_steps")
INPAINT_KEYS = ("inpaint", "mask_blur")


@dataclass
class InpaintControls:
    editor: gr.ImageEditor
    mask_blur: gr.Slider
    button: gr.Button
    accordion: gr.Accordion
    to_img2img: gr.Button
    to_inpaint: gr.Button
    note: gr.Markdown

    @property
    def inputs(self) -> dict:
        return {"inpaint": self.editor, "mask_blur": self.mask_blur}


def hires_controls() -> dict:
    """The hires fix's fields (for the right-hand column); the form entries they add."""
    with gr.Accordion("Hires fix", open=False):
        hires = gr.Checkbox(False, label="Draw small, upscale (Lanczos), then refine with img2img",
                            elem_id="image-hires")
        with gr.Row():
            scale = gr.Slider(1.25, 4, value=2, step=0.25, label="Upscale by", elem_id="image-hires-scale")
            strength = gr.Slider(0.05, 1, value=0.5, step=0.05, label="Refine strength", elem_id="image-hires-strength")
            steps = gr.Number(None, precision=0, minimum=1, label="Refine steps (empty: same as Steps)",
                              elem_id="image-hires-steps")
    return {"hires": hires, "hires_scale": scale, "hires_strength": strength, "hires_steps": steps}


def inpaint_controls() -> InpaintControls:
    """"Send to" buttons for the selected result and the inpainting editor (below the results)."""
    with gr.Row():
        to_img2img = gr.Button("Send to img2img", size="sm", elem_id="image-send-img2img")
        to_inpaint = gr.Button("Send to inpaint", size="sm", elem_id="image-send-inpaint")
        note = gr.Markdown(elem_id="image-send-note")
    with gr.Accordion("Inpaint — paint over what to regenerate", open=False, elem_id="image-inpaint-panel") as acc:
        editor = gr.ImageEditor(
            label="Image and mask (paint the area to regenerate)", type="pil", image_mode="RGBA", format="png",
            sources=["upload", "clipboard"], layers=False, transforms=(), eraser=gr.Eraser(default_size=6),
            brush=gr.Brush(default_size=6, colors=["#ffffff"], color_mode="fixed"), canvas_size=(256, 256),
            elem_id="image-inpaint-editor",
        )
        with gr.Row():
            mask_blur = gr.Slider(0, 16, value=4, step=1, label="Mask blur (px of soft edge)",
                                  elem_id="image-mask-blur")
            button = gr.Button("Inpaint the painted area", variant="primary", elem_id="image-inpaint")
    return InpaintControls(editor, mask_blur, button, acc, to_img2img, to_inpaint, note)


def editor_images(value: Any) -> tuple[Any, Any]:
    """(init image RGB, mask "L" white = painted) from the ImageEditor's value
    `{"background", "layers", "composite"}`: the mask is every layer's painted (non-transparent)
    pixels, at the background's size."""
    from PIL import Image, ImageChops

    background = (value or {}).get("background")
    if background is None:
        raise gr.Error("Inpaint: put an image in the editor first (upload one, or select a result and press "
                       "'Send to inpaint').")
    mask = Image.new("L", background.size, 0)
    for layer in value.get("layers") or []:
        if layer is None:
            continue
        alpha = layer.convert("RGBA").getchannel("A")
        if alpha.size != background.size:
            alpha = alpha.resize(background.size, Image.NEAREST)
        mask = ImageChops.lighter(mask, alpha.point(lambda v: 255 if v > 0 else 0))
    if mask.getextrema()[1] == 0:
        raise gr.Error("Inpaint: nothing painted — paint over the area to regenerate with the brush.")
    rgb = background.convert("RGBA")
    flat = Image.new("RGBA", rgb.size, (255, 255, 255, 255))
    flat.alpha_composite(rgb)
    return flat.convert("RGB"), mask


def form_params(image_params, values: dict):
    """The tab's form values (with the editing fields, when present) as the service's parameters."""
    from studio.ui.image_tab import encode_image

    hires = {k: values.pop(k) for k in HIRES_KEYS if k in values}
    edit = {k: values.pop(k) for k in INPAINT_KEYS if k in values}
    update: dict[str, Any] = {}
    if "inpaint" in edit:
        init, mask = editor_images(edit["inpaint"])
        values.update(init_image=init, width=None, height=None)  # the canvas keeps its own size
        update.update(mask_image=encode_image(mask), mask_blur=int(edit.get("mask_blur") or 0))
    if hires.get("hires") and "inpaint" not in edit:
        steps = hires.get("hires_steps")
        update["hires"] = {"scale": float(hires["hires_scale"]), "strength": float(hires["hires_strength"]),
                           "steps": None if steps in (None, "") else int(steps)}
    params = image_params(**values)
    if not update:
        return params
    try:
        return params.model_validate({**params.model_dump(), **update})
    except Exception as exc:
        raise gr.Error(f"Check the form: {exc}") from exc


def wire_send(studio: Studio, controls: InpaintControls, selected: gr.State, init_image: gr.Image) -> None:
    """'Send to img2img' / 'Send to inpaint': the selected result becomes the start image or the
    editor's background."""

    def path_of(output_id):
        if not output_id:
            raise gr.Error("Select an image in the results or the history first.")
        try:
            return str(studio.outputs.file(output_id)[0])
        except StudioError as exc:
            raise gr.Error(exc.message) from exc

    def to_img2img(output_id):
        return path_of(output_id), f"`{output_id}` is the img2img start image (Image to image)."

    def to_inpaint(output_id):
        path = path_of(output_id)
        return ({"background": path, "layers": [], "composite": path}, gr.Accordion(open=True),
                f"`{output_id}` is in the inpaint editor: paint over what to regenerate.")

    controls.to_img2img.click(to_img2img, inputs=[selected], outputs=[init_image, controls.note],
                              api_visibility="private")
    controls.to_inpaint.click(to_inpaint, inputs=[selected],
                              outputs=[controls.editor, controls.accordion, controls.note], api_visibility="private")
