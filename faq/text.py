"""Question text normalisation shared by the index and the lookup.

Both sides (document phrasings and questions) go through the same functions, because
rapidfuzz 3 applies no processor by default: whatever is not normalised here is compared raw.
"""

from __future__ import annotations

import re
from functools import lru_cache

import snowballstemmer
from spellchecker import SpellChecker

# Slack markup: <@U123|name> user mentions, <#C123|name> channels, <!here> specials,
# <https://x|label> links.  Mentions, channels and specials say nothing about the question.
_SLACK_TOKEN = re.compile(r"<([@#!])[^>]*>")
_SLACK_LINK = re.compile(r"<(?:https?|mailto):[^>|]*(?:\|([^>]*))?>")
_BARE_URL = re.compile(r"\bhttps?://\S+")
# What a spreadsheet does to a long number (1.23457E+11); named so questions about it match.
_EXCEL_NUMBER = re.compile(r"\b[0-9]+(?:[.,][0-9]+)?[Ee]\+?[0-9]+\b")
# An address or a domain typed in a question ("from @old.org to @new.org") is an email, not
# the words of its domain ("org" would point at org_sis_id).
_EMAIL_ADDRESS = re.compile(r"[\w.+'-]*@[\w-]+(?:\.[\w-]+)+")
# An ID typed with its leading zeros ("00451 became 451") is a question about leading zeros.
_LEADING_ZERO = re.compile(r"(?<![\w.,])0[0-9]+\b")
# Accented or garbled letters typed in a question ("é", "Ã©") are about encoding.
_ACCENTED = re.compile(r"[^\x00-\x7f\u2018\u2019\u201c\u201d\u2013\u2014\u2026]+")
# "yes/no", "true/false": a yes-or-no value written as the documents write it ("Y or N"), so its "no"
# does not say that something is missing
_YES_NO = re.compile(r"\b(?:y|yes|true)\s*(?:/|\bor\b)\s*(?:n|no|false)\b", re.IGNORECASE)
_UTF8 = re.compile(r"\butf[\s_-]?8\b", re.IGNORECASE)
_E_MAIL = re.compile(r"\be-mail", re.IGNORECASE)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")
# "isn't", "student's", "didn’t" (typed or curly) are one word: "isnt", "students", "didnt"
_APOSTROPHE = re.compile(r"(?<=[a-z])['\u2019](?=[a-z])")

# Negations ("no", "not") and "id" are deliberately NOT stopwords: "class has no name" and
# "class name" ask different things, and "id" is half of most column names.
#: Words that carry no topic; removed before fuzzy scoring so that "what is the capital of
#: France" does not match a document on its "what is the" alone.
STOPWORDS: frozenset[str] = frozenset(
    """
    a an the is are was were be been being am do does did doing done have has had having
    i me my we our us you your it its this that these those there here they them their he she
    what whats wat which who whom whose when where why how hows can could should would will
    shall may might must to of in on at by for from with about as into onto over under up out
    and or but if then so yes please pls plz thanks thank hi hello hey ok okay
    just some any all get got gets getting go going mean means meaning meant tell explain
    say says said know need want wanted like does doesnt dont cant isnt im ive
    keep keeps kept one ones also still again very really
    she her hers him his because wants way easiest easy best quickest now
    """.split()
)


def strip_markup(text: str) -> str:
    """Remove Slack mentions, channel references and links (a link's label is kept)."""
    text = _SLACK_LINK.sub(lambda m: f" {m.group(1) or ''} ", text)
    text = _SLACK_TOKEN.sub(" ", text)
    return _BARE_URL.sub(" ", text)


def split_camel(text: str) -> str:
    """``primaryTeacher`` -> ``primary Teacher``; all-caps codes are left whole."""
    return _CAMEL.sub(" ", text)


def prepare(text: str) -> str:
    """Markup stripped, spreadsheet numbers, leading zeros and accented letters named,
    camelCase split; letter case kept
    (code detection needs it)."""
    text = _EXCEL_NUMBER.sub(" scientific notation ", strip_markup(text))
    text = _YES_NO.sub(" Y or N ", text)
    text = _LEADING_ZERO.sub(" leading zeros ", text)
    text = _ACCENTED.sub(" accents ", text)
    text = _EMAIL_ADDRESS.sub(
        lambda m: " email domain " if m.group(0)[0] == "@" else " email ", text
    )
    return split_camel(_E_MAIL.sub("email", _UTF8.sub("utf8", text)))


def fold(prepared: str) -> str:
    """Lower-case words separated by single spaces (``_``, ``-`` and punctuation split)."""
    return " ".join(_NON_WORD.sub(" ", _APOSTROPHE.sub("", prepared.lower())).split())


