"""The template engine behind the stories: word pools, a story's cast, and sentence filling.

A template is a plain string with ``{fields}``. :class:`Story` is the mapping the templates
are filled from: fixed story words are stored in it (``hN``, ``hhe``, ``thing`` ...); any other
field is an ``_``-joined list of pool names, each replaced by a random word of that pool, with
a leading ``a`` giving the right indefinite article (``{a_tadj_obj}`` -> "an old kite").
Every template goes through :func:`T`, which records it so that :func:`all_texts` can list
every literal word the grammar may print.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

from engines.starter import words as W

_TEXTS: list[str] = []


def T(*templates: str) -> tuple[str, ...]:
    """Register and return a tuple of templates (registered so their words join the vocabulary)."""
    _TEXTS.extend(templates)
    return templates


def _unique(*groups: Iterable[str]) -> tuple[str, ...]:
    """Concatenate word lists, dropping repeats but keeping the first order (deterministic)."""
    return tuple(dict.fromkeys(w for g in groups for w in g))


def _verb_pools(name: str, forms: tuple[str, str, str, str], entries: tuple[str, ...]) -> dict:
    """Pools for the four forms of a verb list, named by the forms of one verb: play/played/plays/playing."""
    table = [W.verb_forms(e) for e in entries]
    return {form: tuple(dict.fromkeys(t[i] for t in table)) for i, form in enumerate(forms)}


_OBJ = _unique(W.TOYS, W.OBJECTS)
_AT = _unique(W.PLACES_AT, W.TOWN)
_ALL_PLACES = _unique(W.PLACES_IN, W.PLACES_AT, W.TOWN)
_OUTSIDE = _unique(W.PLACES_IN, W.PLACES_AT)


def at_place(place: str) -> str:
    """ "in the park", "at the beach", "at the library", "in the attic"."""
    return ("at the " if place in _AT else "in the ") + place


_POOLS: dict[str, tuple[str, ...]] = {
    "obj": _OBJ,
    "objs": tuple(W.plural(o) for o in _OBJ),
    "toy": W.TOYS,
    "toys": tuple(W.plural(o) for o in W.TOYS),
    "food": W.FOODS,
    "foods": tuple(W.plural(f) for f in W.FOODS),
    "mass": W.MASS_FOODS,
    "animal": W.EVERYDAY_ANIMALS,
    "animals": tuple(W.plural(a) for a in W.EVERYDAY_ANIMALS),
    "wild": W.ANIMALS,
    "wilds": tuple(W.plural(a) for a in W.ANIMALS),
    "flower": W.FLOWERS,
    "flowers": tuple(W.plural(f) for f in W.FLOWERS),
    "seller": W.SELLERS,
    "shop": W.SHOPS,
    "psize": W.PLANT_SIZES,
    "plant": W.PLANTS,
    "plants": tuple(W.plural(p) for p in W.PLANTS),
    "place": _ALL_PLACES,
    "inplace": tuple(at_place(p) for p in _ALL_PLACES),
    "outside": _OUTSIDE,
    "atout": tuple(at_place(p) for p in _OUTSIDE),
    "room": W.ROOMS,
    "inroom": tuple(at_place(r) for r in W.ROOMS),
    "furniture": W.FURNITURE,
    "sound": W.SOUNDS,
    "cloth": W.CLOTHES,
    "instrument": W.INSTRUMENTS,
    "vehicle": W.VEHICLES,
    "vehicles": tuple(W.plural(v) for v in W.VEHICLES),
    "game": W.GAMES,
    "role": W.ROLES,
    "col": W.COLORS,
    "size": W.SIZES,
    "tadj": W.THING_ADJS,
    "fadj": W.FOOD_ADJS,
    "padj": W.PLACE_ADJS,
    "aadj": W.ANIMAL_ADJS,
    "cadj": W.PERSON_ADJS,
    "good": W.GOOD_FEELINGS,
    "bad": W.BAD_FEELINGS,
    "adv": W.ADVERBS,
    "gladly": ("happily", "merrily", "cheerfully", "kindly", "eagerly", "gladly"),
    "softly": ("gently", "carefully", "softly", "slowly", "quietly", "patiently"),
    "time": W.TIMES,
    "day": W.DAYS,
    "season": W.SEASONS,
    "num": W.NUMBERS,
    "body": W.BODY,
    "sky": W.SKY,
    **_verb_pools("move", ("move", "moved", "moves", "moving"), W.MOVE_VERBS),
    **_verb_pools("play", ("play", "played", "plays", "playing"), W.PLAY_VERBS),
    **_verb_pools("skill", ("skill", "skilled", "skills", "skilling"), W.SKILL_VERBS),
    **_verb_pools("handle", ("handle", "handled", "handles", "handling"), W.HANDLE_VERBS),
    **_verb_pools("cook", ("cook", "cooked", "cooks", "cooking"), W.FOOD_VERBS),
    **_verb_pools("romp", ("romp", "romped", "romps", "romping"), W.ANIMAL_VERBS),
    **_verb_pools("see", ("see", "saw", "sees", "seeing"), W.SEE_VERBS),
}

POOLS: dict[str, tuple[str, ...]] = {name: _unique(pool) for name, pool in _POOLS.items()}

_PRONOUNS = {
    "she": {"he": "she", "him": "her", "his": "her", "was": "was", "is": "is", "has": "has", "self": "herself"},
    "he": {"he": "he", "him": "him", "his": "his", "was": "was", "is": "is", "has": "has", "self": "himself"},
    "they": {"he": "they", "him": "them", "his": "their", "was": "were", "is": "are", "has": "have", "self": "themselves"},
}  # fmt: skip

# Homes for animal heroes; children live in a coloured house near a place.
ANIMAL_HOMES = T(
    "in a burrow under an old oak tree",
    "in a snug nest high in a pine tree",
    "in a little den at the edge of the forest",
    "in a hollow log by the river",
    "in a cozy hole under the garden wall",
    "in a small house made of sticks and moss",
    "in a warm barn at the end of the lane",
    "among the tall reeds by the pond",
)
WHEN = T(
    "one {wadj} {tod}",
    "on {today} {tod}",
    "one day",
    "early one morning",
    "one {season} {tod}",
    "on a {wadj} {today}",
    "one {wadj} day in {season}",
    "one {tod} in {season}",
)
_SAY = {
    "say": T("said", "said", "said", "whispered", "called", "added", "explained"),
    "reply": T("replied", "answered", "said", "said"),
    "happy": T("said", "laughed", "giggled", "cheered", "cried"),
    "sad": T("said", "sighed", "cried", "whispered", "sniffed"),
    "loud": T("shouted", "called", "cried", "yelled"),
    "ask": T("asked", "asked", "asked", "called"),
}


_INNER_SENTENCE = re.compile(r"([.!?] )([a-z])")


def _upper_second(m: re.Match) -> str:
    return m.group(1) + m.group(2).upper()


def _cap(text: str) -> str:
    """Capitalise the first letter (inside an opening quote too)."""
    if text.startswith('"'):
        return '"' + text[1:2].upper() + text[2:]
    return text[:1].upper() + text[1:]


class Story(dict):
    """The fill mapping of one story: fixed words are stored, other fields are drawn from pools."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng
        self._used: list[str] = []  # pool words drawn for the sentence being filled

    # ----------------------------------------------------------------- filling

    def __missing__(self, key: str) -> str:
        parts = key.split("_")
        with_article = parts[0] == "a"
        chosen = [dict.get(self, p) or self._draw(POOLS[p]) for p in parts[with_article:]]
        phrase = " ".join(chosen)
        return f"{W.article(phrase)} {phrase}" if with_article else phrase

    def _draw(self, pool: tuple[str, ...]) -> str:
        """A random word of ``pool``, avoiding words already used in this sentence ("red and red")."""
        word = self.rng.choice(pool)
        for _ in range(3):
            if word not in self._used:
                break
            word = self.rng.choice(pool)
        self._used.append(word)
        return word

    def s(self, template: str) -> str:
        """Fill one template and capitalise it (and every sentence inside it)."""
        self._used = []
        return _cap(_INNER_SENTENCE.sub(_upper_second, template.format_map(self)))

    def pick(self, templates: tuple[str, ...]) -> str:
        """Fill one template chosen at random."""
        return self.s(self.rng.choice(templates))

    def maybe(self, p: float, templates: tuple[str, ...]) -> str | None:
        """With probability ``p`` a filled template, else nothing."""
        return self.pick(templates) if self.rng.random() < p else None

    def some(self, templates: tuple[str, ...], lo: int, hi: int) -> list[str]:
        """Between ``lo`` and ``hi`` different templates, filled, in the order they are written."""
        k = self.rng.randint(lo, min(hi, len(templates)))
        return [self.s(templates[i]) for i in sorted(self.rng.sample(range(len(templates)), k))]

    def say(self, who: str, template: str, mood: str = "say") -> str:
        """A line of dialogue spoken by character ``who`` (``h``, ``f`` or ``g``), in one of four layouts."""
        line = self.s(template)
        if line.endswith("?"):
            mood = "ask"
        verb = self.rng.choice(_SAY[mood])
        body = line[:-1] + "," if line.endswith(".") else line
        name = self[who + "N"]
        layout = self.rng.random()
        if layout < 0.4:
            return f'"{body}" {verb} {name}.'
        if layout < 0.6:
            return f'"{body}" {name} {verb}.'
        if layout < 0.8 or who != "h":  # only the hero is "she said": two "she"s would be unclear
            return _cap(f'{name} {verb}, "{line}"')
        return f'"{body}" {self[who + "he"]} {verb}.'

    def para(self, *parts: str | list[str] | None) -> str:
        """Join sentences (and lists of sentences) into one paragraph, skipping the missing ones."""
        out: list[str] = []
        for part in parts:
            if isinstance(part, list):
                out.extend(part)
            elif part:
                out.append(part)
        return " ".join(out)

    # ----------------------------------------------------------------- cast

    def cast(self, who: str, kind: str, avoid: tuple[str, ...] = ()) -> None:
        """Store a character under prefix ``who``: ``kind`` is "child", "animal" or "adult"."""
        rng = self.rng
        group = rng.choice(("she", "he", "she", "he", "they"))
        names = {"she": W.GIRLS, "he": W.BOYS, "they": W.THEY_NAMES}[group]
        name = rng.choice(names)
        while name in avoid:
            name = rng.choice(names)
        if kind == "child":
            noun = {"she": "girl", "he": "boy", "they": "child"}[group]
            intro = f"{rng.choice(POOLS['cadj'])} {noun} named {name}"
        elif kind == "animal":
            noun = rng.choice(W.HERO_ANIMALS)
            intro = (
                f"{rng.choice(POOLS['aadj'] + POOLS['size'])} {noun} {rng.choice(('named', 'called'))} {name}"
            )
        elif rng.random() < 0.5:  # a grown-up from the family
            group = rng.choice(("she", "he"))
            name = rng.choice(W.FAMILY_SHE if group == "she" else W.FAMILY_HE)
            noun, intro = name, name
        else:
            noun = rng.choice(W.ROLES)
            name = f"the {noun}"
            intro = f"{rng.choice(POOLS['cadj'])} {noun}"
            intro = f"{W.article(intro)} {intro}"
        if kind != "adult":
            intro = f"{W.article(intro)} {intro}"
        self[who + "N"] = name
        self[who + "kind"] = noun
        self[who + "intro"] = intro
        for k, v in _PRONOUNS[group].items():
            self[who + k] = v

    def setup(self) -> None:
        """Draw the whole cast and the fixed story words."""
        rng = self.rng
        hero_kind = rng.choice(("child", "child", "animal"))
        self.cast("h", hero_kind)
        self.cast("f", hero_kind if rng.random() < 0.8 else "animal", avoid=(self["hN"],))
        self.cast("g", "adult" if hero_kind == "child" else "animal", avoid=(self["hN"], self["fN"]))
        if hero_kind == "animal":
            self["gkind"] = rng.choice(W.WISE_ANIMALS)
            self["gN"] = f"the old {self['gkind']}"
            self["gintro"] = f"an old {self['gkind']}"
            self["hhome"] = rng.choice(ANIMAL_HOMES)
        else:
            self["hhome"] = f"in {self['a_col']} house near the {self['outside']}"
        self["thing"] = rng.choice(_OBJ)
        self["tcol"] = rng.choice(W.COLORS)
        self["treat"] = rng.choice(W.FOODS)
        self["treats"] = W.plural(self["treat"])
        self["spot"] = rng.choice(_OUTSIDE)
        self["atspot"] = at_place(self["spot"])
        self["today"] = rng.choice(W.DAYS)
        self.set_weather(rng.choice(tuple(WEATHER)))

    def set_weather(self, weather: str) -> None:
        """Fix the story's weather, and the season and the opening "one rainy morning" that go with it."""
        rng = self.rng
        self["weather"] = self["wadj"] = weather
        self["tod"] = rng.choice(("morning", "morning", "afternoon", "afternoon", "evening"))
        self["season"] = "winter" if weather == "snowy" else rng.choice(W.SEASONS[:3])
        self["when"] = rng.choice(WHEN).format_map(self)


