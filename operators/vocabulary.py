"""The words of person-search queries and what each one means in CCIHP labels.

The tables start from the canonical words in :mod:`describeme.labels` (``PART_SYNONYMS``,
``COLOR_SYNONYMS``) and add how people actually describe clothing. Label ids and names stay in
labels; this module only maps words onto them.

Colour decisions (CCIHP has 12 colour classes, three of them lightness classes):

- black, charcoal, jet, ebony -> ``dark``; grey/gray, silver, ash -> ``medium``;
  white, cream, ivory, off-white -> ``light``.
- navy -> ``blue``: navy is a blue hue, and CCIHP keeps ``dark`` for achromatic dark clothing.
- beige, tan, khaki, camel, brown, chocolate -> ``brown``; maroon, crimson, burgundy, scarlet,
  wine -> ``red``; teal, turquoise, cyan -> ``blue``; olive, lime, mint -> ``green``;
  violet, lilac, lavender -> ``purple``; magenta, fuchsia, rose -> ``pink``; gold -> ``yellow``.
- blond/blonde -> ``yellow`` (and implies hair); brunette -> ``brown``; ginger, redhead ->
  ``orange``/``red`` hair.
- A shade word directly before a hue ("dark blue", "light grey") is a shade of that hue: the
  hue wins and the shade word is reported as such. On its own "dark"/"light" is the class.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from describeme.labels import (
    CHARACTERISTICS,
    COLOR_SYNONYMS,
    COLORS,
    DESCRIPTION_GROUPS,
    PART_SYNONYMS,
)


@dataclass(frozen=True)
class Garment:
    """What a garment noun says about a part.

    Attributes:
        part: a ``labels.DESCRIPTION_GROUPS`` key.
        size, color, pattern: values the noun implies (label names) or None.
        defining: the implied values that define the noun (a t-shirt *is* short-sleeved);
            the others are only likely (jeans are usually blue) and an explicit word wins.
            A negated garment keeps only its defining values ("no t-shirt" != "no top").
        weight: how much a constraint from this noun counts in ranking (beard -> hair: low).
        note: why the mapping is what it is, shown in the explanation.
    """

    part: str
    size: str | None = None
    color: str | None = None
    pattern: str | None = None
    defining: tuple[str, ...] = ()
    weight: float = 1.0
    note: str = ""


def _g(
    part: str,
    size: str | None = None,
    color: str | None = None,
    *,
    pattern: str | None = None,
    defining: tuple[str, ...] = (),
    weight: float = 1.0,
    note: str = "",
) -> Garment:
    return Garment(part, size, color, pattern, defining, weight, note)


_UPPER, _PANTS, _SHOES = "upper-clothes", "pants", "shoes"
_SHORT_TOP = _g(_UPPER, "short", defining=("size",))
_LONG_TOP = _g(_UPPER, "long")
_TOP = _g(_UPPER)
_COAT = _g("coat")
_LONG_PANTS = _g(_PANTS, "long")
_SHORTS = _g(_PANTS, "short", defining=("size",))
_BOOTS = _g(_SHOES, "long", defining=("size",), note="boots are high shoes")
_HAT, _BAG, _SCARF = _g("hat"), _g("bag"), _g("scarf-tie")

# Single words and hyphenated compounds (multi-word phrases are in PHRASES).
GARMENTS: Mapping[str, Garment] = MappingProxyType({
    # upper body
    "t-shirt": _SHORT_TOP, "t-shirts": _SHORT_TOP, "tshirt": _SHORT_TOP, "tshirts": _SHORT_TOP,
    "tee": _SHORT_TOP, "tees": _SHORT_TOP, "polo": _SHORT_TOP, "singlet": _SHORT_TOP,
    "vest": _SHORT_TOP, "tank": _SHORT_TOP, "camisole": _SHORT_TOP, "jersey": _TOP,
    "shirt": _LONG_TOP, "shirts": _LONG_TOP, "sweater": _LONG_TOP, "sweaters": _LONG_TOP,
    "hoodie": _LONG_TOP, "hoodies": _LONG_TOP, "hoody": _LONG_TOP, "sweatshirt": _LONG_TOP,
    "jumper": _LONG_TOP, "pullover": _LONG_TOP, "cardigan": _LONG_TOP, "turtleneck": _LONG_TOP,
    "fleece": _LONG_TOP,
    "top": _TOP, "tops": _TOP, "blouse": _TOP, "blouses": _TOP, "dress": _TOP, "dresses": _TOP,
    "tunic": _TOP, "uniform": _TOP, "clothes": _TOP, "outfit": _TOP,
    # outerwear
    "jacket": _COAT, "jackets": _COAT, "coat": _COAT, "coats": _COAT, "parka": _COAT,
    "parkas": _COAT, "raincoat": _COAT, "anorak": _COAT, "overcoat": _COAT, "blazer": _COAT,
    "windbreaker": _COAT, "trenchcoat": _COAT, "puffer": _COAT, "suit": _COAT, "gilet": _COAT,
    # legs
    "jeans": _g(_PANTS, "long", "blue", defining=("size", "color"),
                note="plain jeans are blue denim"),
    "denim": _g(_PANTS, "long", "blue", note="plain denim is blue"),
    "denims": _g(_PANTS, "long", "blue", note="plain denim is blue"),
    "trousers": _LONG_PANTS, "pants": _LONG_PANTS, "slacks": _LONG_PANTS, "chinos": _LONG_PANTS,
    "leggings": _LONG_PANTS, "tights": _LONG_PANTS, "joggers": _LONG_PANTS,
    "sweatpants": _LONG_PANTS, "trackpants": _LONG_PANTS, "cargos": _LONG_PANTS,
    "overalls": _LONG_PANTS, "khakis": _g(_PANTS, "long", "brown", note="khakis are beige"),
    "shorts": _SHORTS, "bermudas": _SHORTS,
    "skirt": _g("skirt"), "skirts": _g("skirt"),
    "miniskirt": _g("skirt", "short", defining=("size",)),
    "mini-skirt": _g("skirt", "short", defining=("size",)),
    "maxi": _g("skirt", "long", defining=("size",), note="a maxi is a long skirt"),
    "maxiskirt": _g("skirt", "long", defining=("size",)),
    "socks": _g("socks"), "sock": _g("socks"), "stockings": _g("socks", "long"),
    # feet
    "shoes": _g(_SHOES), "shoe": _g(_SHOES), "sneakers": _g(_SHOES), "sneaker": _g(_SHOES),
    "trainers": _g(_SHOES), "runners": _g(_SHOES), "footwear": _g(_SHOES),
    "loafers": _g(_SHOES), "sandals": _g(_SHOES, "short", defining=("size",)),
    "flip-flops": _g(_SHOES, "short", defining=("size",)), "heels": _g(_SHOES),
    "boots": _BOOTS, "boot": _BOOTS, "wellies": _BOOTS,
    # head and face
    "hat": _HAT, "hats": _HAT, "cap": _HAT, "caps": _HAT, "beanie": _HAT, "beanies": _HAT,
    "helmet": _HAT, "beret": _HAT, "fedora": _HAT, "hood": _HAT, "headscarf": _HAT,
    "bandana": _SCARF,
    "sunglasses": _g("glasses", color="dark", defining=("color",),
                     note="sunglasses are dark glasses"),
    "shades": _g("glasses", color="dark", defining=("color",), note="sunglasses are dark"),
    "glasses": _g("glasses"), "spectacles": _g("glasses"), "eyeglasses": _g("glasses"),
    "specs": _g("glasses"), "goggles": _g("glasses"),
    "mask": _g("face-mask"), "masks": _g("face-mask"), "facemask": _g("face-mask"),
    "face-mask": _g("face-mask"), "balaclava": _g("face-mask"),
    "hair": _g("hair"), "haired": _g("hair"), "hairstyle": _g("hair"), "ponytail": _g("hair"),
    "beard": _g("hair", weight=0.5, note="CCIHP labels facial hair as hair"),
    "moustache": _g("hair", weight=0.5, note="CCIHP labels facial hair as hair"),
    "mustache": _g("hair", weight=0.5, note="CCIHP labels facial hair as hair"),
    # neck, hands, carried
    "scarf": _SCARF, "scarves": _SCARF, "scarfs": _SCARF, "tie": _SCARF, "necktie": _SCARF,
    "shawl": _SCARF, "bowtie": _SCARF,
    "gloves": _g("glove"), "glove": _g("glove"), "mittens": _g("glove"),
    "bag": _BAG, "bags": _BAG, "backpack": _BAG, "backpacks": _BAG, "rucksack": _BAG,
    "handbag": _BAG, "handbags": _BAG, "purse": _BAG, "satchel": _BAG, "tote": _BAG,
    "briefcase": _BAG, "suitcase": _BAG, "luggage": _BAG, "shopping-bag": _BAG,
    "umbrella": _g("others", note="CCIHP puts carried objects other than bags in others"),
    "accessory": _g("others"),
})  # fmt: skip

# Multi-word expressions, longest first when matched; the value is the single word they mean.
PHRASES: Mapping[tuple[str, ...], str] = MappingProxyType({
    ("t", "shirt"): "t-shirt", ("t", "shirts"): "t-shirt", ("tee", "shirt"): "t-shirt",
    ("polo", "shirt"): "polo", ("tank", "top"): "tank", ("crop", "top"): "tank",
    ("face", "mask"): "face-mask", ("surgical", "mask"): "face-mask",
    ("baseball", "cap"): "cap", ("hard", "hat"): "hat", ("rain", "coat"): "raincoat",
    ("trench", "coat"): "trenchcoat", ("high", "heels"): "heels", ("flip", "flops"): "flip-flops",
    ("mini", "skirt"): "miniskirt", ("maxi", "skirt"): "maxiskirt", ("maxi", "dress"): "dress",
    ("sweat", "pants"): "sweatpants", ("track", "pants"): "trackpants",
    ("dress", "shirt"): "shirt", ("shopping", "bag"): "shopping-bag",
    ("long", "sleeved"): "long-sleeved", ("long", "sleeve"): "long-sleeved",
    ("short", "sleeved"): "short-sleeved", ("short", "sleeve"): "short-sleeved",
    ("polka", "dot"): "polka-dot", ("polka", "dots"): "polka-dot",
    ("off", "white"): "off-white", ("multi", "colored"): "multicolored",
    ("multi", "coloured"): "multicolored", ("not", "wearing"): "not", ("no", "longer"): "not",
    ("is", "not"): "not", ("are", "not"): "not",
})  # fmt: skip
MAX_PHRASE_WORDS = max(len(key) for key in PHRASES)

# Words naming a colour class (label name values from labels.COLORS).
_COLOR_EXTRA = {
    "black": "dark", "charcoal": "dark", "jet": "dark", "ebony": "dark",
    "grey": "medium", "gray": "medium", "silver": "medium", "ash": "medium",
    "greyish": "medium", "grayish": "medium",
    "white": "light", "cream": "light", "ivory": "light", "off-white": "light",
    "beige": "brown", "tan": "brown", "khaki": "brown", "camel": "brown", "chocolate": "brown",
    "brownish": "brown", "sand": "brown", "brunette": "brown",
    "maroon": "red", "crimson": "red", "burgundy": "red", "scarlet": "red", "wine": "red",
    "reddish": "red", "cherry": "red",
    "magenta": "pink", "fuchsia": "pink", "rose": "pink", "pinkish": "pink", "salmon": "pink",
    "gold": "yellow", "golden": "yellow", "mustard": "yellow", "blond": "yellow",
    "blonde": "yellow", "yellowish": "yellow", "lemon": "yellow",
    "ginger": "orange", "orangish": "orange", "coral": "orange", "redhead": "red",
    "olive": "green", "lime": "green", "mint": "green", "greenish": "green", "emerald": "green",
    "navy": "blue", "teal": "blue", "turquoise": "blue", "cyan": "blue", "bluish": "blue",
    "denim-blue": "blue", "azure": "blue",
    "violet": "purple", "lilac": "purple", "lavender": "purple", "mauve": "purple",
    "multicolour": "multicolor", "multicoloured": "multicolor", "colorful": "multicolor",
    "colourful": "multicolor", "rainbow": "multicolor",
}  # fmt: skip
COLOR_WORDS: Mapping[str, str] = MappingProxyType({
    **{word: COLORS[cid] for cid, words in COLOR_SYNONYMS.items() for word in words},
    **_COLOR_EXTRA,
})  # fmt: skip
# Shade words: a colour class alone, a shade of the next colour word otherwise.
SHADE_WORDS: frozenset[str] = frozenset(
    {"dark", "light", "pale", "bright", "deep", "darker", "lighter"}
)
_SHADE_ALONE = {"pale": "light", "bright": None, "deep": "dark", "darker": "dark",
                "lighter": "light"}  # fmt: skip
# Adjectives that name their part when no noun follows ("a blond man" -> blond hair).
IMPLIED_PART: Mapping[str, str] = MappingProxyType(
    {"blond": "hair", "blonde": "hair", "brunette": "hair", "ginger": "hair", "redhead": "hair",
     "bald": "hair", "balding": "hair", "bearded": "hair"}
)  # fmt: skip

# Size words -> (size name, parts it may apply to or None for any sized part).
_SMALL_LARGE_PARTS = frozenset({"bag", "hat", "scarf-tie"})
SIZE_WORDS: Mapping[str, tuple[str, frozenset[str] | None]] = MappingProxyType({
    "long": ("long", None), "longer": ("long", None), "short": ("short", None),
    "shorter": ("short", None), "cropped": ("short", None),
    "long-sleeved": ("long", frozenset({_UPPER, "coat"})),
    "long-sleeve": ("long", frozenset({_UPPER, "coat"})),
    "short-sleeved": ("short", frozenset({_UPPER, "coat"})),
    "short-sleeve": ("short", frozenset({_UPPER, "coat"})),
    "sleeveless": ("short", frozenset({_UPPER})),
    "mini": ("short", frozenset({"skirt"})), "knee-length": ("short", frozenset({"skirt"})),
    "ankle-length": ("long", frozenset({"skirt", _PANTS})),
    "big": ("long", _SMALL_LARGE_PARTS), "large": ("long", _SMALL_LARGE_PARTS),
    "huge": ("long", _SMALL_LARGE_PARTS), "small": ("short", _SMALL_LARGE_PARTS),
    "little": ("short", _SMALL_LARGE_PARTS), "tiny": ("short", _SMALL_LARGE_PARTS),
    "bald": ("sparse", frozenset({"hair"})), "balding": ("sparse", frozenset({"hair"})),
    "thin": ("sparse", frozenset({"hair"})),
})  # fmt: skip

PATTERN_WORDS: Mapping[str, str] = MappingProxyType({
    "striped": "geometrical", "stripy": "geometrical", "stripes": "geometrical",
    "stripe": "geometrical", "checked": "geometrical", "checkered": "geometrical",
    "chequered": "geometrical", "checks": "geometrical", "plaid": "geometrical",
    "tartan": "geometrical", "dotted": "geometrical", "dots": "geometrical",
    "polka-dot": "geometrical", "spotted": "geometrical", "spots": "geometrical",
    "geometric": "geometrical", "geometrical": "geometrical", "argyle": "geometrical",
    "houndstooth": "geometrical", "gingham": "geometrical", "zigzag": "geometrical",
    "floral": "fancy", "flowery": "fancy", "flowered": "fancy", "flowers": "fancy",
    "camo": "fancy", "camouflage": "fancy", "printed": "fancy", "print": "fancy",
    "patterned": "fancy", "fancy": "fancy", "leopard": "fancy", "paisley": "fancy",
    "tie-dye": "fancy", "graphic": "fancy", "animal-print": "fancy",
    "logo": "letters", "logos": "letters", "text": "letters", "lettering": "letters",
    "lettered": "letters", "letters": "letters", "writing": "letters", "slogan": "letters",
    "words": "letters", "branded": "letters", "numbers": "letters",
    "plain": "solid", "solid": "solid", "unpatterned": "solid", "uni": "solid",
})  # fmt: skip
# Nouns that describe the garment named before "with" ("a jacket with long sleeves").
SLEEVE_WORDS: frozenset[str] = frozenset({"sleeves", "sleeve", "sleeved"})
# Pattern words that are nouns: after "with" they describe the garment named before them.
PATTERN_NOUNS: frozenset[str] = frozenset({
    "stripes", "stripe", "checks", "dots", "spots", "flowers", "print", "logo", "logos",
    "text", "lettering", "letters", "writing", "slogan", "words", "numbers",
})  # fmt: skip

NEGATIONS: frozenset[str] = frozenset({
    "no", "not", "without", "never", "neither", "nor", "isn't", "isnt", "aren't", "arent",
    "doesn't", "doesnt", "don't", "dont", "wasn't", "wasnt", "lacking", "minus", "none",
})  # fmt: skip
# Gender and age words: accepted, and ignored because no stored attribute answers them.
PERSON_WORDS: frozenset[str] = frozenset({
    "man", "men", "woman", "women", "person", "people", "persons", "kid", "kids", "child",
    "children", "guy", "guys", "girl", "girls", "boy", "boys", "lady", "ladies", "gentleman",
    "someone", "somebody", "anyone", "adult", "teen", "teenager", "he", "she", "they",
    "individual", "pedestrian", "male", "female", "dude", "youth", "elderly", "old", "young",
    "baby", "toddler", "human", "figure", "student", "worker", "walker",
})  # fmt: skip
FILLER_WORDS: frozenset[str] = frozenset({
    "a", "an", "the", "with", "wearing", "wears", "wear", "worn", "in", "and", "or", "who",
    "is", "are", "was", "were", "has", "have", "had", "having", "carrying", "carries", "carry",
    "holding", "holds", "dressed", "of", "on", "his", "her", "their", "that", "which", "some",
    "any", "pair", "pairs", "kind", "sort", "like", "looks", "look", "looking", "type", "style",
    "color", "colour", "colored", "coloured", "it", "its", "one", "also", "plus", "but", "very",
    "quite", "rather", "really", "bit", "at", "by", "to", "for", "sporting", "donning", "got",
    "showing", "seen", "i", "me", "find", "show", "search", "looking-for", "walking", "standing",
    "&", "both", "either", "head", "shade", "all", "over", "from", "under",
})  # fmt: skip
# Words that join or separate phrases (they end a negation scope unless "or"/"nor").
CONJUNCTIONS: frozenset[str] = frozenset({"and", "or", "nor", "but", "plus", "&", "also"})
COPULAS: frozenset[str] = frozenset(
    {"is", "are", "was", "were", "colored", "coloured", "in"}
)  # "in" as in "jacket in red"
CAMERA_WORDS: frozenset[str] = frozenset({"camera", "cam", "stream", "cameras"})
TIME_UNITS: Mapping[str, float] = MappingProxyType({
    "second": 1.0, "seconds": 1.0, "sec": 1.0, "secs": 1.0, "minute": 60.0, "minutes": 60.0,
    "min": 60.0, "mins": 60.0, "hour": 3600.0, "hours": 3600.0, "hr": 3600.0, "hrs": 3600.0,
    "day": 86400.0, "days": 86400.0,
})  # fmt: skip
TIME_WORDS: frozenset[str] = frozenset(
    {"last", "past", "since", "after", "before", "until", "today"}
)


def shade_alone(word: str) -> str | None:
    """The colour class of a shade word used without a following hue ("bright" -> None)."""
    return _SHADE_ALONE.get(word, COLOR_WORDS.get(word))


def _check_tables() -> None:
    """Import-time guard: every word maps onto names that exist in labels."""
    for word, garment in GARMENTS.items():
        if garment.part not in DESCRIPTION_GROUPS:
            raise AssertionError(f"vocabulary word {word!r} names unknown part {garment.part!r}")
    for target in PHRASES.values():
        known = GARMENTS.keys() | SIZE_WORDS.keys() | PATTERN_WORDS.keys() | COLOR_WORDS.keys()
        if target not in known | NEGATIONS:
            raise AssertionError(f"phrase target {target!r} is no vocabulary word")
    for group, synonyms in PART_SYNONYMS.items():
        for word in synonyms:
            if word not in GARMENTS:
                raise AssertionError(f"labels.PART_SYNONYMS word {word!r} (part {group}) missing")


_check_tables()

KNOWN_WORDS: frozenset[str] = frozenset(
    GARMENTS.keys()
    | COLOR_WORDS.keys()
    | SHADE_WORDS
    | SIZE_WORDS.keys()
    | PATTERN_WORDS.keys()
    | NEGATIONS
    | PERSON_WORDS
    | FILLER_WORDS
    | CAMERA_WORDS
    | TIME_UNITS.keys()
    | TIME_WORDS
    | IMPLIED_PART.keys()
    | SLEEVE_WORDS
)

CONTENT_WORDS: frozenset[str] = frozenset(
    GARMENTS.keys() | COLOR_WORDS.keys() | SHADE_WORDS | SIZE_WORDS.keys() | PATTERN_WORDS.keys()
    | NEGATIONS | SLEEVE_WORDS | IMPLIED_PART.keys()
)  # fmt: skip
KINDS = tuple(CHARACTERISTICS)  # ("size", "pattern", "color")


@dataclass(frozen=True)
class WordReading:
    """How one query word was read: ``role`` is one of part, color, shade, size, pattern,
    sleeves, negation, person, filler, conjunction, camera, time, unknown."""

    word: str
    role: str
    meaning: str
    read_as: str | None = None  # the known word a typo was corrected to


def _within_one_edit(a: str, b: str) -> bool:
    """Optimal-string-alignment distance <= 1 (one insert, delete, substitute or swap)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _meaning_key(word: str) -> tuple[str, str]:
    if word in GARMENTS:
        return ("part", repr(GARMENTS[word]))
    if word in COLOR_WORDS:
        return ("color", COLOR_WORDS[word])
    return ("word", word)


