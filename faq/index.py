"""The search index: built once from the documents, then shared by every lookup."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from rapidfuzz import fuzz, process

from faq.documents import GROUP_PREFIX, Document, Kind, documents
from faq.text import STOPWORDS, content_words, normalise
from validation.catalog import CATALOG, ERROR_GROUPS
from validation.dictionary import DEMOGRAPHICS_HEADERS, USERS_HEADERS

#: Words that, after a column name, still mean "the errors of that column".
ERROR_WORDS: frozenset[str] = frozenset(
    "error errors warning warnings issue issues problem problems code codes".split()
)
#: Words that may surround a column name without changing what is asked.
COLUMN_FILLER: frozenset[str] = STOPWORDS | {"column", "columns", "field", "fields"}

# Typo correction: tokens shorter than this are too ambiguous to correct.
_MIN_TYPO_LEN = 4
_TYPO_CUTOFF = 78.0


@dataclass(frozen=True)
class CodePattern:
    code: str
    pattern: re.Pattern[str]
    #: The code's words as plain words ("email taken"); a topic owns that phrase too when
    #: ambiguous is set, so plain words are then only a signal, not a winner.
    ambiguous: bool


@dataclass(frozen=True, eq=False)  # identity hash: `correct` caches per index
class Index:
    docs: tuple[Document, ...]
    position: dict[str, int]
    phrases: tuple[str, ...]
    phrase_doc: np.ndarray  # document position of each phrase
    doc_words: tuple[frozenset[str], ...]
    vocab: frozenset[str]
    vocab_list: tuple[str, ...]
    codes: tuple[CodePattern, ...]
    #: normalised column phrase ("primary teacher") -> error group document id
    columns: dict[str, str]
    #: group ids only reached by name + an error word ("header errors")
    group_names: dict[str, str]
    #: document positions per group id (the group document and its codes)
    group_members: dict[str, frozenset[int]]

    @lru_cache(maxsize=4096)  # noqa: B019 - an index lives as long as the process
    def correct(self, word: str) -> str:
        """The vocabulary word a misspelt token most likely means, else the token."""
        if word in self.vocab or word in STOPWORDS or len(word) < _MIN_TYPO_LEN or word.isdigit():
            return word
        # Typos rarely touch the first letter; requiring it keeps "france" from becoming "race".
        same_start = [v for v in self.vocab_list if v[0] == word[0]]
        found = process.extractOne(word, same_start, scorer=fuzz.ratio, score_cutoff=_TYPO_CUTOFF)
        return found[0] if found else word


def _phrasings(doc: Document) -> list[str]:
    raw = [doc.title, *doc.aliases, *doc.keywords]
    if doc.kind is Kind.CODE:
        raw.append(doc.id)
    out: list[str] = []
    for text in raw:
        words = " ".join(content_words(normalise(text)))
        if words and words not in out:
            out.append(words)
    return out


def _code_pattern(code: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in code.split("_")]
    return re.compile(r"(?<![A-Za-z0-9])" + r"[\s_\-]+".join(words) + r"(?![A-Za-z0-9])", re.IGNORECASE)


def build_index(docs: list[Document] | None = None) -> Index:
    docs = docs if docs is not None else documents()
    phrases: list[str] = []
    owners: list[int] = []
    doc_words: list[frozenset[str]] = []
    for pos, doc in enumerate(docs):
        mine = _phrasings(doc)
        phrases.extend(mine)
        owners.extend([pos] * len(mine))
        doc_words.append(frozenset(w for p in mine for w in p.split()))

    topic_text = " | ".join(p for p, o in zip(phrases, owners) if docs[o].kind is Kind.TOPIC)
    codes = tuple(
        CodePattern(c, _code_pattern(c), f" {normalise(c)} " in f" {topic_text.replace('|', ' | ')} ")
        for c in sorted(CATALOG, key=len, reverse=True)
    )

    column_groups = [g for g in ERROR_GROUPS if g in USERS_HEADERS or g in DEMOGRAPHICS_HEADERS]
    columns = {normalise(g): GROUP_PREFIX + g for g in column_groups}
    group_names = {normalise(g): GROUP_PREFIX + g for g in ERROR_GROUPS if g not in column_groups}
    group_names.update({f"{name}s": gid for name, gid in list(group_names.items())})

    position = {d.id: i for i, d in enumerate(docs)}
    members: dict[str, set[int]] = {}
    for pos, doc in enumerate(docs):
        if doc.kind is Kind.GROUP:
            members.setdefault(doc.id, set()).add(pos)
        elif doc.kind is Kind.CODE:
            members.setdefault(GROUP_PREFIX + CATALOG[doc.id].group, set()).add(pos)
    for doc in docs:  # codes listed in two groups (NAME_TOO_LONG) belong to both
        for c in doc.codes:
            if c in position:
                members.setdefault(doc.id, set()).add(position[c])

    vocab = frozenset(w for words in doc_words for w in words) | ERROR_WORDS
    vocab |= {w for name in [*columns, *group_names] for w in name.split()}
    return Index(
        docs=tuple(docs),
        position=position,
        phrases=tuple(phrases),
        phrase_doc=np.asarray(owners, dtype=np.intp),
        doc_words=tuple(doc_words),
        vocab=vocab,
        vocab_list=tuple(sorted(vocab)),
        codes=codes,
        columns=columns,
        group_names=group_names,
        group_members={k: frozenset(v) for k, v in members.items()},
    )


_lock = threading.Lock()
_cached: Index | None = None


def get_index() -> Index:
    """The shared index, built at first use (thread-safe: Slack handlers run in threads)."""
    global _cached
    if _cached is None:
        with _lock:
            if _cached is None:
                _cached = build_index()
    return _cached

