"""The search index: built once from the documents, then shared by every lookup."""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from rapidfuzz import fuzz, process

from faq.documents import COLUMN_PREFIX, GROUP_PREFIX, Document, Kind, documents
from faq.examples import examples as shipped_examples
from faq.text import STOPWORDS, content_words, fold, is_english, normalise, prepare, root
from validation.catalog import CATALOG, ERROR_GROUPS, Severity
from validation.dictionary import DEMOGRAPHICS_HEADERS, USERS_HEADERS

#: Words that, after a column name, still mean "the errors of that column".
ERROR_WORDS: frozenset[str] = frozenset(
    "error errors warning warnings issue issues problem problems code codes".split()
)
#: Words that say something is absent; documents that use none of them are not about absence.
ABSENCE_WORDS: frozenset[str] = frozenset("no not missing blank".split())
#: Words that may surround a column name without changing what is asked.
COLUMN_FILLER: frozenset[str] = STOPWORDS | {"column", "columns", "field", "fields"}

#: Literal words a catalog message template needs before a pasted copy of it is recognised
#: (ORG_CLASS_MISMATCH's template is only "{detail}.").
_MIN_TEMPLATE_WORDS = 3
_PLACEHOLDER = re.compile(r"\{[a-z]+\}")

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
    #: each phrase with its words sorted: fuzz.ratio on these is token_sort_ratio, without
    #: re-tokenising every phrase at every lookup
    sorted_phrases: tuple[str, ...]
    #: a phrase's words sorted -> the rows of the phrases made of exactly those words
    same_words: dict[str, tuple[int, ...]]
    doc_words: tuple[frozenset[str], ...]
    #: documents x vocabulary, 1.0 where a document's phrasings use the word
    doc_word_matrix: np.ndarray
    word_column: dict[str, int]
    #: vocabulary word -> positions of the phrases that use it (an inverted index; a matrix
    #: product here went through BLAS threads, slow on a busy machine)
    word_phrases: dict[str, np.ndarray]

    #: body word -> (document positions, weight): a document's own text as a weak signal
    body_words: dict[str, tuple[np.ndarray, float]]
    vocab: frozenset[str]
    #: inverse document frequency of each vocabulary word over the documents' phrasings
    idf: dict[str, float]
    #: weight of a question word no document uses (the rarest possible)
    unknown_idf: float
    vocab_list: tuple[str, ...]
    #: stem -> the vocabulary word of that stem (the most used one)
    same_stem: dict[str, str]
    codes: tuple[CodePattern, ...]
    #: normalised column phrase ("primary teacher") -> error group document id
    columns: dict[str, str]
    #: a column name typed as one word ("userid") -> its words ("user id")
    compounds: dict[str, tuple[str, ...]]
    #: group ids only reached by name + an error word ("header errors")
    group_names: dict[str, str]
    #: document positions per group id (the group document and its codes)
    group_members: dict[str, frozenset[int]]
    group_mask: np.ndarray  # True for group documents
    topic_mask: np.ndarray  # True for general topic documents
    column_mask: np.ndarray  # True for column documents
    code_mask: np.ndarray  # True for the documents of catalog codes
    warning_mask: np.ndarray  # True for the documents of warning codes (they refuse nothing)
    absence_mask: np.ndarray  # True for documents whose phrasings speak of something absent
    #: a header as typed in one token, lower-case without _ or - ("orgsisid") -> its header
    headers: dict[str, str]
    #: (code, literal words, pattern) of each catalog message template, to recognise a pasted
    #: bot message; the pattern only runs when every literal word is in the question
    templates: tuple[tuple[str, frozenset[str], re.Pattern[str]], ...]
    #: example questions (faq/examples.yaml) as their content words, prepared as a question's
    example_texts: tuple[str, ...] = ()
    #: ... each with its words sorted (fuzz.ratio on these is token_sort_ratio)
    example_sorted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    #: document position of each example question
    example_doc: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    #: word -> the example questions that use it (an inverted index)
    example_rows: dict[str, np.ndarray] = field(default_factory=dict)
    #: term (a word or two adjacent words, ``evidence_terms``) -> (weight, per-document share):
    #: which documents the example questions using the term ask for
    example_evidence: dict[str, tuple[float, np.ndarray]] = field(default_factory=dict)
    #: weight of a question term no example question uses
    example_unknown: float = 1.0
    #: term -> log P(term | document) over the example questions (naive Bayes, smoothed)
    example_loglik: dict[str, np.ndarray] = field(default_factory=dict)
    #: documents that have example questions
    example_has: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def question_words(self, normalised: str) -> list[str]:
        """Content words of a normalised question, compounds split and typos corrected."""
        out: list[str] = []
        for w in content_words(normalised):
            out.extend(self.compounds.get(w, (self.correct(w),)))
        return out

    @lru_cache(maxsize=4096)  # noqa: B019 - an index lives as long as the process
    def correct(self, word: str) -> str:
        """The vocabulary word a misspelt token most likely means, else the token."""
        if word in self.vocab or word in STOPWORDS or word.isdigit():
            return word
        if word in self.body_words:  # a word the documents' own text uses is no typo ("sent")
            return word
        if is_english(word):
            # nor is a word of the dictionary ("band" is not "bad", "weather" not "whether"):
            # it stands for a phrasings' word of the same stem, if any ("cancelled" ~ "cancel")
            return self.same_stem.get(root(word), word)
        if len(word) < _MIN_TYPO_LEN:
            return word
        # Typos rarely touch the first letter; requiring it keeps "france" from becoming "race".
        same_start = [v for v in self.vocab_list if v[0] == word[0]]
        found = process.extractOne(word, same_start, scorer=fuzz.ratio, score_cutoff=_TYPO_CUTOFF)
        if not found or found[0].startswith(word) and len(found[0]) - len(word) >= 2:
            return word  # "process" is not a misspelt "processing": a word, not a typo
        return found[0]


