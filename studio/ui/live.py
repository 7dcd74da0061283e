"""What keeps the page one app: every list redraws when what it shows changes, without a reload.

Each tab's loader — the `(fn, inputs, outputs)` its `build` returns for page load — is also run when
the tab is selected, and live: one `gr.Timer` per page compares the studio's change counters
(`studio/services/changes.py`) with those this page last drew and re-runs only the loaders whose
topics moved; an idle tick sends `gr.skip()` for everything."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from studio.services import Studio

log = logging.getLogger("studio.ui")

EVERY_S = 2.0  # how often an open page asks whether anything changed (a dict read on the server)


def keep_or(current, values: list, fallback) -> dict:
    """The `value` part of a redrawn picker's update: nothing while the current pick still exists, so
    a redraw racing a person's click never undoes it (the handler saw the value from before the click);
    else the fallback."""
    return {} if current in values else {"value": fallback}


@dataclass
class Loader:
    """A tab's list filler: `fn(*inputs)` → values for `outputs`, redrawn when `topics` change."""

    fn: Callable
    inputs: list
    outputs: list
    topics: tuple[str, ...]

    def run(self, values: list, request: gr.Request | None) -> tuple:
        wants_request = "request" in inspect.signature(self.fn).parameters
        result = self.fn(*values, request=request) if wants_request else self.fn(*values)
        return result if isinstance(result, tuple) and len(self.outputs) > 1 else (result,)


def redraw_on_select(tab: gr.Tab, loaders: list[Loader]) -> None:
    """Opening a tab redraws its lists (what another tab made since shows at once)."""
    for loader in loaders:
        tab.select(loader.fn, inputs=loader.inputs, outputs=loader.outputs, show_progress="hidden",
                   api_visibility="private")


def redraw_when_changed(studio: Studio, demo: gr.Blocks, loaders: list[Loader], every: float = EVERY_S) -> None:
    """One timer per page: re-run the loaders whose topics changed since this page last drew them."""
    if not loaders:
        return
    seen = gr.State({})  # loader index → the change counters this page last drew it at
    timer = gr.Timer(every)
    inputs = [c for loader in loaders for c in loader.inputs]
    outputs = [c for loader in loaders for c in loader.outputs]

    def now() -> dict[int, tuple[int, ...]]:
        return {i: studio.changes.version(*loader.topics) for i, loader in enumerate(loaders)}

    def on_tick(request: gr.Request, last: dict, *values):
        current, out, at = now(), [], 0
        if not last:  # a tick before the page's load recorded its counters: the load draws everything
            return current, *(gr.skip() for _ in outputs)
        for i, loader in enumerate(loaders):
            mine = list(values[at:at + len(loader.inputs)])
            at += len(loader.inputs)
            if last.get(i) == current[i]:
                out.extend(gr.skip() for _ in loader.outputs)
                continue
            try:
                out.extend(loader.run(mine, request))
            except Exception:  # a tick never shows an error: the next change or a tab select retries
                log.exception("Redrawing a list after a change")
                current[i] = last.get(i)
                out.extend(gr.skip() for _ in loader.outputs)
        return current, *out

    demo.load(now, outputs=[seen], api_visibility="private")
    timer.tick(on_tick, inputs=[seen, *inputs], outputs=[seen, *outputs], show_progress="hidden",
               trigger_mode="always_last", api_visibility="private")
