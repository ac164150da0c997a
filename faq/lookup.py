"""Question -> ranked documents.

Order of the rules (product.md, "Knowledge base"):

0. a greeting or a bare "help" gets ``faq.help``; "X vs Y" / "difference between X and Y" is
   looked up as two questions and, when they answer with two documents, answers with both
   (a general topic that answers the whole comparison is the answer instead);
1. a catalog code named in the question wins (any case; ``_``, ``-`` or spaces between its
   words), and so does the code of a pasted bot message (a catalog message template; the most
   specific one that matches).  Plain words that a general topic also uses ("class size") are
   only a signal;
2. a column name alone, or followed only by "error(s)", goes to ``errors.<column>``; a header
   typed as a header ("userStateId") with only question words around it ("what goes in ...",
   "is ... required") goes to ``columns.<header>``, as does a header without an error group;
3. otherwise fuzzy scoring over titles, aliases and keywords, where a column mention is one
   signal among others and the shape of the question leans one way: "how do I / can I / why
   did / who / where is" (anywhere for "how do I") to topics, "it says / got an error / was
   rejected" to codes, "what values / format / required / Y or N", or a typed header with a
   question word, to column documents; "will it / does the download / if I ..." (what the
   product does in a situation) to topics like a how-to; a general topic wins an exact tie.
   Candidates within ``Weights.tie_margin`` of the best are ordered by order-aware similarity,
   so an exact or near-exact title wins a tie of shared words (adjacent word pairs first:
   "no primary teacher" binds "no" to the teacher).  "who changed / uploaded ..." leans to the
   change history, always; "it was refused / rejected" leans away from warnings, which refuse
   nothing.
   Below ``Weights.cutoff`` (``Weights.long_cutoff`` for a run-on question) nothing is a good
   enough match, and only documents above ``Weights.suggest_cutoff`` are offered as the
   closest topics;
4. the example questions (faq/examples.yaml: questions as people typed them, with their
   documents) add points to step 3's scores: the nearest examples (rapidfuzz) vote for their
   documents, and the words and word pairs of the question count for the documents whose
   examples use them (an IDF-weighted share and a tempered naive Bayes posterior).  They
   reorder documents; they do not make a question answerable that the documents' own
   phrasings leave below the cutoff (``Weights.example_cutoff_slack``), except a one-word
   question whose word the examples use mostly for one document ("undo", "clever":
   ``Weights.example_one_word_share``) or whose word and opening their naive Bayes evidence
   favours one document for ("why did it fail", "which schools do we have").
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process

from faq.documents import COLUMN_PREFIX, GROUP_PREFIX, TOPIC_PREFIX, Document
from faq.index import (
    ABSENCE_WORDS,
    COLUMN_FILLER,
    ERROR_WORDS,
    Index,
    evidence_terms,
    get_index,
    openers,
)
from faq.text import STOPWORDS, fold, prepare, strip_markup
from validation.catalog import CATALOG

HELP_ID = "faq.help"


@dataclass(frozen=True)
class Weights:
    """Ranking weights, chosen by measurement on the tuning question batches (the earlier set
    and the tuning batches of the how-to questions in tests/data), never on a held-out question:
    the example weights leave-one-batch-out (bench/bench_faq.py --cross), the older ones
    in-sample (bench/bench_faq.py --tune prints the accuracy of a grid of them)."""

    #: best score below which a question gets no answer
    cutoff: float = 62.0
    #: a run-on question (this many distinct content words or more) carries words no document
    #: uses without being off-topic: its best match needs only ``long_cutoff``
    long_words: int = 5
    long_cutoff: float = 52.0
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
    #: weight of the share of the question's words a document's own text uses
    body: float = 0.04
    #: share of a question word's weight that counts as covered when only the document's text
    #: (not its title, aliases or keywords) uses it
    body_coverage: float = 0.3
    #: "how do I ...", "where ...", "can we ..." ask for a general topic, not an error (8 before
    #: the example questions learned how questions open, ``faq.index.openers``; 2 since)
    howto_bonus: float = 2.0
    #: "it says / got an error / was rejected" reports what the bot said: it leans to the codes
    reported_bonus: float = 5.0
    #: a question (not a how-to) that states an error condition in plain words ("school id not
    #: found", "teacher has no email address", "... warning") leans to the codes a little too:
    #: the topics explain the situation, the code what the bot refused or warned of (3 over 0
    #: and 6: fixes earlier-set questions that the example questions' votes for the general
    #: topic pulled away, leave-one-batch-out unchanged)
    condition_bonus: float = 3.0
    #: "what values / format / is it required" ask for a column document
    column_question_bonus: float = 14.0
    #: a header typed as a header ("userStateId") points at its column document
    header_bonus: float = 4.0
    #: share of the weight of a question word that no document uses; long run-on questions
    #: carry many such words without being off-topic
    unknown_word_weight: float = 1.0
    #: "it was refused / rejected": a warning refuses nothing, so its code is the wrong answer
    refused_warning_penalty: float = 6.0
    #: "who changed / uploaded / removed ..." asks for the history of changes
    who_did_bonus: float = 12.0
    #: ... and scores at least this (a name or a class the documents never mention is no reason
    #: to give no answer)
    who_did_floor: float = 75.0
    #: "what does rejected / partly applied mean" asks what a row status means
    status_bonus: float = 10.0
    #: "X vs Y" where one document answers the whole question this well (its title is
    #: "Primary teacher vs co-teacher") is answered by that document, not by two halves
    compared_whole_score: float = 95.0
    #: a question saying something is absent ("a row without a last name") leans away from
    #: documents that never speak of absence
    absence_penalty: float = 6.0
    #: a general topic's lead over a code or column document that scores the same: the topic
    #: explains the situation and links to the codes
    topic_lead: float = 0.1
    #: candidates this close to the best are ordered by order-aware similarity (a tie)
    tie_margin: float = 8.0
    #: score a document needs to be offered as a "closest topic" when nothing matched
    suggest_cutoff: float = 55.0
    #: ... and the share of the question's word weight that the documents know at all
    #: ("lunch menu" shares one word with a document: not close)
    suggest_known_share: float = 0.6
    #: example questions (faq/examples.yaml): among the question's nearest ``example_k``
    #: examples (token_sort_ratio of the content words), each document's nearest one gives it
    #: the points its similarity has above ``example_floor``, times ``example_vote``; chosen
    #: leave-one-batch-out over the tuning batches (bench/bench_faq.py --cross), like the rest
    #: (7, 50, 0.1 -> 10, 65, 0.5 with eleven batches: a near example counts more, a loose one
    #: not at all; +0.3 points leave-one-batch-out, every batch from tune5 on gaining, and any
    #: vote from 0.4 to 0.8 within 0.1 point of it)
    example_k: int = 10
    example_floor: float = 65.0
    example_vote: float = 0.5
    #: weight of the word evidence learned from the examples: the share of the question's word
    #: weight (IDF over the documents' examples) whose examples ask for the document
    example_words: float = 0.3
    #: weight of the naive Bayes posterior of the documents given the question's words and
    #: word pairs, learned from the examples (0.05 -> 0.3 with the tempering below: 84.0 ->
    #: 85.5 % leave-one-batch-out, the newest batches tune5/6/7 gaining 1.5-3.8 points)
    example_bayes: float = 0.3
    #: the naive Bayes log-likelihoods are divided by this before the posterior is taken: a
    #: question's words are not independent (they say much the same thing twice), so the plain
    #: posterior is overconfident, all on one document (2 over 1, 1.5, 3 and 4)
    example_bayes_temper: float = 2.0
    #: a one-word question is answered by the document that this share of the (at least
    #: ``example_one_word_min``) example questions using the word ask for, as if the word were
    #: one of its keywords (0.5 over 0.4 and 0.7: +0.4 points leave-one-batch-out)
    example_one_word_share: float = 0.5
    example_one_word_min: int = 3
    #: the best score without the examples' points must be this close to the cutoff for a
    #: question to be answered (examples reorder; they do not make a vague question a match) ...
    #: (6 -> 10 since the examples number thousands: +0.4 points leave-one-batch-out; 10 -> 14
    #: with eleven batches, +0.2 points; 16 and more answer "who won the game last night")
    example_cutoff_slack: float = 14.0
    #: ... and reach the cutoff itself for a question of fewer content words than this
    example_short: int = 3
    #: ... and a question whose best document reaches the cutoff only with the examples' points
    #: needs at least this many of them for it ("recommend a good pizza place" shares one word
    #: with a title and gets 4 points of scattered example evidence: no answer; 8 over 0, 5, 7,
    #: 10 and 12: +0.2 points leave-one-batch-out over thirteen batches)
    example_lift: float = 8.0
    #: ... a question of fewer than ``example_short`` content words, though its documents'
    #: phrasings leave it below the cutoff, is answered by the document ranked first when the
    #: examples' naive Bayes posterior favours it too and its nearest example gives it more
    #: vote points than this ("rehire", "sftp import", "what kind of bot are you"; 10 over 0
    #: and 15: 0 answers "roster question please", vague, and 15 gains less)
    example_short_vote: float = 10.0


WEIGHTS = Weights()
NAMED_SCORE = 100.0
_HOWTO = re.compile(
    r"^(how|where|which|who|can (i|we|a|an|you)|could (i|we)|do (i|we) "
    r"(have|need)|should (i|we)|is there|is it possible|what (is|are) the|whats the"
    r"|what happens|what should|what do (i|we))\b"
)
#: "will it / does the download / if i deactivate ... will": a question about what the product
#: does in a situation, answered by a general topic like a how-to
_BEHAVIOUR = re.compile(
    r"^(will|would|does (it|the|rosterbot|sync|an?|that|this)|if (i|we)|what if|after (i|we|a))\b"
    r"|\b(will (it|that|this|he|she|they)|what happens (if|when|to))\b"
)
#: a how-to question after a first sentence ("we dropped a class, how do i get rid of it")
_HOWTO_INSIDE = re.compile(
    r"\b(how (do|can|should|would) (i|we)|how to|is there a way|what do (i|we) do"
    r"|what should (i|we) do|what do (i|we) need to do)\b"
)
#: words that make a question about a column's values, not its errors
COLUMN_QUESTION_WORDS: frozenset[str] = frozenset(
    """column field value accepted accept allowed valid format formatted required optional
    mandatory put goes go write fill example supposed type for use used""".split()
)
_COLUMN_QUESTION = re.compile(
    r"\b(values?|accept(ed|s)?|allowed|valid|format(ted)?|required|optional|mandatory"
    r"|goes in|go in|put in|write in|fill in|supposed to|y (or )?n|yes (or )?no"
    r"|where (do|should|can|would) (i|we) (put|write|enter)|where (does|do|should) .+ go)\b"
)
#: a question about a header typed as a header ("what is classGrade for a class with two grades",
#: "what should primary_teacher be for a co-teacher") asks about the column
_ASKS = re.compile(r"^(what|whats|where|which|when|is|are|does|do|should|can|how)\b")
#: a value that was refused is an error question, not a question about the column
_COMPLAINT = re.compile(
    r"\b(not|no|isnt|arent|doesnt|dont|cant|wont|invalid|rejected|refused|wrong|errors?"
    r"|fail(ed|s)?|warnings?)\b"
)
#: the file or row was refused: an error did it, not a warning
_REFUSED = re.compile(
    r"\b(refused|refuses|rejected|rejects|denied|bounced|not (accepted|taken|allowed)"
    r"|(wont|wouldnt|didnt|doesnt) (accept|take|read|load))\b"
)
#: "it says / got an error / was rejected": a report of what the bot said about a file or a row
#: leans to the codes (the opposite of a how-to question)
_REPORTED = re.compile(
    r"\b(bot says|it says|says|said|saying|got an? (error|warning)|getting an? (error|warning)"
    r"|error (for|on|that|saying)|rejected|refused|failed|fails|flagged|complains?)\b"
)
#: "who uploaded the file", "who changed her email": a question about the history of changes
_WHO_DID = re.compile(
    r"(^|\b(find out|know|knows|see|tell me|check|figure out|wondering|asked|asking|ask|wants to know)"
    r" )(who|which (person|user|admin|administrator)) (has |have )?(changed|uploaded|added|removed"
    r"|deleted|deactivated|reactivated|edited|modified|updated|moved|made|did|sent|ran|applied)\b"
)
HISTORY_ID = "faq.history"
_STATUS_MEANING = re.compile(
    r"\b(applied|rejected|held|partly|partially|completed)\b.*\b(mean|means|meaning)\b"
)
STATUSES_ID = "faq.statuses"
#: people a column question may be about ("is userGrade required for teachers")
_PEOPLE = frozenset("student teacher staff kid person people everyone administrator".split())
_GREETING_WORDS = frozenset(
    "hi hello hey hiya yo howdy morning afternoon evening help helo halp".split()
)
_GREETING_FILLER = frozenset("good there rosterbot bot everyone all team folks me".split())
_BOT = r"(you|u|it|this|this bot|this thing|the bot|rosterbot)"
_WHAT_CAN_YOU_DO = re.compile(
    rf"^(what can ({_BOT}|i ask you|i ask|i do with you) do|what can i ask( {_BOT})?"
    rf"|what (do|does) {_BOT} do|(list of |your |the )?commands?"
    r"|(list|show me|tell me|what is) (everything|all|what) (you|u|rosterbot) (can do|do)"
    r"|what (else )?can (you|u|rosterbot) (help|help me|help us) with"
    rf"|what (are|is) {_BOT} (able to do|for|good for)|how (does|do) {_BOT} work"
    rf"|how (do i|do we|to|can i) (start using|get started with) {_BOT}|what is rosterbot)$"
)
_COMPARISON = re.compile(
    r"^(?:.*?\bdifference between\s+(?P<a>.+?)\s+and\s+(?P<b>.+?)"
    r"|(?P<x>.+?)\s+(?:vs|versus|v)\s+(?P<y>.+?))\s*$"
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


def lookup(
    question: str, limit: int = 3, weights: Weights = WEIGHTS, index: Index | None = None
) -> LookupResult:
    """Rank the knowledge-base documents for a question; see the module docstring (``index``:
    another index than the shipped one, e.g. one built without some example questions)."""
    index = index if index is not None else get_index()
    text = prepare(question)
    normalised = fold(text)
    if _is_greeting(normalised):
        pos = index.position[HELP_ID]
        return LookupResult(
            query=question, matches=[_match(index, pos, NAMED_SCORE)], best=index.docs[pos]
        )
    compared = _comparison(index, question, normalised, limit, weights)
    if compared is not None:
        return compared
    return _rank(index, question, text, normalised, limit, weights)


def _rank(
    index: Index,
    question: str,
    text: str,
    normalised: str,
    limit: int,
    weights: Weights,
    as_column: bool = False,
) -> LookupResult:
    named = _named_codes(index, text)
    words = index.question_words(normalised)
    headers = _headers_typed(index, question)
    complaint = bool(_COMPLAINT.search(normalised))
    column_question = not complaint and bool(
        _COLUMN_QUESTION.search(normalised) or headers and _ASKS.match(normalised)
    )

    if named.winners:
        winners = [index.position[c] for c in named.winners]
    elif pasted := _pasted_codes(index, question, normalised):
        winners = [index.position[c] for c in pasted]
    elif (doc_id := _column_alone(index, words, headers, normalised, as_column)) is not None:
        winners = [index.position[doc_id]]
    else:
        winners = []

    howto = bool(
        _HOWTO.match(normalised)
        or _HOWTO_INSIDE.search(normalised)
        or _BEHAVIOUR.search(normalised)
    )
    status_meaning = bool(_STATUS_MEANING.search(normalised))
    reported = not howto and not status_meaning and bool(_REPORTED.search(normalised))
    examples, favourite, votes = (
        _example_scores(index, words, openers(normalised), weights)
        if index.example_texts and words
        else (np.zeros(len(index.docs)), None, np.zeros(len(index.docs)))
    )
    scores = _fuzzy_scores(
        index, words, named.plain, headers, howto, column_question, weights, examples, favourite
    )
    if reported:
        scores[index.code_mask] += weights.reported_bonus
    if not howto and _COMPLAINT.search(normalised):
        scores[index.code_mask] += weights.condition_bonus
    if _WHO_DID.search(normalised) and HISTORY_ID in index.position:
        # whoever did it, to whatever: the history answers first ("who changed this student's
        # email" asks who, not how), even when no word of it is shared
        pos = index.position[HISTORY_ID]
        scores[pos] = max(
            scores[pos] + weights.who_did_bonus, weights.who_did_floor, scores.max() + 0.1
        )
    if weights.absence_penalty and ABSENCE_WORDS & set(words):
        scores[~index.absence_mask] -= weights.absence_penalty
    if status_meaning and STATUSES_ID in index.position:
        scores[index.position[STATUSES_ID]] += weights.status_bonus
    if _REFUSED.search(normalised):
        scores[index.warning_mask] -= weights.refused_warning_penalty
    ranked = [int(i) for i in np.argsort(-scores, kind="stable") if int(i) not in winners]
    ranked = _break_ties(index, ranked, scores, words, weights.tie_margin)
    top = [(i, NAMED_SCORE) for i in winners] + [(i, float(scores[i])) for i in ranked]

    cutoff = weights.long_cutoff if len(set(words)) >= weights.long_words else weights.cutoff
    # the example questions reorder the documents; whether anything is close enough to answer
    # at all is first the documents' own phrasings' say (a vague question that shares a word
    # or two with some examples is no better a match for it)
    known = float((scores - examples).max()) if len(scores) else 0.0
    slack = weights.example_cutoff_slack if len(set(words)) >= weights.example_short else 0.0
    # ... and the examples must say it clearly when only their points reach the cutoff
    best = top[0][0] if top and not winners else None
    weak = best is not None and (
        scores[best] - examples[best] < cutoff and examples[best] < weights.example_lift
    )
    if (
        best is not None
        and best == favourite
        and len(set(words)) < weights.example_short
        and votes[best] > weights.example_short_vote
    ):
        # ... but a short question's few words may be no phrasing of its document at all
        # ("rehire", "sftp import", "what kind of bot are you"): when the examples' naive Bayes
        # evidence favours the document ranked first and one of its examples is near, people
        # asked for it this way
        known = max(known, cutoff)
    if not top or top[0][1] < cutoff or known < cutoff - slack or weak:
        close = _known_share(index, words) >= weights.suggest_known_share
        suggestions = [
            _match(index, i, s) for i, s in top[:limit] if close and s >= weights.suggest_cutoff
        ]
        return LookupResult(query=question, matches=[], best=None, suggestions=suggestions)
    matches = [
        _match(index, i, s)
        for n, (i, s) in enumerate(top[:limit])
        if n == 0 or s >= weights.related_cutoff
    ]
    return LookupResult(query=question, matches=matches, best=index.docs[top[0][0]])


def _known_share(index: Index, words: list[str]) -> float:
    """The share of the question's word weight (IDF) that some document uses."""
    total = sum(index.idf.get(x, index.unknown_idf) for x in set(words))
    return sum(index.idf.get(x, 0.0) for x in set(words)) / total if total else 0.0


