"""Scenes shared by every story arc: the opening paragraph, habits, friends, asides and endings."""

from __future__ import annotations

from engines.starter.grammar import WEATHER, Story, T

OPEN = T(
    "Once upon a time, there was {hintro}.",
    "There was once {hintro} who lived {hhome}.",
    "Once there was {hintro}.",
    "Not long ago, there lived {hintro}.",
    "This is a story about {hintro}.",
    "{hintro} lived {hhome}.",
)
HOME = T(
    "{hhe} lived {hhome}.",
    "{hN} lived {hhome} with {hhis} family.",
    "{hhis} home was {hhome}.",
)
TRAITS = T(
    "{hN} loved {foods} and {toys}.",
    "{hN} liked to {play} {inplace} every {time}.",
    "{hhis} favorite color was {col}.",
    "More than anything, {hN} loved to {play}.",
    "{hN} was very good at {playing}.",
    "{hhe} always wore {a_col_cloth}, even in {season}.",
    "{hN} had {a_tadj_toy} that {hhe} took everywhere.",
    "{hN} was {cadj} and {cadj}, and {hhe} laughed a lot.",
    "Every {day}, {hN} helped {hhis} neighbor carry {objs} home from the {place}.",
    "{hN} could name every {plant} {inplace}.",
    "When {hN} was {good}, {hhe} liked to {play} and {play}.",
)
FRIEND = T(
    "{hhis} best friend was {fintro}.",
    "{hN}'s best friend was {fintro}.",
    "{hN} had a good friend, {fintro}.",
    "Next door lived {fintro}, who was {hN}'s best friend.",
    "{hN} often played with {fintro}.",
)
FILLER = T(
    "{a_size_animal} ran past and disappeared behind {a_plant}.",
    "Somewhere {inplace}, {a_animal} was {playing}.",
    "The air smelled of {mass} and {plants}.",
    "Far away, a bell rang {num} times.",
    "{a_aadj_animal} watched from under {a_furniture}.",
    "The {plants} {inplace} were {col} and {col}.",
    "{a_sound} came from somewhere nearby.",
)
ENDINGS = T(
    "That night, {hN} fell asleep with a smile.",
    "{hN} went home {adv}, feeling {good}.",
    "It had been a long day, but {a_good} one.",
    "From that day on, {hN} and {fN} {played} together every {day}.",
    "When the stars came out, {hN} was already dreaming of {foods} and {toys}.",
    "And that was how the {wadj} {day} ended.",
    "{hN} would remember that day for a long time.",
    "Later, {hN} told {gN} the whole story, and {ghe} laughed and laughed.",
)


def setting(s: Story, weather_p: float = 0.7) -> str:
    """First paragraph: who the hero is, where they live, one or two habits, maybe a friend."""
    opening = s.pick(OPEN)
    home = s.pick(HOME) if "lived" not in opening else None
    return s.para(
        opening,
        home,
        s.some(TRAITS, 1, 2),
        s.maybe(0.6, FRIEND),
        s.maybe(weather_p, WEATHER[s["weather"]]),
        aside(s, 0.5),
    )


DESCRIBE = T(
    "{atspot}, there were {animals}, {plants} and {objs}.",
    "The {spot} was {padj} and {padj} that {time}.",
    "Near the {spot} stood {a_size_plant}, and under it lay {a_tadj_obj}.",
    "Some {animals} were {playing} by the {place}, and {a_aadj_animal} was {playing} on a rock.",
    "{num} {animals} lived {atspot}, and they all knew {hN}.",
    "On the way, {hN} {saw} {a_aadj_animal} {playing} under {a_plant}.",
    "Every {day}, {a_role} came to the {spot} to sell {foods} and {objs}.",
    "{a_col_vehicle} went by, and {a_animal} ran after it.",
    "Past the {place}, {plants} and {plants} grew beside {a_padj} path.",
)
CHAT = T(
    "Look! {a_aadj_animal} is {playing} by the {place}!",
    "Every {day}, {gN} {moves} to the {place} and {cooks} {foods}.",
    "I like {foods}, but I love {foods}.",
    "Do you think {animals} like {mass}?",
    "{fN} says that {animals} {play} at night.",
    "My {cloth} is {col}, and my {toy} is {col}.",
    "What are you {handling}?",
    "{a_animal} {plays} when it is happy, and it {plays} when it is sad.",
    "I am {playing}, and then I am {playing}. It's a busy day!",
    "My {animal} {handles} {objs} and hides them {inplace}.",
    "Who {plays} better, {animals} or {animals}?",
)


def aside(s: Story, p: float = 0.5) -> list[str]:
    """Zero to two describing sentences about the place (more words, same story)."""
    return s.some(DESCRIBE, 0, 2) if s.rng.random() < p else []


def chatter(s: Story, who: str = "h", p: float = 0.5) -> str | None:
    """Sometimes one present-tense line of small talk."""
    return s.say(who, s.rng.choice(CHAT)) if s.rng.random() < p else None
