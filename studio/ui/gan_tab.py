"""GAN tab: pick a trained DCGAN, generate from seeds, rate, walk between two seeds, export;
and (admins) create the procedural demo dataset to train one on. Also the `/generate_gan` endpoint
for Gradio API clients."""

from __future__ import annotations

import gradio as gr

from engines.gan.demo_data import DEFAULT_COUNT as DEMO_COUNT
from studio.services import Studio
from studio.services.gan import GanGenerateParams, GanWalkParams
from studio.ui.common import (
    admin_only,
    api_endpoint,
    api_id_input,
    rate_buttons,
    require_admin,
    share,
    shows_errors,
    user_for,
    visitor_cap,
)
from studio.ui.live import keep_or

NO_GAN_HINT = (
    "**No GAN trained yet.** To get one: open *Create demo dataset* below (or upload images in the "
    "Datasets tab), then start a job of kind `gan` on that dataset in the Training tab. "
    "At 32 px with the default settings it trains in about 10–15 minutes on a CPU (train.log says how long); "
    "the finished GAN appears here."
)
HINT = "Pick a trained GAN. Image *i* uses seed + *i*, so any image can be made again on its own."
ANY_CLASS = "(any: drawn from the seed)"


def model_choices(studio: Studio) -> list[tuple[str, str]]:
    """(label, id) of every GAN the registry lists, newest trained first."""
    listed = [m["id"] for m in studio.models.list_models()["gan"]]
    trained = [m for m in studio.gan.list_models() if m["id"] in listed]  # newest first
    others = [i for i in listed if i not in {m["id"] for m in trained}]
    titles = studio.models.version_titles()
    return [(titles.get(m["id"], m["name"]), m["id"]) for m in trained] + [(i, i) for i in others]


def _seed(value) -> int | None:
    return None if value in (None, "") or int(value) < 0 else int(value)


def _label(value) -> str | None:
    return None if value in (None, "", ANY_CLASS) else str(value)