def _is_greeting(normalised: str) -> bool:
    """ "hi", "hello rosterbot", "help", "what can you do": answered with what the bot does."""
    if _WHAT_CAN_YOU_DO.match(normalised):
        return True
    words = normalised.split()
    return any(w in _GREETING_WORDS for w in words) and all(
        w in _GREETING_WORDS or w in _GREETING_FILLER or w in STOPWORDS for w in words
    )


def _comparison(
    index: Index, question: str, normalised: str, limit: int, weights: Weights
) -> LookupResult | None:
    """ "X vs Y": both sides answered, the first document composed with the second."""
    found = _COMPARISON.match(normalised)
    if not found:
        return None
    halves = [found.group("a") or found.group("x"), found.group("b") or found.group("y")]
    # "what is X vs Y": the question words belong to both sides
    results = []
    for half in halves:
        half_text = strip_markup(_original_case(question, half))
        results.append(
            _rank(index, half_text, prepare(half_text), half, limit, weights, as_column=True)
        )
    if any(r.best is None for r in results) or results[0].best.id == results[1].best.id:
        return None
    whole = _rank(index, question, prepare(question), normalised, limit, weights)
    # whether one document answers the comparison as a whole is its own phrasings' say (the
    # example questions' points would make any topic often compared a whole answer)
    own = _rank(index, question, prepare(question), normalised, limit, _without_examples(weights))
    if own.best is not None and own.matches[0].score >= weights.compared_whole_score:
        # a general topic that answers the comparison as a whole ("Primary teacher vs
        # co-teacher") is the answer; columns and codes are compared side by side
        if own.best.id.startswith(TOPIC_PREFIX):
            return own
        if own.best.id == results[1].best.id:  # the side that answers the whole comes first
            results.reverse()
    first, second = results[0].best, results[1].best
    fix = second.readable_fix()
    extra = f"\n\n## Compared with: {second.title} ({second.id})\n{second.body}"
    if fix:
        extra += f"\n\nHow to fix ({second.id}): {fix}"
    composed = dataclasses.replace(first, body=first.body + extra)
    matches = [results[0].matches[0], results[1].matches[0]]
    matches += [m for m in whole.matches if m.id not in {first.id, second.id}]
    return LookupResult(query=question, matches=matches[: max(limit, 2)], best=composed)


