"""Arcs about a problem to solve: a lost thing, a present that goes wrong, an animal in trouble."""

from __future__ import annotations

from engines.starter.grammar import POOLS, Story, T
from engines.starter.scenes import ENDINGS, FILLER, aside, chatter, setting
from engines.starter.words import plural

# --------------------------------------------------------------------------- lost thing

LOST_START = T(
    "{when}, {hN} wanted to play with {hhis} {tcol} {thing}.",
    "{when}, {hN} went to get {hhis} {tcol} {thing}.",
    "{when}, {hN} could not find {hhis} {tcol} {thing}.",
)
LOST_GONE = T(
    "But it was not {where}, where {hhe} always kept it.",
    "But when {hhe} looked {where}, it was gone.",
    "It was not {where}. It was not {where2} either.",
)
WHERE = T(
    "under the bed",
    "on the shelf",
    "in the box by the door",
    "behind the sofa",
    "in the backpack",
    "on the kitchen table",
    "by the window",
    "in the basket",
    "on the windowsill",
    "under the stairs",
    "in the toy box",
    "next to the lamp",
)
POOLS["wh"] = WHERE
LOST_LINES = T(
    "Where is my {thing}?",
    "Has anyone seen my {tcol} {thing}?",
    "Oh no! My {thing} is gone!",
    "I can't find my {thing} anywhere.",
    "My {thing} was right here this {tod}.",
)
LOST_SEARCH = T(
    "{hhe} looked under the {furniture} and behind the {furniture}.",
    "{hhe} looked {wh}, and then {wh}.",
    "{hN} {moved} to the {place} and looked all around.",
    "{hhe} searched {inroom}, but {hhe} only found {a_tadj_obj}.",
    "{hN} checked the {furniture}, the {furniture} and even the {furniture}.",
    "{fN} came to help, and together they looked {inroom}.",
    "{hN} asked {a_animal}, but it only {romped} and said nothing.",
)
LOST_ASK = T(
    "Have you seen my {thing}?",
    "Did you see {a_tcol_thing} anywhere?",
    "Can you help me find my {thing}?",
)
LOST_ANSWER = T(
    "I saw {a_animal} with something {tcol} near the {place}.",
    "No, but I will help you look.",
    "Did you look {inplace}?",
    "Things are often in the last place you look.",
    "Let's think. Where did you have it last?",
)
LOST_FOUND = T(
    "At last, {hN} found the {thing} {where3}.",
    "Then {hN} saw something {tcol} {where3}. It was the {thing}!",
    "{a_aadj_animal} was sitting on the {thing} {inroom}, keeping it warm.",
    "The {thing} had been in {hhis} pocket all along.",
    "{fN} had borrowed the {thing} and forgotten to give it back.",
)
LOST_END = T(
    "{hN} held the {thing} tight and smiled.",
    "From then on, {hhe} always put {hhis} {thing} back {where}.",
    "{hN} was so {good} that {hhe} {moved} all the way home.",
    "That night, the {tcol} {thing} slept right next to {hN}.",
)


def lost(s: Story) -> list[str]:
    s["where"], s["where2"], s["where3"] = s.rng.sample(WHERE, 3)  # where it is kept, not found, found
    return [
        setting(s),
        s.para(
            s.pick(LOST_START),
            s.pick(LOST_GONE),
            s.say("h", s.rng.choice(LOST_LINES), "sad"),
            s.maybe(0.5, T("{hN} felt {bad}.", "{hhis} eyes filled with tears.")),
        ),
        s.para(
            s.some(LOST_SEARCH, 2, 3),
            aside(s),
            s.say("h", s.rng.choice(LOST_ASK)),
            s.say("g", s.rng.choice(LOST_ANSWER), "reply"),
            s.maybe(0.3, FILLER),
        ),
        s.para(
            s.pick(LOST_FOUND),
            s.say("h", s.rng.choice(T("There you are!", "I found it!", "My {thing}!")), "happy"),
        ),
        s.para(s.some(LOST_END, 1, 2), s.maybe(0.5, ENDINGS)),
    ]


# --------------------------------------------------------------------------- making a gift

