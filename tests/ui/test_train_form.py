"""The Training tab's parameter forms: every kind's form stands for the params its trainer accepts,
presets fill valid forms, the JSON view and the form agree, and the estimate says what it knows."""

import dataclasses
import json
from types import SimpleNamespace

import gradio as gr
import pytest

from engines.training.footprint import count_parameters, image_resolution, transformer_shape
from engines.training.kinds import TRAINERS, trainer_spec
from engines.training.params import resolve_params
from studio.services.train_estimate import check, estimate, measured_pace, training_memory
from studio.ui.train_fields import (
    PRESET_NAMES,
    chosen_params,
    defaults_of,
    form_fields,
    form_params,
    normalised,
    parse_json,
    preset_params,
    widget_values,
)
from studio.ui.train_form import build, estimate_markdown

CONFIGS = {kind: trainer_spec(kind).config_cls for kind in TRAINERS}


def fields_of(kind):
    return form_fields(kind, CONFIGS[kind])


@pytest.mark.parametrize("kind", sorted(TRAINERS))
def test_every_kinds_form_round_trips_its_defaults_to_params_the_trainer_accepts(kind):
    fields = fields_of(kind)
    params = form_params(fields, widget_values(fields, defaults_of(fields)))
    assert params == dataclasses.asdict(CONFIGS[kind]())
    assert dataclasses.asdict(resolve_params(CONFIGS[kind], params)) == params
    assert any(f.basic for f in fields) and any(not f.basic for f in fields)
    assert all(f.info for f in fields)  # every field's comment is its help text


@pytest.mark.parametrize("kind", sorted(TRAINERS))
def test_every_preset_fills_a_form_the_trainer_accepts(kind):
    fields = fields_of(kind)
    for preset in PRESET_NAMES:
        params = preset_params(kind, fields, preset)
        resolve_params(CONFIGS[kind], params)  # raises if a preset is out of range
        assert form_params(fields, widget_values(fields, params)) == params
    assert preset_params(kind, fields, "balanced") == defaults_of(fields)
    assert preset_params(kind, fields, "quick") != preset_params(kind, fields, "quality")


def test_types_become_widgets_with_the_field_comments_as_help():
    fields = {f.name: f for f in fields_of("text-lora")}
    assert fields["max_steps"].widget == "int" and fields["max_steps"].basic
    assert fields["learning_rate"].widget == "float" and fields["learning_rate"].optional
    assert "empty: 2e-4 LoRA" in fields["learning_rate"].info  # "None" reads "empty" in a form
    assert fields["method"].widget == "choice" and fields["method"].choices == ("auto", "lora", "full")
    assert fields["lora_dropout"].widget == "slider" and fields["lora_dropout"].bounds[1] < 1
    assert fields["target_modules"].widget == "list" and not fields["target_modules"].basic
    assert fields["block_size"].info == "tokens per sequence (capped at the model's context)"
    assert {f.name: f for f in fields_of("image-lora")}["gradient_checkpointing"].widget == "bool"
    assert {f.name: f for f in fields_of("export")}["quantization"].choices == ("none", "int8", "int4")


def test_empty_optional_boxes_mean_the_trainers_choice_and_lists_are_one_per_line():
    fields = fields_of("image-lora")
    values = widget_values(fields, {"learning_rate": None, "sample_prompts": ["a red circle, on blue", "a square"],
                                    "augment": ["flip", "crop"]})
    params = form_params(fields, values)
    assert values[[f.name for f in fields].index("learning_rate")] == ""  # an empty box, not a 0
    assert params["learning_rate"] is None and params["sample_prompts"] == ["a red circle, on blue", "a square"]
    assert params["augment"] == ["flip", "crop"]
    blank = form_params(fields, [("" if f.name == "sample_prompts" else v) for f, v in zip(fields, values, strict=True)])
    assert blank["sample_prompts"] is None
    lr = next(f for f in fields if f.name == "learning_rate")
    assert lr.from_widget(" 2e-4 ") == 2e-4 and lr.from_widget("fast") == "fast"  # the check then names it


def test_the_json_view_parses_or_says_why_in_one_line():
    assert parse_json('{"max_steps": 60}') == {"max_steps": 60}
    with pytest.raises(ValueError, match=r"not valid: .*line 1"):
        parse_json('{"max_steps": 60')
    with pytest.raises(ValueError, match="must be an object"):
        parse_json("[1, 2]")
    with pytest.raises(ValueError, match="Unknown parameter 'steps'"):
        normalised(CONFIGS["text-lora"], {"steps": 3})
    assert normalised(CONFIGS["text-lora"], {"max_steps": 60})["max_steps"] == 60


def test_a_start_takes_the_side_edited_last():
    form = {"max_steps": 20}
    assert chosen_params(form, '{"max_steps": 10}', "form") == form
    assert chosen_params(form, '{"max_steps": 30}', "json") == {"max_steps": 30}  # its sync may still be on the way
    with pytest.raises(ValueError, match="not valid"):
        chosen_params(form, "{oops", "json")


