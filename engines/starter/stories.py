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

from engines.starter import arcs_adventure as adventure
from engines.starter import arcs_growing as growing
from engines.starter import arcs_learning as learning
from engines.starter import arcs_together as together
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
    adventure.sleepless,
    adventure.cooking,
    adventure.snow_day,
    adventure.treasure,
    adventure.fable,
    together.party,
    together.lost_way,
)
# Titles for each arc (by function name), plus a few that fit any story.
TITLES: dict[str, tuple[str, ...]] = {
    "lost": T(
        "The Lost {thing}", "Where Is the {thing}?", "{hN} and the Missing {thing}", "The {tcol} {thing}"
    ),
    "gift": T("A Present for {gN}", "{hN}'s Surprise", "The Best Present"),
    "new_friend": T("{hN} Makes a Friend", "The New {fkind}", "A Friend for {hN}"),
    "help_animal": T("The Little {pet}", "{hN} Helps {a_pet}", "{a_pet} in Trouble"),
    "spoiled_plan": T("The Rainy Picnic", "A Picnic Indoors", "Rain, Rain, Go Away"),
    "fear": T("{hN} Is Brave", "{hN} and {fear}", "Not So Scary"),
    "contest": T("The Big Day", "{hN} and {contest}", "Doing Your Best"),
    "quarrel": T("Taking Turns", "{hN} and {fN}", "Friends Again"),
    "trip": T("A Trip to the {spot}", "A Day at the {spot}", "{hN} Goes to the {spot}"),
    "garden": T("{hN}'s Garden", "The {crop} Seeds", "Waiting for {crops}"),
    "questions": T("Why, Why, Why?", "{hN} Asks Questions", "A Walk with {gN}"),
    "sleepless": T("The Night {hN} Could Not Sleep", "A Sleepless Night", "Goodnight, {hN}"),
    "cooking": T("{hN} Makes {dish}", "In the Kitchen", "A Mess in the Kitchen"),
    "snow_day": T("The Snow Day", "A Snowman for {hN}", "When the Snow Came"),
    "treasure": T("The Treasure Map", "{hN} and the Old Map", "Buried Treasure"),
    "party": T("{hN}'s Birthday", "The Birthday Party", "{hN} Is {age}"),
    "lost_way": T("{hN} Gets Lost", "Lost at the {spot}", "Stay Where You Are"),
    "fable": T("The {fable} {hkind}", "{hN} Learns a Lesson", "{hN} and {fN}"),
}
ANY_TITLES = T(
    "A {wadj} {today}", "{hN} and {fN}", "{hN}'s {big} Day", "One {wadj} {tod}", "A Story About {hN}"
)
_TITLE_BIG = T("big", "busy", "happy", "best", "long")
_SMALL_WORDS = {"a", "an", "the", "and", "of", "to", "in", "at", "for", "with", "on"}


def title_case(text: str) -> str:
    """Capitalise each word except short joining words (never the first)."""
    words = text.split(" ")
    return " ".join(w if (i and w in _SMALL_WORDS) else w[:1].upper() + w[1:] for i, w in enumerate(words))


def _title(s: Story, arc: str) -> str:
    s["big"] = s.rng.choice(_TITLE_BIG)
    templates = ANY_TITLES if s.rng.random() < 0.2 else TITLES[arc]
    return title_case(s.pick(templates))


def tell(rng: random.Random) -> str:
    """One whole story: title, blank line, paragraphs separated by blank lines."""
    s = Story(rng)
    s.setup()
    arc = rng.choice(ARCS)
    paragraphs = arc(s)
    return "\n\n".join([_title(s, arc.__name__), *paragraphs])
