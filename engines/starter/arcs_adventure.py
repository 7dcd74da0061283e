"""Arcs about small adventures: a sleepless night, cooking, a snow day, a treasure map, a fable."""

from __future__ import annotations

from engines.starter.grammar import POOLS, Story, T
from engines.starter.scenes import ENDINGS, aside, setting

# --------------------------------------------------------------------------- a night without sleep

NIGHT_START = T(
    "That night, {hN} could not sleep.",
    "It was late, and everyone in the house was asleep except {hN}.",
    "{hN} lay in bed with {hhis} eyes wide open.",
)
NIGHT_CAUSE = T(
    "Outside, something went {snd}, {snd}, {snd}.",
    "The wind was making the {window} creak.",
    "{hN} kept thinking about {fN} and the {thing}.",
    "The moon was so bright that the whole room looked silver.",
    "A shadow on the wall looked just like {a_wild}.",
)
NIGHT_TRY = T(
    "{hN} counted {animals}: one, two, three, four, five.",
    "{hN} hugged {hhis} {toy} and closed {hhis} eyes.",
    "{hN} tiptoed to the window and looked at the stars.",
    "{hhe} drank a glass of warm milk.",
    "{gN} came in and sat on the edge of the bed.",
    "{hN} listened to the clock go tick, tock, tick, tock.",
)
NIGHT_LINES = T(
    "I can't sleep.",
    "What is that noise?",
    "Will you tell me a story?",
    "Is it morning yet?",
)
NIGHT_COMFORT = T(
    "It's only the wind. Close your eyes, and I will stay a while.",
    "Let's think of something nice, like {foods} and sunny days.",
    "Once upon a time, there was a sleepy little {animal}...",
    "Everyone is safe and warm. You can rest now.",
)
NIGHT_END = T(
    "Soon {hN}'s eyes grew heavy.",
    "Before long, {hN} was fast asleep.",
    "{hN} yawned a big yawn and snuggled under the blanket.",
    "In the morning, {hN} did not remember falling asleep at all.",
)
POOLS["prepped"] = T("washed", "peeled", "sliced", "chopped", "counted", "weighed", "mashed", "rinsed")
POOLS["window"] = T("window", "door", "old gate", "roof", "floor")


def sleepless(s: Story) -> list[str]:
    s["snd"] = s.rng.choice(POOLS["sound"])
    return [
        setting(s, weather_p=0.0),
        s.para(s.pick(NIGHT_START), s.some(NIGHT_CAUSE, 1, 2), s.say("h", s.rng.choice(NIGHT_LINES), "sad")),
        s.para(s.some(NIGHT_TRY, 2, 3), s.say("g", s.rng.choice(NIGHT_COMFORT), "say")),
        s.para(s.some(NIGHT_END, 1, 2)),
    ]


# --------------------------------------------------------------------------- cooking together

DISHES = T(
    "pancakes", "vegetable soup", "a fruit salad", "banana bread", "cookies", "a pie", "a pizza", "muffins"
)
COOK_START = T(
    "{when}, {hN} and {gN} decided to make {dish}.",
    "{when}, {gN} said that {hN} could help make {dish} for dinner.",
    "{hN} was hungry, and {gN} had an idea: they would make {dish} together.",
)
COOK_STEPS = T(
    "First, they washed their hands.",
    "{hN} put on {a_col} apron.",
    "They found a big bowl, a wooden spoon and {num} eggs.",
    "{hN} {prepped} the {foods}, and {gN} {prepped} the {foods}.",
    "Then they added some {mass} and a little {mass}.",
    "{hN} stirred and stirred until everything was smooth.",
    "They put it in the oven and waited.",
)
COOK_TROUBLE = T(
    "Oops! {hN} dropped an egg on the floor.",
    "Oh no! There was flour on {hN}'s nose, on the table and even on the cat.",
    "The bowl tipped over, and {mass} went everywhere.",
    "{hN} added too much salt by mistake.",
)
COOK_LINES = T(
    "Oops! Sorry!",
    "Is it ready yet?",
    "It smells so good!",
    "Can I taste it?",
)
COOK_REPLY = T(
    "Never mind. We can clean it up.",
    "Not yet. Good things take time.",
    "Everybody makes a mess when they cook.",
    "Just a little taste.",
)
COOK_END = T(
    "At last, the {dish} was ready, and it was delicious.",
    "They ate every bite and shared the rest with {fN}.",
    "The kitchen was a mess, but {hN} was very proud.",
    "{hN} said that next time {hhe} would cook all by {hself}.",
)


def cooking(s: Story) -> list[str]:
    s["dish"] = s.rng.choice(DISHES)
    talk = s.rng.randrange(len(COOK_LINES))  # a question and its own answer
    return [
        setting(s),
        s.para(s.pick(COOK_START), s.some(COOK_STEPS, 2, 4)),
        s.para(
            s.pick(COOK_TROUBLE),
            s.say("h", COOK_LINES[talk]),
            s.say("g", COOK_REPLY[talk], "reply"),
        ),
        s.para(s.some(COOK_END, 1, 3), s.maybe(0.5, ENDINGS)),
    ]


# --------------------------------------------------------------------------- a snow day