def _phrasings(doc: Document) -> list[str]:
    raw = [doc.title, *doc.aliases, *doc.keywords]
    if doc.kind is Kind.CODE:
        raw.append(doc.id)
    out: list[str] = []
    for text in raw:
        words = _words(text)
        if words and words not in out:
            out.append(words)
    return out


def _words(text: str) -> str:
    return " ".join(content_words(normalise(text)))


def _code_pattern(code: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in code.split("_")]
    return re.compile(
        r"(?<![A-Za-z0-9])" + r"[\s_\-]+".join(words) + r"(?![A-Za-z0-9])", re.IGNORECASE
    )


def _template_pattern(message: str) -> re.Pattern[str] | None:
    """A catalog message template as a pattern: its literal words in order, any text where a
    placeholder stands, any punctuation or spacing between words (Slack and spreadsheets change
    quotes and spaces)."""
    parts = []
    literal_words = 0
    for n, chunk in enumerate(_PLACEHOLDER.split(message)):
        if n:
            parts.append(r".*?")
        words = re.findall(r"[A-Za-z0-9]+", chunk)
        literal_words += len(words)
        if words:
            parts.append(r"\W+".join(re.escape(w) for w in words))
    if literal_words < _MIN_TEMPLATE_WORDS:
        return None
    return re.compile(r"\W*".join(parts), re.IGNORECASE)


def build_index(
    docs: list[Document] | None = None, examples: tuple[tuple[str, str], ...] | None = None
) -> Index:
    """The index of ``docs`` (default: every document) and ``examples`` (default: the shipped
    example questions; (document id, question) pairs whose id is a document of ``docs``)."""
    docs = docs if docs is not None else documents()
    base = _build(docs)
    found = shipped_examples() if examples is None else examples
    return with_examples(base, [(d, q) for d, q in found if d in base.position])


#: the pseudo-count of every term for every document in the naive Bayes evidence (chosen
#: leave-one-batch-out: 0.1 over 0.5 and 1.0)
BAYES_ALPHA = 0.1
#: the naive Bayes count of a word pair of a document's own phrasing (``with_examples``; 4 over
#: 1, 2 and 8, and over the phrasings' single words too, which cost 0.2-0.5 points
#: leave-one-batch-out)
OWN_PHRASE_PAIR_COUNT = 4.0


#: question words that say what kind of question it is: "why ..." asks about an error more
#: often than "how do ...", which asks for a how-to; the example questions teach which documents
#: each opening (and each of these words further in) leans to, in place of most of a fixed
#: bonus (+1.0 point leave-one-batch-out)
OPENERS: frozenset[str] = frozenset(
    "how why what whats where who when can could is are do does did will would should which".split()
)


