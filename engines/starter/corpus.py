"""Procedural children's stories for pretraining a tiny language model on plain English.

A story has a cast (a hero, a friend and a grown-up, each with one pronoun set kept for the
whole story), a place, a thing, a treat and a weather, and follows one arc chosen from
:data:`engines.starter.stories.ARCS` (setting -> problem -> attempts -> resolution -> ending).
Sentences are templates whose ``{fields}`` are filled by :class:`~engines.starter.grammar.Story`:
a field is either a fixed story word (``{hN}`` the hero's name, ``{hhe}``/``{hhim}``/``{hhis}``/
``{hwas}`` the hero's pronouns and the verb that agrees with them, ``{thing}``, ``{spot}`` ...)
or an ``_``-joined list of pools to draw from (``{a_fadj_food}`` -> "a fresh pear", ``{played}``
-> "danced").

Where things live: ``words`` (word lists, plurals, verb forms, a/an), ``grammar`` (pools, the
cast, filling templates), ``scenes`` (openings, asides, endings shared by all arcs),
``arcs_trouble`` / ``arcs_growing`` / ``arcs_learning`` / ``arcs_adventure`` / ``arcs_together``
(the arcs),
``stories`` (titles, picking an arc) and this module (the public API).

Everything is drawn from one ``random.Random(seed)`` and ordered tuples, so a seed gives the
same text on every machine and Python version.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path

from engines.starter import grammar, stories
from engines.starter.words import article

HANDWRITTEN_CORPUS = Path(__file__).resolve().parents[2] / "assets" / "starter" / "corpus.txt"
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def words_of(text: str) -> list[str]:
    """Lowercased words of ``text``; hyphens split words, a possessive ``'s`` is dropped (Mia's -> mia)."""
    out = []
    for word in _WORD.findall(text.lower()):
        out.append(word[:-2] if word.endswith("'s") else word)
    return out


def generate_story(rng: random.Random) -> str:
    """One story drawn from ``rng``: a title line, a blank line, then paragraphs split by blank lines."""
    return stories.tell(rng)


def generate_stories(n: int, seed: int) -> list[str]:
    """``n`` stories, the same for the same ``seed`` on every machine."""
    rng = random.Random(seed)
    return [generate_story(rng) for _ in range(n)]


def iter_stories(seed: int) -> Iterator[str]:
    """An endless stream of stories from ``seed`` (the first ``n`` equal ``generate_stories(n, seed)``)."""
    rng = random.Random(seed)
    while True:
        yield generate_story(rng)


def iter_paragraphs(n: int, seed: int) -> Iterator[str]:
    """The paragraphs (titles included, as their own items) of ``generate_stories(n, seed)``."""
    for story in generate_stories(n, seed):
        yield from story.split("\n\n")


def write_corpus(
    path: str | Path,
    n_words_target: int | None = None,
    n_stories: int | None = None,
    seed: int = 0,
    separator: str = "\n\n",
) -> dict[str, int]:
    """Write stories to ``path`` (UTF-8) until ``n_words_target`` words or ``n_stories`` stories.

    Stories are joined by ``separator`` (a blank line by default, the layout of the hand-written
    corpus; pass e.g. ``"\\n<|endoftext|>\\n"`` to mark story boundaries). Returns counts.
    """
    if (n_words_target is None) == (n_stories is None):
        raise ValueError("give exactly one of n_words_target or n_stories")
    n_words = n_written = n_chars = 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for story in iter_stories(seed):
            if n_stories is not None and n_written >= n_stories:
                break
            if n_words_target is not None and n_words >= n_words_target:
                break
            text = (separator if n_written else "") + story
            fh.write(text)
            n_chars += len(text)
            n_words += len(story.split())
            n_written += 1
        fh.write("\n")
    return {"stories": n_written, "words": n_words, "chars": n_chars + 1}


def grammar_vocabulary() -> set[str]:
    """Every word the grammar can produce, lowercased (as :func:`words_of` splits text)."""
    vocab: set[str] = set()
    for text in grammar.all_texts():
        vocab.update(words_of(text))
    for phrase in grammar.all_phrases():
        vocab.update(words_of(phrase))
        vocab.update(words_of(article(phrase)))
    return vocab


def vocabulary() -> set[str]:
    """Grammar words plus the words of the bundled hand-written stories (``assets/starter/corpus.txt``)."""
    vocab = grammar_vocabulary()
    if HANDWRITTEN_CORPUS.is_file():
        vocab.update(words_of(HANDWRITTEN_CORPUS.read_text(encoding="utf-8")))
    return vocab
