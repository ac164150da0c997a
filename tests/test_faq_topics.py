"""Knowledge base (issue 14): every topic of product.md and every column has a document; the
shape of a question (greeting, how-to, column question, pasted message, "X vs Y") decides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import faq
from bot.slash import HELP
from faq.documents import DocumentError, Kind, column_documents, dictionary_headers
from faq.index import get_index
from faq.lookup import HELP_ID, WEIGHTS
from tests.test_faq import TOPIC_IDS
from validation.catalog import CATALOG
from validation.dictionary import DEMOGRAPHICS_COLUMNS, USERS_COLUMNS


def _spec() -> Path | None:
    """product.md of the shared spec, found above the repository (absent in a bare checkout)."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "spec" / "product.md"
        if candidate.is_file():
            return candidate
    return None


def _spec_topic_ids() -> list[str]:
    spec = _spec()
    if spec is None:
        return TOPIC_IDS
    text = spec.read_text(encoding="utf-8")
    section = text[text.index("## Knowledge base") :]
    section = section[: section.index("\n## ", 4)]
    return sorted(set(re.findall(r"^\| `(faq\.[a-z0-9-]+)` \|", section, re.MULTILINE)))


SPEC_TOPICS = _spec_topic_ids()


def test_the_spec_topic_list_is_read_and_matches_the_tests_copy() -> None:
    if _spec() is None:
        pytest.skip("shared/spec/product.md is not beside this checkout")
    assert len(SPEC_TOPICS) >= 31
    assert set(SPEC_TOPICS) == set(TOPIC_IDS)


@pytest.mark.parametrize("topic", SPEC_TOPICS)
def test_every_spec_topic_has_a_document(topic: str) -> None:
    doc = faq.get_document(topic)
    assert doc.kind is Kind.TOPIC and doc.title and doc.body and doc.aliases


@pytest.mark.parametrize("header", dictionary_headers())
def test_every_column_has_a_document_from_the_dictionary(header: str) -> None:
    doc = faq.get_document(f"columns.{header}")
    assert doc.kind is Kind.COLUMN
    specs = [c for c in (*USERS_COLUMNS, *DEMOGRAPHICS_COLUMNS) if c.name == header]
    for col in specs:
        # the validator's own accepted values, word for word: they cannot drift
        assert f"Accepted values: {col.accepted}" in doc.body
        assert col.meaning in doc.body
        need = {"required": "Required: required", "optional": "Required: optional"}
        assert need.get(col.kind.value, col.condition) in doc.body
        for code in col.codes:
            assert code in doc.body and CATALOG[code].title in doc.body


def test_both_dictionaries_are_covered() -> None:
    ids = {d.id for d in faq.documents() if d.kind is Kind.COLUMN}
    assert ids == {f"columns.{c.name}" for c in (*USERS_COLUMNS, *DEMOGRAPHICS_COLUMNS)}
    assert "columns.userId" in ids and "columns.homeLanguage" in ids


def test_column_explanations_must_match_the_dictionary() -> None:
    explained = {h: {"explain": "x"} for h in dictionary_headers()}
    with pytest.raises(DocumentError, match="userNickname"):
        column_documents({**explained, "userNickname": {"explain": "x"}})
    del explained["userStateId"]
    with pytest.raises(DocumentError, match="userStateId"):
        column_documents(explained)


# -- help and greetings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question", ["hi", "Hello!", "help", "<@U0BOT> hey there", "good morning", "what can you do"]
)
def test_greetings_and_help_answer_with_what_the_bot_does(question: str) -> None:
    result = faq.lookup(question)
    assert result.best is not None and result.best.id == HELP_ID
    assert "share a `users.csv`" in result.best.body


def test_help_topic_lists_every_slash_command() -> None:
    body = faq.get_document(HELP_ID).body
    for usage in (usage for _, commands in HELP for usage, _ in commands):
        assert f"`/rosterbot {usage}`" in body, f"faq.help does not list /rosterbot {usage}"


@pytest.mark.parametrize("question", ["thanks!", "<@U123ABC> thanks!", "ok"])
def test_thanks_is_not_a_greeting(question: str) -> None:
    assert faq.lookup(question).best is None


# -- shape of the question ----------------------------------------------------------------------


def test_exact_title_wins_a_tie_of_shared_words() -> None:
    result = faq.lookup("class has no primary teacher", limit=5)
    ids = [m.id for m in result.matches]
    assert ids[0] == "CLASS_NO_PRIMARY_TEACHER"
    assert "PRIMARY_TEACHER_NO_CLASS" in ids  # the same words, in another order
    # and the other way round
    assert faq.lookup("primary teacher without a class").best.id == "PRIMARY_TEACHER_NO_CLASS"
    # neither order typed: "no" binds to the teacher, so the class is the one without
    assert faq.lookup("nobody is the primary teacher of the class").best.id == (
        "CLASS_NO_PRIMARY_TEACHER"
    )


def test_a_refusal_is_never_answered_with_a_warning() -> None:
    assert faq.lookup("i uploaded an xlsx, which sheet was read").best.id == "FILE_WORKBOOK"
    # a workbook is read with a warning; what refused the file is the format error
    assert faq.lookup("i uploaded the xlsx and it was refused").best.id == "FILE_NOT_CSV"


def test_who_did_it_asks_for_the_history() -> None:
    assert faq.lookup("who changed this students email").best.id == "faq.history"
    assert faq.lookup("email changed for a student").best.id == "faq.name-email-change"


