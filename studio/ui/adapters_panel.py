"""Adapters section: the trained and imported adapters and models — rename, delete, export,
import, mix with weights, merge into the base and export. Thin: every action is one call to
`studio.adapters` (AdapterService)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from studio.services import Studio
from studio.services.adapter_mix import DENSITY_TYPES, MIX_TYPES, SIGN_METHODS, SIGN_TYPES
from studio.services.datasets import IncomingFile
from studio.services.version_names import version_title
from studio.ui.common import admin_only, require_admin, shows_errors, user_for

HEADERS = ["id", "name", "type", "base model", "source", "created", "size"]
NO_DATASET = "(don't score)"
MIX_TYPE_INFO = ("linear/ties/dare/magnitude_prune need adapters of one rank; cat, svd and the *_svd types take "
                 "any ranks. ties and dare prune each adapter to the density first.")
TYPE_LABELS = {"text_adapter": "text adapter", "text_model": "text model", "image_lora": "image LoRA",
               "image_model": "image model", "speech_model": "voice"}


def table_rows(adapters: list[dict]) -> list[list]:
    return [
        [
            a["id"],
            a["name"],
            TYPE_LABELS.get(a["type"], a["type"]),
            a["base_model"],
            a["source"],
            a["created_at"].replace("T", " ")[:19],
            _size(a["size_bytes"]),
        ]
        for a in adapters
    ]


def _size(n: int) -> str:
    return f"{n / 1024**2:.1f} MB" if n >= 1024**2 else f"{n / 1024:.0f} KB"


def perplexity_table(row: dict) -> str:
    """The mix's held-out perplexity beside its parents' (lower is better), as a Markdown table."""
    scores = row.get("perplexity") or row["meta"].get("perplexity")
    if not scores:
        return ""
    names = {s["id"]: s["name"] for s in row["meta"].get("sources", [])}
    lines = [f"\n\nHeld-out perplexity on `{scores['dataset_id']}` ({scores['tokens']:,} tokens; lower is better):",
             "", "| adapter | perplexity |", "| --- | --- |", f"| **{row['name']}** (the mix) | **{scores['merged']:.3f}** |"]
    lines += [f"| {names.get(i, i)} | {p:.3f} |" for i, p in scores["parents"].items()]
    return "\n".join(lines)


def parse_weights(text: str, n: int) -> list[float]:
    """'0.7, 0.3' → [0.7, 0.3]; empty → equal weights."""
    if not (text or "").strip():
        return [1.0 / n] * n
    try:
        weights = [float(w) for w in text.replace(";", ",").split(",") if w.strip()]
    except ValueError:
        raise gr.Error("Weights are numbers separated by commas, e.g. 0.7, 0.3.") from None
    if len(weights) != n:
        raise gr.Error(f"Give one weight per picked adapter ({n}), or leave the weights empty.")
    return weights


def build(studio: Studio):
    """Returns (loader, inputs, outputs) so the shell fills the table when a page opens."""
    gr.Markdown("### Adapters\nTrained and imported adapters and models. Text adapters switch per request "
                "without reloading their base model.")  # fmt: skip
    table = gr.Dataframe(headers=HEADERS, interactive=False, label="Adapters", elem_id="adapters-table")
    with gr.Row():
        picker = gr.Dropdown(label="Adapter", choices=[], value=None, elem_id="adapters-picker", scale=2)
        new_name = gr.Textbox(label="New name", max_length=100, elem_id="adapters-name", scale=2)
        rename_btn = gr.Button("Rename", size="sm", elem_id="adapters-rename")
        refresh = gr.Button("Refresh", size="sm", elem_id="adapters-refresh")
    with gr.Row():
        export_btn = gr.Button("Export (zip)", size="sm", elem_id="adapters-export")
        merge_btn = gr.Button("Merge into base & export", size="sm", elem_id="adapters-merge")
        confirm = gr.Checkbox(label="Yes, delete it", value=False, elem_id="adapters-confirm-delete")
        delete_btn = gr.Button("Delete", variant="stop", size="sm", elem_id="adapters-delete")
    with gr.Row():
        download = gr.File(label="Download", interactive=False, elem_id="adapters-download")
        export_note = gr.Markdown(elem_id="adapters-export-note")  # what the zip holds and leaves out
    status = gr.Markdown(elem_id="adapters-status")
    with gr.Accordion("Import a LoRA adapter (safetensors)", open=False, elem_id="adapters-import-form") as import_form:
        files = gr.File(label="A .zip of the adapter folder, or its files", file_count="multiple",
                        elem_id="adapters-import-files")  # fmt: skip
        with gr.Row():
            base = gr.Dropdown(label="Base model", choices=[], value=None, elem_id="adapters-import-base")
            import_name = gr.Textbox(label="Name", max_length=100, elem_id="adapters-import-name")
        import_btn = gr.Button("Import", variant="primary", elem_id="adapters-import")
    with gr.Accordion("Mix text adapters", open=False, elem_id="adapters-mix-form") as mix_form:
        with gr.Row():
            mix_pick = gr.Dropdown(
                label="Adapters (same base)", choices=[], multiselect=True, elem_id="adapters-mix-pick"
            )
            weights = gr.Textbox(label="Weights", placeholder="0.5, 0.5", elem_id="adapters-mix-weights")
            mix_name = gr.Textbox(label="Name", max_length=100, elem_id="adapters-mix-name")
        with gr.Row():
            mix_type = gr.Dropdown(label="Combination (peft)", choices=["auto", *MIX_TYPES], value="auto",
                                   elem_id="adapters-mix-type", info=MIX_TYPE_INFO)  # fmt: skip
            density = gr.Slider(0.05, 1.0, value=0.5, step=0.05, label="Density (share of weights kept)",
                                visible=False, elem_id="adapters-mix-density")  # fmt: skip
            sign = gr.Radio(list(SIGN_METHODS), value="total", label="Majority sign", visible=False,
                            elem_id="adapters-mix-sign")  # fmt: skip
            eval_set = gr.Dropdown(label="Score on text dataset (held-out perplexity)", choices=[], value=None,
                                   elem_id="adapters-mix-dataset")  # fmt: skip
        mix_btn = gr.Button("Mix", variant="primary", elem_id="adapters-mix")
    admin_only(studio, new_name, rename_btn, merge_btn, confirm, delete_btn, import_form, mix_form)

    @shows_errors
    def load(selected: str | None = None):
        adapters = studio.adapters.list()
        choices = [(version_title(a), a["id"]) for a in adapters]
        text = [(version_title(a), a["id"]) for a in adapters if a["type"] == "text_adapter"]
        keep = selected if any(v == selected for _, v in choices) else None
        bases = [m["id"] for m in studio.models.list_models()["text"]]
        texts = [(NO_DATASET, "")] + [(f"{d['name']} · {d['id']}", d["id"]) for d in studio.datasets.list()
                                      if d["kind"] == "text"]  # fmt: skip
        return (
            table_rows(adapters),
            gr.update(choices=choices, value=keep),
            gr.update(choices=text, value=[]),
            gr.update(choices=bases, value=bases[0] if bases else None),
            gr.update(choices=texts, value=""),
        )

    refreshed = [table, picker, mix_pick, base, eval_set]

    @shows_errors
    def on_rename(adapter_id: str | None, name: str, request: gr.Request):
        user = require_admin(studio, request)
        row = studio.adapters.rename(_picked(adapter_id), name, user=user)
        return f"Renamed to **{row['name']}**.", *load(row["id"])

    @shows_errors
    def on_delete(adapter_id: str | None, confirmed: bool, request: gr.Request):
        user = require_admin(studio, request)
        if not confirmed:
            raise gr.Error("Tick 'Yes, delete it' first.")
        studio.adapters.delete(_picked(adapter_id), user=user)
        return f"🗑️ Deleted {adapter_id}.", False, *load(None)

    @shows_errors
    def on_export(adapter_id, request: gr.Request):
        user_for(studio, request)
        picked = _picked(adapter_id)
        return str(studio.adapters.export(picked)), studio.adapters.export_note(picked)

    @shows_errors
    def on_merge(adapter_id, request: gr.Request):
        user = require_admin(studio, request)
        picked = _picked(adapter_id)
        return (str(studio.adapters.merge_export(picked, user=user)),
                studio.adapters.export_note(picked, merged=True))

    @shows_errors
    def on_import(paths: list[str] | None, base_model: str | None, name: str, request: gr.Request):
        user = require_admin(studio, request)
        if not paths:
            raise gr.Error("Choose the adapter's .zip or files first.")
        incoming = [IncomingFile(name=Path(p).name, path=Path(p)) for p in paths]
        row = studio.adapters.import_adapter(incoming, base_model, name, user=user)
        notes = "".join(f"\n- {w}" for w in row["meta"].get("warnings", []))
        return f"Imported **{row['name']}** as `{row['id']}`.{notes}", None, *load(row["id"])

    def on_type(kind):
        """Show the knobs the picked combination type uses."""
        return gr.update(visible=kind in DENSITY_TYPES), gr.update(visible=kind in SIGN_TYPES)

    @shows_errors
    def on_mix(ids: list[str] | None, weight_text: str, name: str, kind: str | None,
               density_kept: float, sign_method: str, dataset_id: str | None, request: gr.Request):
        user = require_admin(studio, request)
        if not ids or len(ids) < 2:
            raise gr.Error("Pick at least two text adapters of the same base model.")
        pairs = zip(ids, parse_weights(weight_text, len(ids)), strict=True)
        options = {"combination_type": kind or "auto", "eval_dataset_id": dataset_id or None,
                   "density": density_kept if kind in DENSITY_TYPES else None,
                   "majority_sign_method": sign_method if kind in SIGN_TYPES else None}  # fmt: skip
        row = studio.adapters.mix([{"id": i, "weight": w} for i, w in pairs], name or None, user=user, **options)
        message = f"Mixed into **{row['name']}** (`{row['id']}`, {row['meta']['combination_type']})."
        return message + perplexity_table(row), *load(row["id"])

    refresh.click(load, inputs=[picker], outputs=refreshed, api_visibility="private")
    rename_btn.click(on_rename, inputs_kwargs={"adapter_id": picker, "name": new_name}, outputs=[status, *refreshed],
                     api_visibility="private")
    delete_btn.click(on_delete, inputs_kwargs={"adapter_id": picker, "confirmed": confirm},
                     outputs=[status, confirm, *refreshed], api_visibility="private")
    export_btn.click(on_export, inputs=[picker], outputs=[download, export_note], api_visibility="private")
    merge_btn.click(on_merge, inputs=[picker], outputs=[download, export_note], api_visibility="private")
    import_btn.click(on_import, inputs_kwargs={"paths": files, "base_model": base, "name": import_name},
                     outputs=[status, files, *refreshed], api_visibility="private")
    mix_type.change(on_type, inputs=[mix_type], outputs=[density, sign], api_visibility="private")
    mix_form = {"ids": mix_pick, "weight_text": weights, "name": mix_name, "kind": mix_type,
                "density_kept": density, "sign_method": sign, "dataset_id": eval_set}
    mix_btn.click(on_mix, inputs_kwargs=mix_form, outputs=[status, *refreshed], api_visibility="private")
    return load, [], refreshed


def _picked(adapter_id: str | None) -> str:
    if not adapter_id:
        raise gr.Error("Pick an adapter first.")
    return adapter_id
