"""Text before speech: English numbers, dates, money and abbreviations as words, and long text cut
into sentence-sized chunks with the pause that follows each.

Character-level TTS models (MMS-TTS, VITS) have no digits or symbols in their vocabulary: "$3.50"
would be silently dropped. `normalize_english` writes such things out the way they are read aloud
("three dollars and fifty cents"); it keeps paragraph breaks for `split_for_speech`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# -- numbers ---------------------------------------------------------------------------------------
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}

# Words are joined with spaces, never hyphens: a vocabulary without "-" would glue them together.


def _below_thousand(n: int) -> str:
    words = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10])
        n %= 10
        if n:
            words.append(_ONES[n])
    elif n or not words:
        words.append(_ONES[n])
    return " ".join(words)


def number_to_words(n: int) -> str:
    """1234 → 'one thousand two hundred thirty four'; numbers past the trillions are read digit by digit."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n >= 10**15:
        return digits_to_words(str(n))
    words = []
    for value, name in _SCALES:
        if n >= value:
            words += [_below_thousand(n // value), name]
            n %= value
    if n or not words:
        words.append(_below_thousand(n))
    return " ".join(words)


def digits_to_words(digits: str) -> str:
    """'0714' → 'zero seven one four'."""
    return " ".join(_ONES[int(d)] for d in digits if d.isdigit())


def ordinal_to_words(n: int) -> str:
    """21 → 'twenty first', 12 → 'twelfth', 100 → 'one hundredth'."""
    head, _, last = number_to_words(n).rpartition(" ")
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head} {last}" if head else last


def year_to_words(n: int) -> str:
    """1984 → 'nineteen eighty four', 1905 → 'nineteen oh five', 2005 → 'two thousand five', 2024 → 'twenty twenty four'."""
    if not 1000 <= n <= 2099 or 2000 <= n <= 2009:
        return number_to_words(n)
    high, low = divmod(n, 100)
    if low == 0:
        return f"{number_to_words(high)} hundred"
    if low < 10:
        return f"{number_to_words(high)} oh {_ONES[low]}"
    return f"{number_to_words(high)} {number_to_words(low)}"


# -- patterns, applied in this order ---------------------------------------------------------------
_MONTHS = ("January February March April May June July August September October November December").split()
_MONTH_ALT = "|".join(_MONTHS + ["Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec"])
_MONTH_BY_PREFIX = {m[:3].lower(): m for m in _MONTHS}

# Abbreviation → words. A trailing "." is part of the match; the ones that can end a sentence keep it there.
_TITLES = {"Dr": "Doctor", "Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Prof": "Professor", "Mt": "Mount",
           "Gen": "General", "Capt": "Captain", "Sgt": "Sergeant", "Rev": "Reverend", "Gov": "Governor"}
_ENDINGS = {"etc": "et cetera", "Jr": "Junior", "Sr": "Senior", "Inc": "Incorporated", "Ltd": "Limited",
            "Co": "Company", "Ave": "Avenue", "Rd": "Road", "Blvd": "Boulevard", "approx": "approximately",
            "vs": "versus", "min": "minutes", "hrs": "hours", "dept": "department"}
_LATIN = {"e.g.": "for example", "i.e.": "that is", "a.m.": "a m", "p.m.": "p m"}
_SYMBOLS = {"&": " and ", "+": " plus ", "=": " equals ", "@": " at ", "°": " degrees ", "×": " times ",
            "½": " one half ", "¼": " one quarter ", "¾": " three quarters "}
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
               "£": ("pound", "pounds", "penny", "pence")}
_SCALE_WORDS = r"(thousand|million|billion|trillion)"
_PUNCTUATION_MAP = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": ", ", "—": ", ", "…": "...",
                                  "\u00a0": " "})

_SENTENCE_END = r"(?=\s+[A-Z\"'(]|\s*$|\s*\n)"


def _money(match: re.Match) -> str:
    one, many, cent, cents = _CURRENCIES[match["cur"]]
    whole = int(match["whole"].replace(",", ""))
    frac = match["frac"]
    parts = []
    if whole or not frac:
        parts.append(f"{number_to_words(whole)} {one if whole == 1 else many}")
    if frac:
        c = int((frac + "0")[:2])
        if c:
            parts.append(f"{number_to_words(c)} {cent if c == 1 else cents}")
    return " and ".join(parts)


