"""Question -> ranked documents.

Order of the rules (product.md, "Knowledge base"):

1. a catalog code named in the question wins (any case; ``_``, ``-`` or spaces between its
   words).  Plain words that a general topic also uses ("class size") are only a signal;
2. a column name alone, or followed only by "error(s)", goes to ``errors.<column>``;
3. otherwise fuzzy scoring over titles, aliases and keywords, where a column mention is one
   signal among others.  Below ``CUTOFF`` nothing is a good enough match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process

from faq.documents import Document
from faq.index import COLUMN_FILLER, ERROR_WORDS, Index, get_index
from faq.text import content_words, normalise, split_camel, strip_markup
from validation.catalog import CATALOG

#: Best score below which a question gets no answer (measured on tests/data/faq_questions.yaml).
CUTOFF = 62.0
#: Score a further match needs to be offered as "related / did you mean".
RELATED_CUTOFF = 45.0
#: Weights of the fuzzy signals (measured, see bench/bench_faq.py --tune).
W_TOKEN_SET = 0.45
W_TOKEN_SORT = 0.25
W_COVERAGE = 0.30
COLUMN_BONUS = 6.0
PLAIN_CODE_BONUS = 15.0
NAMED_SCORE = 100.0

_CODE_TOKEN = re.compile(r"\b[A-Z][A-Z0-9]*(?:[_-][A-Z0-9]+)+\b")
_CODE_TYPO_CUTOFF = 88.0


@dataclass(frozen=True)
class Match:
    id: str
    title: str
    score: float


@dataclass(frozen=True)
class LookupResult:
    query: str
    #: Good enough matches, best first; empty when nothing is a good enough match.
    matches: list[Match]
    #: The best document, or None when nothing is a good enough match.
    best: Document | None
    #: The closest documents when nothing matched well enough (to offer "did you mean").
    suggestions: list[Match] = field(default_factory=list)


def lookup(question: str, limit: int = 3) -> LookupResult:
    """Rank the knowledge-base documents for a question; see the module docstring."""
    index = get_index()
    text = split_camel(strip_markup(question))
    named = _named_codes(index, text)
    words = [index.correct(w) for w in content_words(normalise(text))]

    if named.winners:
        winners = [index.position[c] for c in named.winners]
    elif (group := _column_alone(index, words)) is not None:
        winners = [index.position[group]]
    else:
        winners = []

    scores = _fuzzy_scores(index, words, named.plain)
    ranked = [int(i) for i in np.argsort(-scores, kind="stable") if int(i) not in winners]
    top = [(i, NAMED_SCORE) for i in winners] + [(i, float(scores[i])) for i in ranked]

    if not top or top[0][1] < CUTOFF:
        suggestions = [_match(index, i, s) for i, s in top[:limit] if s > 0]
        return LookupResult(query=question, matches=[], best=None, suggestions=suggestions)
    matches = [_match(index, i, s) for n, (i, s) in enumerate(top[:limit]) if n == 0 or s >= RELATED_CUTOFF]
    return LookupResult(query=question, matches=matches, best=index.docs[top[0][0]])


def _match(index: Index, pos: int, score: float) -> Match:
    doc = index.docs[pos]
    return Match(id=doc.id, title=doc.title, score=round(min(score, 100.0), 1))


@dataclass(frozen=True)
class _Named:
    winners: list[str]  # codes named outright, in order of appearance
    plain: list[str]  # codes only named in plain words that a topic also uses


def _named_codes(index: Index, text: str) -> _Named:
    found: list[tuple[int, str]] = []
    plain: list[str] = []
    masked = text
    for cp in index.codes:  # longest first, so FILE_ENCODING_GUESSED hides FILE_ENCODING
        m = cp.pattern.search(masked)
        if not m:
            continue
        written = m.group(0)
        as_code = any(ch in written for ch in "_-") or written.isupper()
        single_word = "_" not in cp.code
        masked = masked[: m.start()] + " " * len(written) + masked[m.end() :]
        if single_word and not written.isupper():
            continue  # "my upload failed" does not name the code FAILED
        if as_code or not cp.ambiguous:
            found.append((m.start(), cp.code))
        else:
            plain.append(cp.code)
    # a misspelt code written as a code (EMIAL_TAKEN) still names it
    for token in _CODE_TOKEN.findall(masked):
        hit = process.extractOne(token.replace("-", "_"), list(CATALOG), scorer=fuzz.ratio,
                                 score_cutoff=_CODE_TYPO_CUTOFF)
        if hit:
            found.append((masked.find(token), hit[0]))
    ordered = [c for _, c in sorted(found)]
    return _Named(winners=list(dict.fromkeys(ordered)), plain=plain)


def _column_alone(index: Index, words: list[str]) -> str | None:
    """``errors.<group>`` when the question is a column name with at most "error(s)"."""
    rest = [w for w in words if w not in COLUMN_FILLER]
    has_error_word = any(w in ERROR_WORDS for w in rest)
    name = " ".join(w for w in rest if w not in ERROR_WORDS)
    if name in index.columns:
        return index.columns[name]
    if has_error_word and name in index.group_names:
        return index.group_names[name]
    return None


def _fuzzy_scores(index: Index, words: list[str], plain_codes: list[str]) -> np.ndarray:
    scores = np.zeros(len(index.docs))
    if not words:
        return scores
    query = " ".join(words)
    token_set = process.cdist([query], index.phrases, scorer=fuzz.token_set_ratio)[0]
    token_sort = process.cdist([query], index.phrases, scorer=fuzz.token_sort_ratio)[0]
    per_phrase = (W_TOKEN_SET * token_set + W_TOKEN_SORT * token_sort) / (W_TOKEN_SET + W_TOKEN_SORT)
    np.maximum.at(scores, index.phrase_doc, per_phrase)

    asked = set(words)
    coverage = np.array([100.0 * len(asked & dw) / len(asked) for dw in index.doc_words])
    scores = (1 - W_COVERAGE) * scores + W_COVERAGE * coverage

    padded = f" {query} "
    for name, group in index.columns.items():
        if f" {name} " in padded:
            for pos in index.group_members.get(group, ()):
                scores[pos] += COLUMN_BONUS
    for code in plain_codes:
        scores[index.position[code]] += PLAIN_CODE_BONUS
    return scores
