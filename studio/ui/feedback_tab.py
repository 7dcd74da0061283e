"""Feedback tab: what people prefer (dashboard + exports) and a blind A/B arena."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pandas as pd

from studio.services import Studio
from studio.services.arena import CompareParams, Side
from studio.services.auth import User
from studio.services.errors import StudioError
from studio.ui import experiments_panel
from studio.ui.common import require_admin, ui_error, user_for

NO_ADAPTER = "(none)"
EXPORT_TTL_S = 3600  # an export file waits this long for its download
LATEST_COLUMNS = ["updated_at", "user", "rating", "comment", "id", "kind", "model", "adapter", "prompt", "text"]


def _versions(studio: Studio) -> list[str]:
    listing = studio.models.list_models()
    versions = [m["id"] for m in listing["text"]]
    versions += [f"{a['base_model']}+{a['id']}" for a in listing["text_adapters"]]
    return versions


def _side(version: str) -> Side:
    model, _, adapter = version.partition("+")
    return Side(model=model, adapter=adapter or None)


def export_file(studio: Studio, fmt: str, user: User) -> Path:
    """The export the REST API gives this user (their own ratings; everyone's for an admin) as a
    file in its own scratch folder: one path per click, so no two downloads share a file. Gradio
    copies it into its cache; the folder goes on a later export or at the next start."""
    rows = studio.feedback.export(fmt, user=user)
    studio.scratch.expire("feedback-export", EXPORT_TTL_S)
    folder = studio.scratch.folder("feedback-export")
    path = folder / f"feedback-{fmt}.jsonl"
    try:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    except BaseException:
        studio.scratch.remove(folder)
        raise
    return path


def build(studio: Studio):
    with gr.Tab("Dashboard"):
        totals = gr.Markdown(elem_id="feedback-totals")
        by_model = gr.Dataframe(headers=["kind", "model", "adapter", "up", "down", "approval"], interactive=False,
                                label="Approval per model / adapter version")
        over_time = gr.LinePlot(x="day", y="approval", color="version", title="Approval over time",
                                y_lim=[0, 1], height=260)
        with gr.Row():
            kind_f = gr.Dropdown(["", "text", "image", "gan", "speech"], value="", label="Kind")
            model_f = gr.Textbox(label="Model", placeholder="any")
            rating_f = gr.Dropdown(["", "up", "down"], value="", label="Rating")
            refresh = gr.Button("Refresh", size="sm")
        latest = gr.Dataframe(label="Latest rated outputs", interactive=False, wrap=True)
        with gr.Row():
            fmt = gr.Radio(["jsonl", "kto", "dpo"], value="kto", label="Export format")
            export_btn = gr.Button("Export")
            export_file = gr.File(label="Download", interactive=False)

    experiments_panel.build(studio)  # Feedback → Experiments: live A/B tests between versions

    with gr.Tab("Train from ratings"):
        gr.Markdown("Tune a text version on its ratings (KTO from 👍/👎, DPO from arena votes) into a new adapter "
                    "version. Then compare new vs old blind in the Arena.")
        tune_version = gr.Dropdown(label="Version (model or model+adapter)", choices=[], elem_id="tune-version")
        tune_summary = gr.Markdown(elem_id="tune-summary")
        with gr.Row():
            tune_steps = gr.Slider(10, 500, value=60, step=10, label="Steps")
            tune_method = gr.Radio(["auto", "kto", "dpo"], value="auto", label="Method")
        tune_start = gr.Button("Train from ratings", variant="primary", elem_id="tune-start")
        tune_status = gr.Markdown(elem_id="tune-status")
        compare_new = gr.Button("Compare the newest version with its parent in the Arena", elem_id="tune-compare")

    with gr.Tab("Arena"):
        gr.Markdown("Two versions answer the same prompt with the same seed. Vote without knowing which is which; "
                    "names are revealed after the vote.")
        with gr.Row():
            va = gr.Dropdown(label="Version 1", choices=[])
            vb = gr.Dropdown(label="Version 2", choices=[])
        arena_prompt = gr.Textbox(label="Prompt", lines=2)
        start = gr.Button("Start a blind comparison", variant="primary")
        state = gr.State(None)  # {"id", "swap"}
        with gr.Row():
            left = gr.Textbox(label="Left", lines=6, interactive=False)
            right = gr.Textbox(label="Right", lines=6, interactive=False)
        with gr.Row():
            vote_left = gr.Button("Left is better")
            vote_tie = gr.Button("Tie")
            vote_right = gr.Button("Right is better")
            vote_bad = gr.Button("Both bad")
        reveal = gr.Markdown()
        board = gr.Dataframe(label="Leaderboard (Bradley–Terry, ties count half, 95 % CI)", interactive=False)

    def dashboard(kind, model, rating, request: gr.Request):
        user = user_for(studio, request)
        s = studio.feedback.stats()
        approval = f"{s['up'] / s['total']:.0%}" if s["total"] else "–"
        text = f"**{s['total']}** ratings · 👍 {s['up']} · 👎 {s['down']} · approval {approval}"
        rows = [[r["kind"], r["model"], r["adapter"] or "", r["up"], r["down"],
                 f"{r['approval']:.0%}" if r["approval"] is not None else "–"] for r in s["by_model"]]
        points = pd.DataFrame(studio.feedback.over_time() or [], columns=["day", "version", "approval", "ratings"])
        rated = pd.DataFrame(studio.feedback.latest(kind=kind or None, model=model or None, rating=rating or None,
                                                    user=user), columns=LATEST_COLUMNS)
        return text, rows, points, rated

    def leaderboard():
        rows = studio.arena.leaderboard("text")
        return pd.DataFrame([{k: r[k] for k in ("version", "score", "ci_low", "ci_high", "wins", "losses", "ties",
                                                "both_bad")} for r in rows])

    def load(request: gr.Request):
        choices = _versions(studio)
        return (*dashboard("", "", "", request), leaderboard(), gr.update(choices=choices),
                gr.update(choices=choices), gr.update(choices=choices))

    def export(f, request: gr.Request):
        try:
            return str(export_file(studio, f, user_for(studio, request)))
        except StudioError as exc:
            raise ui_error(exc) from exc

    def start_compare(a, b, prompt, request: gr.Request):
        user = user_for(studio, request)
        if not a or not b:
            raise gr.Error("Pick two versions.")
        try:
            result = studio.arena.compare(CompareParams(prompt=prompt or "", a=_side(a), b=_side(b)), user=user)
        except StudioError as exc:
            raise ui_error(exc) from exc
        except ValueError as exc:
            raise gr.Error(f"Check the form: {exc}") from exc
        # the arena service has already put the two versions in a random order: left is a, right is b
        return {"id": result["id"]}, result["a"]["text"], result["b"]["text"], ""

    def make_vote(choice: str):
        def vote(st, request: gr.Request):
            user = user_for(studio, request)
            if not st:
                raise gr.Error("Start a comparison first.")
            winner = {"left": "a", "right": "b"}.get(choice, choice)
            try:
                r = studio.arena.vote(st["id"], winner, user=user.name)
            except StudioError as exc:
                raise ui_error(exc) from exc
            a = r["a"]["model"] + (f" + {r['a']['adapter']}" if r["a"]["adapter"] else "")
            b = r["b"]["model"] + (f" + {r['b']['adapter']}" if r["b"]["adapter"] else "")
            return None, f"Left was **{a}**, right was **{b}**.", leaderboard()

        return vote

    def tune_info(version):
        if not version:
            return ""
        side = _side(version)
        try:
            info = studio.feedback_training.summary(side.model, side.adapter)
        except StudioError as exc:
            raise ui_error(exc) from exc
        return (f"**{info['ratings']}** rated outputs (👍 {info['up']} · 👎 {info['down']}) and "
                f"**{info['pairs']}** voted comparisons for this version.")

    def tune(version, steps, method, request: gr.Request):
        user = require_admin(studio, request)
        if not version:
            raise gr.Error("Pick a version.")
        side = _side(version)
        try:
            job = studio.jobs.create("text-feedback", base_model=side.model, user=user,
                                     params={"adapter": side.adapter or "", "max_steps": int(steps), "method": method})
        except StudioError as exc:
            raise ui_error(exc) from exc
        return f"Started job `{job['id']}` — follow it in the Training tab."

    def newest_pair():
        rows = studio.store.query(
            "SELECT a.id, a.base_model, j.params FROM adapters a JOIN jobs j ON j.id = a.job_id "
            "WHERE j.kind = 'text-feedback' ORDER BY a.created_at DESC LIMIT 1")
        if not rows:
            raise gr.Error("No feedback-tuned version yet: train one first.")
        parent = json.loads(rows[0]["params"]).get("adapter") or ""
        old = f"{rows[0]['base_model']}+{parent}" if parent else rows[0]["base_model"]
        new = f"{rows[0]['base_model']}+{rows[0]['id']}"
        choices = _versions(studio)
        return gr.update(choices=choices, value=new), gr.update(choices=choices, value=old)

    tune_version.change(tune_info, inputs=[tune_version], outputs=[tune_summary], api_visibility="private")
    tune_start.click(tune, inputs=[tune_version, tune_steps, tune_method], outputs=[tune_status],
                     api_visibility="private")
    compare_new.click(newest_pair, outputs=[va, vb], api_visibility="private")

    filters = [kind_f, model_f, rating_f]
    refresh.click(dashboard, inputs=filters, outputs=[totals, by_model, over_time, latest],
                  api_visibility="private")
    export_btn.click(export, inputs=[fmt], outputs=[export_file], api_visibility="private")
    start.click(start_compare, inputs=[va, vb, arena_prompt], outputs=[state, left, right, reveal],
                concurrency_id="text", api_visibility="private")
    for button, choice in ((vote_left, "left"), (vote_right, "right"), (vote_tie, "tie"), (vote_bad, "both_bad")):
        button.click(make_vote(choice), inputs=[state], outputs=[state, reveal, board],
                     api_visibility="private")
    return load, [], [totals, by_model, over_time, latest, board, va, vb, tune_version]