def _money_scaled(match: re.Match) -> str:
    one, many, _, _ = _CURRENCIES[match["cur"]]
    return f"{_decimal_words(match['num'].replace(',', ''))} {match['scale']} {many}"


def _decimal_words(text: str) -> str:
    whole, _, frac = text.partition(".")
    spoken = number_to_words(int(whole or "0"))
    return f"{spoken} point {digits_to_words(frac)}" if frac else spoken


def _date(year: int, month: int, day: int) -> str | None:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return f"{_MONTHS[month - 1]} {ordinal_to_words(day)}, {year_to_words(year)}"


def _iso_date(match: re.Match) -> str:
    spoken = _date(int(match[1]), int(match[2]), int(match[3]))
    return spoken if spoken else " ".join(number_to_words(int(g)) for g in match.groups())


def _slash_date(match: re.Match) -> str:
    a, b, year = int(match[1]), int(match[2]), int(match[3])
    if year < 100:
        year += 2000 if year < 50 else 1900
    month, day = (b, a) if a > 12 >= b else (a, b)  # US order unless that cannot be a date
    spoken = _date(year, month, day)
    return spoken if spoken else " slash ".join(number_to_words(int(g)) for g in match.groups())


def _month_day(match: re.Match) -> str:
    month = _MONTH_BY_PREFIX[match["month"][:3].lower()]
    text = f"{month} {ordinal_to_words(int(match['day']))}"
    if match["year"]:
        text += f", {year_to_words(int(match['year']))}"
    return text


def _time(match: re.Match) -> str:
    hour, minute = int(match["h"]), int(match["m"])
    if hour > 24 or minute > 59:
        return f"{number_to_words(hour)} {number_to_words(minute)}"
    if minute == 0:
        spoken = f"{number_to_words(hour)} o'clock" if not match["ampm"] else number_to_words(hour)
    elif minute < 10:
        spoken = f"{number_to_words(hour)} oh {_ONES[minute]}"
    else:
        spoken = f"{number_to_words(hour)} {number_to_words(minute)}"
    if match["ampm"]:
        spoken += " a m" if match["ampm"][0].lower() == "a" else " p m"
    return spoken


def _number(match: re.Match) -> str:
    text = match[0].replace(",", "")
    if "." in text:
        return _decimal_words(text)
    n = int(text)
    if len(text) == 4 and 1100 <= n <= 2099:
        return year_to_words(n)
    if len(text) > 1 and text.startswith("0"):  # codes like 007 are read digit by digit
        return digits_to_words(text)
    return number_to_words(n)


_RULES: list[tuple[re.Pattern, object]] = [
    # dates and times first: their digits must not be read as plain numbers
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), _iso_date),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b"), _slash_date),
    (re.compile(rf"\b(?P<month>{_MONTH_ALT})\.? (?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,? (?P<year>\d{{4}})\b)?"),
     _month_day),
    (re.compile(r"\b(?P<h>\d{1,2}):(?P<m>\d{2})(?!\d)(?:\s*(?P<ampm>[AaPp]\.?[Mm]\b))?"), _time),
    # money, percentages, ordinals
    (re.compile(rf"(?P<cur>[$€£])\s?(?P<num>\d[\d,]*(?:\.\d+)?)\s+(?P<scale>{_SCALE_WORDS})\b"), _money_scaled),
    (re.compile(r"(?P<cur>[$€£])\s?(?P<whole>\d[\d,]*)(?:\.(?P<frac>\d{1,2}))?\b"), _money),
    (re.compile(r"(\d+(?:\.\d+)?)\s?%"), lambda m: f"{_decimal_words(m[1])} percent"),
    (re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.IGNORECASE), lambda m: ordinal_to_words(int(m[1]))),
    (re.compile(r"(?<![\w.])-(?=\d)"), lambda m: "minus "),
    (re.compile(r"\b(?:No|no)\.\s?(?=\d)"), lambda m: "number "),
    (re.compile(r"#(?=\d)"), lambda m: "number "),
    # what is left: plain integers (with thousands separators) and decimals
    (re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|\d+(?:\.\d+)?"), _number),
]