def _without_examples(weights: Weights) -> Weights:
    """``weights`` with the example questions' points off."""
    return dataclasses.replace(
        weights, example_vote=0.0, example_words=0.0, example_bayes=0.0, example_one_word_share=0.0
    )


def _original_case(question: str, folded_part: str) -> str:
    """The words of ``folded_part`` as the question typed them (code and header detection
    need letter case and underscores)."""
    tokens = re.findall(r"\S+", strip_markup(question))
    want = folded_part.split()
    for start in range(len(tokens)):
        taken: list[str] = []
        for tok in tokens[start:]:
            taken.append(tok)
            got = fold(prepare(" ".join(taken))).split()
            if got == want:
                return " ".join(taken)
            if len(got) > len(want) or got != want[: len(got)]:
                break
    return folded_part


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


def _pasted_codes(index: Index, question: str, normalised: str) -> list[str]:
    """The code whose catalog message the question quotes (a pasted bot message)."""
    present = set(normalised.split())
    raw = strip_markup(question)
    found = [
        (len(literal), code)
        for code, literal, pattern in index.templates
        if literal <= present and pattern.search(raw)
    ]
    # the most specific template that matches: "classId '3-Aug' was changed by a spreadsheet"
    # is CLASSID_EXCEL's message, though USERID_EXCEL's "{column} '{value}' was changed by a
    # spreadsheet" matches it too
    return [max(found, key=lambda f: f[0])[1]] if found else []