def build(studio: Studio):
    result_ids = gr.State([])  # output ids in the results gallery, in order
    walk_ids = gr.State([])  # output ids of the walk's frames
    gif_id = gr.State(None)
    selected = gr.State(None)  # the output id picked in either gallery
    hint = gr.Markdown(NO_GAN_HINT, elem_id="gan-hint")
    with gr.Row():
        with gr.Column(scale=2):
            model = share("gan.model", gr.Dropdown(label="Trained GAN", choices=[], elem_id="gan-model"))
            with gr.Row():
                num_outputs = visitor_cap(gr.Slider(1, 16, value=8, step=1, label="Images", elem_id="gan-num-outputs"),
                                          "gan_outputs")
                seed = gr.Number(
                    label="Seed (-1 = random)", value=-1, precision=0, minimum=-1, elem_id="gan-seed"
                )
            with gr.Row():
                label = gr.Dropdown(label="Class (a conditional GAN's captions)", choices=[ANY_CLASS],
                                    value=ANY_CLASS, elem_id="gan-class", scale=2)  # fmt: skip
                truncation = gr.Slider(0, 1, value=1, step=0.05, label="Truncation ψ (lower: cleaner, less varied)",
                                       elem_id="gan-truncation")  # fmt: skip
            generate = gr.Button("Generate", variant="primary", elem_id="gan-generate")
            status = gr.Markdown(elem_id="gan-status")
        with gr.Column(scale=3):
            gallery = gr.Gallery(
                label="Results — select one to rate it",
                columns=8,
                height=260,
                object_fit="contain",
                elem_id="gan-results",
            )
            with gr.Row():
                selected_note = gr.Markdown("Select an image to rate it.", elem_id="gan-selected")
                up = gr.Button("👍 Good", size="sm", min_width=60, elem_id="gan-up")
                down = gr.Button("👎 Bad", size="sm", min_width=60, elem_id="gan-down")
                rated = gr.Markdown(elem_id="gan-rated")

    with gr.Accordion("Latent walk between two seeds", open=False):
        with gr.Row():
            seed_a = gr.Number(label="From seed", value=1, precision=0, minimum=0, elem_id="gan-seed-a")
            seed_b = gr.Number(label="To seed", value=2, precision=0, minimum=0, elem_id="gan-seed-b")
            frames = visitor_cap(gr.Slider(2, 32, value=8, step=1, label="Frames", elem_id="gan-frames"), "gan_frames")
            walk = gr.Button("Walk", elem_id="gan-walk")
        walk_gallery = gr.Gallery(
            label="Frames (the first and last are the two seeds' images)",
            columns=8,
            height=160,
            object_fit="contain",
            elem_id="gan-walk-frames",
        )
        with gr.Row():
            gif = gr.Image(
                label="Animated", type="filepath", interactive=False, height=200, elem_id="gan-walk-gif"
            )
            with gr.Column():
                gif_up = gr.Button("👍 Good walk", size="sm", elem_id="gan-gif-up")
                gif_down = gr.Button("👎 Bad walk", size="sm", elem_id="gan-gif-down")
                gif_rated = gr.Markdown(elem_id="gan-gif-rated")

    with gr.Accordion("Export", open=False):
        gr.Markdown("- Holds: the generator's weights (`generator.safetensors`), `config.json` (its architecture "
                    "and how it was trained), `dcgan.py` (plain PyTorch) and a README naming the version.\n"
                    "- Loads with: `from dcgan import load_generator; load_generator(folder)`.\n"
                    "- Leaves out: the discriminator, the optimizer state and the training checkpoints "
                    "(resume a run from the Training tab).")
        export = gr.Button("Export the selected GAN", elem_id="gan-export")
        export_file = gr.File(label="Download", interactive=False, elem_id="gan-export-file")

    with gr.Accordion("Create demo dataset", open=False, elem_id="gan-demo") as demo_form:
        gr.Markdown(
            "No images at hand? This draws a seeded set of coloured circles, squares and triangles "
            "(64×64 PNGs) and stores it as an image dataset. Then, in the **Training** tab, start a job "
            "of kind `gan` on it (resolution 32 trains in about 10–16 minutes on a CPU). The captions repeat, "
            "so the GAN learns them as classes: pick one under *Class* to draw it. The defaults draw every "
            "object round; the *quality* preset (about 25 minutes) draws the triangles and squares too."
        )
        with gr.Row():
            demo_n = gr.Slider(16, 2000, value=DEMO_COUNT, step=1, label="Images", elem_id="gan-demo-n",
                               info=f"{DEMO_COUNT}: every caption 3 times")
            demo_seed = gr.Number(label="Seed", value=0, precision=0, minimum=0, elem_id="gan-demo-seed")
            demo_create = gr.Button("Create demo dataset", elem_id="gan-demo-create")
        demo_note = gr.Markdown(elem_id="gan-demo-note")
    admin_only(studio, demo_form)

    # -- models ----------------------------------------------------------------------------------
    @shows_errors
    def on_load(current=None):
        choices = model_choices(studio)
        values = [v for _, v in choices]
        return gr.update(choices=choices, **keep_or(current, values, values[0] if values else None)), \
            HINT if choices else NO_GAN_HINT

    @shows_errors
    def on_model(m):
        """The picked GAN's classes and its own truncation ψ."""
        if not m:
            return gr.update(choices=[ANY_CLASS], value=ANY_CLASS), gr.update(value=1)
        info = studio.gan.describe(m)
        return gr.update(choices=[ANY_CLASS, *info["classes"]], value=ANY_CLASS), gr.update(value=info["truncation"])

    model.change(on_model, inputs=[model], outputs=[label, truncation], api_visibility="private")

    # -- generating ------------------------------------------------------------------------------
    def generated(model: str | None, num_outputs, seed, request: gr.Request, label=None,
                  truncation=None) -> tuple[list[tuple[str, str]], dict]:  # fmt: skip
        """(gallery items, the service's answer): what the page and API clients share."""
        user = user_for(studio, request)
        if not model:
            raise gr.Error("No GAN picked. " + NO_GAN_HINT.replace("**", "").replace("*", ""))
        try:
            params = GanGenerateParams(model=model, num_outputs=int(num_outputs), seed=_seed(seed),
                                       label=_label(label), truncation=truncation)  # fmt: skip
        except Exception as exc:  # pydantic: show the field, not a trace
            raise gr.Error(f"Check the form: {exc}") from exc
        value = studio.gan.generate(params, user=user)
        items = [(str(studio.outputs.file(o["id"])[0]), f"seed {o['seed']}" + (f" · {o['label']}" if o["label"] else ""))
                 for o in value["outputs"]]  # fmt: skip
        return items, value

    @shows_errors
    def run(request: gr.Request, **form):
        items, value = generated(**form, request=request)
        outs = value["outputs"]
        note = (
            f"{len(outs)} image(s) from `{value['model']}` · seeds {outs[0]['seed']}–{outs[-1]['seed']} "
            f"· {value['resolution']} px · ψ {value['truncation']:g} · {value['elapsed_s']:.2f} s"
        )
        return items, [o["id"] for o in outs], note, None, "Select an image to rate it.", ""

    generate.click(
        run,
        inputs_kwargs={"model": model, "num_outputs": num_outputs, "seed": seed, "label": label,
                       "truncation": truncation},  # fmt: skip
        outputs=[gallery, result_ids, status, selected, selected_note, rated],
        concurrency_id="gan",
        api_visibility="private",
    )

    @shows_errors
    def on_walk(model: str | None, seed_a, seed_b, frames, request: gr.Request, label=None, truncation=None):
        user = user_for(studio, request)
        if not model:
            raise gr.Error("No GAN picked. " + NO_GAN_HINT.replace("**", "").replace("*", ""))
        try:
            params = GanWalkParams(model=model, seed_a=int(seed_a or 0), seed_b=int(seed_b or 0), frames=int(frames),
                                   label=_label(label), truncation=truncation)  # fmt: skip
        except Exception as exc:
            raise gr.Error(f"Check the form: {exc}") from exc
        value = studio.gan.walk(params, user=user)
        items = [(str(studio.outputs.file(fr["id"])[0]), f"t = {fr['t']:.2f}") for fr in value["frames"]]
        gif_path = str(studio.outputs.file(value["gif"]["id"])[0])
        return items, [fr["id"] for fr in value["frames"]], gif_path, value["gif"]["id"], ""

    walk.click(
        on_walk,
        inputs_kwargs={"model": model, "seed_a": seed_a, "seed_b": seed_b, "frames": frames, "label": label,
                       "truncation": truncation},  # fmt: skip
        outputs=[walk_gallery, walk_ids, gif, gif_id, gif_rated],
        concurrency_id="gan",
        api_visibility="private",
    )

    # -- selecting and rating --------------------------------------------------------------------
    def on_select(ids, evt: gr.SelectData):
        if evt.index is None or not isinstance(evt.index, int) or evt.index >= len(ids):
            return None, "Select an image.", ""
        return ids[evt.index], f"Selected `{ids[evt.index]}` — rate it.", ""

    gallery.select(on_select, inputs=[result_ids], outputs=[selected, selected_note, rated],
                   api_visibility="private")
    walk_gallery.select(on_select, inputs=[walk_ids], outputs=[selected, selected_note, rated],
                        api_visibility="private")
    rate_buttons(studio, up, down, output=selected, note=rated, missing="Select an image first.")
    rate_buttons(studio, gif_up, gif_down, output=gif_id, note=gif_rated, missing="Make a walk first.")

    # -- export and the demo dataset -------------------------------------------------------------
    @shows_errors
    def on_export(m):
        if not m:
            raise gr.Error("Pick a GAN to export.")
        return str(studio.gan.export(m))

    export.click(on_export, inputs=[model], outputs=[export_file], api_visibility="private")

    @shows_errors
    def on_demo(n, seed, request: gr.Request):
        user = require_admin(studio, request)
        summary = studio.gan.create_demo_dataset(studio.datasets, n=int(n), seed=int(seed or 0), user=user)
        return (
            f"Created dataset **{summary['name']}** (`{summary['id']}`, {summary['num_items']} images). "
            "Next: in the **Training** tab pick kind `gan` and this dataset, then *Start training*."
        )

    demo_create.click(on_demo, inputs_kwargs={"n": demo_n, "seed": demo_seed}, outputs=[demo_note],
                      api_visibility="private")

    # -- for API clients -------------------------------------------------------------------------
    api_model = api_id_input("GAN id (empty: the newest trained; GET /api/v1/models lists them)")
    api_images = gr.Gallery(visible=False, label="Images")
    api_result = gr.JSON(visible=False, label="Result (as POST /api/v1/gan/generate answers)")

    @shows_errors
    def generate_gan(model: str, num_outputs: int, seed: int, request: gr.Request):
        """Generate images with a trained GAN as the page does (same limits and queue); image i uses
        seed + i. Returns the images and the whole answer: every output with its id (rate it with
        /rate) and seed, the model used, and its resolution."""
        choices = model_choices(studio)
        return generated(model or (choices[0][1] if choices else None), num_outputs, seed, request)

    api_endpoint(generate_gan, api_name="generate_gan", concurrency_id="gan", outputs=[api_images, api_result],
                 inputs={"model": api_model, "num_outputs": num_outputs, "seed": seed})
    return on_load, [model], [model, hint]