SNOW_START = T(
    "When {hN} woke up, the whole world was white.",
    "{when}, it snowed and snowed, and school was closed.",
    "Overnight, the snow had covered the {outside}, the trees and the roofs.",
)
SNOW_PLAY = T(
    "{hN} put on {hhis} boots, {hhis} coat, {hhis} hat and {hhis} {col} mittens.",
    "{hN} and {fN} rolled a big ball of snow, then a smaller one, and then a tiny one.",
    "They gave the snowman a carrot nose, two pebble eyes and an old {cloth}.",
    "They made angels in the snow and laughed until their cheeks were pink.",
    "{fN} threw a snowball, and it landed right on {hN}'s hat.",
    "They pulled the sled up the hill and raced all the way down.",
)
# (what goes wrong, what the hero shouts)
SNOW_PROBLEMS = (
    ("But the sun came out, and the snowman began to melt.", "Oh no! Our snowman!"),
    ("But {hN}'s fingers got so cold that {hhe} could not feel them.", "Brr! My fingers are frozen!"),
    ("But halfway down the hill, the sled hit a bump, and {hN} tumbled into the snow.", "Whoops!"),
    ("Then a big dog ran past and knocked the snowman's head off.", "Come back with that carrot!"),
)
T(*(part for pair in SNOW_PROBLEMS for part in pair))
SNOW_END = T(
    "Back inside, {gN} made hot chocolate, and they warmed their toes by the fire.",
    "They laughed and brushed the snow off their coats.",
    "{hN} decided that snow days were the best days of all.",
    "That night, {hN} looked out the window and hoped it would snow again tomorrow.",
)


def snow_day(s: Story) -> list[str]:
    s.set_weather("snowy")
    problem, shout = s.rng.choice(SNOW_PROBLEMS)
    return [
        setting(s, weather_p=0.0),
        s.para(s.pick(SNOW_START), s.some(SNOW_PLAY, 2, 4)),
        s.para(s.s(problem), s.say("h", shout, "loud")),
        s.para(s.some(SNOW_END, 1, 2), s.maybe(0.4, ENDINGS)),
    ]


# --------------------------------------------------------------------------- a treasure map

MAP_START = T(
    "{when}, {hN} found an old map inside a book about {wilds}.",
    "{when}, a folded note fell out of {hN}'s favorite book. It was a map!",
    '{when}, {fN} came running with a piece of paper. "Look, a treasure map!"',
)
MAP_CLUES = T(
    "The map showed a path to the {outside}, {a_psize_plant} and a big red X.",
    "Under the X, someone had written: walk {num} steps from the {landmark}.",
    "They took a compass, a shovel and some {foods} for the way.",
    "They followed the path past the {outside} and over the {landmark}.",
    "{hN} turned the map around and around.",
)
MAP_PROBLEM = T(
    "But the map was old, and part of it was torn.",
    "But when they got there, there were {num} old trees, and they all looked the same.",
    "But then it started to get dark.",
)
MAP_LINES = T(
    "Which way now?",
    "I think it's this way!",
    "We must be close.",
    "Let's look again.",
)
MAP_FIND = T(
    "At last, {hN}'s shovel hit something hard. It was a little wooden box.",
    "Under a flat stone, they found a rusty tin.",
    "Behind the {landmark}, in a hole in the ground, there was a small chest.",
)
MAP_INSIDE = T(
    "Inside there were {num} shiny buttons, a marble and a note that said: you found it!",
    "Inside was {a_tadj_obj} and a letter from {gN}, who had made the map for them.",
    "Inside there was nothing but {objs}, but to {hN} it was real treasure.",
)
POOLS["landmark"] = T("old well", "big rock", "wooden bridge", "broken fence", "tall oak", "little stream")


def treasure(s: Story) -> list[str]:
    s["tospot"] = "to the " + s["spot"]
    s["landmark"] = s.rng.choice(POOLS["landmark"])
    return [
        setting(s),
        s.para(s.pick(MAP_START), s.some(MAP_CLUES, 2, 3)),
        s.para(
            s.pick(MAP_PROBLEM),
            s.say("f", s.rng.choice(MAP_LINES)),
            s.say("h", s.rng.choice(MAP_LINES)),
            aside(s, 0.3),
        ),
        s.para(s.pick(MAP_FIND), s.pick(MAP_INSIDE), s.maybe(0.5, ENDINGS)),
    ]


# --------------------------------------------------------------------------- a fable

FABLES = (
    ("proud", "{hN} liked to tell everyone that {hhe} {hwas} the fastest {hkind} {atspot}.",
     "One day {fN} asked for a race, and {hN} laughed, but {hhe} stopped to nap halfway and lost.",
     "After that, {hN} never boasted again.",
     "Slow and steady can win the race."),
    ("greedy", "{hN} always wanted more {treats} than anyone else.",
     "{hhe} stuffed so many {treats} into {hhis} bag that it split, and they rolled into the river.",
     "{hN} learned that enough is plenty.",
     "It is better to share than to keep everything for yourself."),
    ("lazy", "All summer, {fN} gathered food, but {hN} only {played} in the sun.",
     "When the cold came, {hN} had nothing to eat and had to knock on {fN}'s door.",
     "The next summer, {hN} worked hard and saved food for the winter.",
     "Work today makes a warm winter."),
    ("unkind", "{hN} laughed at {fN} because {fhe} {fwas} so small.",
     "But one day {hN} was caught in a net, and little {fN} chewed through the rope and set {hhim} free.",
     "{hN} never laughed at a small friend again.",
     "Even a small friend can be a great help."),
)  # fmt: skip
T(*(part for fable in FABLES for part in fable))


def fable(s: Story) -> list[str]:
    s["fable"], habit, fall, after, lesson = s.rng.choice(FABLES)
    return [
        setting(s, weather_p=0.3),
        s.para(s.s(habit), s.maybe(0.5, T("{fN} did not say much, but {fhe} watched."))),
        s.para(
            s.s(fall),
            s.say("h", s.rng.choice(T("I was wrong.", "I'm sorry.", "Thank you, my friend.")), "sad"),
        ),
        s.para(s.s(after), s.say("g", lesson)),
    ]