WEATHER: dict[str, tuple[str, ...]] = {
    "sunny": T(
        "The sun was shining and the sky was blue.",
        "It was warm, and bees buzzed over the {plants}.",
        "The sun was bright, and the {spot} was full of light.",
        "Not a single cloud was in the sky.",
    ),
    "rainy": T(
        "Rain tapped on the windows.",
        "The rain fell all {time}, and the puddles grew bigger and bigger.",
        "Gray clouds hid the sun, and a soft rain was falling.",
        "Drops of rain ran down the leaves of the {plants}.",
    ),
    "windy": T(
        "The wind blew hard and made the trees sway.",
        "A strong wind rushed through the {spot} and pushed the clouds along.",
        "Leaves danced in the wind.",
        "The wind whistled around the corners of the {place}.",
    ),
    "snowy": T(
        "Snow covered the ground like a white blanket.",
        "Soft snow was falling, and everything was quiet.",
        "The roofs were white with snow, and icicles hung from the {furniture}.",
        "It was cold, and the snow crunched under every step.",
    ),
    "cloudy": T(
        "Big gray clouds drifted across the sky.",
        "The sky was gray, but it was not raining.",
        "Clouds covered the sun, and the air was cool.",
    ),
    "foggy": T(
        "A thick fog hung over the {spot}.",
        "The fog was so thick that {hN} could hardly see the {plants}.",
        "Everything looked soft and gray in the fog.",
    ),
    "stormy": T(
        "Dark clouds rolled across the sky, and thunder rumbled far away.",
        "The wind howled, and rain beat against the windows.",
        "Lightning flashed over the {outside}.",
        "Thunder boomed, and the windows rattled.",
    ),
}


def all_texts() -> list[str]:
    """Every registered template (the literal words the grammar prints)."""
    return list(_TEXTS)


def all_phrases() -> list[str]:
    """Every word or phrase the pools and the cast can put into a template."""
    out: list[str] = [w for pool in POOLS.values() for w in pool]
    out += list(W.GIRLS + W.BOYS + W.THEY_NAMES + W.FAMILY_SHE + W.FAMILY_HE)
    out += ["girl", "boy", "child", "named", "called", "the", "an", "old", "in", "at", "house", "near"]
    out += [v for p in _PRONOUNS.values() for v in p.values()]
    return out
