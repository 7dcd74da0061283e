"""Story arcs: each is setting -> problem -> attempts -> resolution -> ending, told from templates.

Field names used in the templates (see :mod:`.grammar`): ``h``/``f``/``g`` prefix the hero,
the friend and the grown-up (``N`` name, ``he``/``him``/``his``/``self`` pronouns, ``was``/
``is``/``has`` the verb agreeing with the pronoun, ``intro`` "a shy fox named Pip", ``kind``);
``thing``/``tcol`` the story's object and its colour, ``treat(s)``, ``spot``/``atspot`` the
place, ``wadj`` the weather word, ``when`` "one rainy morning". Anything else is drawn from a
pool: ``{a_fadj_food}``, ``{moved}``, ``{inplace}``.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from engines.starter import arcs_growing as growing
from engines.starter import arcs_learning as learning
from engines.starter import arcs_trouble as trouble
from engines.starter.grammar import Story, T

ARCS: tuple[Callable[[Story], list[str]], ...] = (
    trouble.lost,
    trouble.gift,
    trouble.new_friend,
    trouble.help_animal,
    growing.spoiled_plan,
    growing.fear,
    growing.contest,
    growing.quarrel,
    growing.trip,
    learning.garden,
    learning.questions,
)
TITLES = T(
    "The Lost {Thing}",
    "{hN} and the {Thing}",
    "A {Wadj} {Day}",
    "{hN}'s {Good} Day",
    "{hN} and {fN}",
)


_TITLE_DAY = T("Day", "Morning", "Afternoon", "Adventure")
_TITLE_GOOD = T("Big", "Busy", "Happy", "Best", "Long")


def _title(s: Story) -> str:
    s["Thing"] = s["thing"].title()
    s["Wadj"] = s["wadj"].title()
    s["Day"] = s.rng.choice(_TITLE_DAY)
    s["Good"] = s.rng.choice(_TITLE_GOOD)
    return s.pick(TITLES)


def tell(rng: random.Random) -> str:
    """One whole story: title, blank line, paragraphs separated by blank lines."""
    s = Story(rng)
    s.setup()
    arc = rng.choice(ARCS)
    paragraphs = arc(s)
    return "\n\n".join([_title(s), *paragraphs])
