"""Arcs about growing up: a spoiled plan, a fear, a contest, a quarrel, a trip."""

from __future__ import annotations

from engines.starter.grammar import POOLS, Story, T, at_place
from engines.starter.scenes import ENDINGS, FILLER, aside, chatter, setting
from engines.starter.words import OUTINGS

# --------------------------------------------------------------------------- a plan spoiled by weather

PLAN_START = T(
    "{when}, {hN} and {fN} planned a picnic {atspot}.",
    "{hN} had waited all week for the trip {tospot}.",
    "{when}, {hN} packed {a_basket} with {foods}, {mass} and {a_fadj_food}.",
)
PLAN_TURN = T(
    "But just as they were ready to go, dark clouds filled the sky and rain began to pour.",
    "But then the wind began to blow, and the rain came down hard.",
    "But when {hN} opened the door, {hhe} saw that it was raining.",
    "Then thunder rumbled, and big drops of rain began to fall.",
)
PLAN_LINES = T(
    "Now we can't go {tospot}.",
    "This is the worst day ever.",
    "Why does it always rain when I have a plan?",
)
PLAN_IDEA = T(
    "Why don't we have the picnic inside?",
    "We can build a tent out of blankets.",
    "Let's play {game} until the rain stops.",
    "Rain is good for the {plants}, you know.",
)
PLAN_INSIDE = T(
    "They spread a blanket on the floor and ate {foods} and {mass}.",
    "They built a tent with {num} chairs and an old blanket.",
    "They played {game}, and then they played {game}.",
    "{gN} made hot cocoa, and they listened to the rain on the roof.",
    "{hN} drew a picture of the {spot}, and {fN} colored it {col}.",
)
PLAN_END = T(
    "When the rain stopped, a rainbow appeared over the {outside}.",
    "In the end, it was the best picnic they ever had.",
    "The next day the sun came out, and they went {tospot} after all.",
)


def spoiled_plan(s: Story) -> list[str]:
    s["spot"] = s.rng.choice(OUTINGS)
    s["atspot"] = at_place(s["spot"])
    s.set_weather(s.rng.choice(("rainy", "stormy")))
    s["tospot"] = "to the " + s["spot"]
    return [
        setting(s, weather_p=0.0),
        s.para(s.pick(PLAN_START), s.pick(PLAN_TURN), s.say("h", s.rng.choice(PLAN_LINES), "sad")),
        s.para(s.say("g", s.rng.choice(PLAN_IDEA)), s.some(PLAN_INSIDE, 2, 3), chatter(s, "f")),
        s.para(s.pick(PLAN_END), s.maybe(0.6, ENDINGS)),
    ]


# --------------------------------------------------------------------------- a fear

FEARS = (
    ("the dark", "the lights went out", "The dark is just the same room with the lights off."),
    ("thunder", "thunder boomed over the house", "Thunder is only the sound that lightning makes."),
    ("deep water", "it was time to swim in the lake", "The water will hold you up if you stay calm."),
    ("the big dog next door", "the big dog barked at the gate", "That dog barks because it wants to play."),
    ("the tall slide", "it was time to go down the tall slide", "I will be right here at the bottom."),
    ("the first day of school", "it was the first day of school", "Everyone is a little scared on the first day."),
)  # fmt: skip
T(*(part for fear in FEARS for part in fear))
FEAR_START = T(
    "{hN} was afraid of {fear}.",
    "There was one thing {hN} did not like at all: {fear}.",
    "{hN} was brave about most things, but not about {fear}.",
)
FEAR_MOMENT = T(
    "{when}, {moment}. {hN} hid under {a_blanket} and shook.",
    "{when}, {moment}. {hN}'s heart beat fast.",
    "{when}, {moment}, and {hN} wanted to run away.",
)
FEAR_LINES = T(
    "I'm scared.",
    "I can't do it.",
    "Please don't make me.",
)
FEAR_STEP = T(
    "{gN} held {hhis} hand, and they counted to {num} together.",
    "{hN} took a deep breath, and then another one.",
    "{fN} went first to show that it was safe.",
    "{hN} thought about {foods} and {toys}, and that helped a little.",
    "{hN} took one small step, and then one more.",
)
FEAR_END = T(
    "It was not so bad after all.",
    "{hN} felt proud of {hself}.",
    "{hN} was still a little scared, but {hhe} {hwas} brave.",
    "The next time, {hN} was not afraid at all.",
)


def fear(s: Story) -> list[str]:
    what, moment, comfort = s.rng.choice(FEARS)
    s["fear"], s["moment"] = what, moment
    if what == "thunder":
        s.set_weather("stormy")
    return [
        setting(s),
        s.para(s.pick(FEAR_START), s.pick(FEAR_MOMENT), s.say("h", s.rng.choice(FEAR_LINES), "sad")),
        s.para(s.say("g", comfort), s.some(FEAR_STEP, 2, 3)),
        s.para(s.some(FEAR_END, 1, 2), s.maybe(0.6, ENDINGS)),
    ]


# --------------------------------------------------------------------------- a contest

