"""Models / Settings: what is available and loaded, where the studio runs, and the offline state."""

from __future__ import annotations

import gradio as gr

from studio.services import Studio
from studio.services.exports import EXPORT_COLUMNS
from studio.services.image_exports import IMAGE_EXPORT_COLUMNS
from studio.services.settings import PRECISION_KINDS
from studio.ui.common import admin_only, require_admin, shows_errors
from studio.ui.live import unless_shown


def _models_table(studio: Studio) -> list[list]:
    listing = studio.models.list_models()
    rows = []
    for kind in ("text", "image", "gan", "speech"):
        for m in listing[kind]:
            loaded = f"yes ({m['dtype']})" if m["loaded"] and m.get("dtype") else "yes" if m["loaded"] else ""
            rows.append([kind, m["id"], m["source"], loaded, "default" if m["default"] else ""])
    for key, label in (("text_adapters", "text adapter"), ("image_loras", "image LoRA")):
        for a in listing[key]:
            rows.append([label, a["id"], f"trained on {a['base_model']}", "", a.get("name", "")])
    return rows


def _card_line(card: dict) -> str:
    """One line of a trained starter's card: what it was trained on, for how long, what it measures."""
    m = card.get("measures") or {}
    if card.get("kind") == "speech":  # a classic engine: nothing trained, intelligibility measured
        return (f"**`{card.get('id')}`** — {card.get('label', '')}; not trained. Measured with pocketsphinx: "
                f"{m.get('closed_set_identified')}/{m.get('closed_set_total')} of sentences it was not tuned on "
                f"identified (random VITS starter and white noise: 0/10), open-vocabulary WER "
                f"{m.get('open_vocabulary_wer')}.")
    if card.get("kind") == "text":
        measured = (f"{m.get('english_word_share', 0) * 100:.0f} % English words in its answers, held-out "
                    f"perplexity {m.get('held_out_perplexity')}")
    else:
        measured = (f"on prompts it never saw: background {m.get('background', 0) * 100:.0f} %, colour "
                    f"{m.get('colour', 0) * 100:.0f} %, shape {m.get('shape', 0) * 100:.0f} % right")
    minutes = (card.get("train_time_s") or 0) / 60
    return (f"**`{card.get('id')}`** — {card.get('architecture', '')}; {card.get('parameters', 0):,} weights. "
            f"Trained on {card.get('trained_on', '?')}, for {minutes:.0f} minutes on {card.get('machine', '?')}. "
            f"Measured: {measured}.")


def _starter_cards(studio: Studio) -> str:
    listing = studio.models.list_models()
    cards = [m["card"] for kind in ("text", "image", "gan", "speech") for m in listing[kind] if m.get("card")]
    if not cards:
        return ""
    return "#### Starter models (offline defaults)\n\n" + "\n\n".join(_card_line(c) for c in cards)


def _status(studio: Studio) -> str:
    h = studio.models.health()
    mem = studio.models.memory
    lines = [
        f"**Version** {h['version']} · **device** `{h['device']}` · **offline** {'yes' if h['offline'] else 'no'}",
        f"**Data dir** `{studio.data_dir}`",
        f"**Memory budget** {mem.budget_bytes / 1024**3:.1f} GiB · in use by models {mem.used_bytes / 1024**2:.0f} MiB",
    ]
    return "\n\n".join(lines)


def _precision_note(studio: Studio) -> str:
    p = studio.models.precision()
    reduced = p["reduced"] or "fp32 (this device has no fast reduced precision)"
    settings = " · ".join(f"{kind} `{p[kind]}`" for kind in PRECISION_KINDS)
    return (f"**Precision** {settings} — `auto` on this device means **{reduced}** for models of 20M+ "
            "weights and fp32 for the tiny starter models. Text `int8` (weight-only, CPU) is refused at load "
            "when held-out perplexity rises more than 3 %. A loaded model reloads in a new setting on its "
            "next request.")


def build(studio: Studio):
    """Returns (loader, inputs, outputs) so the shell fills the tab when a page opens."""
    status = gr.Markdown()
    table = gr.Dataframe(
        headers=["kind", "id", "source", "loaded", "note"],
        datatype=["str", "str", "str", "str", "str"],
        interactive=False,
        label="Models",
    )
    # Compressed exports (job kind `export`, started in the Training tab): what compression cost.
    exports = gr.Dataframe(headers=EXPORT_COLUMNS, datatype=["str"] * len(EXPORT_COLUMNS), interactive=False,
                           label="Compressed exports — each figure beside the uncompressed model's",
                           elem_id="models-exports")
    # One-file Stable Diffusion checkpoints (job kind `image-export`) for AUTOMATIC1111 / Forge / ComfyUI.
    image_exports = gr.Dataframe(headers=IMAGE_EXPORT_COLUMNS, datatype=["str"] * len(IMAGE_EXPORT_COLUMNS),
                                 interactive=False, elem_id="models-image-exports",
                                 label="Image checkpoints (.safetensors, original SD layout) — download link per row")
    starter_cards = gr.Markdown(elem_id="models-starter-cards")
    refresh = gr.Button("Refresh", size="sm")
    content_filter = gr.Checkbox(value=studio.config.image_content_filter, elem_id="settings-content-filter",
                                 label="Image content filter (the model's safety checker, where it ships one)")

    @shows_errors
    def set_filter(on: bool, request: gr.Request):
        user = require_admin(studio, request)
        studio.settings.set_content_filter(on, user.name)
        gr.Info(f"Image content filter {'on' if on else 'off'}.")

    content_filter.input(set_filter, inputs=[content_filter], api_visibility="private")

    # Precision per engine. Switching reloads a loaded model of that kind in the other variant.
    precision_note = gr.Markdown(elem_id="settings-precision-note")  # filled on page load (needs torch)
    radios = {}
    with gr.Row():
        for kind in PRECISION_KINDS:
            choices = ["auto", "fp32", "bf16", "fp16", *(["int8"] if kind == "text" else [])]
            radios[kind] = gr.Radio(choices, value=studio.config.precision[kind],
                                    elem_id=f"settings-precision-{kind}",
                                    label=f"{kind.capitalize()} precision")

    def setter(kind: str):
        @shows_errors
        def set_precision(choice: str, request: gr.Request):
            user = require_admin(studio, request)
            studio.settings.set_precision(kind, choice, user.name)
            gr.Info(f"{kind.capitalize()} models now run in {choice}; a loaded model switches on its next request.")
            return _precision_note(studio)

        return set_precision

    admin_only(studio, content_filter, precision_note, *radios.values())
    for kind, radio in radios.items():
        radio.input(setter(kind), inputs=[radio], outputs=[precision_note], api_visibility="private")

    @shows_errors
    def load(filter_shown: bool, *precisions_shown: str):
        # a setting is redrawn only where it differs from what the page shows: a redraw racing a
        # person's click never puts back the value from before it
        return (_status(studio), _models_table(studio), studio.exports.table(), studio.image_exports.table(),
                unless_shown(filter_shown, studio.config.image_content_filter),
                *(unless_shown(shown, studio.models.precision_of(k))
                  for k, shown in zip(PRECISION_KINDS, precisions_shown, strict=True)),
                _precision_note(studio), _starter_cards(studio))

    inputs = [content_filter, *radios.values()]
    outputs = [status, table, exports, image_exports, content_filter, *radios.values(), precision_note, starter_cards]
    refresh.click(load, inputs=inputs, outputs=outputs, api_visibility="private")
    return load, inputs, outputs