GIFT_START = T(
    "{when}, {hN} remembered that it was {gN}'s birthday.",
    "{when}, {hN} decided to make something special for {gN}.",
    "{gN} had been {bad} all week, so {hN} wanted to cheer {ghim} up.",
)
# Two kinds of present, each with its plan, what can go wrong (with its fix), and the result.
GIFT_KINDS = {
    "bake": (
        T("{hhe} would bake {a_fadj} {treat} pie.", "{hhe} decided to make a basket of {treats}."),
        (
            ("But there were no {treats} left in the kitchen.", "{hN} {moved} to the market to buy more {treats}."),
            ("But {hN} spilled the {mass} all over the floor.", "{hhe} cleaned up the mess and started over."),
            ("But {a_animal} ran off with the last {treat}.", "The {seller} at the corner gave {hhim} {num} more {treats}."),
            ("But the oven was too hot, and everything burned.", "{hhe} tried again, {softly} this time."),
        ),
        T("Soon the kitchen smelled of warm {treats}.", "At last, the basket was full, and it looked lovely."),
    ),
    "make": (
        T("{hhe} would paint a picture of {a_animal} {atout}.", "{hhe} wanted to make {a_col} card with {a_animal} on it."),
        (
            ("But the paint was dry, and the brush was broken.", "{fN} brought a new brush and a pot of {col} paint."),
            ("But {hN} spilled water all over the paper.", "{hhe} let it dry in the sun and started over."),
            ("But the {animal} in the picture looked more like {a_wild}.", "{hhe} laughed and added a tail and some whiskers."),
        ),
        T("At last, the present was ready. It was not perfect, but it was made with love.",
          "When it was finished, {hN} wrapped it in {col} paper and tied it with a ribbon."),
    ),
}  # fmt: skip
for _plans, _cases, _done in GIFT_KINDS.values():
    T(*(part for case in _cases for part in case))
GIFT_LINES = T(
    "I will make the best present in the world.",
    "{gN} will love it. I know what to do!",
    "This is going to be a surprise.",
)
GIFT_TRY = T(
    "{hhe} asked {fN} for help.",
    "{fN} came over as soon as {fhe} heard.",
    "{hN} took a deep breath.",
)
GIFT_HELP = T(
    "Let's do it together.",
    "Don't worry. We can fix it.",
    "You can do it. I will help you.",
    "Go slowly, and it will be fine.",
)
GIFT_END = T(
    "{gN} opened the present and smiled the biggest smile.",
    "{gN} gave {hN} a big hug.",
    "Everyone {inplace} heard about the present.",
    "{gN} said it was the best present {ghe} had ever had.",
)


GIFT_TREATS = T(
    "cookie", "cupcake", "muffin", "apple", "pear", "plum", "peach", "cherry", "strawberry", "biscuit"
)


def gift(s: Story) -> list[str]:
    s["treat"] = s.rng.choice(GIFT_TREATS)
    s["treats"] = plural(s["treat"])
    plans, cases, done = GIFT_KINDS[s.rng.choice(("bake", "make"))]
    problem, fix = s.rng.choice(cases)
    return [
        setting(s),
        s.para(s.pick(GIFT_START), s.pick(plans), s.say("h", s.rng.choice(GIFT_LINES), "happy")),
        s.para(s.s(problem), s.maybe(0.6, T("{hN} felt {bad}.", "{hN} sat down and sighed."))),
        s.para(s.some(GIFT_TRY, 1, 2), s.say("f", s.rng.choice(GIFT_HELP)), s.s(fix), chatter(s, "f", 0.3)),
        s.para(s.pick(done), s.some(GIFT_END, 1, 2), s.maybe(0.5, ENDINGS)),
    ]


# --------------------------------------------------------------------------- a new friend