def _headers_typed(index: Index, question: str) -> list[str]:
    """Headers typed as one token ("userStateId", "org_sis_id", "primaryteacher")."""
    found = []
    for token in re.findall(r"[A-Za-z0-9_\-]+", strip_markup(question)):
        header = index.headers.get(token.lower().replace("_", "").replace("-", ""))
        if header and header not in found:
            found.append(header)
    return found


def _column_alone(
    index: Index, words: list[str], headers: list[str], normalised: str, as_column: bool
) -> str | None:
    """``errors.<group>`` when the question is a column name with at most "error(s)";
    ``columns.<header>`` when a typed header comes only with question words around it."""
    rest = [w for w in words if w not in COLUMN_FILLER]
    has_error_word = any(w in ERROR_WORDS for w in rest)
    name = " ".join(w for w in rest if w not in ERROR_WORDS)
    if len(headers) == 1 and not has_error_word:
        header = headers[0]
        header_words = set(index.docs[index.position[COLUMN_PREFIX + header]].aliases[0:1])
        own = {w for w in index.question_words(fold(prepare(header)))} | header_words
        extra = [w for w in rest if w not in own]
        asked = len(normalised.split()) > len(fold(prepare(header)).split())
        if all(w in COLUMN_QUESTION_WORDS or w in _PEOPLE for w in extra):
            group = GROUP_PREFIX + header
            if (asked or as_column) or group not in index.position:
                return COLUMN_PREFIX + header
    if name in index.columns:
        return index.columns[name]
    if has_error_word and name in index.group_names:
        return index.group_names[name]
    return None


