"""The Training tab's parameter form: one group of widgets per job kind (built once, shown for the
chosen kind — nothing is created per click), presets that fill it, the JSON view kept in step
with it under "Advanced", the estimate and checks under it, and the chosen dataset's preview.

The form and the JSON view each update the other after an edit (a round trip); `last_edit`, set in
the browser itself on every edit, says which side a start takes when it races that update.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from studio.services import Studio
from studio.services.train_estimate import Estimate, estimate
from studio.ui import datasets_tab
from studio.ui.common import shows_errors
from studio.ui.train_fields import (
    PRESET_NAMES,
    FormField,
    chosen_params,
    defaults_of,
    form_fields,
    form_params,
    normalised,
    parse_json,
    preset_params,
    widget_values,
)

PREVIEW_ROWS = 5
PREVIEW_IMAGES = 6


@dataclass
class KindForm:
    kind: str
    config_cls: type
    fields: list[FormField]
    widgets: list[gr.components.Component]
    group: gr.Group


@dataclass
class TrainForm:
    forms: dict[str, KindForm]
    preset: gr.Radio
    params: gr.Code  # the JSON view
    json_note: gr.Markdown
    last_edit: gr.Textbox  # "form" or "json": the side edited last, set in the browser
    check: gr.Markdown
    preview_rows: gr.Dataframe | None = None
    preview_images: gr.Gallery | None = None
    all_widgets: list[gr.components.Component] = field(default_factory=list)

    def params_of(self, kind: str | None, values: dict[Any, Any]) -> dict[str, Any]:
        """The form's params for `kind` from a handler's {component: value} dict."""
        form = self.forms.get(kind or "")
        if form is None:
            return {}
        return form_params(form.fields, [values[w] for w in form.widgets])

    def start_params(self, kind: str | None, values: dict[Any, Any]) -> dict[str, Any]:
        """What a start sends: the form, or the JSON view when it was edited last (ValueError: bad JSON)."""
        return chosen_params(self.params_of(kind, values), values[self.params], values[self.last_edit])


def widget(f: FormField, elem_id: str) -> gr.components.Component:
    value = f.to_widget(f.default)
    common = {"label": f.label, "info": f.info or None, "elem_id": elem_id, "value": value}
    if f.widget in ("int", "float") and not f.boxed_number:
        return gr.Number(precision=0 if f.widget == "int" else None, **common)
    if f.widget == "slider":
        low, high, step = f.bounds or (0.0, 1.0, 0.01)
        return gr.Slider(minimum=low, maximum=high, step=step, **common)
    if f.widget == "bool":
        return gr.Checkbox(**common)
    if f.widget == "choice":
        return gr.Dropdown(choices=[(str(c), c) for c in f.choices], **common)
    return gr.Textbox(lines=2 if f.widget == "list" else 1, max_lines=8, **common)


def estimate_markdown(est: Estimate) -> str:
    """The estimate and the checks, as the form shows them under its fields."""
    lines = [f"❌ {e}" for e in est.errors]
    if not est.errors:
        steps = "unknown" if est.steps is None else f"{est.steps:,}"
        time = f"≈ {_clock(est.seconds)}" if est.seconds is not None else ""
        memory = f"≈ {_size(est.memory_bytes)}" if est.memory_bytes is not None else ""
        lines += [
            "**Estimate before starting**",
            f"- Optimizer steps: **{steps}** ({est.steps_basis})",
            f"- Time: **{time or 'unknown'}** — {est.pace_basis}" if time else f"- Time: {est.pace_basis}",
            f"- Memory (rough): **{memory}** — {est.memory_basis}" if memory else f"- Memory: {est.memory_basis}",
        ]
    lines += [f"⚠️ {w}" for w in est.warnings]
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{max(n, 1) / 2**20:.0f} MB"


def dataset_preview(studio: Studio, dataset_id: str | None) -> tuple[dict, dict]:
    """(rows table, thumbnails) of the picked dataset, as the Datasets tab draws them; hidden when none."""
    hidden = gr.update(visible=False, value=None)
    if not dataset_id:
        return hidden, hidden
    try:
        kind = studio.datasets.get(dataset_id)["kind"]
    except Exception:  # noqa: BLE001 - a stale or deleted pick: no preview
        return hidden, hidden
    if kind == "image":
        return hidden, gr.update(visible=True, value=datasets_tab.image_preview(studio, dataset_id)[:PREVIEW_IMAGES])
    if kind == "audio":
        rows = {"headers": ["clip"], "data": [[c] for _, c in datasets_tab.audio_preview(studio, dataset_id)]}
    else:
        rows = datasets_tab.text_preview(studio, dataset_id)
    rows = {"headers": rows["headers"], "data": rows["data"][:PREVIEW_ROWS]}
    return gr.update(visible=True, value=rows), hidden


# -- building ------------------------------------------------------------------------------------
def build_preview() -> tuple[gr.Dataframe, gr.Gallery]:
    """The dataset preview, where the caller places it (next to the dataset picker); give it to `build`."""
    with gr.Accordion("Dataset preview", open=True):
        rows = gr.Dataframe(interactive=False, visible=False, wrap=True, max_height=220,
                            elem_id="train-dataset-rows")
        images = gr.Gallery(columns=PREVIEW_IMAGES, height=120, visible=False,
                            elem_id="train-dataset-images", show_label=False)
    return rows, images


def build(kinds: dict[str, dict[str, Any]], first_kind: str | None, config_classes: dict[str, type],
          preview: tuple[gr.Dataframe, gr.Gallery] | None = None) -> TrainForm:
    """The preset radio, one form group per kind, and the JSON view in an "Advanced" accordion."""
    preset = gr.Radio(list(PRESET_NAMES), value="balanced", label="Preset",
                      info="quick: a first look in minutes · balanced: the trainer's defaults · quality: longer",
                      elem_id="train-preset")
    forms: dict[str, KindForm] = {}
    for kind, cls in config_classes.items():
        fields = form_fields(kind, cls)
        widgets: dict[str, gr.components.Component] = {}
        with gr.Group(visible=kind == first_kind, elem_id=f"train-form-{kind}") as group:
            for f in fields:
                if f.basic:
                    widgets[f.name] = widget(f, f"train-f-{kind}-{f.name}")
            with gr.Accordion("Advanced", open=False, elem_id=f"train-form-{kind}-advanced"):
                for f in fields:
                    if not f.basic:
                        widgets[f.name] = widget(f, f"train-f-{kind}-{f.name}")
        forms[kind] = KindForm(kind, cls, fields, [widgets[f.name] for f in fields], group)
    check = gr.Markdown(elem_id="train-check")
    first_defaults = kinds[first_kind]["defaults"] if first_kind else {}
    with gr.Accordion("Advanced: parameters as JSON", open=False, elem_id="train-json"):
        params = gr.Code(label="Parameters (JSON; unknown names are refused; kept in step with the form)",
                         language="json", value=json.dumps(first_defaults, indent=2), lines=10,
                         interactive=True, elem_id="train-params")
        json_note = gr.Markdown(elem_id="train-json-note")
    last_edit = gr.Textbox("form", visible="hidden", elem_id="train-last-edit")
    form = TrainForm(forms, preset, params, json_note, last_edit, check, *(preview or (None, None)))
    form.all_widgets = [w for f in forms.values() for w in f.widgets]
    return form


# -- wiring --------------------------------------------------------------------------------------
def wire(form: TrainForm, studio: Studio, kind: gr.Dropdown, dataset: gr.Dropdown, base_model: gr.Dropdown) -> None:
    def check_of(kind_name: str | None, params: dict[str, Any], dataset_id: str | None, base: str | None) -> str:
        if kind_name not in form.forms:
            return ""
        return estimate_markdown(estimate(studio, kind_name, params, dataset_id or None, (base or "").strip() or None))

    def fill(kind_name: str | None, params: dict[str, Any]) -> list[Any]:
        """Updates for every form widget: the kind's widgets show `params`, the others are left alone."""
        out: list[Any] = []
        for name, f in form.forms.items():
            out += widget_values(f.fields, params) if name == kind_name else [gr.skip()] * len(f.widgets)
        return out

    @shows_errors
    def on_kind(values: dict[Any, Any]):
        kind_name = values[kind]
        f = form.forms.get(kind_name or "")
        params = defaults_of(f.fields) if f else {}
        groups = [gr.update(visible=name == kind_name) for name in form.forms]
        return [*groups, *fill(kind_name, params), json.dumps(params, indent=2), "balanced", "",
                check_of(kind_name, params, values[dataset], values[base_model])]

    @shows_errors
    def on_preset(values: dict[Any, Any]):
        kind_name = values[kind]
        f = form.forms.get(kind_name or "")
        params = preset_params(kind_name, f.fields, values[form.preset]) if f else {}
        return [*fill(kind_name, params), json.dumps(params, indent=2), "",
                check_of(kind_name, params, values[dataset], values[base_model])]

    @shows_errors
    def on_form(values: dict[Any, Any]):
        params = form.params_of(values[kind], values)
        return (json.dumps(params, indent=2), "",
                check_of(values[kind], params, values[dataset], values[base_model]))

    @shows_errors
    def on_json(values: dict[Any, Any]):
        kind_name = values[kind]
        f = form.forms.get(kind_name or "")
        skip = [gr.skip()] * len(form.all_widgets)
        if f is None:
            return [*skip, "", gr.skip()]
        try:
            params = normalised(f.config_cls, parse_json(values[form.params]))
        except ValueError as exc:  # an inline message while the user types; the form keeps its values
            return [*skip, f"❌ {exc}", gr.skip()]
        return [*fill(kind_name, params), "✅ The form shows these parameters.",
                check_of(kind_name, params, values[dataset], values[base_model])]

    @shows_errors
    def on_context(values: dict[Any, Any]):
        try:  # the JSON view follows the form, so it stands for it here (fewer inputs: a faster event)
            params = parse_json(values[form.params])
        except ValueError as exc:
            return f"❌ {exc}"
        return check_of(values[kind], params, values[dataset], values[base_model])

    @shows_errors
    def on_dataset(dataset_id: str | None):
        return dataset_preview(studio, dataset_id)

    # Each event sends only what it reads: a hundred widget values per event slow the page down.
    context = {kind, dataset, base_model, form.preset, form.params}
    groups = [f.group for f in form.forms.values()]
    to_json = [form.params, form.json_note, form.check]
    kind.change(on_kind, inputs=context, outputs=[*groups, *form.all_widgets, form.params, form.preset,
                                                     form.json_note, form.check],
                show_progress="hidden", api_visibility="private")
    form.preset.input(on_preset, inputs=context, outputs=[*form.all_widgets, *to_json],
                      show_progress="hidden", api_visibility="private")
    form_edits = [w.input for w in form.all_widgets] + [form.preset.input]
    for f in form.forms.values():
        gr.on([w.input for w in f.widgets], on_form, inputs={*context, *f.widgets}, outputs=to_json,
              trigger_mode="always_last", show_progress="hidden", api_visibility="private")
    form.params.input(on_json, inputs=context, outputs=[*form.all_widgets, form.json_note, form.check],
                      trigger_mode="always_last", show_progress="hidden", api_visibility="private")
    # Which side was edited last, marked in the browser at once (no round trip for a click to outrun).
    gr.on(form_edits, None, outputs=[form.last_edit], js="() => 'form'", api_visibility="private")
    form.params.input(None, outputs=[form.last_edit], js="() => 'json'", api_visibility="private")
    gr.on([dataset.change, base_model.change], on_context, inputs=context, outputs=[form.check],
          trigger_mode="always_last", show_progress="hidden", api_visibility="private")
    if form.preview_rows is not None and form.preview_images is not None:
        dataset.change(on_dataset, inputs=[dataset], outputs=[form.preview_rows, form.preview_images],
                       show_progress="hidden", api_visibility="private")