def openers(normalised: str) -> tuple[str, ...]:
    """The evidence terms of how a question opens: its first word and its first two words
    (``^how``, ``^how do``), or ``^`` alone when it starts otherwise ("student ids lost ..."),
    and the question words further in (``~how`` in "we dropped a class, how do i ...")."""
    words = normalised.split()
    if not words:
        return ()
    further = sorted({"~" + w for w in words[1:] if w in OPENERS})
    if words[0] not in OPENERS:
        return ("^", *further)
    return ("^" + words[0], "^" + " ".join(words[:2]), *further)


def evidence_terms(words: list[str], opening: tuple[str, ...] = ()) -> set[str]:
    """The terms whose evidence the example questions teach: the words and each pair of
    adjacent words ("move+school" is not "school+name"), and how the question opens
    (``openers``)."""
    return {*words, *(f"{a}+{b}" for a, b in zip(words, words[1:])), *opening}


def with_examples(index: Index, examples: list[tuple[str, str]]) -> Index:
    """``index`` with its example questions; their words are read as a question's (typos
    corrected to the documents' words), so that both sides compare alike."""
    texts: list[str] = []
    owners: list[int] = []
    starts: list[tuple[str, ...]] = []
    for doc_id, question in examples:
        normalised = fold(prepare(question))
        words = " ".join(index.question_words(normalised))
        if words:
            texts.append(words)
            owners.append(index.position[doc_id])
            starts.append(openers(normalised))
    rows: dict[str, list[int]] = {}
    learned: dict[str, list[int]] = {}
    for row, text in enumerate(texts):
        words = text.split()
        for w in set(words):
            rows.setdefault(w, []).append(row)
        for term in evidence_terms(words, starts[row]):
            learned.setdefault(term, []).append(row)
    owner = np.asarray(owners, dtype=np.intp)
    per_doc = np.maximum(np.bincount(owner, minlength=len(index.docs)), 1)
    evidence: dict[str, tuple[float, np.ndarray]] = {}
    for term, where in learned.items():
        # each document's examples that use the term, as a share of its examples (a document
        # asked about often is no likelier for it), then as a share of all documents
        share = np.bincount(owner[where], minlength=len(index.docs)) / per_doc
        # a term the examples of few documents use says more (IDF over documents)
        weight = math.log((1 + len(index.docs)) / (1 + int((share > 0).sum()))) + 1.0
        evidence[term] = (weight, share / share.sum())
    # how likely each document's example questions make each term (multinomial naive Bayes)
    counts = {
        t: np.bincount(owner[where], minlength=len(index.docs)).astype(np.float64)
        for t, where in learned.items()
    }
    # the documents' own phrasings weigh in: each word pair of a title, alias or keyword counts
    # as if that many of its document's examples used it (a code with a handful of examples is
    # otherwise outvoted on its own words by a general topic with hundreds: "school id not
    # found" is ORG_NOT_FOUND's phrasing, the examples of faq.schools use "school id" often;
    # a pair that no example uses stays out)
    for phrase, doc in zip(index.phrases, index.phrase_doc):
        words = index.question_words(phrase)
        for term in {f"{a}+{b}" for a, b in zip(words, words[1:])}:
            if term in counts:
                counts[term][doc] += OWN_PHRASE_PAIR_COUNT
    totals = np.sum(list(counts.values()), axis=0) if counts else np.zeros(len(index.docs))
    denominator = totals + BAYES_ALPHA * max(len(counts), 1)
    loglik = {t: np.log((c + BAYES_ALPHA) / denominator) for t, c in counts.items()}
    return replace(
        index,
        example_loglik=loglik,
        example_has=np.bincount(owner, minlength=len(index.docs)) > 0,
        example_texts=tuple(texts),
        example_sorted=np.asarray([" ".join(sorted(t.split())) for t in texts], dtype=object),
        example_doc=np.asarray(owners, dtype=np.intp),
        example_rows={w: np.asarray(r, dtype=np.intp) for w, r in rows.items()},
        example_evidence=evidence,
        example_unknown=math.log(1 + len(index.docs)) + 1.0,
    )


