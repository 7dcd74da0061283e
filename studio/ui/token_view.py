"""Generated text as coloured tokens: each token's background says how likely the model found it
(green likely · yellow · red unlikely); hovering shows its k alternatives, and an expandable table
lists them all with their probabilities. Everything from the model is HTML-escaped."""

from __future__ import annotations

import math
from html import escape

# (lowest probability, background, label) — the first band a token's probability reaches
BANDS = ((0.5, "#bbf7d0", "likely"), (0.1, "#fef08a", "plausible"), (0.0, "#fecaca", "unlikely"))


def band(p: float) -> tuple[str, str]:
    """(background colour, label) of a chosen token's probability."""
    for low, colour, label in BANDS:
        if p >= low:
            return colour, label
    return BANDS[-1][1], BANDS[-1][2]


def percent(logprob: float) -> str:
    """A log-probability as a percentage a person reads at a glance."""
    p = math.exp(logprob) * 100
    if p >= 10:
        return f"{p:.1f}%"
    return f"{p:.2f}%" if p >= 0.01 else "<0.01%"


def visible(token: str) -> str:
    """A token with its whitespace made visible (a table cell would swallow it)."""
    return token.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥") or "∅"


def _token_span(t: dict) -> str:
    colour, label = band(math.exp(t["logprob"]))
    alternatives = " · ".join(f"{visible(a['token'])} {percent(a['logprob'])}" for a in t["top"])
    tip = f"{visible(t['token'])}: {percent(t['logprob'])} ({label})" + (f"\nalternatives: {alternatives}"
                                                                         if alternatives else "")
    return (f'<span class="tv-tok" style="background:{colour};color:#111;border-radius:3px" '
            f'title="{escape(tip)}">{escape(t["token"])}</span>')


def _table(tokens: list[dict]) -> str:
    rows = []
    for i, t in enumerate(tokens, 1):
        colour, _ = band(math.exp(t["logprob"]))
        alts = " ".join(f'<span class="tv-alt"><code>{escape(visible(a["token"]))}</code> '
                        f'<span class="tv-p">{percent(a["logprob"])}</span></span>' for a in t["top"])
        rows.append(f'<tr class="tv-row"><td>{i}</td><td style="background:{colour};color:#111">'
                    f'<code>{escape(visible(t["token"]))}</code></td><td class="tv-chosen-p">{percent(t["logprob"])}'
                    f'</td><td>{alts}</td></tr>')
    return ('<table class="tv-table"><thead><tr><th>#</th><th>Token</th><th>Probability</th>'
            f'<th>Alternatives (most likely first)</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def render(outputs: list[dict]) -> str:
    """HTML for the outputs of a generation made with `logprobs` (each with its `tokens`)."""
    parts = []
    for n, out in enumerate(outputs, 1):
        tokens = out.get("tokens") or []
        if not tokens:
            continue
        spans = "".join(_token_span(t) for t in tokens)
        parts.append(
            f'<div class="tv-output" data-output="{n}"><p><b>Output {n}</b> · {len(tokens)} tokens</p>'
            f'<div class="tv-text" style="white-space:pre-wrap;line-height:1.8">{spans}</div>'
            f'<details class="tv-details"><summary>Every token with its alternatives</summary>{_table(tokens)}'
            "</details></div>")
    if not parts:
        return ""
    legend = " ".join(f'<span style="background:{c};color:#111;padding:0 4px;border-radius:3px">{label} '
                      f'(≥ {low:.0%})</span>' if low else
                      f'<span style="background:{c};color:#111;padding:0 4px;border-radius:3px">{label}</span>'
                      for low, c, label in BANDS)
    note = ("<p class='tv-note'>Probabilities are the model's own, before temperature, top-k, top-p and the "
            f"repetition penalty. Hover a token for its alternatives.</p><p>{legend}</p>")
    return f'<div class="token-view">{note}{"".join(parts)}</div>'