def _break_ties(
    index: Index, ranked: list[int], scores: np.ndarray, words: list[str], margin: float
) -> list[int]:
    """A tie: the best candidates have a phrasing made of exactly the question's words
    ("class has no primary teacher" and PRIMARY_TEACHER_NO_CLASS) and score within ``margin``
    of each other; word order decides between them (``_order_similarity``)."""
    rows = index.same_words.get(" ".join(sorted(words)), ())
    if len(ranked) < 2 or not rows:
        return ranked
    order: dict[int, tuple[int, float]] = {}
    for row in rows:
        pos = int(index.phrase_doc[row])
        order[pos] = max(order.get(pos, (-1, -1.0)), _order_similarity(words, index.phrases[row]))
    best = scores[ranked[0]]
    if ranked[0] not in order:
        return ranked
    tied = [i for i in ranked if best - scores[i] <= margin and i in order]
    if len(tied) < 2:
        return ranked
    tied.sort(key=lambda i: (-order[i][0], -order[i][1], -scores[i]))
    return tied + [i for i in ranked if i not in tied]


def _order_similarity(words: list[str], phrase: str) -> tuple[int, float]:
    """How much of the question's word order a phrasing keeps: the adjacent word pairs they
    share first ("no primary teacher" binds "no" to "primary teacher", whatever follows), then
    the character similarity."""
    mine = phrase.split()
    pairs = set(zip(mine, mine[1:]))
    shared = sum(1 for pair in zip(words, words[1:]) if pair in pairs)
    return shared, fuzz.ratio(" ".join(words), phrase)


