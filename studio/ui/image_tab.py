"""Image tab: prompt, model/LoRA pickers, sampler controls, img2img, a live preview while denoising,
results and history to select, rate and reuse, and a PNG-info reader that fills the form; and the
`/generate_image` endpoint for Gradio API clients."""

from __future__ import annotations

import base64
import io
import threading

import gradio as gr

from engines.image.schedulers import DEFAULT as DEFAULT_SCHEDULER
from engines.image.schedulers import SCHEDULER_NAMES
from studio.services import Studio
from studio.services.errors import StudioError
from studio.services.image import ImageGenerateParams
from studio.ui import image_edit, image_grid
from studio.ui.common import (
    api_endpoint,
    api_id_input,
    rate_buttons,
    share,
    shows_errors,
    stop_button,
    stream_in_thread,
    user_for,
    visitor_cap,
)

NO_LORA = "(none)"
HISTORY = 24  # earlier images shown

NOTHING_SELECTED = "Select an image in the results or the history to rate or reuse it."

def model_choices(studio: Studio) -> tuple[list[tuple[str, str]], str | None]:
    listing = studio.models.list_models()["image"]
    default = next((m["id"] for m in listing if m["default"]), None)
    labels = [(f"{m['id']} — starter, random weights" if m["source"] == "starter" else m["id"], m["id"])
              for m in listing]
    return labels, default


def lora_choices(studio: Studio, model: str | None) -> list[tuple[str, str]]:
    loras = studio.models.list_models()["image_loras"]
    titles = studio.models.version_titles()
    return [(NO_LORA, NO_LORA)] + [(titles.get(a["id"], a["name"]), a["id"]) for a in loras
                                   if model is None or a["base_model"] == model]


def image_params(*, prompt: str | None = "", negative_prompt: str | None = "", model: str | None = None,
                 lora: str | None = None, lora_scale=1.0, steps=None, guidance_scale=None, width=None, height=None,
                 scheduler: str | None = None, num_outputs=1, seed=None, init_image=None,
                 strength=0.75) -> ImageGenerateParams:
    """The form's values, as the page and API clients send them, as the service's parameters; an empty
    size, step count or guidance takes the model's default."""

    def number(value, kind):
        return None if value in (None, "") else kind(value)

    try:
        return ImageGenerateParams(
            prompt=prompt or "", negative_prompt=negative_prompt or "", model=model or None,
            lora=None if lora in (None, "", NO_LORA) else lora, lora_scale=float(lora_scale),
            steps=number(steps, int), guidance_scale=number(guidance_scale, float), width=number(width, int),
            height=number(height, int), scheduler=scheduler or None, num_outputs=int(num_outputs),
            seed=None if seed in (None, "") or int(seed) < 0 else int(seed),
            init_image=None if init_image is None else encode_image(init_image), strength=float(strength),
        )
    except Exception as exc:  # pydantic or a None from an API client: show the field, not a trace
        raise gr.Error(f"Check the form: {exc}") from exc


def settings_used(params: dict) -> str:
    """Every setting a result was made with, in the order creators read them (A1111's infotext)."""
    parts = [str(params.get("sampler", "")), f"{params.get('steps')} steps", f"CFG {params.get('guidance_scale')}",
             f"{params.get('width')}×{params.get('height')}"]
    if params.get("lora_scale") is not None:
        parts.append(f"LoRA scale {params['lora_scale']}")
    if params.get("strength") is not None:
        parts.append(f"strength {params['strength']} (img2img)")
    if params.get("negative_prompt"):
        parts.append("with a negative prompt")
    return " · ".join(p for p in parts if p)