def normalise(text: str) -> str:
    """``prepare`` then ``fold``: what both documents and questions are compared as."""
    return fold(prepare(text))


#: Words people use interchangeably, folded to the one the documents use.
SYNONYMS: dict[str, str] = {
    "empty": "blank",
    "nobody": "no",
    "kid": "student",
    "pupil": "student",
    "delete": "remove",
    "emails": "email",
    "mail": "email",
    "without": "no",
    "longer": "long",
    # people by their job or their year: staff and students to the roster
    "para": "staff",
    "paraprofessional": "staff",
    "aide": "staff",
    "counselor": "staff",
    "substitute": "staff",
    "employee": "staff",
    "grader": "student",
    "kindergartner": "student",
    "kindergartener": "student",
    "freshman": "student",
    "freshmen": "student",
    "sophomore": "student",
    "studnet": "student",
    "stduent": "student",
    "child": "student",
    "children": "student",
    # more jobs people name instead of "staff"
    "librarian": "staff",
    "nurse": "staff",
    "coach": "staff",
    "secretary": "staff",
    "clerk": "staff",
    "specialist": "staff",
    "interventionist": "staff",
    "tutor": "staff",
    "psychologist": "staff",
    "therapist": "staff",
    "sub": "staff",
    "coworker": "colleague",
    "co-worker": "colleague",
    # what broken text looks like, in the words people use
    "gibberish": "garbled",
    "garbage": "garbled",
    "jumbled": "garbled",
    "scrambled": "garbled",
    "mangled": "garbled",
    "corrupted": "garbled",
    "corrupt": "garbled",
    "weird": "strange",
    "funny": "strange",
    "odd": "strange",
    # taking away and bringing back
    "rid": "remove",
    "wipe": "remove",
    "wiped": "removed",
    "erase": "remove",
    "undelete": "restore",
    "unremove": "restore",
    "withdrew": "withdraw",
    "withdrawn": "withdraw",
    "withdrawing": "withdraw",
    "withdrawal": "withdraw",
    "enrolled": "enroll",
    "enrolling": "enroll",
    "enrol": "enroll",
    "reenrolled": "reenroll",
    "reenrolling": "reenroll",
    "preschool": "prek",
    "prekindergarten": "prek",
    # size and spelling in everyday words
    "huge": "big",
    "massive": "big",
    "enormous": "big",
    "giant": "big",
    "misspelled": "typo",
    "misspelt": "typo",
    "mispelled": "typo",
    "misspelling": "typo",
    "helpdesk": "support",
    "0": "zero",  # "the ids lost the 0 in front"
    # numbers written as words and as digits are the same
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
}


def stem(word: str) -> str:
    """A plural-only stemmer: "ids" ~ "id", "grades" ~ "grade", "classes" ~ "class",
    "entries" ~ "entry"; enough for short questions."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if len(word) > 2 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


#: "isn't" says "not" ("the school isn't set up" is "the school is not set up")
NEGATED: frozenset[str] = frozenset(
    "isnt arent wasnt werent doesnt dont didnt cant cannot couldnt wont wouldnt hasnt havent".split()
)


def content_words(normalised: str) -> list[str]:
    """The topic-bearing words of a normalised text, plural-stemmed."""
    words = [
        "not" if w in NEGATED else stem(w)
        for w in normalised.split()
        if w not in STOPWORDS or w in NEGATED
    ]
    out: list[str] = []
    for w in words:
        w = SYNONYMS.get(w, w)
        if out and (out[-1], w) in _JOINED:
            out[-1] = _JOINED[out[-1], w]
        else:
            out.append(w)
    return out


#: two words that say what one word of the documents says ("not valid" is "invalid")
_JOINED: dict[tuple[str, str], str] = {
    ("not", "valid"): "invalid",
    ("no", "valid"): "invalid",
    ("re", "enroll"): "reenroll",  # "re-enrolled"
    ("pre", "k"): "prek",  # "pre-k"
}


_SNOWBALL = snowballstemmer.stemmer("english")


@lru_cache(maxsize=16384)
def root(word: str) -> str:
    """The word's stem (Snowball English): "cancelled" and "cancel" are both "cancel"."""
    return _SNOWBALL.stemWord(word)


@lru_cache(maxsize=1)
def _english() -> SpellChecker:
    return SpellChecker(distance=1)


def is_english(word: str) -> bool:
    """Whether an English dictionary knows the word: "band", "weather" are words, not typos of
    "bad" and "whether"; "emial" and "studnet" are not."""
    return word in _english()
