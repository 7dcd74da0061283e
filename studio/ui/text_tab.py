"""Text tab: a completion view (prompt, streamed outputs with thumbs, a compare of any two versions) and a
chat view (`chat_panel`), side by side with one set of model, adapter and sampling controls; and the
`/generate_text` endpoint for Gradio API clients."""

from __future__ import annotations

import threading

import gradio as gr

from studio.services import Studio
from studio.services.text import TextGenerateParams
from studio.services.versions import parse_version, versions_in
from studio.ui import chat_panel, text_insight, token_view
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
from studio.ui.live import keep_or

SLOTS = 8  # output boxes shown; num_outputs is capped to this in the page
NO_ADAPTER = "(none)"


DEFAULT = ""  # the model choice that pins nothing: the studio's default version (or a live experiment's arm)


def model_choices(studio: Studio) -> tuple[list[tuple[str, str]], str]:
    """("Default · <id>", "") first — leaving the version to the studio, so a promoted version or a
    running experiment serves the page too — then every model by id."""
    listing = studio.models.list_models()["text"]
    titles = studio.models.version_titles()  # trained versions by name, not id
    default = next((m["id"] for m in listing if m["default"]), None)
    shown = titles.get(default, default) if default else None
    return [(f"Default · {shown}" if shown else "Default", DEFAULT)] + \
        [(titles.get(m["id"], m["id"]), m["id"]) for m in listing], DEFAULT


def version_choices(studio: Studio) -> list[tuple[str, str]]:
    """(title, version label) of every text version — each model, and each adapter on its base — for
    the compare pickers: `name · kind · steps · date`, an adapter as `… on <base>`."""
    titles = studio.models.version_titles()
    out = []
    for label in versions_in(studio.models.list_models(), "text"):
        model, adapter = parse_version(label)
        shown = titles.get(model, model)
        out.append((f"{titles.get(adapter, adapter)} on {shown}" if adapter else shown, label))
    return out


