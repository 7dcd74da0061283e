"""Datasets tab: upload a dataset, see the library, inspect one (stats, warnings, preview), preview
image augmentations, delete. Thin: every check and every number comes from `DatasetService`."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from engines.augment import AUGMENTATIONS
from studio.services import Studio
from studio.services.datasets import IncomingFile
from studio.services.errors import StudioError
from studio.ui.common import require_admin, shows_errors

AUDIO_SLOTS = 4  # audio players shown for an audio dataset's first clips
CELL_CHARS = 300  # text preview cells are cut to this many characters
HEADERS = ["name", "kind", "items", "created", "id"]


# -- what the events show (plain functions: the tests call them without a browser) ------------------
def library_rows(studio: Studio) -> list[list]:
    return [
        [d["name"], d["kind"], d["num_items"], d["created_at"][:16].replace("T", " "), d["id"]]
        for d in studio.datasets.list()
    ]


def dataset_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(f"{d['name']} ({d['kind']}, {d['num_items']:,} items)", d["id"]) for d in studio.datasets.list()]


def upload(
    studio: Studio, files: list[str] | None, kind: str, name: str, dedupe: bool, min_chars: float | None
) -> tuple[str, str | None]:
    """(status markdown, new dataset id or None)."""
    incoming = [IncomingFile(name=Path(f).name, path=Path(f)) for f in (files or [])]
    try:
        summary = studio.datasets.create(
            incoming, kind, name or "", dedupe=bool(dedupe), min_chars=int(min_chars or 0)
        )
    except StudioError as exc:
        return f"❌ **Upload refused.** {exc.message}", None
    lines = [f"✅ Uploaded **{summary['name']}**: {summary['num_items']:,} {summary['kind']} items."]
    lines += [f"- ⚠️ {w}" for w in summary["warnings"]]
    return "\n".join(lines), summary["id"]


def describe(studio: Studio, dataset_id: str) -> str:
    d = studio.datasets.get(dataset_id)
    lines = [
        f"### {d['name']}",
        f"**{d['kind']}** · **{d['num_items']:,} items** · created {d['created_at'][:19]} · id `{d['id']}`",
        "",
        "**Stats**",
    ]
    lines += [f"- {key.replace('_', ' ')}: {value}" for key, value in d["stats"].items()]
    if d["warnings"]:
        lines += ["", "**Warnings**"] + [f"- ⚠️ {w}" for w in d["warnings"]]
    return "\n".join(lines)


def text_preview(studio: Studio, dataset_id: str) -> dict:
    """The first rows as a Dataframe value: {"headers": [...], "data": [[...], ...]}."""
    rows = studio.datasets.get(dataset_id)["preview"]
    headers = list(rows[0]) if rows else ["text"]
    return {"headers": headers, "data": [[_cut(row[h]) for h in headers] for row in rows]}


def image_preview(studio: Studio, dataset_id: str) -> list[tuple[str, str]]:
    items = studio.datasets.get(dataset_id)["preview"]
    return [
        (str(studio.datasets.item_path(dataset_id, it["index"])), _cut(it["text"]) or f"#{it['index']}")
        for it in items
    ]


def audio_preview(studio: Studio, dataset_id: str) -> list[tuple[str, str]]:
    items = studio.datasets.get(dataset_id)["preview"][:AUDIO_SLOTS]
    return [
        (
            str(studio.datasets.item_path(dataset_id, it["index"])),
            f"#{it['index']} · {it['duration_s']} s · {_cut(it['text'], 80)}" + (" · ⚠️" if it.get("issues") else ""),
        )
        for it in items
    ]


def audio_rows(studio: Studio, dataset_id: str) -> dict:
    """The first clips as training will hear them: duration, transcript and what is wrong with each."""
    rows = studio.datasets.get(dataset_id)["preview"]
    return {
        "headers": ["#", "seconds", "transcript", "issues"],
        "data": [[it["index"], it["duration_s"], _cut(it["text"], 60), "; ".join(it.get("issues") or []) or "—"]
                 for it in rows],
    }


def delete(studio: Studio, dataset_id: str | None, confirmed: bool) -> str:
    if not dataset_id:
        return "Pick a dataset first."
    if not confirmed:
        return "Tick **Yes, delete it** to confirm; a deleted dataset cannot be brought back."
    try:
        studio.datasets.delete(dataset_id)
    except StudioError as exc:
        return f"❌ {exc.message}"
    return f"🗑️ Deleted `{dataset_id}`."


def _cut(text: str, limit: int = CELL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the tab ---------------------------------------------------------------------------------------
def build(studio: Studio):
    """Returns (loader, inputs, outputs): the shell fills the library when a page opens."""
    gr.Markdown(
        "Upload data to fine-tune on. Everything is checked now, so training never trips over a "
        "bad file. Text: .txt, .jsonl, .json, .csv · images (+ captions) · audio: a .zip of "
        ".wav/.flac with metadata.csv (`file_name|transcript`)."
    )
    with gr.Row():
        with gr.Column(scale=2):
            files = gr.File(label="Files", file_count="multiple", elem_id="datasets-files")
            kind = gr.Radio(["text", "image", "audio"], value="text", label="Kind", elem_id="datasets-kind")
            name = gr.Textbox(label="Name", max_length=100, placeholder="my-stories", elem_id="datasets-name")
            with gr.Row() as text_options:
                dedupe = gr.Checkbox(label="Remove exact duplicates", value=False, elem_id="datasets-dedupe")
                min_chars = gr.Number(
                    label="Drop rows shorter than (characters)",
                    value=0,
                    minimum=0,
                    precision=0,
                    elem_id="datasets-min-chars",
                )
            upload_button = gr.Button("Upload", variant="primary", elem_id="datasets-upload")
            status = gr.Markdown(elem_id="datasets-status")
        with gr.Column(scale=3):
            table = gr.Dataframe(
                headers=HEADERS,
                datatype=["str", "str", "number", "str", "str"],
                interactive=False,
                label="Library",
                elem_id="datasets-table",
            )
            refresh = gr.Button("Refresh", size="sm", elem_id="datasets-refresh")

    picker = gr.Dropdown(label="Dataset", choices=[], value=None, elem_id="datasets-picker")
    details = gr.Markdown(elem_id="datasets-details")
    rows = gr.Dataframe(
        label="First rows", interactive=False, visible=False, wrap=True, elem_id="datasets-rows"
    )
    gallery = gr.Gallery(
        label="First images", columns=6, height="auto", visible=False, elem_id="datasets-gallery"
    )
    players = [
        gr.Audio(type="filepath", interactive=False, visible=False, elem_id=f"datasets-audio-{i}")
        for i in range(AUDIO_SLOTS)
    ]
    with gr.Group(visible=False) as augment_group:
        augment = gr.CheckboxGroup(
            list(AUGMENTATIONS), value=["flip", "crop"], label="Augmentations", elem_id="datasets-augment"
        )
        augment_button = gr.Button("Preview augmentations", size="sm", elem_id="datasets-augment-preview")
        augment_gallery = gr.Gallery(
            label="What training sees", columns=8, height="auto", elem_id="datasets-augment-gallery"
        )
    with gr.Row():
        confirm = gr.Checkbox(label="Yes, delete it", value=False, elem_id="datasets-confirm-delete")
        delete_button = gr.Button("Delete dataset", variant="stop", size="sm", elem_id="datasets-delete")
    delete_status = gr.Markdown(elem_id="datasets-delete-status")

    @shows_errors
    def load_library(selected: str | None = None):
        choices = dataset_choices(studio)
        keep = selected if any(value == selected for _, value in choices) else None
        return library_rows(studio), gr.update(choices=choices, value=keep)

    def on_kind(k: str):
        return gr.update(visible=k == "text")

    @shows_errors
    def on_upload(files: list[str] | None, kind: str, name: str, dedupe: bool,
                  min_chars: float | None, request: gr.Request):
        require_admin(studio, request)
        message, new_id = upload(studio, files, kind, name, dedupe, min_chars)
        table_rows, picker_update = load_library(new_id)
        return message, table_rows, picker_update

    @shows_errors
    def on_pick(dataset_id: str | None):
        hidden = [gr.update(visible=False, value=None) for _ in players]
        if not dataset_id:
            return ["", gr.update(visible=False), gr.update(visible=False), gr.update(visible=False), *hidden]
        summary = describe(studio, dataset_id)
        d_kind = studio.datasets.get(dataset_id)["kind"]
        text_rows = {"text": text_preview, "audio": audio_rows}.get(d_kind, lambda *_: None)(studio, dataset_id)
        images = image_preview(studio, dataset_id) if d_kind == "image" else []
        clips = audio_preview(studio, dataset_id) if d_kind == "audio" else []
        audio = [
            gr.update(
                visible=i < len(clips),
                value=clips[i][0] if i < len(clips) else None,
                label=clips[i][1] if i < len(clips) else None,
            )
            for i in range(AUDIO_SLOTS)
        ]
        return [
            summary,
            gr.update(visible=text_rows is not None, value=text_rows or None,
                      label="Clips as training hears them" if d_kind == "audio" else "First rows"),
            gr.update(visible=bool(images), value=images or None),
            gr.update(visible=d_kind == "image"),
            *audio,
        ]

    @shows_errors
    def on_augment(dataset_id: str | None, names: list[str]):
        if not dataset_id:
            raise gr.Error("Pick an image dataset first.")
        return studio.datasets.preview_augment(dataset_id, names, n=8, resolution=128, seed=0)

    @shows_errors
    def on_delete(dataset_id: str | None, confirmed: bool, request: gr.Request):
        require_admin(studio, request)
        message = delete(studio, dataset_id, confirmed)
        table_rows, picker_update = load_library(None if message.startswith("🗑️") else dataset_id)
        return message, table_rows, picker_update, False

    kind.change(on_kind, inputs=[kind], outputs=[text_options], api_visibility="private")
    upload_button.click(
        on_upload,
        inputs_kwargs={"files": files, "kind": kind, "name": name, "dedupe": dedupe, "min_chars": min_chars},
        outputs=[status, table, picker],
        api_visibility="private",
    )
    refresh.click(load_library, inputs=[picker], outputs=[table, picker], api_visibility="private")
    picker.change(
        on_pick,
        inputs=[picker],
        outputs=[details, rows, gallery, augment_group, *players],
        api_visibility="private",
    )
    augment_button.click(
        on_augment, inputs_kwargs={"dataset_id": picker, "names": augment}, outputs=[augment_gallery],
        api_visibility="private",
    )
    delete_button.click(
        on_delete,
        inputs_kwargs={"dataset_id": picker, "confirmed": confirm},
        outputs=[delete_status, table, picker, confirm],
        api_visibility="private",
    )
    return load_library, [], [table, picker]
