"""The token view's HTML: escaped, coloured by probability, k alternatives per token."""

import math

from studio.ui import text_insight, token_view


def tok(token: str, p: float, alts: list[tuple[str, float]]) -> dict:
    return {"token": token, "logprob": math.log(p), "top": [{"token": t, "logprob": math.log(q)} for t, q in alts]}


def test_tokens_are_escaped_coloured_and_list_their_alternatives():
    html = token_view.render([{"tokens": [tok("<script>\"x\"</script>", 0.9, [("<script>\"x\"</script>", 0.9), ("&", 0.05)]),
                                          tok(" y", 0.2, [(" z", 0.5), (" y", 0.2)]),
                                          tok("\n", 0.001, [(" a", 0.3), (" b", 0.2)])]}])
    assert "<script>" not in html and "&lt;script&gt;&quot;x&quot;&lt;/script&gt;" in html and "&amp;" in html
    assert html.count('class="tv-row"') == 3 and html.count('class="tv-alt"') == 6
    for (low, colour, _), p in zip(token_view.BANDS, (0.9, 0.2, 0.001), strict=True):
        assert colour in html and p >= low
    assert "90.0%" in html and "0.10%" in html and "↵" in html  # whitespace made visible in the table
    assert token_view.render([{"text": "no tokens"}]) == ""


def test_presets_set_every_sampling_slider():
    assert {"Precise", "Balanced", "Creative", "Deterministic"} <= set(text_insight.PRESETS)
    for values in text_insight.PRESETS.values():
        assert set(values) == set(text_insight.PRESET_FIELDS)
    assert text_insight.PRESETS["Deterministic"]["temperature"] == 0  # greedy