def _street_or_saint(match: re.Match) -> str:
    """"St. Paul" is a saint; "Main St." is a street."""
    before, end = match["before"] or "", match["end"]
    if end is not None:
        return f"{before}Street.{end}"
    after = match.string[match.end() : match.end() + 2].strip()
    if before[:1].isupper() or not after[:1].isupper():
        return f"{before}Street"
    return f"{before}Saint"


def _abbreviations(text: str) -> str:
    for short, long in _LATIN.items():
        text = re.sub(rf"(?<!\w){re.escape(short)}", long, text, flags=re.IGNORECASE)
    for short, long in _TITLES.items():
        text = re.sub(rf"\b{short}\.(?=\s)", long, text)
    text = re.sub(r"(?P<before>\b\w+\s)?\bSt\.(?P<end>\s*$|\s*\n)?", _street_or_saint, text)
    for short, long in _ENDINGS.items():
        text = re.sub(rf"\b{short}\.{_SENTENCE_END}", f"{long}.", text)
        text = re.sub(rf"\b{short}\.", long, text)
    return text


def normalize_english(text: str) -> str:
    """Numbers, dates, times, money, percentages, abbreviations and symbols as spoken English words.

    >>> normalize_english("I have 3 cats")
    'I have three cats'
    """
    text = text.translate(_PUNCTUATION_MAP)
    # accents the English vocabulary lacks: café → cafe (letters are kept, marks dropped)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = _abbreviations(text)
    for pattern, replace in _RULES:
        text = pattern.sub(replace, text)  # type: ignore[arg-type]
    for symbol, word in _SYMBOLS.items():
        text = text.replace(symbol, word)
    return tidy_whitespace(text)


def tidy_whitespace(text: str) -> str:
    """Runs of spaces become one, with none before punctuation; paragraph breaks (a blank line) survive."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    paragraphs = [re.sub(r"\s+([,;:.!?])", r"\1", re.sub(r"\s+", " ", p)).strip() for p in paragraphs]
    return "\n\n".join(p for p in paragraphs if p)


# -- chunking --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Chunk:
    text: str
    pause_s: float  # silence after this chunk


SENTENCE_PAUSE_S = 0.25
PARAGRAPH_PAUSE_S = 0.6
CLAUSE_PAUSE_S = 0.12  # where an over-long sentence was cut at a comma


def split_for_speech(text: str, max_chars: int = 400) -> list[Chunk]:
    """Sentences (each under `max_chars`, cut at commas, then spaces, if longer), with the pause after each.

    The last chunk has no pause after it.
    """
    chunks: list[Chunk] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])[\"')\]]*\s+", paragraph.strip()) if s.strip()]
        for i, sentence in enumerate(sentences):
            pieces = _split_long(sentence, max_chars)
            for j, piece in enumerate(pieces):
                if j < len(pieces) - 1:
                    pause = CLAUSE_PAUSE_S if piece.endswith((",", ";", ":")) else 0.0
                elif i < len(sentences) - 1:
                    pause = SENTENCE_PAUSE_S
                else:
                    pause = PARAGRAPH_PAUSE_S
                chunks.append(Chunk(piece, pause))
    if chunks:
        chunks[-1] = Chunk(chunks[-1].text, 0.0)
    return chunks


def _split_long(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    clauses = re.split(r"(?<=[,;:])\s+", sentence)
    pieces = _pack(clauses, max_chars)
    out: list[str] = []
    for piece in pieces:
        if len(piece) <= max_chars:
            out.append(piece)
            continue
        for part in _pack(piece.split(" "), max_chars):  # no comma to cut at: cut between words
            out += [part[k : k + max_chars] for k in range(0, len(part), max_chars)]  # one huge "word"
    return out


def _pack(parts: list[str], max_chars: int) -> list[str]:
    """Greedily join consecutive parts with spaces while the result stays within `max_chars`."""
    packed: list[str] = []
    for part in parts:
        if packed and len(packed[-1]) + 1 + len(part) <= max_chars:
            packed[-1] += " " + part
        else:
            packed.append(part)
    return packed