def encode_image(image) -> str:
    """A PIL image as the base64 PNG that `init_image` accepts."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def build(studio: Studio):
    stop_state = gr.State(None)  # this session's stop event
    result_ids = gr.State([])  # output ids in the results gallery, in order
    history_ids = gr.State([])
    selected = gr.State(None)  # the output id picked in either gallery
    parsed = gr.State(None)  # parameters shown in the PNG-info panel
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Prompt", lines=2, placeholder="a lighthouse at dusk, oil painting",
                                elem_id="image-prompt")
            negative = gr.Textbox("", label="Negative prompt", lines=1, elem_id="image-negative")
            with gr.Row():
                generate = gr.Button("Generate", variant="primary", elem_id="image-generate")
                stop = gr.Button("Stop", variant="stop", elem_id="image-stop")
            status = gr.Markdown(elem_id="image-status")
            filter_status = gr.Markdown(elem_id="image-filter-status")
            # Results beside the controls, as creators' tools lay them out on a laptop screen; the
            # preview shows only while denoising.
            preview = gr.Image(label="Preview", interactive=False, height=256, visible=False, elem_id="image-preview")
            gallery = gr.Gallery(label="Results — select one to rate it", columns=4, height=320,
                                 elem_id="image-results")
            with gr.Row():
                selected_note = gr.Markdown(NOTHING_SELECTED, elem_id="image-selected")
                up = gr.Button("👍 Good", size="sm", min_width=60, elem_id="image-up")
                down = gr.Button("👎 Bad", size="sm", min_width=60, elem_id="image-down")
                rated = gr.Markdown(elem_id="image-rated")
        with gr.Column(scale=2):
            model = share("image.model", gr.Dropdown(label="Model", choices=[], elem_id="image-model"))
            with gr.Row():
                lora = share("image.lora", gr.Dropdown(label="LoRA", choices=[(NO_LORA, NO_LORA)], value=NO_LORA,
                                                       elem_id="image-lora"))
                lora_scale = gr.Slider(0, 2, value=1.0, step=0.05, label="LoRA scale", elem_id="image-lora-scale")
            with gr.Row():
                steps = visitor_cap(gr.Slider(1, 150, value=4, step=1, label="Steps", elem_id="image-steps"), "image_steps")
                guidance = gr.Slider(0, 30, value=5.0, step=0.5, label="Guidance (CFG)", elem_id="image-guidance")
            with gr.Row():
                width = visitor_cap(gr.Slider(32, 1024, value=64, step=8, label="Width", elem_id="image-width"), "image_side")
                height = visitor_cap(gr.Slider(32, 1024, value=64, step=8, label="Height", elem_id="image-height"),
                                     "image_side")
            scheduler = gr.Dropdown(label="Sampler", choices=list(SCHEDULER_NAMES), value=DEFAULT_SCHEDULER,
                                    elem_id="image-scheduler")
            with gr.Row():
                num_outputs = visitor_cap(gr.Slider(1, 8, value=1, step=1, label="Variations", elem_id="image-num-outputs"),
                                          "image_outputs")
                seed = gr.Number(label="Seed (-1 = random)", value=-1, precision=0, minimum=-1, elem_id="image-seed")
            with gr.Accordion("Image to image", open=False):
                init_image = gr.Image(label="Start from", type="pil", sources=["upload", "clipboard"],
                                      elem_id="image-init")
                strength = gr.Slider(0.05, 1, value=0.75, step=0.05, label="Strength (1 = ignore the image)",
                                     elem_id="image-strength")
            hires_inputs = image_edit.hires_controls()

    inpaint = image_edit.inpaint_controls()
    with gr.Accordion("PNG info", open=False):
        png_file = gr.File(label="Drop any PNG to read its generation parameters", file_types=[".png"],
                           type="binary", elem_id="image-png-file")
        info = gr.Textbox(label="Parameters", lines=5, interactive=False, elem_id="image-png-info")
        send = gr.Button("Send to form", elem_id="image-send-to-form")
    with gr.Accordion("History", open=False):
        with gr.Row():
            history_search = gr.Textbox(label="Search your images by prompt", placeholder="lighthouse", scale=4,
                                        elem_id="image-history-search")
            refresh_history = gr.Button("Search / refresh", size="sm", scale=1, elem_id="image-history-refresh")
        history = gr.Gallery(label="Earlier images", columns=8, height=220, elem_id="image-history")

    form = {"prompt": prompt, "negative_prompt": negative, "model": model, "lora": lora, "lora_scale": lora_scale,
            "steps": steps, "guidance_scale": guidance, "width": width, "height": height, "scheduler": scheduler,
            "num_outputs": num_outputs, "seed": seed, "init_image": init_image, "strength": strength}

    # -- models ----------------------------------------------------------------------------------
    def history_items(user, search: str | None = None):
        rows = studio.image.recent(HISTORY, user=user, search=search)
        return [(r["path"], f"seed {r['seed']} · {r['model']}") for r in rows], [r["id"] for r in rows]

    def safe_filter_status(m):
        try:
            return studio.image.content_filter_status(m)
        except StudioError as exc:
            return exc.message

    @shows_errors
    def refresh(current, request: gr.Request):
        choices, default = model_choices(studio)
        value = current if current in [c[1] for c in choices] else default
        items, ids = history_items(user_for(studio, request))
        return (gr.update(choices=choices, value=value), gr.update(choices=lora_choices(studio, value)),
                safe_filter_status(value), items, ids)

    @shows_errors
    def on_model(m):
        d = studio.image.defaults(m)
        return (gr.update(choices=lora_choices(studio, m), value=NO_LORA), d["steps"], d["guidance_scale"],
                d["width"], d["height"], safe_filter_status(m))

    model.input(on_model, inputs=[model], outputs=[lora, steps, guidance, width, height, filter_status],
                api_visibility="private")

    # -- generating ------------------------------------------------------------------------------
    @shows_errors
    def run(request: gr.Request, progress=gr.Progress(), **values):  # noqa: B008 - gradio injects the tracker
        user = user_for(studio, request)
        params = image_edit.form_params(image_params, values)  # + inpainting / hires fields, when present
        studio.image.check(params, user=user)  # a bad form fails here, before the page says "Generating…"
        loading = "" if studio.image.is_loaded(params.model) else "Loading model… "
        stop_event = threading.Event()
        yield {preview: gr.update(value=None, visible=True), gallery: [], status: f"{loading}Generating…",
               stop_state: stop_event,
               result_ids: [], selected: None, selected_note: NOTHING_SELECTED, rated: ""}
        previews = {"newest": None, "shown": None}  # not every step has a preview: keep the newest one

        def work(report):
            def on_progress(step, total, image):
                if image is not None:
                    previews["newest"] = image
                report((step, total))

            return studio.image.generate(params, user=user, stop_event=stop_event, on_progress=on_progress)

        def show_step(item):
            step, total = item
            progress((step, total), desc="Denoising", unit="steps")
            if previews["newest"] is previews["shown"]:
                return gr.skip()
            previews["shown"] = previews["newest"]
            return {preview: previews["shown"], status: f"Step {step} of {total}…"}

        value = yield from stream_in_thread(work, show_step)
        outs = value["outputs"]
        items = [(str(studio.outputs.file(o["id"])[0]), f"seed {o['seed']}") for o in outs]
        if outs:
            per_image = value["elapsed_s"] / (len(outs) + len(value["filtered"]))
            note = f"{len(outs)} image(s) from `{value['model']}`"
            note += f" + LoRA `{value['lora']}`" if value["lora"] else ""
            note += f" · seed {outs[0]['seed']} · {settings_used(value['params'])}"
            note += f" · {value['elapsed_s']:.2f} s ({per_image:.2f} s/image)"
            if value.get("random_weights"):
                note += " · *starter model: random weights, expect noise until trained*"
        else:
            note = "Stopped before any image finished." if value["stopped"] else "No image to show."
        for w in value["warnings"]:
            note += f"\n\n⚠️ {w}"
        hist, hist_ids = history_items(user)
        # The selection follows the newest results: the first new image is selected, shown as such in
        # the gallery, and its thumbs rate it (an old selection never outlives its results).
        picked = dict(zip(select_outputs, show(outs[0]["id"]), strict=True)) if outs else {}
        yield {preview: gr.update(value=None, visible=False),
               gallery: gr.update(value=items, selected_index=0 if outs else None), status: note,
               stop_state: None, result_ids: [o["id"] for o in outs], history: hist, history_ids: hist_ids,
               **picked}

    run_outputs = [preview, gallery, status, stop_state, result_ids, selected, selected_note, rated, info, parsed,
                   history, history_ids]
    gr.on([generate.click, prompt.submit], run, inputs_kwargs=form | hires_inputs, outputs=run_outputs,
          concurrency_id="image", show_progress_on=[gallery],
          api_visibility="private")  # the preview stays visible while the bar runs
    inpaint.button.click(run, inputs_kwargs=form | hires_inputs | inpaint.inputs, outputs=run_outputs,
                         concurrency_id="image", show_progress_on=[gallery], api_visibility="private")

    stop_button(stop, stop_state, status)

    # -- selecting, rating and reusing -----------------------------------------------------------
    def show(output_id: str):
        """The selection note and the image's PNG parameters."""
        path, _, _ = studio.outputs.file(output_id)
        found = studio.image.png_info(path.read_bytes())
        return (output_id, f"Selected `{output_id}` — rate it, or reuse its settings below (PNG info).", "",
                found.get("raw") or "", found if found.get("raw") else None)

    @shows_errors
    def on_select(ids, evt: gr.SelectData):
        if evt.index is None or evt.index >= len(ids):
            return None, "Select an image.", "", gr.update(), gr.update()
        return show(ids[evt.index])

    select_outputs = [selected, selected_note, rated, info, parsed]
    gallery.select(on_select, inputs=[result_ids], outputs=select_outputs, api_visibility="private")
    history.select(on_select, inputs=[history_ids], outputs=select_outputs, api_visibility="private")

    rate_buttons(studio, up, down, output=selected, note=rated, missing="Select an image first.")
    image_edit.wire_send(studio, inpaint, selected, init_image)

    @shows_errors
    def on_png(data):
        if not data:
            return "", None
        found = studio.image.png_info(bytes(data))
        if not found.get("raw"):
            return "This PNG carries no generation parameters.", None
        return found["raw"], found

    png_file.upload(on_png, inputs=[png_file], outputs=[info, parsed], api_visibility="private")

    @shows_errors
    def send_to_form(found):
        if not found:
            raise gr.Error("Drop a PNG with parameters, or select an image, first.")
        keep = gr.update()
        models = [c[1] for c in model_choices(studio)[0]]
        m = found.get("model") if found.get("model") in models else None
        loras = [c[1] for c in lora_choices(studio, m)]
        lr = found.get("lora") if found.get("lora") in loras else NO_LORA

        def number(key):
            return found[key] if isinstance(found.get(key), int | float) else keep

        return (
            found.get("prompt", ""), found.get("negative_prompt", ""),
            gr.update(value=m) if m else keep,
            gr.update(choices=lora_choices(studio, m), value=lr) if m else keep,
            number("lora_scale"), number("steps"), number("cfg_scale"), number("width"), number("height"),
            found["sampler"] if found.get("sampler") in SCHEDULER_NAMES else keep,
            number("seed"), number("denoising_strength"),
            safe_filter_status(m) if m else keep,
        )

    send.click(send_to_form, inputs=[parsed],
               outputs=[prompt, negative, model, lora, lora_scale, steps, guidance, width, height, scheduler, seed,
                        strength, filter_status], api_visibility="private")

    image_grid.build(studio, form, image_params)  # the X/Y/Z plot accordion (studio/ui/image_grid.py)

    @shows_errors
    def on_refresh_history(search: str, request: gr.Request):
        return history_items(user_for(studio, request), search)

    gr.on([refresh_history.click, history_search.submit], on_refresh_history, inputs=[history_search],
          outputs=[history, history_ids], api_visibility="private")

    # -- for API clients -------------------------------------------------------------------------
    # Size, steps and guidance empty by default: each model gets its own, as in POST /image/generate.
    # (The None defaults below are what make these, and img2img's start image, optional for clients.)
    api_inputs = {
        "model": api_id_input(),
        "lora": api_id_input("LoRA id (empty: none)"),
        "steps": gr.Number(None, precision=0, visible=False, label="Steps (empty: the model's default)"),
        "guidance_scale": gr.Number(None, visible=False, label="Guidance (empty: the model's default)"),
        "width": gr.Number(None, precision=0, visible=False, label="Width (empty: the model's default)"),
        "height": gr.Number(None, precision=0, visible=False, label="Height (empty: the model's default)"),
    }
    api_images = gr.Gallery(visible=False, label="Images")
    api_result = gr.JSON(visible=False, label="Result (as POST /api/v1/image/generate answers)")

    @shows_errors
    def generate_image(request: gr.Request, steps: int | None = None, guidance_scale: float | None = None,
                       width: int | None = None, height: int | None = None, init_image=None, **values):
        """Generate images as the page does (same limits, queue and content filter). Returns the PNGs
        (with their generation parameters inside) and the whole answer: every output with its id (rate
        it with /rate) and seed, the model and LoRA used, and any warnings."""
        user = user_for(studio, request)
        params = image_params(steps=steps, guidance_scale=guidance_scale, width=width, height=height,
                              init_image=init_image, **values)
        value = studio.image.generate(params, user=user)
        images = [(str(studio.outputs.file(o["id"])[0]), f"seed {o['seed']}") for o in value["outputs"]]
        return images, value

    api_endpoint(generate_image, api_name="generate_image", concurrency_id="image", inputs=form | api_inputs,
                 outputs=[api_images, api_result])
    return refresh, [model], [model, lora, filter_status, history, history_ids]