CONTESTS = T(
    "a race", "a singing contest", "a kite contest", "a baking contest", "a dance show", "a drawing contest"
)
CONTEST_START = T(
    "{when}, there was {contest} {atspot}.",
    "Everyone {atspot} was talking about {contest}.",
    "{hN} wanted to win {contest} more than anything.",
)
CONTEST_PRACTICE = T(
    "Every day, {hN} practiced {adv}.",
    "{hN} practiced in the morning and again in the evening.",
    "{fN} helped {hN} practice {inplace}.",
    "{hN} practiced until {hhis} {body} were tired.",
)
CONTEST_LINES = T(
    "What if I make a mistake?",
    "I am so nervous.",
    "I hope I can do it.",
)
CONTEST_ADVICE = T(
    "Just do your best and have fun.",
    "Everybody makes mistakes. That's how we learn.",
    "You have practiced so much. You are ready.",
)
CONTEST_DAY = T(
    "On the big day, {num} {animals} and {num} children came to watch.",
    "When it was {hN}'s turn, the crowd went quiet.",
    "{hN} took a deep breath and began.",
    "Halfway through, {hN} slipped, but {hhe} got up and kept going.",
)
CONTEST_WIN = T(
    "{hN} won first prize, a shiny {col} ribbon!",
    "{hN} came in second, and {hhe} {hwas} very proud.",
    "{hN} did not win, but {hhe} had the most fun of all.",
    "{fN} won, and {hN} cheered the loudest.",
)


def contest(s: Story) -> list[str]:
    s["contest"] = s.rng.choice(CONTESTS)
    s["spot"] = s.rng.choice(OUTINGS)
    s["atspot"] = at_place(s["spot"])
    return [
        setting(s),
        s.para(s.pick(CONTEST_START), aside(s), s.some(CONTEST_PRACTICE, 1, 2)),
        s.para(
            s.say("h", s.rng.choice(CONTEST_LINES), "sad"), s.say("g", s.rng.choice(CONTEST_ADVICE), "reply")
        ),
        s.para(s.some(CONTEST_DAY, 2, 3), s.pick(CONTEST_WIN), s.maybe(0.5, ENDINGS)),
    ]


# --------------------------------------------------------------------------- a quarrel

FIGHT_START = T(
    "{when}, {hN} and {fN} both wanted the {tcol} {thing}.",
    "{when}, {fN} took {hN}'s {thing} without asking.",
    "{hN} and {fN} were playing {game} {atspot} when they began to argue.",
)
FIGHT_LINES = T(
    "It's mine! I had it first.",
    "You never share!",
    "Give it back!",
    "That's not fair!",
)
FIGHT_APART = T(
    "{hN} stomped off to the {place}, and {fN} went home.",
    "They sat far apart and did not speak.",
    "Playing alone was not much fun.",
    "{hN} tried to play {game} alone, but it was boring.",
)
FIGHT_FIX = T(
    "We could take turns.",
    "I'm sorry. Let's play together.",
    "What if we share it?",
    "I missed you.",
)
FIGHT_END = T(
    "So they took turns, and each of them had a go with the {thing}.",
    "They shook hands and played together until it was time for {mass}.",
    "After that, sharing did not seem so hard.",
    "Playing together was twice as much fun.",
)


def quarrel(s: Story) -> list[str]:
    return [
        setting(s),
        s.para(
            s.pick(FIGHT_START),
            s.say("h", s.rng.choice(FIGHT_LINES), "loud"),
            s.say("f", s.rng.choice(FIGHT_LINES), "loud"),
        ),
        s.para(s.some(FIGHT_APART, 2, 3), aside(s), s.maybe(0.3, FILLER)),
        s.para(
            s.say(s.rng.choice(("h", "f")), s.rng.choice(FIGHT_FIX)),
            s.some(FIGHT_END, 1, 2),
            s.maybe(0.5, ENDINGS),
        ),
    ]


# --------------------------------------------------------------------------- a trip

TRIP_START = T(
    "{when}, {gN} took {hN} {tospot}.",
    "{when}, {hN} and {gN} went on a trip {tospot}.",
    "{hN} woke up early on {day}, because {gN} was taking {hhim} {tospot}.",
)
TRIP_WAY = T(
    "They went by {vehicle}, and {hN} looked out the window the whole way.",
    "On the way, they {saw} {a_aadj_animal} and {num} {animals}.",
    "They passed {a_padj_place} and a field of {plants}.",
    "{hN} counted {num} {vehicles} and {num} {animals} on the way.",
)
TRIP_SEE = T(
    "{atspot}, {hN} {saw} {a_col_obj}, {a_aadj_animal} and {a_psize_plant}.",
    "There were {num} {animals} and {a_seller} selling {foods}.",
    "They bought {a_fadj_food} and shared it {gladly}.",
    "{hN} {played} and {played} until {hhe} {hwas} out of breath.",
    "In the gift shop, {hN} {saw} a picture of {a_wild} and a book about {wilds}.",
    "{gN} showed {hN} how to {skill}.",
)
TRIP_TROUBLE = T(
    "Suddenly, the wind took {hN}'s {cloth} and carried it away!",
    "Then {hN} dropped {hhis} {food}, and {a_animal} ate it.",
    "For a moment, {hN} could not see {gN} anywhere.",
)
TRIP_END = T(
    "They went home tired and happy.",
    "On the way home, {hN} fell asleep.",
    "{hN} wanted to come back {tospot} every {day}.",
)


TRIP_ASK = T("Can we come back soon?", "Of course we can.")


def trip(s: Story) -> list[str]:
    s["spot"] = s.rng.choice(OUTINGS)
    s["atspot"] = at_place(s["spot"])
    s["tospot"] = "to the " + s["spot"]
    return [
        setting(s),
        s.para(s.pick(TRIP_START), s.some(TRIP_WAY, 1, 2)),
        s.para(
            aside(s, 0.8),
            s.some(TRIP_SEE, 2, 3),
            chatter(s),
            s.maybe(0.5, TRIP_TROUBLE),
            s.maybe(0.5, FILLER),
        ),
        s.para(s.say("h", TRIP_ASK[0]), s.say("g", TRIP_ASK[1], "reply"), s.pick(TRIP_END)),
    ]


POOLS["basket"] = T("basket", "bag", "box", "backpack")
POOLS["blanket"] = T("blanket", "pillow", "table", "bed")
