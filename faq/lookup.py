"""Question -> ranked documents.

Order of the rules (product.md, "Knowledge base"):

1. a catalog code named in the question wins (any case; ``_``, ``-`` or spaces between its
   words).  Plain words that a general topic also uses ("class size") are only a signal;
2. a column name alone, or followed only by "error(s)", goes to ``errors.<column>``;
3. otherwise fuzzy scoring over titles, aliases and keywords, where a column mention is one
   signal among others.  Below ``Weights.cutoff`` nothing is a good enough match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process

from faq.documents import Document
from faq.index import COLUMN_FILLER, ERROR_WORDS, Index, get_index
from faq.text import fold, prepare
from validation.catalog import CATALOG


@dataclass(frozen=True)
class Weights:
    """Ranking weights, chosen by measurement on tests/data/faq_questions.yaml
    (bench/bench_faq.py --tune prints the accuracy of a grid of them)."""

    #: best score below which a question gets no answer
    cutoff: float = 62.0
    #: score a further match needs to be offered as "related / did you mean"
    related_cutoff: float = 45.0
    token_set: float = 0.45
    token_sort: float = 0.45
    #: word order matters a little: "primary teacher, no class" is not "class, no primary teacher"
    ratio: float = 0.10
    #: share of the IDF-weighted coverage of the question's words by a document's words
    coverage: float = 0.35
    column_bonus: float = 6.0
    plain_code_bonus: float = 15.0
    #: group documents are reached by naming the column; in free text a code's or a topic's
    #: own phrasing must outrank them
    group_penalty: float = 4.0
    #: "how do I ...", "where ...", "can we ..." ask for a general topic, not an error
    howto_bonus: float = 5.0


WEIGHTS = Weights()
NAMED_SCORE = 100.0
_HOWTO = re.compile(
    r"^(how|where|which|can (i|we)|do (i|we) (have|need)|is there|what (is|are) the|whats the)\b"
)
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


def lookup(question: str, limit: int = 3, weights: Weights = WEIGHTS) -> LookupResult:
    """Rank the knowledge-base documents for a question; see the module docstring."""
    index = get_index()
    text = prepare(question)
    named = _named_codes(index, text)
    normalised = fold(text)
    words = index.question_words(normalised)

    if named.winners:
        winners = [index.position[c] for c in named.winners]
    elif (group := _column_alone(index, words)) is not None:
        winners = [index.position[group]]
    else:
        winners = []

    scores = _fuzzy_scores(index, words, named.plain, bool(_HOWTO.match(normalised)), weights)
    ranked = [int(i) for i in np.argsort(-scores, kind="stable") if int(i) not in winners]
    top = [(i, NAMED_SCORE) for i in winners] + [(i, float(scores[i])) for i in ranked]

    if not top or top[0][1] < weights.cutoff:
        suggestions = [_match(index, i, s) for i, s in top[:limit] if s > 0]
        return LookupResult(query=question, matches=[], best=None, suggestions=suggestions)
    matches = [
        _match(index, i, s)
        for n, (i, s) in enumerate(top[:limit])
        if n == 0 or s >= weights.related_cutoff
    ]
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
        hit = process.extractOne(
            token.replace("-", "_"),
            list(CATALOG),
            scorer=fuzz.ratio,
            score_cutoff=_CODE_TYPO_CUTOFF,
        )
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


def _fuzzy_scores(
    index: Index, words: list[str], plain_codes: list[str], howto: bool, w: Weights
) -> np.ndarray:
    scores = np.zeros(len(index.docs))
    if not words:
        return scores
    query = " ".join(words)
    asked = set(words)
    known = [x for x in asked if x in index.word_column]
    sorted_query = " ".join(sorted(words))
    token_sort = process.cdist([sorted_query], index.sorted_phrases, scorer=fuzz.ratio)[0]
    # token_set_ratio equals token_sort_ratio when a phrase shares no word with the question,
    # so the costly scorer only runs on phrases that share one.
    token_set = token_sort.astype(np.float64)
    shared = np.zeros(len(index.word_column), dtype=np.float32)
    shared[[index.word_column[x] for x in known]] = 1.0
    candidates = np.nonzero(index.phrase_word_matrix @ shared)[0]
    if len(candidates):
        subset = [index.phrases[i] for i in candidates]
        token_set[candidates] = process.cdist([query], subset, scorer=fuzz.token_set_ratio)[0]
    ratio = process.cdist([query], index.phrases, scorer=fuzz.ratio)[0]
    per_phrase = (w.token_set * token_set + w.token_sort * token_sort + w.ratio * ratio) / (
        w.token_set + w.token_sort + w.ratio
    )
    np.maximum.at(scores, index.phrase_doc, per_phrase)

    # Words the documents never use (an off-topic "capital", "France") weigh the most, so a
    # question made of them gets little coverage anywhere.
    total = sum(index.idf.get(x, index.unknown_idf) for x in asked)
    query_vector = np.zeros(len(index.word_column))
    query_vector[[index.word_column[x] for x in known]] = [index.idf[x] for x in known]
    coverage = 100.0 * (index.doc_word_matrix @ query_vector) / total
    scores = (1 - w.coverage) * scores + w.coverage * coverage

    padded = f" {query} "
    for name, group in index.columns.items():
        if f" {name} " in padded:
            for pos in index.group_members.get(group, ()):
                scores[pos] += w.column_bonus
    for code in plain_codes:
        scores[index.position[code]] += w.plain_code_bonus
    scores[index.group_mask] -= w.group_penalty
    if howto:
        scores[index.topic_mask] += w.howto_bonus
    if len(asked) == 1:
        # One word ("bot", "hello") shares a phrase with many documents; it answers only
        # when it is itself a title, alias or keyword.
        exact = {int(index.phrase_doc[i]) for i, p in enumerate(index.phrases) if p == query}
        capped = [pos for pos in range(len(scores)) if pos not in exact]
        scores[capped] = np.minimum(scores[capped], w.cutoff - 1)
    return scores
