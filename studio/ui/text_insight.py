"""The Text tab's insight tools: sampler presets, the "Show token probabilities" option, and "Score a
text" (its perplexity under the chosen model and adapter). The tab places them; the work is the
text service's, as over REST (`logprobs` in POST /text/generate, POST /text/perplexity)."""

from __future__ import annotations

import gradio as gr

from studio.services import Studio
from studio.services.text import TextScoreParams
from studio.ui.common import shows_errors, user_for

CUSTOM = "Custom"
# name → the sampling sliders it sets (temperature 0 is greedy: top-p and top-k then do nothing)
PRESETS: dict[str, dict[str, float]] = {
    "Precise": {"temperature": 0.3, "top_p": 0.9, "top_k": 40, "repetition_penalty": 1.1},
    "Balanced": {"temperature": 0.8, "top_p": 0.95, "top_k": 50, "repetition_penalty": 1.0},
    "Creative": {"temperature": 1.1, "top_p": 0.98, "top_k": 100, "repetition_penalty": 1.05},
    "Deterministic": {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "repetition_penalty": 1.0},
}
PRESET_FIELDS = ("temperature", "top_p", "top_k", "repetition_penalty")


def preset_dropdown(sampling: dict) -> gr.Dropdown:
    """A preset picker that sets the sampling sliders; moving a slider by hand shows "Custom"."""
    preset = gr.Dropdown([*PRESETS, CUSTOM], value="Balanced", label="Sampler preset", elem_id="text-preset",
                         info="Precise: focused · Balanced: the default · Creative: surprising · "
                              "Deterministic: greedy, the same text every time")
    sliders = [sampling[f] for f in PRESET_FIELDS]

    def apply(name: str):
        values = PRESETS.get(name)
        return [gr.update() if values is None else values[f] for f in PRESET_FIELDS]

    preset.input(apply, inputs=[preset], outputs=sliders, api_visibility="private")
    gr.on([s.input for s in sliders], lambda: CUSTOM, outputs=[preset], api_visibility="private")
    return preset


def token_controls() -> tuple[gr.Checkbox, gr.Slider, gr.HTML]:
    """"Show token probabilities" with its k, and where the coloured tokens appear."""
    with gr.Row():
        show = gr.Checkbox(False, label="Show token probabilities", elem_id="text-show-tokens",
                           info="Colour each token by how likely the model found it; hover for alternatives")
        k = gr.Slider(1, 10, value=5, step=1, label="Alternatives per token (k)", elem_id="text-token-k")
    view = gr.HTML(elem_id="text-token-view")
    return show, k, view


def describe_score(value: dict) -> str:
    version = f"`{value['model']}`" + (f" + adapter `{value['adapter']}`" if value["adapter"] else "")
    note = (f"Perplexity **{value['perplexity']:.2f}** over {value['tokens']} tokens under {version} "
            f"(mean log-probability {value['mean_logprob']:.3f} per token · {value['elapsed_s']:.2f} s). "
            "Lower means the model finds the text less surprising.")
    if value["starter"]:
        note += " *Starter model: compare texts with it, not with other models.*"
    return note


def score_panel(studio: Studio, model: gr.Dropdown, adapter: gr.Dropdown, no_adapter: str) -> None:
    """The "Score a text" accordion: a pasted text's perplexity under the chosen model and adapter."""
    with gr.Accordion("Score a text (perplexity)", open=False, elem_id="text-score-panel"):
        text = gr.Textbox(label="Text to score", lines=4, placeholder="Paste a text…", elem_id="text-score-input")
        button = gr.Button("Score", elem_id="text-score")
        result = gr.Markdown(elem_id="text-score-result")

    @shows_errors
    def run_score(request: gr.Request, text: str, model: str | None, adapter: str | None) -> str:
        user = user_for(studio, request)
        try:
            params = TextScoreParams(text=text or "", model=model or None,
                                     adapter=None if adapter in (None, "", no_adapter) else adapter)
        except ValueError as exc:
            raise gr.Error(f"Paste some text to score (at most 100,000 characters): {exc}") from exc
        return describe_score(studio.text.perplexity(params, user=user))

    button.click(run_score, inputs_kwargs={"text": text, "model": model, "adapter": adapter}, outputs=[result],
                 concurrency_id="text", api_visibility="private")
