"""Training tab: start a job, watch it live (progress, loss curve, samples, log), cancel or resume it.

The live view is rebuilt, when the job moved, from the job row and its run folder, so a reloaded page,
a second browser or a restarted studio shows the same job. Training never runs in this process:
`studio.jobs` starts it as a child process.
"""

from __future__ import annotations

import html
import json
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from studio.services import Studio
from studio.services.errors import StudioError, only_admins
from studio.services.job_inputs import BASE_MODEL_KIND
from studio.services.train_estimate import FEW_STEPS
from studio.services.version_names import default_name
from studio.ui import train_form, use_in
from studio.ui.common import share, shows_errors, user_for
from studio.ui.live import keep_or, poke
from studio.ui.train_samples import SPOKEN_PLAYERS, sample_paths, spoken_samples

ACTIVE = ("queued", "running")
NO_DATASET = ""
NEW_JOB_S = 15  # a job this new takes the live view from a finished one
HISTORY_COLUMNS = ["job", "kind", "status", "progress", "step", "loss", "created"]


# -- what the view shows, computed from a job and its events -----------------------------------
def progress_html(job: dict[str, Any] | None, events: list[dict[str, Any]]) -> str:
    if job is None:
        return "<div id='job-progress'><p>No training job yet. Start one on the left.</p></div>"
    pct = int(round(100 * job["progress"]))
    step = f"step {job['step']} / {job['total_steps']}" if job["total_steps"] else f"step {job['step']}"
    eta = eta_s(job, events)
    if job["status"] == "running" and not events:
        step = "starting (loading libraries)…"
    parts = [
        html.escape(job["id"]),
        html.escape(job["kind"]),
        f"<b class='job-status'>{job['status']}</b>",
        step,
    ]
    if eta is not None:
        parts.append(f"ETA {_clock(eta)}")
    metrics = ", ".join(
        f"{html.escape(k)} {v:.4g}"
        for k, v in job["metrics"].items()
        if "loss" in k and isinstance(v, int | float)
    )
    error = f"<pre class='job-error'>{html.escape(job['error'])}</pre>" if job["error"] else ""
    return (
        "<div id='job-progress'>"
        f"<div>{' · '.join(parts)}</div>"
        "<div style='background:#e5e7eb;border-radius:6px;height:14px;overflow:hidden;margin:6px 0'>"
        f"<div style='width:{pct}%;background:#3b82f6;height:100%'></div></div>"
        f"<div><span class='job-percent'>{pct} %</span> {html.escape(metrics)}</div>{error}</div>"
    )


def eta_s(job: dict[str, Any], events: list[dict[str, Any]]) -> float | None:
    """Seconds left at the pace of the last (up to) 20 steps; None when not running or unknown."""
    if job["status"] != "running" or not job["total_steps"] or len(events) < 2:
        return None
    recent = events[-20:]
    steps = recent[-1]["step"] - recent[0]["step"]
    seconds = recent[-1]["time"] - recent[0]["time"]
    if steps <= 0 or seconds <= 0:
        return None
    return max(job["total_steps"] - job["step"], 0) * seconds / steps


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def loss_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """Long format for gr.LinePlot: one row per (step, series) for every *loss* number."""
    rows = [
        {"step": e["step"], "series": k, "value": float(v)}
        for e in events
        for k, v in e.items()
        if "loss" in k and isinstance(v, int | float) and not isinstance(v, bool)
    ]
    frame = pd.DataFrame(rows, columns=["step", "series", "value"])
    # Typed even when empty: the chart takes its axes' kinds from the columns' types, and object
    # columns (an empty frame's) become label axes that draw no line.
    return frame.astype({"step": "int64", "series": "string", "value": "float64"})