NEW_START = T(
    "{when}, a new {fkind} came to the {spot}. {fhis} name was {fN}.",
    "{when}, {hN} saw {a_fkind} sitting alone {atspot}.",
    "{when}, {fN} moved into the house next door.",
)
NEW_SHY = T(
    "{fN} looked at the ground and did not say a word.",
    "{fN} hid behind {a_plant}.",
    "{fhe} {fwas} very shy and held {fhis} {thing} close.",
    "When {hN} waved, {fN} turned away.",
)
NEW_TRY = T(
    "{hN} sat down next to {fN} and waited.",
    "{hN} offered {fN} {a_fadj_treat}.",
    "{hN} showed {fN} how to {play}.",
    "{hN} rolled a ball to {fN}, {softly}.",
    "{hN} asked {fN} to play {game}.",
)
NEW_LINES = T(
    "Hello! My name is {hN}. Do you want to play?",
    "Would you like to share my {treats}?",
    "Do you like {toys}? I have {num} of them.",
    "It's fun {atspot}. I can show you around.",
)
NEW_REPLY = T(
    "Yes, please.",
    "I don't know anyone here.",
    "I like {toys} too!",
    "Can we play {game}?",
)
NEW_END = T(
    "Soon the two of them were laughing together.",
    "They played {game} until the sun went down.",
    "{fN} smiled for the first time that day.",
    "By evening, {hN} and {fN} were the best of friends.",
)


def new_friend(s: Story) -> list[str]:
    return [
        setting(s, friend=False),
        s.para(s.pick(NEW_START), s.some(NEW_SHY, 1, 2)),
        s.para(
            s.some(NEW_TRY, 1, 2),
            s.say("h", s.rng.choice(NEW_LINES)),
            s.say("f", s.rng.choice(NEW_REPLY), "reply"),
            chatter(s),
            chatter(s, "f"),
        ),
        s.para(s.some(NEW_END, 2, 3), s.maybe(0.5, ENDINGS)),
    ]


# --------------------------------------------------------------------------- helping an animal

HELP_START = T(
    "{when}, {hN} heard a small sound coming from behind the {hedge}.",
    "{when}, while {hN} was {playing} {atspot}, {hhe} heard a cry.",
    "{when}, {hN} and {fN} were walking home when they heard a little squeak.",
)
# (what is wrong, what the hero tries, how it ends)
HELP_CASES = (
    ("{a_pet} was stuck in the {hedge} and could not get out.",
     "{fN} held the branches apart while {hN} reached in {softly}.",
     "At last, the {pet} was free. It shook itself and ran off."),
    ("A baby {pet} had lost its mother and was crying.",
     "{hN} and {fN} looked for the mother {pet} {atout} and by the {outside}.",
     "Soon the mother {pet} came running and took the baby home."),
    ("{a_pet} had hurt its leg and could not walk.",
     "{hN} wrapped the leg {softly} in a clean cloth.",
     "{gN} and {hN} took care of the {pet} until it was well again."),
    ("{a_pet} was stuck high up in a tree and was too scared to climb down.",
     "{hN} brought a ladder, and {gN} held it steady.",
     "The {pet} jumped into {hN}'s arms, and everyone cheered."),
)  # fmt: skip
T(*(part for case in HELP_CASES for part in case))
HELP_TRY = T(
    "{hN} reached out {softly}, but it was too far.",
    "{hN} ran to get {gN}.",
    "{hN} spoke softly so the {pet} would not be scared.",
    "{hN} gave the {pet} some water and {a_fadj_food}.",
)
HELP_LINES = T(
    "Don't be scared, little {pet}. I will help you.",
    "We have to be very gentle.",
    "Hold still. We're almost there.",
)
HELP_END = T(
    "The next {day}, the {pet} came back to say thank you.",
    "After that, {hN} always said hello to the {pet} when {hhe} passed the {hedge}.",
)
_PETS = T("kitten", "puppy", "duck", "rabbit", "bird", "squirrel", "lamb", "hedgehog")
POOLS["hedge"] = T("hedge", "fence", "bushes", "old shed", "woodpile", "garden wall", "tall grass")


def help_animal(s: Story) -> list[str]:
    s["pet"] = s.rng.choice(_PETS)
    s["hedge"] = s.rng.choice(POOLS["hedge"])
    problem, attempt, rescue = s.rng.choice(HELP_CASES)
    return [
        setting(s),
        s.para(s.pick(HELP_START), s.s(problem)),
        s.para(s.some(HELP_TRY, 1, 2), s.say("h", s.rng.choice(HELP_LINES)), s.s(attempt)),
        s.para(s.s(rescue), s.maybe(0.5, HELP_END), s.maybe(0.6, ENDINGS)),
    ]
