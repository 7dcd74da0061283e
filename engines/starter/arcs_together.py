"""Arcs about being with others: a birthday party, and getting lost and found again."""

from __future__ import annotations

from engines.starter.grammar import POOLS, Story, T, at_place
from engines.starter.scenes import ENDINGS, aside, chatter, setting
from engines.starter.words import OUTINGS

# --------------------------------------------------------------------------- a birthday party

PARTY_START = T(
    "{when}, it was {hN}'s birthday. {hhe} {hwas} {age} years old!",
    "{hN} woke up very early, because today was {hhis} birthday.",
    "{hN} had been counting the days. At last, it was {hhis} birthday party.",
)
PARTY_READY = T(
    "{gN} hung {col} and {col} balloons all over the {room}.",
    "They baked a big cake with {age} candles on top.",
    "{hN} helped put out plates of {foods}, {foods} and {mass}.",
    "{fN} came first, with a present wrapped in {col} paper.",
    "Soon the {room} was full of friends, and everyone was talking at once.",
)
PARTY_PROBLEM = T(
    "But when it was time for cake, the cake was gone!",
    "But then the wind blew the balloons away, one by one.",
    "But {hN}'s best friend, {fN}, was not there yet.",
    "But the {animal} from next door ran in and jumped onto the table.",
)
PARTY_LINES = T(
    "Where did it go?",
    "Come back, balloons!",
    "Where is {fN}? The party can't start without {fhim}.",
    "Oh no! Not the table!",
)
PARTY_FIX = T(
    "They looked everywhere. Then they saw crumbs on the dog's nose.",
    "Everyone ran outside and caught the balloons in the garden.",
    "Just then, the door opened. It was {fN}, out of breath, with a big box.",
    "Everyone laughed so hard that nobody minded the mess.",
)
PARTY_FUN = T(
    "They played {game}, and {fN} won.",
    "They sang happy birthday, and {hN} blew out the candles in one big breath.",
    "{hN} opened {hhis} presents: {a_tadj_toy}, {a_col_cloth} and a book about {wilds}.",
    "Everyone danced until they were dizzy.",
)
PARTY_END = T(
    "That night, {hN} said it was the best birthday ever.",
    "When everyone had gone home, {hN} hugged {gN} and said thank you.",
    "{hN} fell asleep with a party hat still on {hhis} head.",
)


def party(s: Story) -> list[str]:
    s["age"] = s.rng.choice(("five", "six", "seven", "eight", "nine", "ten"))
    s["room"] = s.rng.choice(("kitchen", "living room", "garden", "hall"))
    line = s.rng.randrange(len(PARTY_PROBLEM))  # each problem has its own shout and its own fix
    return [
        setting(s, weather_p=0.5),
        s.para(s.pick(PARTY_START), s.some(PARTY_READY, 2, 3)),
        s.para(s.s(PARTY_PROBLEM[line]), s.say("h", PARTY_LINES[line], "loud"), s.s(PARTY_FIX[line])),
        s.para(s.some(PARTY_FUN, 2, 3), chatter(s, "f", 0.3), s.pick(PARTY_END)),
    ]


# --------------------------------------------------------------------------- lost and found

LOST_WAY_START = T(
    "{when}, {hN} and {gN} went to the {spot}.",
    "{when}, {gN} took {hN} to the busy {spot}.",
    "{when}, {hN} went with {gN} to see the {spot}.",
)
LOST_WAY_DRIFT = T(
    "{hN} saw {a_aadj_animal} and followed it.",
    "{hN} stopped to look at {a_col_obj}.",
    "{hN} chased {a_col} butterfly past {a_psize_plant}.",
    "{hN} walked on and on, looking at the {flowers}.",
)
LOST_WAY_ALONE = T(
    "When {hhe} looked up, {gN} was gone.",
    "Then {hN} turned around. Nobody was there.",
    "Everything looked strange. Which way was home?",
)
LOST_WAY_LINES = T(
    "Hello? Where are you?",
    "I want to go home.",
    "I think I am lost.",
)
LOST_WAY_SMART = T(
    "{hN} remembered what {gN} always said: if you get lost, stay where you are.",
    "{hN} sat down on a bench and did not wander any farther.",
    '{hN} found {a_role} and said, "I am lost. Can you help me?"',
    "{hN} took a deep breath. Crying would not help.",
    "{hN} called {gN}'s name as loud as {hhe} could.",
)
LOST_WAY_FOUND = T(
    "Soon {hN} heard a voice calling {hhis} name. It was {gN}!",
    "A few minutes later, {gN} came hurrying along the path.",
    "A kind {role} helped {hhim} look, and soon they saw {gN} waving.",
)
LOST_WAY_END = T(
    "{gN} gave {hN} the biggest hug.",
    '"You did the right thing," said {gN}.',
    "After that, {hN} always held {gN}'s hand in busy places.",
)


def lost_way(s: Story) -> list[str]:
    s["spot"] = s.rng.choice(OUTINGS)
    s["atspot"] = at_place(s["spot"])
    s["role"] = s.rng.choice(POOLS["role"])
    return [
        setting(s),
        s.para(s.pick(LOST_WAY_START), aside(s, 0.5), s.some(LOST_WAY_DRIFT, 1, 2), s.pick(LOST_WAY_ALONE)),
        s.para(s.say("h", s.rng.choice(LOST_WAY_LINES), "sad"), s.some(LOST_WAY_SMART, 2, 3)),
        s.para(s.pick(LOST_WAY_FOUND), s.some(LOST_WAY_END, 1, 2), s.maybe(0.4, ENDINGS)),
    ]
