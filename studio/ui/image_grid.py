"""The Image tab's X/Y/Z plot: axis pickers and value lists over the tab's own form, the labelled
grid, and the cells in a gallery to select and rate (each cell is a stored output)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from studio.services import Studio
from studio.services.image import ImageGenerateParams
from studio.services.image_grid import GridAxis, ImageGridParams
from studio.ui.common import rate_buttons, shows_errors, user_for

NO_AXIS = "(none)"
AXIS_CHOICES = [("Seed", "seed"), ("Steps", "steps"), ("Guidance (CFG)", "guidance_scale"), ("Sampler", "scheduler"),
                ("LoRA scale", "lora_scale"), ("Prompt S/R (first value is searched)", "prompt_sr")]
NUMERIC = {"seed": int, "steps": int, "guidance_scale": float, "lora_scale": float}
NOTHING_SELECTED = "Select a cell to rate it."


def axis(name: str | None, text: str | None, label: str) -> GridAxis | None:
    """An axis from a picker and a comma-separated list; None when the picker says none."""
    if not name or name == NO_AXIS:
        return None
    values: list[Any] = [v.strip() for v in (text or "").split(",") if v.strip()]
    if not values:
        raise gr.Error(f"{label}: give the values, separated by commas (e.g. 1, 2, 3).")
    kind = NUMERIC.get(name)
    if kind is not None:
        try:
            values = [kind(float(v)) if kind is int and float(v).is_integer() else kind(v) for v in values]
        except ValueError as exc:
            raise gr.Error(f"{label}: '{text}' — these values are numbers, separated by commas.") from exc
    return GridAxis(name=name, values=values)


def build(studio: Studio, form: dict[str, gr.components.Component],
          to_params: Callable[..., ImageGenerateParams]) -> None:
    """The accordion; `form` is the Image tab's form and `to_params` turns its values into parameters."""
    cell_ids = gr.State([])
    selected = gr.State(None)
    with gr.Accordion("X/Y/Z plot", open=False, elem_id="grid-accordion"):
        pickers = {}
        with gr.Row():
            for key, default, values in (("x", "seed", "1, 2"), ("y", NO_AXIS, ""), ("z", NO_AXIS, "")):
                with gr.Column(min_width=160):
                    choices = AXIS_CHOICES if key == "x" else [(NO_AXIS, NO_AXIS), *AXIS_CHOICES]
                    pickers[f"{key}_name"] = gr.Dropdown(choices, value=default, label=f"{key.upper()} axis",
                                                         elem_id=f"grid-{key}")
                    pickers[f"{key}_values"] = gr.Textbox(values, label=f"{key.upper()} values (comma-separated)",
                                                          elem_id=f"grid-{key}-values")
        make = gr.Button("Make grid", variant="primary", elem_id="grid-make")
        status = gr.Markdown(elem_id="grid-status")
        picture = gr.Image(label="Grid", interactive=False, type="pil", elem_id="grid-picture")
        cells = gr.Gallery(label="Cells — select one to rate it", columns=6, height=220, elem_id="grid-cells")
        with gr.Row():
            selected_note = gr.Markdown(NOTHING_SELECTED, elem_id="grid-selected")
            up = gr.Button("👍 Good", size="sm", min_width=60, elem_id="grid-up")
            down = gr.Button("👎 Bad", size="sm", min_width=60, elem_id="grid-down")
            rated = gr.Markdown(elem_id="grid-rated")

    @shows_errors
    def make_grid(request: gr.Request, x_name, x_values, y_name, y_values, z_name, z_values, **values):
        import base64
        import io

        from PIL import Image

        params = to_params(**{**values, "num_outputs": 1})
        try:
            body = ImageGridParams(params=params, x=axis(x_name, x_values, "X values"),
                                   y=axis(y_name, y_values, "Y values"), z=axis(z_name, z_values, "Z values"))
        except ValueError as exc:  # pydantic: too many values, an empty list …
            raise gr.Error(f"Check the axes: {exc}") from exc
        answer = studio.image_grid.generate(body, user=user_for(studio, request))
        grid = Image.open(io.BytesIO(base64.b64decode(answer["grid"])))
        shown = [c for c in answer["cells"] if c["id"]]
        items = [(str(studio.outputs.file(c["id"])[0]),
                  " · ".join(f"{k} {c[k]}" for k in ("x", "y", "z") if c[k] is not None)) for c in shown]
        note = f"{len(answer['cells'])} cells in {answer['elapsed_s']:.1f} s · grid `{answer['id']}`"
        for w in answer["warnings"]:
            note += f"\n\n⚠️ {w}"
        return grid, items, [c["id"] for c in shown], note, None, NOTHING_SELECTED, ""

    make.click(make_grid, inputs_kwargs={**form, **pickers},
               outputs=[picture, cells, cell_ids, status, selected, selected_note, rated],
               concurrency_id="image", api_visibility="private")

    def on_select(ids, evt: gr.SelectData):
        if evt.index is None or evt.index >= len(ids):
            return None, NOTHING_SELECTED, ""
        return ids[evt.index], f"Selected `{ids[evt.index]}` — rate it.", ""

    cells.select(on_select, inputs=[cell_ids], outputs=[selected, selected_note, rated], api_visibility="private")
    rate_buttons(studio, up, down, output=selected, note=rated, missing="Select a cell first.")
