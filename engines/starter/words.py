"""Word lists and English inflection for the story grammar in :mod:`engines.starter.corpus`.

All lists are hand-written, common, child-level English. Each list is a tuple in a fixed order
(never a set) so that a seeded ``random.Random`` picks the same words on every machine.
Verbs are written ``base`` or ``base:past`` when the past tense is irregular; the other forms
(``-s``, ``-ing``, regular ``-ed``) follow the spelling rules below.
"""

from __future__ import annotations


def _w(text: str) -> tuple[str, ...]:
    """Split a block of words on whitespace, keeping order (``_`` stands for a space)."""
    return tuple(word.replace("_", " ") for word in text.split())


# --------------------------------------------------------------------------- inflection

_VOWELS = "aeiou"
_IRREGULAR_PLURALS = {
    "mouse": "mice", "goose": "geese", "sheep": "sheep", "fish": "fish", "deer": "deer",
    "child": "children", "man": "men", "woman": "women", "tooth": "teeth", "foot": "feet",
    "leaf": "leaves", "loaf": "loaves", "knife": "knives", "wolf": "wolves", "scarf": "scarves",
    "shelf": "shelves", "calf": "calves", "potato": "potatoes", "tomato": "tomatoes",
    "mango": "mangoes", "moose": "moose", "person": "people", "half": "halves", "ox": "oxen",
}  # fmt: skip
# "an" before a vowel sound, "a" before a consonant sound, whatever the first letter says.
_AN_WORDS = ("hour", "honest", "honor", "heir")
_A_WORDS = ("uni", "use", "usu", "euro", "one", "once", "ukulele", "utensil")


def article(word: str) -> str:
    """``a`` or ``an`` for the phrase starting with ``word`` (by sound: an hour, a unicorn)."""
    w = word.lower()
    if w.startswith(_AN_WORDS):
        return "an"
    if w.startswith(_A_WORDS):
        return "a"
    return "an" if w[:1] in _VOWELS else "a"