def _example_scores(
    index: Index, words: list[str], opening: tuple[str, ...], w: Weights
) -> tuple[np.ndarray, int | None, np.ndarray]:
    """Points for each document from the example questions: votes of the question's nearest
    examples (only examples sharing a word can be near) and what its words point to; the
    document their naive Bayes posterior favours (None without it); and the votes alone."""
    n = len(index.docs)
    out = np.zeros(n)
    asked = set(words)
    rows = [index.example_rows[x] for x in asked if x in index.example_rows]
    if rows and w.example_vote:
        # the examples sharing a word, each once and in order: a mask, not a hash of them all
        shares = np.zeros(len(index.example_doc), dtype=bool)
        for found in rows:
            shares[found] = True
        candidates = np.flatnonzero(shares)
        sorted_query = " ".join(sorted(words))
        near_texts = index.example_sorted[candidates]
        sims = process.cdist([sorted_query], near_texts, scorer=fuzz.ratio)[0].astype(np.float64)
        k = min(w.example_k, len(sims))
        near = np.argpartition(-sims, k - 1)[:k]
        # each document gets the points of its nearest example among them
        points = w.example_vote * np.maximum(sims[near] - w.example_floor, 0.0)
        np.maximum.at(out, index.example_doc[candidates[near]], points)
    votes = out.copy()
    question_terms = evidence_terms(words, opening)
    if w.example_words:
        evidence = np.zeros(n)
        weight_sum = 0.0
        for x in question_terms:
            found = index.example_evidence.get(x)
            if found is None:
                weight_sum += index.example_unknown
                continue
            weight, share = found
            evidence += weight * share
            weight_sum += weight
        out += w.example_words * 100.0 * evidence / max(weight_sum, 1e-9)
    terms = [t for t in question_terms if t in index.example_loglik]
    if w.example_bayes and terms:
        # the posterior of each document with examples, given the question's known terms
        loglik = np.where(index.example_has, sum(index.example_loglik[t] for t in terms), -np.inf)
        loglik = loglik / w.example_bayes_temper
        posterior = np.exp(loglik - loglik.max())
        out += w.example_bayes * 100.0 * posterior / posterior.sum()
        return out, int(posterior.argmax()), votes
    return out, None, votes