def history_frame(jobs: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [
        [
            j["id"],
            j["kind"],
            j["status"],
            f"{int(round(100 * j['progress']))} %",
            f"{j['step']}/{j['total_steps']}",
            f"{j['metrics']['loss']:.4g}" if isinstance(j["metrics"].get("loss"), int | float) else "",
            j["created_at"].replace("T", " ")[:19],
        ]
        for j in jobs
    ]
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def default_job(jobs: list[dict[str, Any]]) -> str | None:
    """The newest running/queued job, else the newest job."""
    for job in jobs:
        if job["status"] in ACTIVE:
            return job["id"]
    return jobs[0]["id"] if jobs else None


def follow_new_job(jobs: list[dict[str, Any]], job_id: str | None, now: datetime) -> str | None:
    """The job to show: a job started in the last NEW_JOB_S seconds takes over from a finished one
    (a redraw that left before the Start's answer would otherwise put the old job back)."""
    newest = jobs[0] if jobs else None
    shown = next((j for j in jobs if j["id"] == job_id), None)
    if newest is None or newest["id"] == job_id or newest["status"] not in ACTIVE or (shown and shown["status"] in ACTIVE):
        return job_id
    started = datetime.fromisoformat(newest["created_at"].replace("Z", "+00:00"))
    return newest["id"] if (now - started).total_seconds() < NEW_JOB_S else job_id


def job_choices(jobs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(f"{j['id']} · {j['kind']} · {j['status']}", j["id"]) for j in jobs]


def params_reference(kind: dict[str, Any] | None) -> str:
    if not kind:
        return ""
    lines = [kind["doc"], "", "| parameter | default | what it does |", "| --- | --- | --- |"]
    lines += [f"| `{p['name']}` | `{json.dumps(p['default'])}` | {p['doc']} |" for p in kind["params"]]
    return "\n".join(lines)


# -- the tab -----------------------------------------------------------------------------------
DEFAULT_KIND = "text-lora"
# Lines of the trainer's log that are libraries talking to developers, not news for the user (the
# whole log stays in the run folder's train.log).
LIBRARY_NOISE = ("Warning:", "warnings.warn(", "FutureWarning", "UserWarning", "DeprecationWarning",
                 "loss_type=None")


def readable_log(text: str) -> str:
    """The log tail a person reads: library warnings (and the source line each one quotes) left out."""
    out, skip_next = [], False
    for line in text.splitlines():
        if skip_next:
            skip_next = False
            if line.startswith((" ", "\t")):
                continue
        if any(mark in line for mark in LIBRARY_NOISE):
            skip_next = "warnings.warn(" not in line
            continue
        out.append(line)
    return "\n".join(out)


def few_steps_warning(job: dict[str, Any]) -> str:
    """A warning when a job will take fewer optimizer steps than matter (known once it is queued)."""
    steps = job.get("total_steps") or 0
    if 0 < steps < FEW_STEPS:
        return (f"\n\n⚠️ Only {steps} optimizer steps: that barely changes a model. Raise `max_steps` "
                f"(or `epochs`) to {FEW_STEPS} or more for a change you can see.")
    return ""


def build(studio: Studio):
    jobs = studio.jobs
    kinds = {k["kind"]: k for k in jobs.kinds()}
    # The kind most creators start with: fine-tuning text on their own writing.
    first_kind = DEFAULT_KIND if DEFAULT_KIND in kinds else next(iter(kinds), None)

    def base_choices(kind_name: str | None) -> list[tuple[str, str]]:
        """The models a job of this kind can start from, by name; "" = the kind's default."""
        model_kind = BASE_MODEL_KIND.get(kind_name or "")
        if model_kind is None:
            return [("(trains from scratch)", "")]
        titles = studio.models.version_titles()
        return [("The kind's default", "")] + [(titles.get(m["id"], m["id"]), m["id"])
                                               for m in studio.models.list_models()[model_kind]]

    def dataset_choices() -> list[tuple[str, str]]:
        return [("(none)", NO_DATASET)] + [
            (f"{d['name']} ({d['kind']}, {d['num_items']})", d["id"]) for d in studio.datasets.list()
        ]

    with gr.Row():
        with gr.Column(scale=2):
            gr.Markdown("### New training job")
            kind = gr.Dropdown(label="Job kind", choices=list(kinds), value=first_kind, elem_id="train-kind")
            dataset = gr.Dropdown(
                label="Dataset",
                choices=[("(none)", NO_DATASET)],
                value=NO_DATASET,
                allow_custom_value=True,  # choices are filled per page load; the service checks the id
                elem_id="train-dataset",
            )
            preview = train_form.build_preview()
            name_box = gr.Textbox(label="Name of the trained version", max_length=100, elem_id="train-name",
                                  placeholder="default: dataset · kind · date")
            proposed = gr.State("")  # the name this form last proposed: replaced on a new pick, a typed one is kept
            base_model = gr.Dropdown(label="Base model", choices=[("The kind's default", "")], value="",
                                     allow_custom_value=True,  # filled per kind; the service checks the id
                                     elem_id="train-base-model")
            form = train_form.build(kinds, first_kind, {k: jobs.spec(k).config_cls for k in kinds}, preview)
            with gr.Accordion("Parameter reference", open=False):
                reference = gr.Markdown(params_reference(kinds.get(first_kind)))
            with gr.Row():
                show_cmd = gr.Button("Show command", elem_id="train-show-command")
                start = gr.Button("Start training", variant="primary", elem_id="train-start")
            command = gr.Textbox(
                label="Command", interactive=False, visible=False, lines=3, elem_id="train-command"
            )
            form_note = share("train.note", gr.Markdown(elem_id="train-note"))
        with gr.Column(scale=3):
            gr.Markdown("### Live view")
            # Choices change every few seconds; the service checks ids, so custom values are harmless.
            job_pick = share("train.job", gr.Dropdown(
                label="Job", choices=[], value=None, allow_custom_value=True, elem_id="train-job"
            ))
            status = gr.HTML(progress_html(None, []), elem_id="train-status")
            plot = gr.LinePlot(
                loss_frame([]),
                x="step",
                y="value",
                color="series",
                title="Loss",
                height=260,
                elem_id="train-loss",
            )
            gallery = gr.Gallery(
                label="Latest samples", columns=4, height=200, object_fit="contain", elem_id="train-samples"
            )
            with gr.Row():  # a speech job's held-out sentences, spoken by the voice as it is at each save point
                players = [gr.Audio(label="Spoken sample", type="filepath", interactive=False, visible=False,
                                    elem_id=f"train-spoken-{k}") for k in range(SPOKEN_PLAYERS)]
            log = gr.Textbox(
                label="Log (last lines)",
                lines=10,
                max_lines=10,
                interactive=False,
                autoscroll=True,
                elem_id="train-log",
            )
            with gr.Row():
                cancel = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
                resume = gr.Button("Resume", elem_id="train-resume")
                share("train.use", use_in.button())  # to the tab that uses what the job made
    with gr.Accordion("History", open=True):
        history = gr.Dataframe(history_frame([]), interactive=False, wrap=True, elem_id="train-history")
    seen = gr.State(None)  # what this page last drew, so an idle tick sends nothing
    heard = gr.State(None)  # the spoken samples the players hold: a player reloads only for new ones
    changed = gr.State(None)  # set by a tick when what the view would show differs from `seen`
    poked = poke()  # clicked by the page's script when a job moved (studio/ui/live.py)

    # -- handlers ------------------------------------------------------------------------------
    @shows_errors
    def on_kind(kind_name: str | None, dataset_id: str | None):
        spec = kinds.get(kind_name or "")
        choices = dataset_choices()  # refreshed here too: a dataset may have been uploaded meanwhile
        keep = dataset_id if dataset_id in [v for _, v in choices] else NO_DATASET
        return (params_reference(spec), gr.update(choices=choices, value=keep),
                gr.update(choices=base_choices(kind_name), value=""))

    @shows_errors
    def propose_name(kind_name: str | None, dataset_id: str | None, current: str | None, last: str | None):
        """Dataset · kind · date in the name box, unless the user typed a name of their own."""
        dataset_name = next((d["name"] for d in studio.datasets.list() if d["id"] == dataset_id), None)
        fresh = default_name(dataset_name, kind_name)
        if current and current != last:
            return gr.skip(), last
        return fresh, fresh

    @shows_errors
    def on_show_command(kind_name: str | None, job_id: str | None):
        lines = []
        if kind_name in kinds:
            lines.append("# a new job:\n" + shlex.join(jobs.launch_command(kind_name, jobs.runs_dir / "<job-id>")))
        if job_id:
            try:
                lines.append(f"# job {job_id}:\n" + shlex.join(jobs.command_for(job_id)))
            except StudioError:
                pass
        return gr.update(value="\n".join(lines), visible=True)

    @shows_errors
    def on_start(inputs: dict, request: gr.Request):
        kind_name, dataset_id, base, name = inputs[kind], inputs[dataset], inputs[base_model], inputs[name_box]
        user = user_for(studio, request)
        if not user.is_admin:
            raise gr.Error(only_admins(user, "start training").message)
        try:
            values = form.start_params(kind_name, inputs)
        except ValueError as exc:
            raise gr.Error(f"The parameters are not valid: {exc}") from exc
        name = (name or "").strip() or propose_name(kind_name, dataset_id, "", "")[0]
        job = jobs.create(kind_name or "", dataset_id or None, (base or "").strip() or None, values, user=user,
                          name=name)
        listing = jobs.list(limit=50)
        # the name was this job's: the next one proposes its own default again
        return (gr.update(choices=job_choices(listing), value=job["id"]),
                f"Started job `{job['id']}` ({html.escape(name)})." + few_steps_warning(job), "")

    @shows_errors
    def on_cancel(job_id, request: gr.Request):
        return _act(jobs.cancel, job_id, request, "cancelled")

    @shows_errors
    def on_resume(job_id, request: gr.Request):
        return _act(jobs.resume, job_id, request, "queued to resume")

    def _act(action, job_id, request, done: str) -> str:
        user = user_for(studio, request)
        if not job_id:
            raise gr.Error("Pick a job first.")
        if not user.is_admin:
            raise gr.Error(only_admins(user, "cancel or resume jobs").message)
        job = action(job_id, user=user)
        return f"Job `{job['id']}` {done if job['status'] != 'running' else 'is stopping'}."

    @shows_errors
    def looked(job_id: str | None) -> tuple[dict, list[dict], str | None, dict | None]:
        """What the view would show now: (its fingerprint, the job list, the job followed, that job)."""
        listing = jobs.list(limit=50)
        if job_id not in {j["id"] for j in listing}:
            job_id = default_job(listing)
        job_id = follow_new_job(listing, job_id, datetime.now(UTC))
        job = next((j for j in listing if j["id"] == job_id), None)
        log_size = _size(jobs.run_dir(job_id).log_path) if job_id else 0
        drawn = {
            "pick": [job_id, [(j["id"], j["status"]) for j in listing]],
            "view": [
                job_id,
                job and job["updated_at"],
                log_size,
                [(j["id"], j["updated_at"]) for j in listing],
            ],
        }
        return drawn, listing, job_id, job

    def on_poke(job_id: str | None, last: dict | None, request: gr.Request):
        """The cheap half of the live view (on a poke): only a state changes;
        the view itself redraws when `changed` does."""
        if not user_for(studio, request).is_admin:
            return gr.skip()
        drawn = looked(job_id)[0]
        return gr.skip() if drawn == last else drawn

    def refresh(job_id: str | None, last: dict | None, held: list | None, request: gr.Request):
        user = user_for(studio, request)
        if not user.is_admin:  # the tab is an admin's: its log shows commands, paths and tracebacks
            return (gr.skip(),) * len(live)
        last = last or {}
        drawn, listing, job_id, job = looked(job_id)
        if drawn == last:  # nothing new: send nothing
            return (gr.skip(),) * len(live)
        pick = (
            gr.update(choices=job_choices(listing), value=job_id)
            if drawn["pick"] != last.get("pick")
            else gr.skip()
        )
        events = jobs.events(job_id) if job_id else []
        spoken = spoken_samples(jobs.run_dir(job_id).path, events) if job_id else []
        if spoken == [tuple(x) for x in held or []]:
            sounds = [gr.skip()] * SPOKEN_PLAYERS
        else:
            sounds = [gr.update(value=spoken[k][0], label=spoken[k][1], visible=True) if k < len(spoken)
                      else gr.update(value=None, visible=False) for k in range(SPOKEN_PLAYERS)]
        return (
            pick,
            progress_html(job, events),
            loss_frame(events),
            sample_paths(jobs.run_dir(job_id).path, events) if job_id else [],
            readable_log(jobs.log_tail(job_id, 60, user=user)) if job_id else "",
            history_frame(listing),
            drawn,
            *sounds,
            spoken,
        )

    @shows_errors
    def on_load(dataset_id: str | None = None, kind_name: str | None = None, base: str | None = None):
        """The dataset and base-model pickers, keeping the current picks while they still exist."""
        choices = dataset_choices()
        bases = base_choices(kind_name)
        return (gr.update(choices=choices, **keep_or(dataset_id, [v for _, v in choices], NO_DATASET)),
                gr.update(choices=bases, **keep_or(base, [v for _, v in bases], "")))

    # -- wiring --------------------------------------------------------------------------------
    live = [job_pick, status, plot, gallery, log, history, seen, *players, heard]
    # draw the whole view, whatever was drawn before
    redraw = {"job_id": job_pick, "last": gr.State(None), "held": gr.State(None)}
    kind.change(on_kind, inputs_kwargs={"kind_name": kind, "dataset_id": dataset},
                outputs=[reference, dataset, base_model],
                api_visibility="private")
    show_cmd.click(on_show_command, inputs_kwargs={"kind_name": kind, "job_id": job_pick}, outputs=[command],
                   api_visibility="private")
    gr.on([kind.change, dataset.change], propose_name, inputs=[kind, dataset, name_box, proposed],
          outputs=[name_box, proposed], show_progress="hidden", api_visibility="private")
    train_form.wire(form, studio, kind, dataset, base_model)
    start.click(on_start, inputs={kind, dataset, base_model, name_box, form.params, form.last_edit, *form.all_widgets},
                outputs=[job_pick, form_note, name_box], api_visibility="private").then(
        refresh, inputs_kwargs=redraw, outputs=live, api_visibility="private"
    )
    cancel.click(on_cancel, inputs=[job_pick], outputs=[form_note], api_visibility="private").then(
        refresh, inputs_kwargs=redraw, outputs=live, api_visibility="private"
    )
    resume.click(on_resume, inputs=[job_pick], outputs=[form_note], api_visibility="private").then(
        refresh, inputs_kwargs=redraw, outputs=live, api_visibility="private"
    )
    job_pick.input(refresh, inputs_kwargs=redraw, outputs=live, api_visibility="private")
    poked.click(on_poke, inputs_kwargs={"job_id": job_pick, "last": seen}, outputs=[changed], show_progress="hidden",
               trigger_mode="always_last", api_visibility="private")
    changed.change(refresh, inputs_kwargs={"job_id": job_pick, "last": seen, "held": heard}, outputs=live, show_progress="hidden",
                   trigger_mode="always_last", api_visibility="private")
    return on_load, [dataset, kind, base_model], [dataset, base_model]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


__all__ = ["build", "progress_html", "loss_frame", "history_frame", "eta_s", "default_job"]