def test_the_checks_refuse_bad_values_and_warn_about_few_steps():
    cls = CONFIGS["selftest"]
    assert "'max_steps' must be at least 1." in check("selftest", cls, {"max_steps": 0}, None).errors
    assert "'learning_rate' must be positive." in check("selftest", cls, {"learning_rate": 0.0}, None).errors
    few = check("selftest", cls, {"max_steps": 20, "save_every": 40}, None)
    assert few.steps == 20 and not few.errors
    assert any("Only 20 optimizer steps" in w for w in few.warnings)
    assert any("only the final checkpoint" in w for w in few.warnings)
    assert check("selftest", cls, {"max_steps": 500}, None).warnings == []


def test_epoch_based_steps_count_the_dataset():
    cls = CONFIGS["text-lora"]
    unknown = check("text-lora", cls, {}, None)  # max_steps 0: from epochs, which needs the data
    assert unknown.steps is None and "pick one" in unknown.steps_basis
    dataset = {"num_items": 60, "stats": {"characters": 60 * 48}}
    est = check("text-lora", cls, {"epochs": 2.0, "batch_size": 4, "block_size": 32}, dataset)
    assert est.steps == 2 * -(-54 // 4)  # 54 rows kept after the 10 % hold-out, 4 a batch
    gan = check("gan", CONFIGS["gan"], {"epochs": 1.0, "batch_size": 16}, {"num_items": 64})
    assert gan.steps == 4


def test_the_pace_comes_from_a_past_job_of_the_same_kind_else_it_says_unknown():
    assert measured_pace([{"step": 1, "time": 100.0}, {"step": 11, "time": 105.0}]) == 0.5
    assert measured_pace([{"step": 1, "time": 100.0}]) is None
    cls = CONFIGS["selftest"]
    past = {"id": "job1", "kind": "selftest", "step": 11, "params": {"batch_size": 32}, "updated_at": "t1"}
    studio = SimpleNamespace(
        jobs=SimpleNamespace(spec=lambda k: SimpleNamespace(config_cls=cls), list=lambda limit: [past],
                             events=lambda job_id: [{"step": 1, "time": 100.0}, {"step": 11, "time": 105.0}]),
        datasets=SimpleNamespace(get=lambda d: {}), models=None)
    est = estimate(studio, "selftest", {"max_steps": 100, "batch_size": 64}, None, None)
    assert est.seconds == pytest.approx(100 * 0.5 * 2)  # twice the batch of the measured job
    assert "job1" in est.pace_basis
    studio.jobs.list = lambda limit: []
    text = estimate_markdown(estimate(studio, "selftest", {"max_steps": 100}, None, None))
    assert "unknown until the first steps" in text and "**100**" in text
    assert "❌" in estimate_markdown(estimate(studio, "selftest", {"max_steps": -1}, None, None))


def test_memory_grows_with_parameters_and_batch(tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"w": np.zeros((100, 30), dtype="float32"), "b": np.zeros(30, dtype="float32")},
              str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"n_embd": 30, "n_layer": 2}))
    assert count_parameters(tmp_path) == 3030 and transformer_shape(tmp_path) == (30, 2)
    assert count_parameters(tmp_path / "missing") is None
    cls = CONFIGS["text-lora"]
    small, _ = training_memory("text-lora", cls(batch_size=1), 10**6, (64, 2), full=True)
    large, basis = training_memory("text-lora", cls(batch_size=8), 10**6, (64, 2), full=True)
    lora, _ = training_memory("text-lora", cls(batch_size=1), 10**6, (64, 2), full=False)
    assert lora < small < large and "1.0 M parameters" in basis
    assert training_memory("text-lora", cls(), None, None, full=True)[0] is None
    for part, config in (("unet", {"sample_size": 32}), ("vae", {"block_out_channels": [32, 64]})):
        (tmp_path / part).mkdir()
        (tmp_path / part / "config.json").write_text(json.dumps(config))
    assert image_resolution(tmp_path) == 64 and image_resolution(tmp_path / "missing") is None
    image = CONFIGS["image-lora"]()
    assert "64² px" in training_memory("image-lora", image, 10**6, None, full=False, native_side=64)[1]


def test_the_form_is_built_once_per_kind_with_widgets_by_type():
    kinds = {k: {"defaults": dataclasses.asdict(c())} for k, c in CONFIGS.items()}
    with gr.Blocks():
        form = build(kinds, "text-lora", CONFIGS)
    text = form.forms["text-lora"]
    widgets = {f.name: w for f, w in zip(text.fields, text.widgets, strict=True)}
    assert isinstance(widgets["max_steps"], gr.Number) and widgets["max_steps"].elem_id == "train-f-text-lora-max_steps"
    assert isinstance(widgets["method"], gr.Dropdown) and isinstance(widgets["lora_dropout"], gr.Slider)
    assert text.group.visible and not form.forms["gan"].group.visible
    assert json.loads(form.params.value) == kinds["text-lora"]["defaults"]
    values = {w: w.value for w in form.all_widgets} | {form.params: form.params.value, form.last_edit: "form"}
    assert form.start_params("text-lora", values) == kinds["text-lora"]["defaults"]