def test_contractions_and_typed_addresses_are_read_as_words() -> None:
    assert faq.lookup("it says the school isn't set up").best.id == "ORG_NOT_FOUND"
    # "@district.org" is an email domain, not the org_sis_id column
    changed = faq.lookup("teachers email is changing from @oldschool.org to @district.org")
    assert changed.best.id == "faq.name-email-change"


def test_x_vs_y_answers_with_both() -> None:
    result = faq.lookup("what is userDistrictId vs userStateId")
    assert [m.id for m in result.matches[:2]] == ["columns.userDistrictId", "columns.userStateId"]
    text = faq.answer_text(result)
    state = faq.get_document("columns.userStateId")
    assert faq.get_document("columns.userDistrictId").title in text and state.title in text
    assert "Compared with" in text
    also = faq.lookup("difference between className and classDisplayName")
    assert [m.id for m in also.matches[:2]] == ["columns.className", "columns.classDisplayName"]
    plain = faq.lookup("difference between check and upload")
    assert [m.id for m in plain.matches[:2]] == ["faq.dry-run", "faq.batch-upload"]


def test_x_vs_y_that_one_document_answers_gets_that_document() -> None:
    result = faq.lookup("what's the difference between primary teacher and co-teacher")
    assert result.best.id == "faq.primary-teacher"
    assert "Compared with" not in faq.answer_text(result)


@pytest.mark.parametrize(
    ("pasted", "code"),
    [
        ("The email 'a@b.org' already belongs to another person in another district.", "EMAIL_TAKEN"),
        ("Nothing was applied because this file would remove 9 of 10 active classes (90%)", "REMOVALS_NEED_CONFIRMATION"),
        ("it says “No school ‘0101’ is set up for this district” ??", "ORG_NOT_FOUND"),
        ("The file was not UTF-8; it was read as Windows-1252.", "FILE_ENCODING_GUESSED"),
    ],
)  # fmt: skip
def test_a_pasted_bot_message_leans_to_its_code(pasted: str, code: str) -> None:
    assert faq.lookup(pasted).best.id == code


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # "who did it" reaches the history, whatever names and classes it mentions
        ("who removed ms garcia's 2nd period class", "faq.history"),
        ("the superintendent wants to know who removed the 4th grade class", "faq.history"),
        # an ID typed with its zeros, and accented letters, say what the question is about
        ("our ids went from 007 to 7 after saving", "faq.leading-zeros"),
        ("ñ and ü show up wrong in names", "faq.encoding"),
        # a how-to after a first sentence is still a how-to
        ("we got a new sis export over the summer, how do i put the new section ids in", "faq.change-class-id"),
        # what the bot said, retold: the code
        ("it says the school in row 9 is not set up", "ORG_NOT_FOUND"),
        # people by their job, numbers as words
        ("the librarian works at two schools", "faq.move-school"),
    ],
)  # fmt: skip
def test_the_shape_and_everyday_words_of_a_question_lead_to_its_answer(
    question: str, expected: str
) -> None:
    assert faq.lookup(question).best.id == expected


def test_every_recognisable_catalog_message_pasted_back_gets_its_code() -> None:
    """A message of the error report or the summary, pasted as is (with a question around it),
    answers with its code, the most specific template winning ("classId '3-Aug' was changed by
    a spreadsheet" is CLASSID_EXCEL's message, and also fits USERID_EXCEL's "{column} ...")."""
    recognised = {code for code, _, _ in get_index().templates}
    filled = {
        code: CATALOG[code].message.format(
            value="X-17", detail=" (see row 3)", column="userStateId", others=""
        )
        for code in recognised
    }
    unique = {c: m for c, m in filled.items() if list(filled.values()).count(m) == 1}
    assert len(unique) >= 50
    wrong = {
        code: got
        for code, message in unique.items()
        if (got := faq.lookup(f"why did I get this: {message}").best.id) != code
    }
    assert wrong == {}
    excel = "classId '3-Aug' was changed by a spreadsheet into a date; it was probably '8-3'."
    assert faq.lookup(excel).best.id == "CLASSID_EXCEL"


def test_a_column_alone_still_goes_to_its_errors_but_a_question_about_it_to_the_column() -> None:
    assert faq.lookup("userEmail").best.id == "errors.userEmail"
    assert faq.lookup("userEmail errors").best.id == "errors.userEmail"
    assert faq.lookup("what goes in userEmail").best.id == "columns.userEmail"
    assert faq.lookup("userStateId").best.id == "columns.userStateId"  # no error group
    assert faq.lookup("userEmail already taken").best.id == "EMAIL_TAKEN"


@pytest.mark.parametrize(
    "question", ["lunch menu", "what is the capital of France", "zebra quantum banana"]
)
def test_off_topic_questions_offer_no_related_topics(question: str) -> None:
    result = faq.lookup(question)
    assert result.best is None and result.suggestions == []
    assert "Closest topics" not in faq.answer_text(result)


def test_a_near_miss_offers_only_close_topics() -> None:
    result = faq.lookup("roster question please")
    assert result.best is None and result.suggestions
    assert all(m.score >= WEIGHTS.suggest_cutoff for m in result.suggestions)
    assert "Closest topics" in faq.answer_text(result)


@pytest.mark.parametrize(
    "topic", ["faq.undo", "faq.history", "faq.sync", "faq.schools", "faq.permissions"]
)
def test_topics_of_features_not_built_say_what_works_today(topic: str) -> None:
    body = faq.get_document(topic).body
    # today's workaround names commands that exist (README's command list)
    assert re.search(r"`(/rosterbot|rosterbot) [a-z]+", body) or "action" in body