def _edit_rank(typed: str, known: str) -> int:
    """Likelihood rank of the one edit from ``known`` to ``typed``: a swap (0) or a dropped
    letter (1) is a commoner slip than an extra letter (2) or a wrong letter (3)."""
    if len(typed) < len(known):
        return 1
    if len(typed) > len(known):
        return 2
    return 0 if sorted(typed) == sorted(known) else 3


def correct_typo(word: str) -> str | None:
    """The known word ``word`` is a typo of, or None (unknown, too short or ambiguous).

    Only content words (garments, colours, sizes, patterns, negations) are targets: reading
    "tall" as the filler "all" would hide an unknown word. Words of 4+ letters are corrected
    within one edit; 3-letter words only by a swap of two
    neighbouring letters ("hta" -> "hat"), since one edit turns most 3-letter words into
    others. Among candidates, the likeliest kind of slip wins ("gren": green by a dropped
    letter, not grey by a wrong one); a tie between different meanings is ambiguous ("shrt":
    shirt or short) and gives no correction.
    """
    if len(word) < 3 or not word.isalpha():
        return None
    candidates = [
        known
        for known in CONTENT_WORDS
        if len(known) >= 3
        and _within_one_edit(word, known)
        and (len(word) >= 4 or (len(known) == len(word) and sorted(known) == sorted(word)))
    ]
    if not candidates:
        return None
    best = min(_edit_rank(word, known) for known in candidates)
    candidates = sorted(k for k in candidates if _edit_rank(word, k) == best)
    meanings = {_meaning_key(known) for known in candidates}
    return candidates[0] if len(meanings) == 1 else None


