"""What keeps the page one app: every list redraws when what it shows changes, without a reload.

Each tab's loader — the `(fn, inputs, outputs)` its `build` returns for page load — is also run when
the tab is selected, and live. Live without a cost while idle: the page's script (`LIVE_JS`) asks
`GET /api/v1/changes` every second — a few numbers, no Gradio event — and only when the answer
moves does it click the hidden "poke" buttons (`poke()`); their handlers compare the studio's
change counters (`studio/services/changes.py`) with those this page last drew and re-run only the
loaders whose topics moved. (A `gr.Timer` made a Gradio event per tick, and each event costs the
browser a pass over every mounted component: an idle page with all tabs opened kept half a core busy.)"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from studio.services import Studio

log = logging.getLogger("studio.ui")

EVERY_MS = 1000  # how often an open page asks whether anything changed (a dict read on the server)
POKE_CLASS = "live-poke"

# Run once on page load (mount_gradio_app(js=...)): poll the change summary, poke on a change and
# poke each newly drawn poke button once (a tab's button exists from the first time it is opened).
LIVE_JS = """() => {
  let last = null;
  const url = new URL("api/v1/changes", document.baseURI).href;
  async function poll() {
    try {
      const r = await fetch(url, {credentials: "same-origin", cache: "no-store"});
      if (r.ok) {
        const text = await r.text();
        const moved = text !== last;
        last = text;
        document.querySelectorAll(".POKE_CLASS").forEach((b) => {
          if (moved || !b.dataset.poked) { b.dataset.poked = "1"; b.click(); }
        });
      }
    } catch (e) { /* the studio is restarting: the next poll retries */ }
    setTimeout(poll, document.hidden ? 5 * EVERY_MS : EVERY_MS);
  }
  poll();
}""".replace("POKE_CLASS", POKE_CLASS).replace("EVERY_MS", str(EVERY_MS))


def poke() -> gr.Button:
    """A hidden button the page's script clicks when the studio changed (wire handlers to `.click`)."""
    return gr.Button("refresh", elem_classes=[POKE_CLASS], size="sm")


def keep_or(current, values: list, fallback) -> dict:
    """The `value` part of a redrawn picker's update: nothing while the current pick still exists, so
    a redraw racing a person's click never undoes it (the handler saw the value from before the click);
    else the fallback."""
    return {} if current in values else {"value": fallback}


def unless_shown(shown, stored):
    """A redrawn setting's update: nothing while the page already shows the stored value (a redraw
    that started before a person's click would otherwise undo it), else the stored value."""
    return gr.skip() if shown == stored else stored


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


def redraw_when_changed(studio: Studio, demo: gr.Blocks, loaders: list[Loader]) -> None:
    """On a poke: re-run the loaders whose topics changed since this page last drew them.

    In two stages: the poke reads and writes only states (the counters last drawn, and one trigger
    per loader), and a loader's own event, with only its own components, runs when its trigger
    changes."""
    if not loaders:
        return
    seen = gr.State({})  # loader index → the change counters this page last drew it at
    triggers = [gr.State(None) for _ in loaders]
    poked = poke()

    def now() -> dict[int, tuple[int, ...]]:
        return {i: studio.changes.version(*loader.topics) for i, loader in enumerate(loaders)}

    def on_poke(last: dict):
        current = now()
        if not last or current == last:  # before the page's load recorded its counters, or nothing moved
            return gr.skip(), *(gr.skip() for _ in loaders)
        return current, *(gr.skip() if last.get(i) == current[i] else current[i] for i in range(len(loaders)))

    def redraw(loader: Loader) -> Callable:
        def on_trigger(request: gr.Request, *values):
            try:
                out = loader.run(list(values), request)
            except Exception:  # a redraw never shows an error: the next change or a tab select retries
                log.exception("Redrawing a list after a change")
                out = tuple(gr.skip() for _ in loader.outputs)
            return out if len(loader.outputs) > 1 else out[0]
        return on_trigger

    demo.load(now, outputs=[seen], api_visibility="private")
    poked.click(on_poke, inputs=[seen], outputs=[seen, *triggers], show_progress="hidden",
               trigger_mode="always_last", api_visibility="private")
    for loader, trigger in zip(loaders, triggers, strict=True):
        trigger.change(redraw(loader), inputs=loader.inputs, outputs=loader.outputs, show_progress="hidden",
                       trigger_mode="always_last", api_visibility="private")