def _build(docs: list[Document]) -> Index:
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
        CodePattern(c, _code_pattern(c), f" {_words(c)} " in f" {topic_text.replace('|', ' | ')} ")
        for c in sorted(CATALOG, key=len, reverse=True)
    )

    column_groups = [g for g in ERROR_GROUPS if g in USERS_HEADERS or g in DEMOGRAPHICS_HEADERS]
    columns = {_words(g): GROUP_PREFIX + g for g in column_groups}
    group_names = {_words(g): GROUP_PREFIX + g for g in ERROR_GROUPS if g not in column_groups}

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

    frequency = Counter(w for words in doc_words for w in words)
    idf = {w: math.log((1 + len(docs)) / (1 + n)) + 1.0 for w, n in frequency.items()}
    word_column = {w: n for n, w in enumerate(sorted(frequency))}
    matrix = np.zeros((len(docs), len(word_column)), dtype=np.float64)
    for pos, words in enumerate(doc_words):
        matrix[pos, [word_column[w] for w in words]] = 1.0
    using: dict[str, list[int]] = {}
    for row, phrase in enumerate(phrases):
        for w in set(phrase.split()):
            using.setdefault(w, []).append(row)
    body_sets = [set(content_words(normalise(d.body))) for d in docs]
    body_frequency = Counter(w for words in body_sets for w in words)
    body_words = {
        w: (
            np.asarray([pos for pos, words in enumerate(body_sets) if w in words], dtype=np.intp),
            math.log((1 + len(docs)) / (1 + n)) + 1.0,
        )
        for w, n in body_frequency.items()
    }
    vocab = frozenset(frequency) | ERROR_WORDS
    sorted_phrases = tuple(" ".join(sorted(p.split())) for p in phrases)
    same_words: dict[str, list[int]] = {}
    for row, key in enumerate(sorted_phrases):
        same_words.setdefault(key, []).append(row)
    vocab |= {w for name in [*columns, *group_names] for w in name.split()}
    return Index(
        docs=tuple(docs),
        position=position,
        phrases=tuple(phrases),
        phrase_doc=np.asarray(owners, dtype=np.intp),
        sorted_phrases=sorted_phrases,
        same_words={k: tuple(v) for k, v in same_words.items()},
        doc_words=tuple(doc_words),
        doc_word_matrix=matrix,
        word_column=word_column,
        word_phrases={w: np.asarray(rows, dtype=np.intp) for w, rows in using.items()},
        body_words=body_words,
        vocab=vocab,
        idf=idf,
        unknown_idf=max(idf.values(), default=1.0),
        vocab_list=tuple(sorted(vocab)),
        same_stem=_same_stem(vocab, frequency),
        codes=codes,
        columns=columns,
        compounds=_compounds(columns, docs),
        group_names=group_names,
        group_members={k: frozenset(v) for k, v in members.items()},
        group_mask=np.array([d.kind is Kind.GROUP for d in docs], dtype=bool),
        topic_mask=np.array([d.kind is Kind.TOPIC for d in docs], dtype=bool),
        column_mask=np.array([d.kind is Kind.COLUMN for d in docs], dtype=bool),
        code_mask=np.array([d.kind is Kind.CODE for d in docs], dtype=bool),
        absence_mask=np.array([bool(words & ABSENCE_WORDS) for words in doc_words], dtype=bool),
        warning_mask=np.array(
            [d.kind is Kind.CODE and CATALOG[d.id].severity is Severity.WARNING for d in docs],
            dtype=bool,
        ),
        headers={
            _header_key(d.id.removeprefix(COLUMN_PREFIX)): d.id.removeprefix(COLUMN_PREFIX)
            for d in docs
            if d.kind is Kind.COLUMN
        },
        templates=tuple(
            (code, frozenset(normalise(_PLACEHOLDER.sub(" ", entry.message)).split()), pattern)
            for code, entry in CATALOG.items()
            if (pattern := _template_pattern(entry.message)) is not None
        ),
    )


def _compounds(columns: dict[str, str], docs: list[Document]) -> dict[str, tuple[str, ...]]:
    """A column name typed as one word, any case ("userstateid", "primaryteacher",
    "hispanicorlatinoethnicity") -> its content words."""
    out = {name.replace(" ", ""): tuple(name.split()) for name in columns if " " in name}
    for doc in docs:
        if doc.kind is Kind.COLUMN:
            header = doc.id.removeprefix(COLUMN_PREFIX)
            words = tuple(_words(header).split())
            if len(words) > 1:
                out.setdefault(_header_key(header), words)
    return out


def _same_stem(vocab: frozenset[str], frequency: Counter[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for word in sorted(vocab, key=lambda v: (-frequency[v], len(v), v)):
        out.setdefault(root(word), word)
    return out


def _header_key(token: str) -> str:
    return token.lower().replace("_", "").replace("-", "")


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
