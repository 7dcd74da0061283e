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
    "{hN} liked to {play} {atout} every {time}.",
    "{hhis} favorite color was {col}.",
    "More than anything, {hN} loved to {play}.",
    "{hN} was very good at {playing}.",
    "{hhe} always wore {a_col_cloth}, even in {season}.",
    "{hN} had {a_tadj_toy} that {hhe} took everywhere.",
    "{hN} was {cadj} and {cadj}, and {hhe} laughed a lot.",
    "Every {day}, {hN} helped {hhis} neighbor carry {foods} home from the {shop}.",
    "{hN} could name every {plant} {atout}.",
    "When {hN} was {good}, {hhe} liked to {play} and {play}.",
    "{hN} played the {instrument} every {day}, and {hhe} {skilled} every {day}.",
    "{hN} knew how to {skill}, and {hhe} {hwas} learning to {skill}.",
    "{hN} kept {num} {objs} in a box under {hhis} bed.",
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
    "Somewhere {atout}, {a_animal} was {romping}.",
    "The air smelled of {mass} and {plants}.",
    "Far away, a bell rang {num} times.",
    "{a_aadj_animal} watched from behind {a_plant}.",
    "The {flowers} near the {outside} were in bloom.",
    "{a_sound} came from somewhere nearby.",
)
ENDINGS = T(
    "That night, {hN} fell asleep with a smile.",
    "{hN} went home {adv}, feeling {good}.",
    "It had been a long day, but {a_good} one.",
    "From that day on, {hN} and {fN} {played} together every {day}.",
    "When the stars came out, {hN} was already dreaming of {foods} and {toys}.",
    "And that was how the {wadj} {today} ended.",
    "{hN} would remember that day for a long time.",
    "Later, {hN} told {gN} the whole story, and {ghe} laughed and laughed.",
)


def setting(s: Story, weather_p: float = 0.7, friend: bool = True) -> str:
    """First paragraph: who the hero is, where they live, one or two habits, the friend (unless
    the arc brings the friend in later), maybe the weather and what is going on around."""
    opening = s.pick(OPEN)
    home = s.pick(HOME) if "lived" not in opening else None
    return s.para(
        opening,
        home,
        s.some(TRAITS, 1, 2),
        s.pick(FRIEND) if friend else None,
        s.maybe(weather_p, WEATHER[s["weather"]]),
        aside(s, 0.7) if friend else None,
    )


DESCRIBE = T(
    "{atspot}, there were {animals}, {plants} and {objs}.",
    "The {spot} was {padj} and {padj} that {tod}.",
    "Near the {spot} stood {a_psize_plant}, and under it lay {a_tadj_obj}.",
    "Some {animals} were {romping} by the {outside}, and {a_aadj_animal} was {romping} on a rock.",
    "{hN} knew every {animal} near the {spot} by name.",
    "On the way, {hN} {saw} {a_aadj_animal} {romping} under {a_plant}.",
    "Every {day}, {a_seller} came to the {spot} to sell {foods}.",
    "{a_col_vehicle} went by, and {a_animal} ran after it.",
    "Past the {outside}, {plants} and {plants} grew beside {a_padj} path.",
)
CHAT = T(
    "Look! {a_aadj_animal} is {romping} by the {outside}!",
    "Every {day}, {gN} {moves} to the {place} and {cooks} {foods}.",
    "I like {foods}, but I love {foods}.",
    "Do you think {wilds} like {mass}?",
    "Everyone says that {wilds} {romp} at night.",
    "My {cloth} is {col}, and my {toy} is {col}.",
    "What are you {handling}?",
    "{a_animal} {romps} when it is happy, and it {romps} when it is sad.",
    "I am {playing}, and then I am {playing}. It's a busy day!",
    "My {animal} {handles} {objs} and hides them {inplace}.",
    "Who {romps} better, {wilds} or {wilds}?",
    "I am {handling} my {obj}. Do you want to help?",
    "{gN} {skills} better than anyone I know.",
    "My cousin {skills} every {day}, and I {skill} too.",
    "Are we {cooking} {foods} today?",
    "Who {sees} the {animal} first?",
    "Let's {move} to the {outside}!",
    "I love {seeing} {animals} in {season}.",
    "Can you {skill}? I am learning to {skill}.",
    "{wilds} are my favorite animals, but {wilds} are scary.",
    "Why do {wilds} {romp} so much?",
    "Please {handle} the {obj} {adv}.",
    "The {role} {cooks} {foods} every {day}, and the {role} {handles} {objs}.",
)
ACTIVITY = T(
    "{hN} {handled} the {obj} and put it in {hhis} bag.",
    "{fN} was {handling} {a_tadj_obj} when {hN} arrived.",
    "{hN} {moved} to the {place} and {cooked} {a_fadj_food}.",
    "While {gN} was {cooking} {foods}, {hN} was {handling} {objs}.",
    "{hN} {moved} home, {moving} past the {outside} and the {place}.",
    "{gN} played the {instrument}, and {hN} {played}.",
    "Someone {inplace} was playing {a_instrument}.",
    "{hN} {saw} {a_wild} in a picture book and wanted to draw it.",
    "{hN} {handled} {hhis} {objs}, and then {hhe} {handled} {hhis} {objs}.",
    "{a_role} went by, carrying {a_size_obj}.",
    "{fN} {skilled} while {hN} {handled} the {objs}.",
    "A band {atout} was playing {a_instrument}, {a_instrument} and {a_instrument}.",
    "{hN} stopped for a moment, {seeing} {a_aadj_animal} by the {outside}.",
    "After breakfast, {hN} {moved} to the {outside} because {hhe} wanted to {play}.",
    "Because it was {wadj}, {hN} wore {hhis} {col} {cloth}.",
    "{hN} was {good}, so {hhe} {played} all the way to the {place}.",
    "When {hN} got to the {place}, {fN} was already there.",
    "Before lunch, {hN} {handled} the {obj}, and after lunch {hhe} {handled} the {obj}.",
    "{fN} {moved} over as soon as {fhe} saw {hN}.",
)


def aside(s: Story, p: float = 0.5) -> list[str]:
    """Zero to two sentences about the place or what someone there is doing (more words, same story)."""
    if s.rng.random() >= p:
        return []
    return s.some(DESCRIBE, 0, 1) + s.some(ACTIVITY, 0, 1)


def chatter(s: Story, who: str = "h", p: float = 0.5) -> str | None:
    """Sometimes one present-tense line of small talk."""
    return s.say(who, s.rng.choice(CHAT)) if s.rng.random() < p else None
