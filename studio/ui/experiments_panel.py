"""Feedback → Experiments (admins): start a live A/B test between versions of a kind, watch each
arm's approval and always-valid interval grow with the ratings, stop it or promote the winner."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from studio.services import Studio
from studio.services.changes import EXPERIMENTS, MODELS, RATINGS
from studio.services.experiments import Arm, ExperimentCreate
from studio.services.versions import parse_version, versions_in
from studio.ui.common import admin_only, require_admin, shows_errors, user_for
from studio.ui.live import poke

LIST_COLUMNS = ["name", "kind", "status", "rated", "winner", "promoted", "id"]


def _arm(version: str) -> Arm:
    model, adapter = parse_version(version)
    return Arm(model=model, adapter=adapter)


def _details(exp: dict) -> str:
    lines = [f"**{exp['name']}** · {exp['kind']} · {exp['status']}"
             + (" · promoted" if exp["promoted"] else "")]
    for i, arm in enumerate(exp["arms"]):
        approval = "–" if arm["approval"] is None else f"{arm['approval']:.0%}"
        lo, hi = arm["interval"]
        lines.append(f"- arm {i}: `{arm['version']}` · {arm['n']} rated · 👍 {arm['up']} · approval {approval} "
                     f"(always-valid 95 % interval {lo:.0%}–{hi:.0%}) · {arm['weight']:.0%} of traffic")
    winner = exp["decision"].get("winner")
    lines.append(f"\nDecision: {'arm ' + str(winner) if winner is not None else 'not yet'} after "
                 f"{exp['decision'].get('rated', 0)} ratings (minimum {exp['min_samples']}); "
                 f"{exp['decision'].get('rule', '')}.")
    return "\n".join(lines)


def build(studio: Studio) -> None:
    with gr.Tab("Experiments"):
        gr.Markdown("Split the traffic that pins no version between versions, tally thumbs per arm, and let an "
                    "always-valid sequential test decide — looking every minute does not fool it. Admins only.")
        with gr.Accordion("Start an experiment", open=False, elem_id="experiment-start-form") as start_form:
            with gr.Row():
                name = gr.Textbox(label="Name", placeholder="new adapter vs base")
                kind = gr.Radio(["text", "image", "speech"], value="text", label="Kind")
            arms = gr.Dropdown([], multiselect=True, label="Versions (the first is the control)",
                               allow_custom_value=True)
            with gr.Row():
                weights = gr.Textbox(label="Traffic shares (optional)", placeholder="e.g. 50, 50")
                min_samples = gr.Number(100, precision=0, minimum=0, label="Ratings before it may end")
                auto = gr.Checkbox(False, label="Promote the winner automatically")
            start = gr.Button("Start", variant="primary", elem_id="experiment-start")
        listing = gr.Dataframe(headers=LIST_COLUMNS, interactive=False, label="Experiments")
        chosen = gr.Dropdown([], label="Experiment", elem_id="experiment-pick")
        details = gr.Markdown(elem_id="experiment-details")
        curve = gr.LinePlot(x="ratings", y="approval", color="arm", title="Approval as ratings come in",
                            y_lim=[0, 1], height=240)
        with gr.Row():
            stop = gr.Button("Stop", size="sm", elem_id="experiment-stop")
            promote = gr.Button("Promote the winner", size="sm", variant="primary", elem_id="experiment-promote")
        message = gr.Markdown()
        admin_only(studio, start_form, stop, promote)
        poked = poke()  # live while the page is open (studio/ui/live.py)

    @shows_errors
    def on_kind(k, request: gr.Request):
        if not user_for(studio, request).is_admin:
            return gr.update()
        return gr.update(choices=versions_in(studio.models.list_models(), k), value=[])

    @shows_errors
    def refresh(current, request: gr.Request):
        if not user_for(studio, request).is_admin:  # visitors see an empty panel, never an error
            return gr.update(), gr.update(), gr.update(), gr.update()
        rows = studio.experiments.list()
        table = pd.DataFrame([{"name": e["name"], "kind": e["kind"], "status": e["status"],
                               "rated": e["decision"].get("rated", 0), "winner": e["decision"].get("winner"),
                               "promoted": e["promoted"], "id": e["id"]} for e in rows], columns=LIST_COLUMNS)
        choices = [(f"{e['name']} · {e['status']}", e["id"]) for e in rows]
        current = current if any(e["id"] == current for e in rows) else (rows[0]["id"] if rows else None)
        if current is None:
            return table, gr.update(choices=choices, value=None), "", None
        exp = studio.experiments.get(current)
        points = pd.DataFrame(studio.experiments.curve(current) or None,
                              columns=["arm", "ratings", "approval", "low", "high"])
        points["arm"] = points["arm"].map(lambda a: f"arm {a}: {exp['arms'][int(a)]['version']}")
        return table, gr.update(choices=choices, value=current), _details(exp), points

    @shows_errors
    def on_start(name: str | None, kind: str, versions: list[str] | None, weights: str | None,
                 min_samples, auto_promote: bool, request: gr.Request):
        user = require_admin(studio, request)
        try:
            shares = [float(x) for x in (weights or "").replace(",", " ").split()] or None
            params = ExperimentCreate(name=name or "experiment", kind=kind, arms=[_arm(v) for v in versions or []],
                                      weights=shares, min_samples=int(min_samples or 0), auto_promote=bool(auto_promote))
        except ValueError as exc:
            raise gr.Error(f"Check the form: {exc}") from exc
        exp = studio.experiments.create(params, user=user.name)
        return f"Started **{exp['name']}**: traffic that pins no {kind} version is now split.", exp["id"]

    def act(action, experiment_id, request: gr.Request):
        user = require_admin(studio, request)
        if not experiment_id:
            raise gr.Error("Pick an experiment.")
        exp = getattr(studio.experiments, action)(experiment_id, user=user.name)
        return f"**{exp['name']}** is {exp['status']}" + (" and its winner is the default now." if exp["promoted"]
                                                         else ".")

    outputs = [listing, chosen, details, curve]
    gr.on([kind.change, start_form.expand], on_kind, inputs=[kind], outputs=[arms], api_visibility="private")
    changed = gr.State(None)  # the counters of what the panel shows, set on a poke when they move

    def on_poke(last):
        """Only a state changes on a poke: the panel redraws (below) when what it shows changed."""
        now = studio.changes.version(RATINGS, EXPERIMENTS, MODELS)
        return gr.skip() if now == last else now

    poked.click(on_poke, inputs=[changed], outputs=[changed], show_progress="hidden", api_visibility="private")
    gr.on([changed.change, chosen.select], refresh, inputs=[chosen], outputs=outputs, api_visibility="private",
          show_progress="hidden")
    start.click(on_start, inputs_kwargs={"name": name, "kind": kind, "versions": arms, "weights": weights,
                                         "min_samples": min_samples, "auto_promote": auto},
                outputs=[message, chosen], api_visibility="private").then(
        refresh, inputs=[chosen], outputs=outputs, api_visibility="private")

    @shows_errors
    def on_stop(experiment_id, request: gr.Request):
        return act("stop", experiment_id, request)

    @shows_errors
    def on_promote(experiment_id, request: gr.Request):
        return act("promote", experiment_id, request)

    stop.click(on_stop, inputs=[chosen], outputs=[message], api_visibility="private")
    promote.click(on_promote, inputs=[chosen], outputs=[message], api_visibility="private")