def plural(noun: str) -> str:
    """Plural of a noun (last word of a phrase): box -> boxes, puppy -> puppies, mouse -> mice."""
    head, _, last = noun.rpartition(" ")
    if last in _IRREGULAR_PLURALS:
        out = _IRREGULAR_PLURALS[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        out = last + "es"
    elif last.endswith("y") and last[-2:-1] not in _VOWELS:
        out = last[:-1] + "ies"
    else:
        out = last + "s"
    return f"{head} {out}" if head else out


def _doubles(verb: str) -> bool:
    """One-syllable consonant-vowel-consonant verbs double their last letter: stop -> stopped."""
    groups = sum(1 for i, c in enumerate(verb) if c in _VOWELS and (i == 0 or verb[i - 1] not in _VOWELS))
    return (
        groups == 1
        and len(verb) >= 3
        and verb[-1] not in _VOWELS + "wxy"
        and verb[-2] in _VOWELS
        and verb[-3] not in _VOWELS
    )


def third(verb: str) -> str:
    """Third person singular present: play -> plays, fix -> fixes, carry -> carries, go -> goes."""
    first, _, rest = verb.partition(" ")
    if first == "have":
        out = "has"
    elif first.endswith(("s", "x", "z", "ch", "sh", "o")):
        out = first + "es"
    elif first.endswith("y") and first[-2] not in _VOWELS:
        out = first[:-1] + "ies"
    else:
        out = first + "s"
    return f"{out} {rest}" if rest else out


def ing(verb: str) -> str:
    """Present participle: make -> making, run -> running, tie -> tying, see -> seeing."""
    first, _, rest = verb.partition(" ")
    if first.endswith("ie"):
        out = first[:-2] + "ying"
    elif first.endswith("e") and not first.endswith(("ee", "ye", "oe")) and len(first) > 2:
        out = first[:-1] + "ing"
    elif _doubles(first):
        out = first + first[-1] + "ing"
    else:
        out = first + "ing"
    return f"{out} {rest}" if rest else out


def regular_past(verb: str) -> str:
    """Past tense by rule: bake -> baked, carry -> carried, hop -> hopped, play -> played."""
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in _VOWELS:
        return verb[:-1] + "ied"
    if _doubles(verb):
        return verb + verb[-1] + "ed"
    return verb + "ed"


def verb_forms(entry: str) -> tuple[str, str, str, str]:
    """``(base, past, third person, -ing)`` for an entry like ``run:ran`` or ``pick_up`` (phrasal)."""
    base, _, past = entry.partition(":")
    base = base.replace("_", " ")
    first, _, rest = base.partition(" ")
    past_first = past or regular_past(first)
    past_full = f"{past_first} {rest}" if rest else past_first
    return base, past_full, third(base), ing(base)


# --------------------------------------------------------------------------- people and animals

GIRLS = _w("""
Mia Lily Emma Ava Zoe Lucy Ella Anna Rosa Nora Ruby Grace Chloe Hannah Sara Maya Leah Ivy Alice Clara
Daisy Molly Poppy Amy Kate Lena Julia Eva Hazel Stella Luna Isla Jasmine Layla Nina Tara Mila Olive
Freya Holly Iris Jenny Kira Lara Maria Nadia Priya Rita Sofia Tess Violet Wendy Yara Amara Bella Cora
Edith Fiona Gemma Heidi Ida Jane Lottie Mabel Nell Paula Rose Susie Tilly Una Vera Willa Zara Beth Dora
""")
BOYS = _w("""
Leo Max Sam Tom Ben Jack Noah Liam Oscar Finn Hugo Theo Eli Owen Luke Adam Omar Ravi Jonah Milo Felix
Arlo Caleb Dan Ethan Fred George Henry Isaac Jamal Kai Leon Marco Nick Oliver Pete Ryan Simon Toby
Victor Will Zack Amir Bruno Carl Dev Ezra Gus Hamid Ivan Joe Ken Louis Matt Ned Otto Paul Rory Seth
Ted Umar Vince Wes Yusuf Abel Bill Colin Dylan Emil Frank
""")
THEY_NAMES = _w("Alex Robin Kit Jo Charlie Riley Sky River Quinn Jules Rowan Sage Ash Remy Kim Lee Pat Ari")

ANIMALS = _w("""
cat dog rabbit fox bear mouse owl duck frog squirrel hedgehog deer pig cow goat sheep horse donkey
chicken hen goose turtle tortoise badger mole beaver otter raccoon lion tiger zebra giraffe elephant
monkey hippo rhino kangaroo koala panda penguin seal whale dolphin crab octopus snail ladybug bee
butterfly caterpillar ant spider bat crow robin sparrow parrot swan pony puppy kitten lamb bunny
wolf moose camel llama goldfish lizard chipmunk raven pelican flamingo seagull worm beetle gecko
""") + _w("""
hamster ferret toad newt eagle hawk pigeon dove wren finch blackbird woodpecker heron stork ostrich
peacock turkey rooster chick duckling foal cub piglet bull buffalo leopard cheetah gorilla sloth
porcupine skunk weasel hare walrus shark jellyfish starfish seahorse lobster snake alligator crocodile
dragonfly moth grasshopper cricket firefly wasp kingfisher magpie swallow puffin gull vole shrew
""")
# Animals of fields, woods, farms and homes: the ones a walk or a garden can show.
EVERYDAY_ANIMALS = _w("""
cat dog rabbit fox mouse owl duck frog squirrel hedgehog deer pig cow goat sheep horse donkey hen
goose turtle badger mole beaver otter raccoon snail ladybug bee butterfly caterpillar ant crow robin
sparrow swan pony puppy kitten lamb bunny chipmunk worm beetle hamster toad pigeon dove wren finch
blackbird woodpecker heron rooster chick duckling foal piglet hare magpie swallow moth grasshopper
cricket dragonfly firefly seagull gull
""")
HERO_ANIMALS = _w("""
rabbit fox bear mouse owl duck frog squirrel hedgehog pig goat sheep horse donkey hen goose turtle
badger mole beaver otter raccoon lion tiger zebra giraffe elephant monkey hippo kangaroo koala panda
penguin seal puppy kitten lamb bunny dog cat pony llama
""")
WISE_ANIMALS = _w("owl turtle tortoise bear badger elephant goat horse crow hedgehog beaver raven")
ANIMAL_VERBS = _w("""
sniff rest nap hop dig:dug splash roll sleep:slept play run:ran scurry scamper wriggle waddle graze
snooze peek hide:hid swim:swam climb jump wander
""")
FLOWERS = _w("""
rose daisy tulip sunflower lily poppy dandelion daffodil bluebell buttercup marigold orchid pansy
peony lilac clover
""")
SELLERS = _w("farmer baker grocer fisherman shopkeeper cook beekeeper florist")
SHOPS = _w("market bakery farm shop fair harbor")
OUTINGS = _w("""
beach zoo farm fair lake market museum forest mountain island park river city circus carnival
waterfall harbor castle seaside meadow orchard pond
""")
ROLES = _w("""
baker farmer teacher doctor nurse painter fisherman gardener librarian mail_carrier shopkeeper cook
builder firefighter police_officer pilot sailor vet dentist tailor potter singer dancer clown
bus_driver zookeeper beekeeper shepherd carpenter musician scientist astronaut lighthouse_keeper
ranger miller grocer barber florist juggler magician knight queen king prince princess giant
inventor mayor neighbor
""") + _w("""
fisherwoman clockmaker blacksmith weaver chef waiter guard lifeguard photographer
""")
FAMILY_SHE = _w("Mom Grandma Aunt_Rose Aunt_Lily Nana")
FAMILY_HE = _w("Dad Grandpa Uncle_Joe Uncle_Ben Papa")

# --------------------------------------------------------------------------- things

TOYS = _w("""
kite ball doll teddy_bear yo-yo puzzle drum whistle top marble robot train boat truck car block
balloon jump_rope toy_horse puppet crayon sticker bucket shovel spinning_top rocket wagon scooter
""")
OBJECTS = _w("""
hat scarf glove sock boot shoe coat mitten umbrella backpack basket box jar cup mug bowl plate spoon
fork bottle book map key coin button ribbon rope blanket pillow lamp candle clock watch bell brush
comb mirror pencil pen notebook paintbrush bag bucket net flag shell feather stone pebble leaf stick
acorn pinecone ring necklace bracelet badge card letter postcard photo envelope ticket compass
flashlight lantern ladder hammer saw nail shovel rake watering_can seed flowerpot teapot kettle
sandwich_box lunchbox sweater jacket dress shirt belt apron cap helmet wallet purse tray
""") + _w("""
thimble needle sack barrel crate jug vase sponge towel toothbrush gift present parcel trophy medal
crown wand shield telescope globe calendar diary sketchbook ruler eraser stamp lantern harmonica
tambourine suitcase trunk chest cushion quilt mat napkin teacup saucer pan pot ladle whisk rolling_pin
cookbook recipe camera radio telephone alarm_clock hourglass magnet rubber_duck snow_globe music_box
piggy_bank shoelace paper_boat pinwheel frisbee skateboard sled marble_jar tin
""")
FOODS = _w("""
apple pear banana orange plum peach cherry grape lemon strawberry blueberry carrot potato tomato
cucumber onion pumpkin egg cookie cupcake muffin pie sandwich pancake waffle biscuit cracker pretzel
doughnut bun roll lollipop candy melon mango pineapple coconut nut radish pepper turnip bagel
""") + _w("""
apricot kiwi lime fig watermelon avocado cabbage lettuce beet bean parsnip olive peanut almond walnut
chestnut raisin brownie scone tart dumpling noodle meatball sausage burger taco omelet jelly_bean
marshmallow gumdrop toffee cheese_sandwich raspberry blackberry gooseberry zucchini cauliflower
""")
MASS_FOODS = _w("""
bread soup milk honey cheese butter jam juice tea cocoa porridge rice pasta popcorn toast cereal
yogurt salad pizza cake ice_cream lemonade spaghetti pudding chocolate corn jelly stew
""") + _w("""
oatmeal granola syrup cream custard gravy broth applesauce fudge sherbet hot_chocolate orange_juice
apple_juice mint_tea soup_and_bread fruit_salad
""")
PLANTS = _w("""
tree flower rose daisy tulip sunflower oak pine willow bush fern mushroom clover lily poppy
dandelion vine cactus reed
""") + _w("""
maple birch elm apple_tree cherry_tree palm_tree daffodil bluebell buttercup marigold orchid
pansy peony lilac thistle hedge shrub sapling seedling bean_plant pumpkin_plant strawberry_plant
""")
# Places a story can happen in, each with the preposition it takes: "in the park", "at the beach".
PLACES_IN = _w("""
garden park forest village town city field meadow woods valley cave yard playground jungle desert
swamp lane street square orchard
""")
PLACES_AT = _w("""
beach river lake pond hill mountain bridge seaside gate well camp shore island waterfall stream
creek pool fountain campsite sandpit duck_pond ferry harbor dock pier lighthouse mill windmill
""")
# Buildings of a town ("at the library") and rooms of a home ("in the attic").
TOWN = _w("""
market farm zoo station fair circus museum library school bakery shop cafe hospital post_office
theater toy_shop bookshop corner_shop bus_stop clock_tower palace castle tower airport carnival
farmhouse
""")
ROOMS = _w("""
kitchen attic cellar bedroom hall hallway living_room classroom sunroom garage shed barn workshop
greenhouse treehouse tent cabin cottage hut stable henhouse
""")
SKY = _w("sun moon star cloud rainbow sky bird kite plane")
SOUNDS = _w("""
buzz bang crash splash thump creak squeak pop rustle whoosh ring knock click clatter rumble
""") + _w("""
ding tap crack flap honk quack moo hoot tweet chirp growl purr hiss
""")
CLOTHES = _w("hat scarf coat sweater jacket dress shirt cap apron raincoat vest hood")
FURNITURE = _w("bed sofa table chair shelf cupboard rug stairs door window desk bench basket box")
INSTRUMENTS = _w("drum flute guitar piano violin trumpet harp bell ukulele horn") + _w("""
tuba cello banjo xylophone triangle recorder
""")
VEHICLES = _w("bus train boat bike car truck tractor ship van plane sled canoe")
GAMES = _w("tag hide-and-seek catch hopscotch marbles cards chess checkers leapfrog") + _w("""
dominoes jacks tug-of-war charades
""")
BODY = _w("nose ears tail paws feet hands eyes whiskers wings knees")

# --------------------------------------------------------------------------- describing words

COLORS = _w("red blue green yellow orange purple pink brown black white gray golden silver")
SIZES = _w("big small little tiny huge")
PLANT_SIZES = _w("tall small little big young old huge tiny")
THING_ADJS = _w("""
old new shiny soft smooth bumpy heavy light striped spotted bright dull clean dusty wooden
plastic paper woolly fuzzy sparkly funny special favorite lucky pretty fancy plain broken
""") + _w("""
tall short long round rusty glittery checkered colorful muddy wet dry warm crumpled torn patched handmade squeaky
precious enormous little_old secret magic wobbly
""")
FOOD_ADJS = _w("sweet fresh tasty yummy big little delicious lovely")
PLACE_ADJS = _w("""
quiet busy sunny shady noisy peaceful green windy muddy sleepy crowded lovely cozy dark bright
""") + _w("""
grassy rocky sandy snowy misty leafy chilly empty magical
""")
ANIMAL_ADJS = _w("""
fluffy small brave sleepy hungry clever shy friendly curious playful grumpy gentle proud lazy
busy noisy silly spotted striped young old wise
""") + _w("""
speckled shaggy tiny chubby quick nosy jolly timid
""")
PERSON_ADJS = _w("""
kind cheerful curious brave gentle clever busy quiet careful helpful patient shy funny happy
thoughtful cheeky lively polite
""") + _w("""
honest generous silly clumsy bossy sensible lucky friendly little young
""")
GOOD_FEELINGS = _w("happy glad excited proud calm cheerful hopeful pleased thankful joyful")
BAD_FEELINGS = _w("sad cross scared worried nervous lonely grumpy upset unhappy gloomy")
ADVERBS = _w("""
slowly quickly carefully quietly happily gently softly loudly proudly bravely eagerly calmly
kindly patiently cheerfully politely neatly busily shyly merrily
""")
TIMES = _w("morning afternoon evening night")
DAYS = _w("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")
SEASONS = _w("spring summer autumn winter")
NUMBERS = _w("two three four five six seven eight nine ten twelve")

# --------------------------------------------------------------------------- verbs by what follows them

# go somewhere: "ran to the park"
MOVE_VERBS = _w("""
walk run:ran hurry skip hop march wander stroll race dash rush jog tiptoe ride:rode go:went head
zoom trot climb:climbed
""")
# do something, nothing after: "sang happily"
PLAY_VERBS = _w("""
play sing:sang dance laugh swim:swam read:read hum whistle jump splash dig:dug paint draw:drew
explore giggle clap spin:spun twirl tumble roll bounce cheer skate
""") + _w("""
paddle float swing:swung sail hike knit sew doodle juggle wiggle wobble stretch scribble sketch build:built write:wrote crawl leap skip whirl somersault hop practice
""")
# things a grown-up can teach: "showed Mia how to juggle"
SKILL_VERBS = _w("""
skate swim:swam paint draw:drew whistle juggle knit sew sketch sail paddle dance sing:sang fish
skip hop climb:climbed ride:rode cartwheel bake
""")
# do something to a small thing: "polished the key"
HANDLE_VERBS = _w("""
find:found hold:held carry drop hide:hid clean polish fix wash wrap open shake:shook throw:threw
catch:caught push pull lift show bring:brought take:took keep:kept count check touch squeeze mend
decorate sort fold borrow
""") + _w("""
grab toss roll stack tidy examine sniff measure label weigh hang:hung pack unpack fetch return
collect gather trade swap paint color
""")
# do something to food: "baked a pie"
FOOD_VERBS = _w("eat:ate bake cook taste share buy:bought pick slice peel mix stir chop") + _w("""
munch nibble share gobble serve crunch toast wash
""")
# notice something: "spotted a crab"
SEE_VERBS = _w("see:saw notice spot watch find:found") + _w("""
discover admire study
""")
# say something: '"Hello," said Mia.'
SAY_VERBS = _w("say:said reply answer whisper call cry laugh giggle add agree sigh shout exclaim")
ASK_VERBS = _w("ask wonder")