def _fuzzy_scores(
    index: Index,
    words: list[str],
    plain_codes: list[str],
    headers: list[str],
    howto: bool,
    column_question: bool,
    w: Weights,
    examples: np.ndarray,
    favourite: int | None = None,
) -> np.ndarray:
    """Each document's score (``examples``: the example questions' points; ``favourite``: the
    document their naive Bayes posterior favours)."""
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
    if known:
        candidates = np.unique(np.concatenate([index.word_phrases[x] for x in known]))
        subset = [index.phrases[i] for i in candidates]
        token_set[candidates] = process.cdist([query], subset, scorer=fuzz.token_set_ratio)[0]
    ratio = process.cdist([query], index.phrases, scorer=fuzz.ratio)[0]
    per_phrase = (w.token_set * token_set + w.token_sort * token_sort + w.ratio * ratio) / (
        w.token_set + w.token_sort + w.ratio
    )
    np.maximum.at(scores, index.phrase_doc, per_phrase)

    # Words the documents never use (an off-topic "capital", "France") weigh the most, so a
    # question made of them gets little coverage anywhere.
    total = sum(index.idf.get(x, index.unknown_idf * w.unknown_word_weight) for x in asked)
    columns = [index.word_column[x] for x in known]
    weights = np.array([index.idf[x] for x in known])
    covered = index.doc_word_matrix[:, columns] * weights
    if w.body_coverage:
        # a word only the document's text uses (not its phrasings) covers a share of its weight
        extra = 0.0
        for x in asked:
            if x in index.body_words:
                where, weight = index.body_words[x]
                own = index.idf.get(x)
                if own is None:
                    # its weight counted in ``total`` as unknown; as a body word it is known
                    own = index.unknown_idf * w.unknown_word_weight
                col = np.zeros(len(index.docs))
                col[where] = w.body_coverage * own
                if x in index.word_column:
                    j = known.index(x)
                    covered[:, j] = np.maximum(covered[:, j], col)
                else:
                    extra = extra + col
        coverage = 100.0 * (covered.sum(axis=1) + extra) / total
    else:
        coverage = 100.0 * covered.sum(axis=1) / total
    scores = (1 - w.coverage) * scores + w.coverage * coverage
    if w.body:
        body = np.zeros(len(index.docs))
        for x in asked:
            if x in index.body_words:
                where, weight = index.body_words[x]
                body[where] += weight
        scores += w.body * 100.0 * body / total

    padded = f" {query} "
    for name, group in index.columns.items():
        if f" {name} " in padded:
            for pos in index.group_members.get(group, ()):
                scores[pos] += w.column_bonus
    for code in plain_codes:
        scores[index.position[code]] += w.plain_code_bonus
    scores[index.group_mask] -= w.group_penalty
    for header in headers:
        scores[index.position[COLUMN_PREFIX + header]] += w.header_bonus
    scores[index.topic_mask] += w.topic_lead
    if howto:
        scores[index.topic_mask] += w.howto_bonus
    if column_question:
        scores[index.column_mask] += w.column_question_bonus
    scores += examples
    if len(asked) == 1:
        # One word ("bot", "hello") shares a phrase with many documents; it answers only
        # when it is itself a title, alias or keyword.
        exact = {int(index.phrase_doc[i]) for i, p in enumerate(index.phrases) if p == query}
        # ... or when the example questions that use it mostly ask for one document ("undo",
        # "clever": the word is how people name that topic)
        rows = index.example_rows.get(query)
        if w.example_one_word_share and rows is not None and len(rows) >= w.example_one_word_min:
            counts = np.bincount(index.example_doc[rows], minlength=len(scores))
            top = int(counts.argmax())
            if counts[top] >= w.example_one_word_share * len(rows):
                exact.add(top)
        # ... or the document the examples' evidence favours, given the word and how the
        # question puts it ("whats this bot for", "who uploaded this", "which schools do we
        # have": one content word, and the question's shape says which document)
        if favourite is not None:
            exact.add(favourite)
        capped = [pos for pos in range(len(scores)) if pos not in exact]
        scores[capped] = np.minimum(scores[capped], w.cutoff - 1)
    return scores