def read_word(word: str) -> WordReading:
    """The role of one (lower-case, phrase-merged) word, correcting a typo if needed."""
    garment = GARMENTS.get(word)
    if garment is not None:
        implied = ", ".join(f"{k} {v}" for k in KINDS if (v := getattr(garment, k)))
        return WordReading(word, "part", f"part {garment.part}" +
                           (f" (implies {implied})" if implied else ""))  # fmt: skip
    tables: list[tuple[object, str, str]] = [
        (SIZE_WORDS, "size", "size {}"), (COLOR_WORDS, "color", "color {}"),
        (SHADE_WORDS, "shade", "shade"), (PATTERN_WORDS, "pattern", "pattern {}"),
        (SLEEVE_WORDS, "sleeves", "sleeves of the top"),
        (NEGATIONS, "negation", "negation"), (PERSON_WORDS, "person", "person word"),
        (CONJUNCTIONS | {",", ";"}, "conjunction", "joins phrases"),
        (CAMERA_WORDS, "camera", "camera filter"), (TIME_WORDS, "time", "time"),
        (TIME_UNITS, "time", "time unit"), (FILLER_WORDS, "filler", "filler"),
    ]  # fmt: skip
    for table, role, meaning in tables:
        if word in table:  # type: ignore[operator]
            value = table[word] if isinstance(table, Mapping) else None
            shown = value[0] if isinstance(value, tuple) else value
            return WordReading(word, role, meaning.format(shown))
    if re.fullmatch(r"\d+|\d{1,2}(:\d{2})?(am|pm)?", word):
        return WordReading(word, "number", "number")
    corrected = correct_typo(word)
    if corrected is not None:
        reading = read_word(corrected)
        return replace(reading, word=word, read_as=corrected)
    return WordReading(word, "unknown", "unknown word, not used")