def compare_defaults(studio: Studio, choices: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    """The newest trained version and its base (what a creator wants to see side by side after a
    fine-tune), else the first two versions."""
    newest = studio.models.newest_trained("text")
    values = [v for _, v in choices]
    if newest and all(v in values for v in newest):
        return newest[1], newest[0]
    return (values[0] if values else None), (values[1] if len(values) > 1 else None)


def reward_choices(studio: Studio) -> list[tuple[str, str]]:
    return [("Off", "")] + [(f"{r['name']} · {r['id']}", r["id"]) for r in studio.models.list_models()["reward_models"]]


def adapter_choices(studio: Studio, model: str | None) -> list[tuple[str, str]]:
    """(`name · kind · steps · date`, id) of the adapters on `model` (all when None)."""
    adapters = studio.models.list_models()["text_adapters"]
    titles = studio.models.version_titles()
    return [(NO_ADAPTER, NO_ADAPTER)] + [(titles.get(a["id"], a["id"]), a["id"]) for a in adapters
                                         if model is None or a["base_model"] == model]


def text_params(*, prompt: str | None = "", model: str | None = None, adapter: str | None = None,
                max_new_tokens=64, temperature=0.8, top_p=0.95, top_k=50, repetition_penalty=1.0,
                num_outputs=1, seed=None, stop: str | None = "", reward_model: str | None = "",
                best_of=4) -> TextGenerateParams:
    """The form's values, as the page and API clients send them, as the service's parameters."""
    try:
        return TextGenerateParams(
            prompt=prompt or "", model=model or None, adapter=None if adapter in (None, "", NO_ADAPTER) else adapter,
            max_new_tokens=int(max_new_tokens), temperature=float(temperature), top_p=float(top_p),
            top_k=int(top_k), repetition_penalty=float(repetition_penalty), num_outputs=int(num_outputs),
            seed=None if seed in (None, "") or int(seed) < 0 else int(seed),
            stop=[line for line in (stop or "").splitlines() if line],
            best_of=int(best_of) if reward_model else None, reward_model=reward_model or None,
        )
    except Exception as exc:  # pydantic or a None from an API client: show the field, not a trace
        raise gr.Error(f"Check the form: {exc}") from exc


def describe(value: dict) -> str:
    """The status line under a finished generation."""
    outs = value["outputs"]
    note = f"{len(outs)} output(s) from `{value['model']}`"
    note += f" + adapter `{value['adapter']}`" if value["adapter"] else ""
    note += f" · seed {outs[0]['seed']} · {value['elapsed_s']:.2f} s"
    if len(outs) > 1 and not value.get("reward_model"):
        note += (f" · the {len(outs)} outputs are sampled together: seed {outs[0]['seed']} with {len(outs)} "
                 "outputs gives this set again (one output alone with that seed differs)")
    if value.get("reward_model"):
        scores = ", ".join(f"{o['score']:.2f}" for o in outs)
        note += f" · best first, as `{value['reward_model']}` judged them (scores {scores})"
    if value["stopped"]:
        note += " · stopped"
    if value.get("random_weights"):
        note += " · *starter model: random weights, expect gibberish until trained*"
    for w in value["warnings"]:
        note += f"\n\n⚠️ {w}"
    return note


def build(studio: Studio):
    stop_state = gr.State(None)  # this session's stop event
    ids_state = gr.State([])  # output ids of this session's last generation
    # The controls sit in the right-hand column but both views read them, so they are made first
    # and placed (rendered) there below.
    model = share("text.model", gr.Dropdown(label="Model", choices=[], render=False, elem_id="text-model"))
    adapter = gr.Dropdown(label="Adapter", choices=[NO_ADAPTER], value=NO_ADAPTER, render=False,
                          elem_id="text-adapter")
    share("text.adapter", adapter)
    sampling = {
        "max_new_tokens": visitor_cap(gr.Slider(1, 1024, value=64, step=1, label="Max new tokens", render=False,
                                                elem_id="text-max-new-tokens"), "max_new_tokens"),
        "temperature": gr.Slider(0, 2, value=0.8, step=0.05, label="Temperature (0 = greedy)", render=False),
        "top_p": gr.Slider(0.05, 1, value=0.95, step=0.05, label="Top-p", render=False),
        "top_k": gr.Slider(0, 200, value=50, step=1, label="Top-k (0 = off)", render=False),
        "repetition_penalty": gr.Slider(0.5, 2, value=1.0, step=0.05, label="Repetition penalty", render=False),
        "seed": gr.Number(label="Seed (-1 = random)", value=-1, precision=0, minimum=-1, render=False,
                          elem_id="text-seed"),
    }
    num_outputs = visitor_cap(gr.Slider(1, SLOTS, value=1, step=1, label="Variations (completion)", render=False,
                                        elem_id="text-num-outputs"), "text_outputs")
    judge = gr.Dropdown([("Off", "")], value="", label="Judge: a reward model (completion)", render=False,
                        elem_id="text-judge")
    best_of = gr.Slider(2, SLOTS, value=4, step=1, label="Candidates it picks from", render=False)
    stop_strings = gr.Textbox("", label="Stop sequences, one per line (completion)", lines=2, render=False)
    api_model = api_id_input()
    api_adapter = api_id_input("Adapter id (empty: none)")

    with gr.Row():
        with gr.Column(scale=3):
            with gr.Tabs(elem_id="text-views"):
                with gr.Tab("Complete", id="complete", elem_id="text-view-complete"):
                    prompt = gr.Textbox(label="Prompt", lines=4, placeholder="Once upon a time", elem_id="text-prompt")
                    with gr.Row():
                        generate = gr.Button("Generate", variant="primary", elem_id="text-generate")
                        stop = gr.Button("Stop", variant="stop", elem_id="text-stop")
                    status = gr.Markdown(elem_id="text-status")
                    groups, texts, ups, downs, rated = [], [], [], [], []
                    for i in range(SLOTS):
                        with gr.Group(visible=i == 0) as group:
                            texts.append(gr.Textbox(label=f"Output {i + 1}", lines=4, interactive=False,
                                                    elem_id=f"text-output-{i}"))
                            with gr.Row():
                                ups.append(gr.Button("👍 Good", size="sm", elem_id=f"text-up-{i}", min_width=60))
                                downs.append(gr.Button("👎 Bad", size="sm", elem_id=f"text-down-{i}",
                                                       min_width=60))
                                rated.append(gr.Markdown(elem_id=f"text-rated-{i}"))
                        groups.append(group)
                    show_tokens, token_k, token_html = text_insight.token_controls()
                    text_insight.score_panel(studio, model, adapter, NO_ADAPTER)
                    with gr.Accordion("Compare two versions (same prompt, seed and sampling)", open=False):
                        with gr.Row():
                            compare_a = gr.Dropdown(label="Version A", choices=[], elem_id="text-compare-a")
                            compare_b = gr.Dropdown(label="Version B", choices=[], elem_id="text-compare-b")
                        compare = gr.Button("Compare", elem_id="text-compare")
                        with gr.Row():
                            base_out = gr.Textbox(label="A", lines=5, interactive=False, elem_id="text-compare-out-a")
                            adapter_out = gr.Textbox(label="B", lines=5, interactive=False,
                                                     elem_id="text-compare-out-b")
                with gr.Tab("Chat", id="chat", elem_id="text-view-chat"):
                    chat_panel.build(studio, {"model": model, "adapter": adapter, **sampling}, params=text_params,
                                     api_inputs={"model": api_model, "adapter": api_adapter, **sampling})
        with gr.Column(scale=2):
            model.render()
            adapter.render()
            with gr.Accordion("Sampling", open=False):
                text_insight.preset_dropdown(sampling)
                for control in sampling.values():
                    control.render()
                num_outputs.render()
                stop_strings.render()
            with gr.Accordion("Best of n", open=False):
                gr.Markdown("Generate several candidates and show them best first, as a reward model trained on "
                            "your ratings judges them (train one in Training → `reward`).")
                judge.render()
                best_of.render()

    @shows_errors
    def refresh_models(current, current_a=None, current_b=None):
        choices, default = model_choices(studio)
        value = current if current in [v for _, v in choices] else default
        versions = version_choices(studio)
        a, b = compare_defaults(studio, versions)
        labels = [v for _, v in versions]
        if b not in (current_a, current_b):  # a version trained since: show it beside its base
            current_a = current_b = None
        return (gr.update(choices=choices, **keep_or(current, [v for _, v in choices], default)),
                gr.update(choices=adapter_choices(studio, value or None)),
                gr.update(choices=reward_choices(studio)),
                gr.update(choices=versions, **keep_or(current_a, labels, a)),
                gr.update(choices=versions, **keep_or(current_b, labels, b)))

    @shows_errors
    def on_model(m, current=None):
        choices = adapter_choices(studio, m or None)
        keep = current if current in [v for _, v in choices] else NO_ADAPTER  # one set with its model stays
        return gr.update(choices=choices, value=keep)

    # -- the completion view -----------------------------------------------------------------------
    form = {"prompt": prompt, "model": model, "adapter": adapter, **sampling, "num_outputs": num_outputs,
            "stop": stop_strings, "reward_model": judge, "best_of": best_of}

    @shows_errors
    def run(request: gr.Request, show_tokens: bool = False, token_k: int = 5, **values):
        user = user_for(studio, request)
        params = text_params(**values)
        if show_tokens:  # each token's probability and k alternatives, drawn below the outputs
            params = params.model_copy(update={"logprobs": int(token_k)})
        studio.text.check(params, user=user)  # a form over the limits fails before "Generating…"
        loading = "" if studio.text.is_loaded(params.model) else "Loading model… "
        stop_event = threading.Event()
        shown = [gr.update(visible=i < (params.best_of or params.num_outputs)) for i in range(SLOTS)]
        blank = ["" for _ in range(SLOTS)]

        def slots(items: list[str]) -> list[str]:
            return [items[i] if i < len(items) else "" for i in range(SLOTS)]

        yield [*shown, *blank, *blank, f"{loading}Generating…", stop_event, [], ""]
        stream = params.best_of is None  # best-of answers once every candidate is judged
        value = yield from stream_in_thread(
            lambda report: studio.text.generate(params, user=user, stop_event=stop_event,
                                                on_text=report if stream else None),
            # a partial update touches the texts only: rating notes and ids are set once, at the end
            lambda partial: [*shown, *slots(partial), *[gr.skip()] * SLOTS, "Generating…", gr.skip(), gr.skip(),
                             gr.skip()],
        )
        outs = value["outputs"]
        yield [*shown, *slots([o["text"] for o in outs]), *blank, describe(value), None, [o["id"] for o in outs],
               token_view.render(outs) if show_tokens else ""]

    outputs = [*groups, *texts, *rated, status, stop_state, ids_state, token_html]
    gr.on([generate.click, prompt.submit], run, inputs_kwargs=form | {"show_tokens": show_tokens, "token_k": token_k},
          outputs=outputs, concurrency_id="text", api_visibility="private")

    stop_button(stop, stop_state, status)

    def slot(i: int):
        return lambda ids: ids[i] if i < len(ids) else None

    for i in range(SLOTS):
        rate_buttons(studio, ups[i], downs[i], output=ids_state, note=rated[i], pick=slot(i))

    @shows_errors
    def run_compare(request: gr.Request, version_a: str | None, version_b: str | None, **values):
        """Any two text versions — base vs fine-tune, fine-tune vs fine-tune, model vs model+adapter —
        on the form's prompt, one seed and the same sampling."""
        user = user_for(studio, request)
        if not version_a or not version_b:
            raise gr.Error("Pick two versions to compare.")
        params = text_params(**(values | {"num_outputs": 1}))
        if params.seed is None:
            params.seed = 1234
        titles = dict((v, t) for t, v in version_choices(studio))
        shown = []
        for version in (version_a, version_b):
            model, adapter = parse_version(version)
            value = studio.text.generate(params.model_copy(update={"model": model, "adapter": adapter}), user=user)
            shown.append(gr.update(value=value["outputs"][0]["text"],
                                   label=f"{titles.get(version, version)} · seed {params.seed}"))
        return tuple(shown)

    compare.click(run_compare, inputs_kwargs=form | {"version_a": compare_a, "version_b": compare_b},
                  outputs=[base_out, adapter_out], concurrency_id="text", api_visibility="private")
    # (a person's pick only: a programmatic one — a loader, "Use it in its tab" — sets the adapter itself)
    model.input(on_model, inputs=[model, adapter], outputs=[adapter], api_visibility="private")

    # -- for API clients ---------------------------------------------------------------------------
    api_text = gr.Textbox(visible=False, label="Text (the first output)")
    api_result = gr.JSON(visible=False, label="Result (as POST /api/v1/text/generate answers)")

    @shows_errors
    def generate_text(request: gr.Request, **values):
        """Generate text as the Complete view does (same limits and queue), streaming the first output
        while it grows. Returns the first output's text and the whole answer: every output with its id
        (rate it with /rate), seed and finish reason, the model and adapter used, and any warnings."""
        user = user_for(studio, request)
        params = text_params(**values)
        value = yield from stream_in_thread(
            lambda report: studio.text.generate(params, user=user, on_text=report),
            lambda partial: (partial[0] if partial else "", None),
        )
        yield value["outputs"][0]["text"], value

    api_endpoint(generate_text, api_name="generate_text", concurrency_id="text",
                 inputs=form | {"model": api_model, "adapter": api_adapter}, outputs=[api_text, api_result])
    return refresh_models, [model, compare_a, compare_b], [model, adapter, judge, compare_a, compare_b]
