"""Arcs about learning: growing a garden, and a walk full of questions and answers."""

from __future__ import annotations

from engines.starter.grammar import Story, T
from engines.starter.scenes import ENDINGS, aside, setting
from engines.starter.words import plural

# --------------------------------------------------------------------------- a garden

CROPS = T("sunflower", "bean", "pumpkin", "tomato", "carrot", "strawberry", "pea", "radish", "lettuce")
T(*(plural(crop) for crop in CROPS))
GARDEN_START = T(
    "{when}, {gN} gave {hN} a little packet of {crop} seeds.",
    "{when}, {hN} found {num} {crop} seeds in an old jar.",
    "{hN} wanted to grow {crops}, so {hhe} asked {gN} for some seeds.",
)
GARDEN_PLANT = T(
    "{hhe} dug a row of small holes {atspot} and dropped one seed into each.",
    "{hN} covered the seeds with soil and patted it down {softly}.",
    "{hN} watered them with {hhis} {col} watering can.",
    "{fN} made a little sign that said {crops} in big {col} letters.",
)
GARDEN_PROBLEM = T(
    "But the next morning, {num} hungry birds were pecking at the soil.",
    "But days went by, and nothing grew at all.",
    "But it did not rain for a whole week, and the ground was dry and hard.",
    "Then a snail came and nibbled the first tiny leaves.",
)
GARDEN_LINES = T(
    "Why won't my {crops} grow?",
    "Go away, birds! Those are my seeds!",
    "Maybe I did something wrong.",
)
GARDEN_ADVICE = T(
    "Plants take time. You have to be patient.",
    "Give them water every morning, and they will grow.",
    "Let's make a scarecrow to keep the birds away.",
)
GARDEN_TRY = T(
    "{hN} watered the seeds every {time}.",
    "{hN} and {fN} made a scarecrow with an old {cloth} and a hat full of straw.",
    "{hN} moved the snail {softly} to the other side of the garden.",
    "{hN} sat by the garden and waited, and waited, and waited.",
)
GARDEN_GROW = T(
    "One {time}, a tiny green shoot poked out of the ground.",
    "Slowly the plants grew taller and taller, until they were as tall as {hN}.",
    "By the end of {season}, there were {crops} everywhere.",
)
GARDEN_END = T(
    "{hN} picked the biggest one and gave it to {gN}.",
    "They shared the {crops} with all the neighbors.",
    "{hN} saved some seeds for next year.",
)


def garden(s: Story) -> list[str]:
    s["crop"] = s.rng.choice(CROPS)
    s["crops"] = plural(s["crop"])
    return [
        setting(s),
        s.para(s.pick(GARDEN_START), s.some(GARDEN_PLANT, 2, 3)),
        s.para(
            s.pick(GARDEN_PROBLEM),
            s.say("h", s.rng.choice(GARDEN_LINES), "sad"),
            s.say("g", s.rng.choice(GARDEN_ADVICE), "reply"),
            s.some(GARDEN_TRY, 1, 2),
        ),
        s.para(s.some(GARDEN_GROW, 1, 2), s.some(GARDEN_END, 1, 2), s.maybe(0.5, ENDINGS)),
    ]


# --------------------------------------------------------------------------- questions on a walk

QUESTIONS = (
    ("Why do birds build nests?", "To keep their eggs and their babies safe and warm."),
    ("Where does the sun go at night?", "It is shining on the other side of the world."),
    ("Why do leaves fall in autumn?", "The trees rest in winter, so they let their old leaves go."),
    ("Why do bees visit flowers?", "They drink the sweet juice inside and carry yellow dust from one flower to the next."),
    ("Why is the sea salty?", "Rivers carry tiny bits of salt from the rocks down into the sea."),
    ("Where do frogs come from?", "They start as eggs in a pond. Then they turn into tadpoles, and then into frogs."),
    ("Why do cats purr?", "Most of the time, a cat purrs because it feels happy and safe."),
    ("How do fish breathe under the water?", "They take air out of the water with their gills."),
    ("Why does the moon change its shape?", "The sun lights up a different part of it each night."),
    ("What makes a rainbow?", "Sunlight shines through drops of rain and splits into many colors."),
    ("Why do we need to sleep?", "Sleep helps our bodies rest and grow."),
    ("Where does snow come from?", "When clouds are very cold, the water in them freezes into snowflakes."),
    ("Why do owls stay awake at night?", "They hunt in the dark, and they can see well without much light."),
    ("How does a seed grow?", "It needs soil, water and sunshine. Then a little root pushes out."),
    ("Why do dogs wag their tails?", "Most of the time it means they are glad to see you."),
    ("What is thunder?", "It is the loud sound that comes after lightning."),
    ("Why do squirrels hide nuts?", "They save them for winter, when food is hard to find."),
    ("Where do butterflies come from?", "A caterpillar wraps itself up, and later it comes out with wings."),
    ("Why do ducks stay dry in the water?", "Their feathers have a little oil on them, so the water rolls off."),
    ("Why is grass green?", "Leaves and grass are full of something green that helps them use sunlight."),
    ("Where does rain go?", "It soaks into the ground, runs into rivers, and at last flows into the sea."),
    ("Why do we have teeth?", "We need them to bite and chew our food."),
    ("How do spiders make webs?", "They spin thin, strong threads from their own bodies."),
    ("Why do some animals sleep all winter?", "There is not much food in winter, so they sleep until spring."),
)  # fmt: skip
T(*(part for pair in QUESTIONS for part in pair))
ASK_START = T(
    "{when}, {hN} went for a walk with {gN}.",
    "{when}, {gN} took {hN} for a long walk {atout}.",
    "{when}, {hN} sat with {gN} {atspot}.",
)
ASK_CURIOUS = T(
    "{hN} had a lot of questions that day.",
    "{hN} was full of questions.",
    "{hN} looked at everything and wanted to know about it all.",
)
ASK_BETWEEN = T(
    "They walked on a little farther.",
    "{hN} thought about that for a while.",
    "{a_animal} crossed the path in front of them.",
    "{hN} picked up {a_tadj_obj} from the ground and looked at it.",
    "Then {hN} had another question.",
)
ASK_END = T(
    "You ask so many questions!",
    "You will know everything one day.",
    "That's enough questions for one day.",
)
ASK_LAST = T(
    "That's how I learn.",
    "I have one more question tomorrow.",
    "I like learning new things.",
)


def questions(s: Story) -> list[str]:
    pairs = s.rng.sample(QUESTIONS, s.rng.randint(2, 4))
    talk: list[str] = []
    for i, (q, a) in enumerate(pairs):
        if i:
            talk.append(s.pick(ASK_BETWEEN))
        talk += [s.say("h", q), s.say("g", a, "reply")]
    return [
        setting(s),
        s.para(s.pick(ASK_START), aside(s), s.pick(ASK_CURIOUS)),
        s.para(talk),
        s.para(
            s.say("g", s.rng.choice(ASK_END), "happy"),
            s.say("h", s.rng.choice(ASK_LAST), "reply"),
            s.maybe(0.5, ENDINGS),
        ),
    ]
