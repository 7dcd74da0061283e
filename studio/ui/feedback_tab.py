"""Feedback tab: what people prefer (dashboard + exports) and a blind A/B arena."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pandas as pd

from studio.services import Studio
from studio.services.arena import KINDS, VARIANT, CompareParams, Side
from studio.services.auth import User
from studio.services.errors import StudioError
from studio.services.versions import parse_version, version_label, versions_in
from studio.ui import experiments_panel
from studio.ui.common import admin_only, require_admin, shows_errors, user_for

NO_ADAPTER = "(none)"
EXPORT_TTL_S = 3600  # an export file waits this long for its download
BOARD_COLUMNS = ["version", "score", "ci_low", "ci_high", "wins", "losses", "ties", "both_bad"]
LATEST_COLUMNS = ["when", "rating", "kind", "output", "prompt", "version", "user", "comment"]
LATEST_TYPES = ["str", "str", "str", "markdown", "str", "str", "str", "str"]
RATING_WORDS = {"up": "👍 up", "down": "👎 down"}


def _short(text: str | None, n: int = 80) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def latest_frame(rows: list[dict], titles: dict[str, str]) -> pd.DataFrame:
    """The newest ratings as a person reads them at 1366 px: a minute-rounded time, the output itself
    (the text's start, an image thumbnail, a link to play a clip), the version's name; ids stay in the
    export."""
    out = []
    for r in rows:
        url = f"/api/v1/outputs/{r['id']}/file"
        if r["kind"] in ("image", "gan"):
            shown = f"![{r['kind']} output]({url})"
        elif r["kind"] == "speech":
            shown = f"[▶ listen]({url})"
        else:
            shown = _short(r["text"]).replace("|", "\\|") or "(empty)"
        version = r["model"] + (f" + {titles.get(r['adapter'], r['adapter'])}" if r["adapter"] else "")
        out.append([str(r["updated_at"])[:16].replace("T", " "), RATING_WORDS.get(r["rating"], r["rating"]),
                    r["kind"], shown, _short(r["prompt"], 60), version, r["user"], r["comment"] or ""])
    return pd.DataFrame(out, columns=LATEST_COLUMNS)


def approval_frame(points: list[dict]) -> pd.DataFrame:
    """The approval curve for gr.LinePlot, typed even when empty: the chart takes its axes' kinds from
    the columns' types (a time axis, approval as a number), and untyped columns become label axes."""
    frame = pd.DataFrame(points, columns=["at", "version", "approval", "ratings"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
    return frame.astype({"version": "string", "approval": "float64", "ratings": "int64"})


def _versions(studio: Studio, kind: str = "text") -> list[str]:
    """The versions of a kind as the arena names them: a model, or model+adapter / +LoRA / +voice."""
    listing = studio.models.list_models()
    versions = versions_in(listing, kind)
    if kind == "speech":  # a model's voices, for models already loaded (reading others' configs could reach a hub)
        for model in [m["id"] for m in listing["speech"] if m["loaded"]]:
            try:
                versions += [version_label(model, v) for v in studio.speech.describe(model)["voices"]]
            except StudioError:
                continue
    return versions


def _side(version: str, kind: str = "text") -> Side:
    model, variant = parse_version(version)
    return Side(model=model, **{VARIANT[kind]: variant})


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
        over_time = gr.LinePlot(approval_frame([]), x="at", y="approval", color="version", x_title="time",
                                y_title="approval so far", title="Approval over time", y_lim=[0, 1], height=260,
                                elem_id="feedback-over-time")
        with gr.Row():
            kind_f = gr.Dropdown(["", "text", "image", "gan", "speech"], value="", label="Kind")
            model_f = gr.Textbox(label="Model", placeholder="any")
            rating_f = gr.Dropdown(["", "up", "down"], value="", label="Rating")
            refresh = gr.Button("Refresh", size="sm")
        latest = gr.Dataframe(latest_frame([], {}), label="Latest rated outputs", interactive=False, wrap=True,
                              datatype=LATEST_TYPES, column_widths=["11%", "7%", "6%", "26%", "18%", "16%", "8%", "8%"],
                              elem_id="feedback-latest")
        with gr.Row():
            fmt = gr.Radio(["jsonl", "kto", "dpo"], value="kto", label="Export format")
            export_btn = gr.Button("Export")
            export_file = gr.File(label="Download", interactive=False)

    experiments_panel.build(studio)  # Feedback → Experiments: live A/B tests between versions

    with gr.Tab("Train from ratings", elem_id="feedback-train") as train_tab:
        gr.Markdown("Tune a text version on its ratings (KTO from 👍/👎, DPO from arena votes) into a new adapter "
                    "version. Then compare new vs old blind in the Arena.")
        tune_version = gr.Dropdown(label="Version (model or model+adapter)", choices=[], elem_id="tune-version")
        tune_summary = gr.Markdown(elem_id="tune-summary")
        with gr.Row():
            tune_steps = gr.Slider(10, 500, value=60, step=10, label="Steps")
            tune_method = gr.Radio(["auto", "kto", "dpo"], value="auto", label="Method")
        tune_start = gr.Button("Train from ratings", variant="primary", elem_id="tune-start")
        tune_status = gr.Markdown(elem_id="tune-status")
        admin_only(studio, train_tab)
        compare_new = gr.Button("Compare the newest version with its parent in the Arena", elem_id="tune-compare")

    with gr.Tab("Arena"):
        gr.Markdown("Two versions answer the same prompt with the same seed. Vote without knowing which is which; "
                    "names are revealed after the vote. For speech, the prompt is the text to speak.")
        arena_kind = gr.Radio(list(KINDS), value="text", label="Kind", elem_id="arena-kind")
        with gr.Row():
            va = gr.Dropdown(label="Version 1", choices=[], allow_custom_value=True, elem_id="arena-version-1")
            vb = gr.Dropdown(label="Version 2", choices=[], allow_custom_value=True, elem_id="arena-version-2")
        arena_prompt = gr.Textbox(label="Prompt", lines=2)
        # one button per kind, so each comparison waits in its own kind's queue (concurrency_id)
        start = gr.Button("Start a blind comparison", variant="primary")
        start_image = gr.Button("Start a blind comparison", variant="primary", visible=False,
                                elem_id="arena-start-image")  # fmt: skip
        start_speech = gr.Button("Start a blind comparison", variant="primary", visible=False,
                                 elem_id="arena-start-speech")  # fmt: skip
        state = gr.State(None)  # {"id", "kind"} of the comparison waiting for a vote
        with gr.Row() as text_row:
            left = gr.Textbox(label="Left", lines=6, interactive=False)
            right = gr.Textbox(label="Right", lines=6, interactive=False)
        with gr.Row(visible=False) as image_row:
            left_image = gr.Image(label="Left", interactive=False, type="filepath", elem_id="arena-left-image")
            right_image = gr.Image(label="Right", interactive=False, type="filepath", elem_id="arena-right-image")
        with gr.Row(visible=False) as audio_row:
            left_audio = gr.Audio(label="Left", interactive=False, type="filepath", elem_id="arena-left-audio")
            right_audio = gr.Audio(label="Right", interactive=False, type="filepath", elem_id="arena-right-audio")
        with gr.Row():
            vote_left = gr.Button("Left is better")
            vote_tie = gr.Button("Tie")
            vote_right = gr.Button("Right is better")
            vote_bad = gr.Button("Both bad")
        reveal = gr.Markdown()
        board = gr.Dataframe(label="Leaderboard (Bradley–Terry, ties count half, 95 % CI)", interactive=False)

    @shows_errors
    def dashboard(kind, model, rating, request: gr.Request):
        user = user_for(studio, request)
        s = studio.feedback.stats()
        approval = f"{s['up'] / s['total']:.0%}" if s["total"] else "–"
        text = f"**{s['total']}** ratings · 👍 {s['up']} · 👎 {s['down']} · approval {approval}"
        if not s["total"]:
            text += " — nothing rated yet: rate outputs with 👍 / 👎 in the Text, Image, GAN or Speech tab."
        rows = [[r["kind"], r["model"], r["adapter"] or "", r["up"], r["down"],
                 f"{r['approval']:.0%}" if r["approval"] is not None else "–"] for r in s["by_model"]]
        points = approval_frame(studio.feedback.approval_curve())
        rated = latest_frame(studio.feedback.latest(kind=kind or None, model=model or None, rating=rating or None,
                                                    user=user), studio.models.version_titles())
        return text, rows, points, rated

    def leaderboard(kind: str = "text"):
        rows = studio.arena.leaderboard(kind)
        return pd.DataFrame([{k: round(r[k], 2) if isinstance(r[k], float) else r[k] for k in BOARD_COLUMNS}
                             for r in rows], columns=BOARD_COLUMNS)

    @shows_errors
    def kind_updates(kind: str, a: str | None = None, b: str | None = None) -> tuple:
        """Everything in the arena that follows the kind: versions, result views, start button, board."""
        choices = _versions(studio, kind)
        return (gr.update(choices=choices, value=a), gr.update(choices=choices, value=b),
                gr.update(visible=kind == "text"), gr.update(visible=kind == "image"),
                gr.update(visible=kind == "speech"), gr.update(visible=kind == "text"),
                gr.update(visible=kind == "image"), gr.update(visible=kind == "speech"), leaderboard(kind), None, "")

    kind_outputs = [va, vb, text_row, image_row, audio_row, start, start_image, start_speech, board, state, reveal]

    @shows_errors
    def load(request: gr.Request):
        choices = _versions(studio)
        return (*dashboard("", "", "", request), leaderboard(), gr.update(choices=choices),
                gr.update(choices=choices), gr.update(choices=choices))

    @shows_errors
    def export(f, request: gr.Request):
        return str(export_file(studio, f, user_for(studio, request)))

    def compare(kind: str, a: str | None, b: str | None, prompt: str, request: gr.Request) -> dict:
        user = user_for(studio, request)
        if not a or not b:
            raise gr.Error("Pick two versions.")
        try:
            form = CompareParams(kind=kind, prompt=prompt or "", a=_side(a, kind), b=_side(b, kind))
        except ValueError as exc:
            raise gr.Error(f"Check the form: {exc}") from exc
        return studio.arena.compare(form, user=user)

    # the arena service has already put the two versions in a random order: left is a, right is b
    @shows_errors
    def start_compare(a, b, prompt, request: gr.Request):
        result = compare("text", a, b, prompt, request)
        return {"id": result["id"], "kind": "text"}, result["a"]["text"], result["b"]["text"], ""

    @shows_errors
    def start_image_compare(a, b, prompt, request: gr.Request):
        result = compare("image", a, b, prompt, request)
        return {"id": result["id"], "kind": "image"}, *_files(studio, result), ""

    @shows_errors
    def start_speech_compare(a, b, prompt, request: gr.Request):
        result = compare("speech", a, b, prompt, request)
        return {"id": result["id"], "kind": "speech"}, *_files(studio, result), ""

    def make_vote(choice: str):
        @shows_errors
        def vote(st, request: gr.Request):
            user = user_for(studio, request)
            if not st:
                raise gr.Error("Start a comparison first.")
            winner = {"left": "a", "right": "b"}.get(choice, choice)
            r = studio.arena.vote(st["id"], winner, user=user.name)
            kind = st.get("kind", "text")
            a, b = (version_label(r[s]["model"], r[s][VARIANT[kind]]) for s in "ab")
            return None, f"Left was **{a}**, right was **{b}**.", leaderboard(kind)

        return vote

    @shows_errors
    def tune_info(version):
        if not version:
            return ""
        side = _side(version)
        info = studio.feedback_training.summary(side.model, side.adapter)
        return (f"**{info['ratings']}** rated outputs (👍 {info['up']} · 👎 {info['down']}) and "
                f"**{info['pairs']}** voted comparisons for this version.")

    @shows_errors
    def tune(version: str | None, steps, method: str, request: gr.Request):
        user = require_admin(studio, request)
        if not version:
            raise gr.Error("Pick a version.")
        side = _side(version)
        job = studio.jobs.create("text-feedback", base_model=side.model, user=user,
                                 params={"adapter": side.adapter or "", "max_steps": int(steps), "method": method})
        return f"Started job `{job['id']}` — follow it in the Training tab."

    @shows_errors
    def newest_pair():
        pair = studio.feedback_training.newest_tuned()
        if pair is None:
            raise gr.Error("No feedback-tuned version yet: train one first.")
        new, old = pair
        return gr.update(value="text"), *kind_updates("text", new, old)

    tune_version.change(tune_info, inputs=[tune_version], outputs=[tune_summary], api_visibility="private")
    tune_start.click(tune, inputs_kwargs={"version": tune_version, "steps": tune_steps, "method": tune_method},
                     outputs=[tune_status], api_visibility="private")
    compare_new.click(newest_pair, outputs=[arena_kind, *kind_outputs], api_visibility="private")

    filters = {"kind": kind_f, "model": model_f, "rating": rating_f}
    refresh.click(dashboard, inputs_kwargs=filters, outputs=[totals, by_model, over_time, latest],
                  api_visibility="private")
    export_btn.click(export, inputs=[fmt], outputs=[export_file], api_visibility="private")
    arena_kind.input(kind_updates, inputs=[arena_kind], outputs=kind_outputs, api_visibility="private")
    pair = {"a": va, "b": vb, "prompt": arena_prompt}
    start.click(start_compare, inputs_kwargs=pair, outputs=[state, left, right, reveal],
                concurrency_id="text", api_visibility="private")
    start_image.click(start_image_compare, inputs_kwargs=pair, outputs=[state, left_image, right_image, reveal],
                      concurrency_id="image", api_visibility="private")
    start_speech.click(start_speech_compare, inputs_kwargs=pair, outputs=[state, left_audio, right_audio, reveal],
                       concurrency_id="speech", api_visibility="private")
    for button, choice in ((vote_left, "left"), (vote_right, "right"), (vote_tie, "tie"), (vote_bad, "both_bad")):
        button.click(make_vote(choice), inputs=[state], outputs=[state, reveal, board],
                     api_visibility="private")
    return load, [], [totals, by_model, over_time, latest, board, va, vb, tune_version]


def _files(studio: Studio, result: dict) -> tuple[str, str]:
    """The two outputs' files (image or audio) to show left (a) and right (b); their names carry no version."""
    return tuple(str(studio.outputs.file(result[side]["id"])[0]) for side in ("a", "b"))
