"""The knowledge base's example questions (faq/examples.yaml): generated from the tuning
batches only, current, and used by the ranking."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import faq
from faq.documents import documents
from faq.examples import examples
from faq.index import build_index
from faq.text import normalise

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location(
        "make_faq_examples", ROOT / "bench" / "make_faq_examples.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_examples_are_current() -> None:
    # `make faq-examples` rewrites the file from the tuning batches
    shipped = (ROOT / "faq" / "examples.yaml").read_text(encoding="utf-8")
    assert shipped == _generator().render(), "faq/examples.yaml is stale: make faq-examples"


def test_no_held_out_question_is_an_example() -> None:
    # the same words in any case or punctuation count; a count only: held-out text is never shown
    held = _generator().held_out_keys()
    shipped = {normalise(q) for _, q in examples()}
    shared = len(held & shipped)
    assert len(shipped) >= 1000
    assert shared == 0


def test_every_example_names_a_document() -> None:
    ids = {d.id for d in documents()}
    unknown = {doc_id for doc_id, _ in examples()} - ids
    assert not unknown


def test_example_questions_reorder_the_documents() -> None:
    # by the documents' phrasings alone, "a csv of just teachers" reads as the primary-teacher
    # topic; once administrators asked for downloads that way, a question worded like theirs
    # gets the download topic
    question = "can i get a csv of just teachers"
    without = faq.lookup(question, index=build_index(examples=()))
    assert without.best is not None and without.best.id == "faq.primary-teacher"
    taught = build_index(
        examples=(
            ("faq.download-data", "a csv of all our teachers"),
            ("faq.download-data", "csv of just the students at one school"),
        )
    )
    result = faq.lookup(question, index=taught)
    assert result.best is not None and result.best.id == "faq.download-data"


def test_examples_do_not_answer_a_vague_question() -> None:
    # two words that some example questions happen to use are no answer: the documents' own
    # phrasings decide whether anything is close enough ("did you mean" is offered instead)
    taught = build_index(examples=(("faq.encoding", "roster question marks in names"),) * 3)
    result = faq.lookup("roster question please", index=taught)
    assert result.best is None and result.suggestions


def test_a_one_word_question_is_answered_by_how_the_examples_read_it() -> None:
    # "why did it fail" has one content word; most examples using it ask about a failed row,
    # but the one that asks it the same way ("why did ...") asks why an upload failed
    question = "why did it fail"
    assert faq.lookup(question, index=build_index(examples=())).best is None
    taught = build_index(
        examples=(
            ("faq.upload-failed", "why did my upload fail"),
            ("FAILED", "a row failed"),
            ("FAILED", "failed rows in the report"),
            ("FAILED", "what does failed mean"),
        )
    )
    result = faq.lookup(question, index=taught)
    assert result.best is not None and result.best.id == "faq.upload-failed"


def test_a_short_question_in_words_people_used_for_a_document_is_answered() -> None:
    # "sftp import" is in no document's phrasings; administrators who asked for the sync topic
    # put it this way, so it is answered, and a looser question sharing one word is not
    taught = build_index(
        examples=(
            ("faq.sync", "is there an sftp import"),
            ("faq.sync", "sftp import every night"),
            ("faq.batch-upload", "import a csv file"),
        )
    )
    assert faq.lookup("sftp import?", index=build_index(examples=())).best is None
    result = faq.lookup("sftp import?", index=taught)
    assert result.best is not None and result.best.id == "faq.sync"
    assert faq.lookup("sftp stuff", index=taught).best is None
