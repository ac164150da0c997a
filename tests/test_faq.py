"""Knowledge base: every code and topic has a document, lookups rank as product.md says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import faq
from faq.documents import DocumentError, Kind, parse_document
from validation.catalog import CATALOG, ERROR_GROUPS, codes_in_group
from validation.dictionary import DEMOGRAPHICS_HEADERS, USERS_HEADERS

QUESTIONS = yaml.safe_load(
    (Path(__file__).parent / "data" / "faq_questions.yaml").read_text(encoding="utf-8")
)
# The general topics of product.md's table (the code and group ids come from the catalog).
TOPIC_IDS = [
    "faq.batch-upload",
    "faq.permissions",
    "faq.third-party",
    "faq.download-data",
    "faq.student-emails",
    "faq.upload-failed",
    "faq.error-report",
    "faq.leading-zeros",
    "faq.encoding",
    "faq.templates",
    "faq.class-display-names",
    "faq.remove-class",
    "faq.change-user-id",
    "faq.primary-teacher",
    "faq.class-size",
    "faq.grades",
    "faq.demographics",
    "faq.dry-run",
    "faq.statuses",
    "faq.add-person",
    "faq.move-school",
    "faq.name-email-change",
    "faq.reactivate",
    "faq.change-class-id",
    "faq.schools",
    "faq.partial-file",
    "faq.sync",
    "faq.undo",
    "faq.history",
    "faq.bot-silent",
    "faq.help",
]
MIN_ACCURACY = 0.95


def _ids() -> set[str]:
    return {d.id for d in faq.documents()}


@pytest.mark.parametrize("code", sorted(CATALOG))
def test_every_catalog_code_has_a_document(code: str) -> None:
    assert code in _ids(), f"no knowledge-base document for {code} (add faq/docs/{code}.md)"


@pytest.mark.parametrize("group", ERROR_GROUPS)
def test_every_error_group_has_a_document_listing_its_codes(group: str) -> None:
    doc = faq.get_document(f"errors.{group}")
    assert doc.kind is Kind.GROUP
    assert list(doc.codes) == codes_in_group(group)
    for code in codes_in_group(group):
        assert code in doc.body


@pytest.mark.parametrize("topic", TOPIC_IDS)
def test_every_product_topic_has_a_document(topic: str) -> None:
    assert topic in _ids()


def test_no_document_outside_codes_groups_and_topics() -> None:
    known = set(CATALOG) | {f"errors.{g}" for g in ERROR_GROUPS} | set(TOPIC_IDS)
    known |= {f"columns.{h}" for h in (*USERS_HEADERS, *DEMOGRAPHICS_HEADERS)}
    assert _ids() - known == set()


def test_related_ids_exist_and_documents_have_aliases() -> None:
    ids = _ids()
    for doc in faq.documents():
        assert set(doc.related) <= ids, doc.id
        assert doc.aliases, f"{doc.id} has no aliases"
        assert doc.title and doc.body


@pytest.mark.parametrize("code", sorted(CATALOG))
def test_code_document_fix_is_the_catalog_fix(code: str) -> None:
    doc = faq.get_document(code)
    assert doc.fix == CATALOG[code].fix
    assert CATALOG[code].fix not in doc.body, "the fix text must come only from the catalog"
    assert not re.search(r"^#+\s*how to fix", doc.body, re.IGNORECASE | re.MULTILINE)


def test_a_code_document_carrying_its_own_fix_is_refused() -> None:
    text = "---\nid: EMAIL_TAKEN\naliases: [x]\n---\n## How to fix\nDo something else.\n"
    with pytest.raises(DocumentError):
        parse_document(text)


@pytest.mark.parametrize("code", ["EMAIL_TAKEN", "CLASS_SIZE", "HEADER_MISSING", "FAILED"])
def test_answer_for_a_code_carries_the_catalog_fix(code: str) -> None:
    result = faq.lookup(code)
    assert result.best is not None and result.best.id == code
    expected = CATALOG[code].fix.format(
        column="<column>", value="<value>", detail="<value shown in the report>"
    )
    assert f"How to fix: {expected}" in faq.answer_text(result)
    assert faq.ask_json(code)["answer"] == faq.answer_text(result)


def test_question_set_top1_accuracy() -> None:
    assert len(QUESTIONS) >= 80
    misses = []
    for item in QUESTIONS:
        result = faq.lookup(item["q"])
        got = result.best.id if result.best else None
        if got != item["id"]:
            misses.append(f"{item['q']!r}: expected {item['id']}, got {got}")
    accuracy = 1 - len(misses) / len(QUESTIONS)
    assert accuracy >= MIN_ACCURACY, f"accuracy {accuracy:.1%}; misses:\n" + "\n".join(misses)


@pytest.mark.parametrize("question", [i["q"] for i in QUESTIONS if i["id"] is None])
def test_off_topic_questions_get_no_match(question: str) -> None:
    result = faq.lookup(question)
    assert result.best is None and result.matches == []
    data = faq.ask_json(question)
    assert data == {"query": question, "matches": [], "answer": None}


@pytest.mark.parametrize(
    "question",
    [
        "CLASSNAME_CONFLICT",
        "classname_conflict",
        "classname-conflict",
        "ClassName Conflict",
        "why do i get a CLASSNAME_CONFLICT on row 3",
    ],
)
def test_a_named_code_wins_in_any_spelling(question: str) -> None:
    assert faq.lookup(question).best.id == "CLASSNAME_CONFLICT"


@pytest.mark.parametrize(
    "question",
    [
        "primary_teacher",
        "primary teacher",
        "primaryTeacher",
        "primary-teacher",
        "primary_teacher errors",
        "Primary Teacher error",
    ],
)
def test_a_column_alone_goes_to_its_error_group(question: str) -> None:
    assert faq.lookup(question).best.id == "errors.primary_teacher"


def test_a_codes_own_phrasing_outranks_a_column_mention() -> None:
    result = faq.lookup("the same class id has two different names")
    assert result.best.id == "CLASSNAME_CONFLICT"


def test_slack_markup_is_stripped() -> None:
    plain = faq.lookup("what does primary_teacher error mean?")
    marked = faq.lookup(
        "<@U123ABC> what does primary_teacher error mean? <#C123|roster-help> "
        "<https://example.org/help|see> https://example.org/x"
    )
    assert marked.best.id == plain.best.id == "errors.primary_teacher"
    # markup alone is no question
    assert faq.lookup("<@U123ABC> <#C0456|general> <!here>").best is None


def test_matches_are_best_first_and_limited() -> None:
    result = faq.lookup("email already in use by another district", limit=2)
    assert result.best.id == "EMAIL_TAKEN"
    assert [m.id for m in result.matches][0] == "EMAIL_TAKEN" and len(result.matches) <= 2
    scores = [m.score for m in result.matches]
    assert scores == sorted(scores, reverse=True)


def test_ask_json_shape() -> None:
    data = faq.ask_json("email taken??")
    assert set(data) == {"query", "matches", "answer"}
    assert data["matches"][0] == {
        "id": "EMAIL_TAKEN",
        "title": CATALOG["EMAIL_TAKEN"].title,
        "score": 100.0,
    }
    assert all(set(m) == {"id", "title", "score"} for m in data["matches"])


def test_no_match_answer_text_offers_closest_topics() -> None:
    # a near miss (off-topic questions get none: tests/test_faq_topics.py)
    result = faq.lookup("roster question please")
    text = faq.answer_text(result)
    assert "good answer" in text
    assert result.suggestions  # the bot offers these as "closest topics"


def test_the_bot_builds_the_knowledge_base_while_it_starts(monkeypatch):
    """`rosterbot serve` builds the index in the background, so the first question asked does
    not wait ~1.4 s for it (in queued mode, before Slack is acknowledged)."""
    import faq.index
    from bot.app import warm_knowledge_base

    monkeypatch.setattr(faq.index, "_cached", None)
    thread = warm_knowledge_base()
    thread.join(timeout=120)
    assert not thread.is_alive()
    built = faq.index._cached
    assert built is not None
    assert faq.index.get_index() is built  # the first question uses it, no second build
    assert faq.lookup("what can you do").best.id == "faq.help"
