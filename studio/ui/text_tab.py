"""Text tab: prompt, sampling controls, model/adapter pickers, streamed outputs with thumbs."""

from __future__ import annotations

import queue
import threading

import gradio as gr

from studio.services import Studio
from studio.services.errors import StudioError
from studio.services.text import TextGenerateParams
from studio.ui.common import ui_error, user_for

SLOTS = 8  # output boxes shown; num_outputs is capped to this in the page
NO_ADAPTER = "(none)"


def model_choices(studio: Studio) -> tuple[list[str], str | None]:
    listing = studio.models.list_models()["text"]
    default = next((m["id"] for m in listing if m["default"]), None)
    return [m["id"] for m in listing], default


def adapter_choices(studio: Studio, model: str | None) -> list[str]:
    adapters = studio.models.list_models()["text_adapters"]
    return [NO_ADAPTER] + [a["id"] for a in adapters if model is None or a["base_model"] == model]


def build(studio: Studio):
    stop_state = gr.State(None)  # this session's stop event
    ids_state = gr.State([])  # output ids of this session's last generation
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Prompt", lines=4, placeholder="Once upon a time", elem_id="text-prompt")
            with gr.Row():
                generate = gr.Button("Generate", variant="primary", elem_id="text-generate")
                stop = gr.Button("Stop", variant="stop", elem_id="text-stop")
            status = gr.Markdown(elem_id="text-status")
        with gr.Column(scale=2):
            model = gr.Dropdown(label="Model", choices=[], allow_custom_value=False, elem_id="text-model")
            adapter = gr.Dropdown(label="Adapter", choices=[NO_ADAPTER], value=NO_ADAPTER, elem_id="text-adapter")
            with gr.Accordion("Sampling", open=False):
                max_new_tokens = gr.Slider(1, 1024, value=64, step=1, label="Max new tokens")
                temperature = gr.Slider(0, 2, value=0.8, step=0.05, label="Temperature (0 = greedy)")
                top_p = gr.Slider(0.05, 1, value=0.95, step=0.05, label="Top-p")
                top_k = gr.Slider(0, 200, value=50, step=1, label="Top-k (0 = off)")
                repetition_penalty = gr.Slider(0.5, 2, value=1.0, step=0.05, label="Repetition penalty")
                num_outputs = gr.Slider(1, SLOTS, value=1, step=1, label="Variations")
                seed = gr.Number(label="Seed (-1 = random)", value=-1, precision=0, minimum=-1, elem_id="text-seed")
                stop_strings = gr.Textbox(label="Stop sequences (one per line)", lines=2)

    boxes, ups, downs, rated = [], [], [], []
    for i in range(SLOTS):
        with gr.Group(visible=i == 0) as group:
            box = gr.Textbox(label=f"Output {i + 1}", lines=4, interactive=False, elem_id=f"text-output-{i}")
            with gr.Row():
                up = gr.Button("👍 Good", size="sm", elem_id=f"text-up-{i}", min_width=60)
                down = gr.Button("👎 Bad", size="sm", elem_id=f"text-down-{i}", min_width=60)
                note = gr.Markdown(elem_id=f"text-rated-{i}")
        boxes.append((group, box))
        ups.append(up)
        downs.append(down)
        rated.append(note)

    with gr.Accordion("Compare base vs adapter (same prompt and seed)", open=False):
        compare = gr.Button("Compare", elem_id="text-compare")
        with gr.Row():
            base_out = gr.Textbox(label="Base model", lines=5, interactive=False)
            adapter_out = gr.Textbox(label="With adapter", lines=5, interactive=False)

    groups = [g for g, _ in boxes]
    texts = [b for _, b in boxes]

    def refresh_models(current):
        choices, default = model_choices(studio)
        value = current if current in choices else default
        return gr.update(choices=choices, value=value), gr.update(choices=adapter_choices(studio, value))

    def on_model(m):
        return gr.update(choices=adapter_choices(studio, m), value=NO_ADAPTER)

    def params_from(p, m, a, mnt, temp, tp, tk, rp, n, s, stops) -> TextGenerateParams:
        try:
            return TextGenerateParams(
                prompt=p or "", model=m or None, adapter=None if a in (None, NO_ADAPTER) else a,
                max_new_tokens=int(mnt), temperature=float(temp), top_p=float(tp), top_k=int(tk),
                repetition_penalty=float(rp), num_outputs=int(n), seed=None if s in (None, "") or int(s) < 0 else int(s),
                stop=[line for line in (stops or "").splitlines() if line],
            )
        except Exception as exc:  # pydantic: show the field, not a trace
            raise gr.Error(f"Check the form: {exc}") from exc

    def run(p, m, a, mnt, temp, tp, tk, rp, n, s, stops, request: gr.Request):
        user = user_for(studio, request)
        params = params_from(p, m, a, mnt, temp, tp, tk, rp, n, s, stops)
        try:
            studio.text.check(params, user=user)  # a form over the limits fails before "Generating…"
        except StudioError as exc:
            raise ui_error(exc) from exc
        n = params.num_outputs
        stop_event = threading.Event()
        updates: queue.Queue = queue.Queue()
        result: dict = {}

        def work():
            try:
                result["value"] = studio.text.generate(params, user=user, stop_event=stop_event,
                                                       on_text=lambda t: updates.put(t))
            except Exception as exc:
                result["error"] = exc
            finally:
                updates.put(None)

        shown = [gr.update(visible=i < n) for i in range(SLOTS)]
        loading = "" if studio.text.is_loaded(params.model) else "Loading model… "
        yield [*shown, *[gr.update(value="") for _ in range(SLOTS)], *["" for _ in range(SLOTS)],
               f"{loading}Generating…", stop_event, []]
        threading.Thread(target=work, daemon=True).start()
        while True:
            item = updates.get()
            if item is None:
                break
            while not updates.empty():  # skip to the newest text
                nxt = updates.get()
                if nxt is None:
                    updates.put(None)
                    break
                item = nxt
            yield [*shown, *[item[i] if i < len(item) else "" for i in range(SLOTS)], *["" for _ in range(SLOTS)],
                   "Generating…", stop_event, []]
        if "error" in result:
            exc = result["error"]
            raise ui_error(exc) if isinstance(exc, StudioError) else ui_error(exc)
        value = result["value"]
        outs = value["outputs"]
        note = f"{len(outs)} output(s) from `{value['model']}`"
        note += f" + adapter `{value['adapter']}`" if value["adapter"] else ""
        note += f" · seed {outs[0]['seed']} · {value['elapsed_s']:.2f} s"
        if value["stopped"]:
            note += " · stopped"
        if value["starter"]:
            note += " · *starter model: random weights, expect gibberish until trained*"
        for w in value["warnings"]:
            note += f"\n\n⚠️ {w}"
        yield [*shown, *[outs[i]["text"] if i < len(outs) else "" for i in range(SLOTS)],
               *["" for _ in range(SLOTS)], note, None, [o["id"] for o in outs]]

    inputs = [prompt, model, adapter, max_new_tokens, temperature, top_p, top_k, repetition_penalty,
              num_outputs, seed, stop_strings]
    outputs = [*groups, *texts, *rated, status, stop_state, ids_state]
    gr.on([generate.click, prompt.submit], run, inputs=inputs, outputs=outputs, concurrency_id="text")

    def do_stop(event):
        if event is not None:
            event.set()
        return "Stopping…"

    stop.click(do_stop, inputs=[stop_state], outputs=[status], queue=False)

    def make_rate(i: int, rating: str):
        def rate(ids, request: gr.Request):
            if i >= len(ids):
                raise gr.Error("Generate something first.")
            user = user_for(studio, request)
            try:
                studio.feedback.rate(ids[i], rating, user.name)
            except StudioError as exc:
                raise ui_error(exc) from exc
            return f"Saved {'👍' if rating == 'up' else '👎'}"

        return rate

    for i in range(SLOTS):
        ups[i].click(make_rate(i, "up"), inputs=[ids_state], outputs=[rated[i]])
        downs[i].click(make_rate(i, "down"), inputs=[ids_state], outputs=[rated[i]])

    def run_compare(p, m, a, mnt, temp, tp, tk, rp, n, s, stops, request: gr.Request):
        user = user_for(studio, request)
        params = params_from(p, m, a, mnt, temp, tp, tk, rp, 1, s, stops)
        if params.adapter is None:
            raise gr.Error("Pick an adapter to compare against its base model.")
        if params.seed is None:
            params.seed = 1234
        try:
            with_adapter = studio.text.generate(params, user=user)
            base = studio.text.generate(params.model_copy(update={"adapter": None, "model": with_adapter["model"]}),
                                        user=user)
        except StudioError as exc:
            raise ui_error(exc) from exc
        return base["outputs"][0]["text"], with_adapter["outputs"][0]["text"]

    compare.click(run_compare, inputs=inputs, outputs=[base_out, adapter_out], concurrency_id="text")
    model.change(on_model, inputs=[model], outputs=[adapter])
    return refresh_models, [model], [model, adapter]
