"""The how-to, column and operations question set (issue 14): accuracy on its held-out part,
which the ranking was never tuned on, and the earlier set no worse than before."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import faq

DATA = Path(__file__).parent / "data"
HOWTO = yaml.safe_load((DATA / "faq_questions_howto.yaml").read_text(encoding="utf-8"))
#: a second tuning batch, written later without reading the held-out part
TUNE2 = yaml.safe_load((DATA / "faq_questions_howto_tune2.yaml").read_text(encoding="utf-8"))
#: a third tuning batch, written by an independent writer who read the documents but neither the
#: ranking code nor any answer. Measured untouched first, as the best estimate of how the ranking
#: generalises: 77.0 % (234/304) with the ranking of the first two batches. General mechanisms were
#: then chosen on the older batches and one half of it while the other half was only counted
#: (that half: 77.6 % -> 82.2 %, 125/152); only then was all of it tuned on
TUNE3 = yaml.safe_load((DATA / "faq_questions_tune3.yaml").read_text(encoding="utf-8"))
#: a fourth tuning batch (792 questions), by another independent writer who read neither the
#: ranking code nor any answer. Measured untouched first: 80.4 % (637/792) with the ranking before
#: example questions, 83.1 % (658/792) with the example questions of the three older batches
#: (faq/examples.yaml); only then did it become a batch of examples and of leave-one-batch-out
TUNE4 = yaml.safe_load((DATA / "faq_questions_tune4.yaml").read_text(encoding="utf-8"))
#: a fifth tuning batch (932 questions), by a fourth independent writer, weighted to the general
#: topics that sound alike. Measured untouched first: 78.4 % (731/932) with the example questions
#: of the four older batches; only then did it become a batch of examples
TUNE5 = yaml.safe_load((DATA / "faq_questions_tune5.yaml").read_text(encoding="utf-8"))
EARLIER = yaml.safe_load((DATA / "faq_questions.yaml").read_text(encoding="utf-8"))


def _held_batch(name: str) -> list[dict]:
    """An independently written held-out batch; its items name the answer in ``expect``: one
    id, a list of ids any of which is right, or null (off-topic: no answer is right)."""
    path = DATA / name
    if not path.exists():
        return []
    items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return [{"q": i["q"], "id": i["expect"], "part": "held"} for i in items]


#: held-out batch 2, written independently of the ranking and of the other sets
HELD2 = _held_batch("faq_questions_heldout2.yaml")
#: held-out batch 3, written by a second independent writer (who also wrote the third tuning
#: batch, worded differently) before the ranking was tuned on that tuning batch; never tuned on
HELD3 = _held_batch("faq_questions_heldout3.yaml")
#: held-out batch 4, written by a third independent writer who read neither the ranking code nor
#: any other question set; counted untouched when it landed: 84.4 % (270/320 before ten questions
#: that repeat other sets word for word were taken out)
HELD4 = _held_batch("faq_questions_heldout4.yaml")
#: every held-out question: the held part of the how-to set and the three independent batches
HELD = [i for i in HOWTO if i["part"] == "held"] + HELD2 + HELD3 + HELD4
#: issue 14's target for the held-out questions (bench/bench_faq.py: 95.5 %, 779/816 over the
#: four batches: the held part of faq_questions_howto.yaml 123/125, faq_questions_heldout2.yaml
#: 119/120, faq_questions_heldout3.yaml 238/261, faq_questions_heldout4.yaml 299/310)
HELD_OUT_TARGET = 0.95
#: what the held-out questions measured when the documents, example questions and weights were
#: frozen (all four batches together: 87.9 %, 88.6 % with the fifth tuning batch, 89.3 % with the
#: sixth and seventh, 91.2 % after the ranking was retuned on the seven, 93.8 % with thirteen
#: batches and a second retuning, 94.1 % with seventeen, 94.5 % with twenty, 94.9 % with
#: twenty-three, 95.2 % with twenty-six and a third retuning, 95.3 % with twenty-nine, 95.5 %
#: with the documents reworded on the tuning batches' misses): a regression floor
HELD_OUT_FLOOR = 0.92
EARLIER_MIN = 0.98  # the earlier set's accuracy before issue 14 (153/156)


def _misses(items: list[dict]) -> list[str]:
    out = []
    for item in items:
        result = faq.lookup(item["q"])
        got = result.best.id if result.best else None
        if not _right(got, item["id"]):
            if item.get("part") == "held":
                # held-out misses are counted, never shown: neither their text nor their ids
                # may steer the tuning
                out.append("(held-out question)")
            else:
                out.append(f"{item['q']!r}: expected {item['id']}, got {got}")
    return out


def _right(got: str | None, expected: str | list[str] | None) -> bool:
    return got in expected if isinstance(expected, list) else got == expected


def _shared(asked: set[str], items: list[dict]) -> int:
    return len(asked & {i["q"] for i in items})


def _accuracy(items: list[dict]) -> tuple[float, list[str]]:
    misses = _misses(items)
    return 1 - len(misses) / len(items), misses


def test_the_set_is_new_large_and_split() -> None:
    assert len(HOWTO) >= 150
    assert {i["q"] for i in HOWTO}.isdisjoint(i["q"] for i in EARLIER)
    assert {i["part"] for i in HOWTO} == {"tune", "held"}
    held = [i for i in HOWTO if i["part"] == "held"]
    assert len(held) >= 50
    ids = {d.id for d in faq.documents()}
    assert all(i["id"] is None or i["id"] in ids for i in HOWTO)
    # it asks about the new topics and the columns, not only error codes
    expected = {i["id"] for i in HOWTO if i["id"]}
    assert sum(1 for x in expected if x.startswith("columns.")) >= 20
    assert sum(1 for x in expected if x.startswith("faq.")) >= 25


def test_held_out_top1_accuracy_does_not_regress() -> None:
    share, misses = _accuracy(HELD)
    assert share >= HELD_OUT_FLOOR, f"held-out accuracy {share:.1%} ({len(misses)} missed)"


def test_held_out_top1_accuracy_meets_the_target() -> None:
    share, misses = _accuracy(HELD)
    assert share >= HELD_OUT_TARGET, f"held-out accuracy {share:.1%} ({len(misses)} missed)"


def test_the_second_tuning_batch_is_new_and_covers_every_topic_and_column() -> None:
    assert {i["part"] for i in TUNE2} == {"tune"}
    asked = {i["q"] for i in TUNE2}
    assert len(asked) == len(TUNE2) >= 100
    shared = _shared(asked, [*HOWTO, *EARLIER, *HELD2])  # a count: held-out text is not shown
    assert shared == 0
    ids = {d.id for d in faq.documents()}
    expected = {i["id"] for i in TUNE2}
    assert expected - {None} <= ids
    # every general topic and every column is asked about at least once
    assert {d for d in ids if d.startswith(("faq.", "columns."))} <= expected


def test_the_third_tuning_batch_is_new() -> None:
    assert {i["part"] for i in TUNE3} == {"tune"}
    asked = {i["q"] for i in TUNE3}
    assert len(asked) == len(TUNE3) >= 250
    assert _shared(asked, [*HOWTO, *TUNE2, *EARLIER, *HELD2, *HELD3]) == 0  # a count, as above
    ids = {d.id for d in faq.documents()}
    for item in TUNE3:
        expected = item["id"] if isinstance(item["id"], list) else [item["id"]]
        assert set(expected) - {None} <= ids, item["q"]


def test_the_third_held_out_batch_is_new_and_names_real_documents() -> None:
    asked = {i["q"] for i in HELD3}
    assert len(asked) == len(HELD3) >= 200
    # a count: held-out text is never shown
    assert _shared(asked, [*HOWTO, *TUNE2, *TUNE3, *EARLIER, *HELD2]) == 0
    ids = {d.id for d in faq.documents()}
    for item in HELD3:
        expected = item["id"] if isinstance(item["id"], list) else [item["id"]]
        assert set(expected) - {None} <= ids  # no question text in the message


def test_the_fourth_held_out_batch_is_new_and_names_real_documents() -> None:
    asked = {i["q"] for i in HELD4}
    assert len(asked) == len(HELD4) >= 300
    # a count: held-out text is never shown; compared without case, as a person would read them
    folded = {q.lower() for q in asked}
    others = [*HOWTO, *TUNE2, *TUNE3, *TUNE4, *EARLIER, *HELD2, *HELD3]
    assert _shared(folded, [{"q": i["q"].lower()} for i in others]) == 0
    ids = {d.id for d in faq.documents()}
    for item in HELD4:
        expected = item["id"] if isinstance(item["id"], list) else [item["id"]]
        assert set(expected) - {None} <= ids  # no question text in the message


def test_the_fourth_tuning_batch_is_new() -> None:
    assert {i["part"] for i in TUNE4} == {"tune"}
    asked = {i["q"] for i in TUNE4}
    assert len(asked) == len(TUNE4) >= 700
    # counts, as above: no held-out question; its writer compared it with the other tuning
    # batches but could not with faq_questions_howto.yaml (it holds held-out questions), whose
    # tuning part it repeats a few times (a repeat is never an example of its own batch when
    # bench/bench_faq.py --cross leaves that batch out)
    held = _shared(asked, [i for i in HOWTO if i["part"] == "held"] + HELD2 + HELD3 + HELD4)
    assert held == 0
    shared = _shared(asked, [*TUNE2, *TUNE3, *EARLIER])
    assert shared == 0
    ids = {d.id for d in faq.documents()}
    for item in TUNE4:
        expected = item["id"] if isinstance(item["id"], list) else [item["id"]]
        assert set(expected) - {None} <= ids, item["q"]


def test_the_fifth_tuning_batch_is_new() -> None:
    assert {i["part"] for i in TUNE5} == {"tune"}
    asked = {i["q"] for i in TUNE5}
    assert len(asked) == len(TUNE5) >= 900
    # counts only, as above: its writer compared it with every other set by script
    folded = {q.lower() for q in asked}
    held = [i for i in HOWTO if i["part"] == "held"] + HELD2 + HELD3 + HELD4
    others = [*held, *HOWTO, *TUNE2, *TUNE3, *TUNE4, *EARLIER]
    assert _shared(folded, [{"q": i["q"].lower()} for i in others]) == 0
    ids = {d.id for d in faq.documents()}
    for item in TUNE5:
        expected = item["id"] if isinstance(item["id"], list) else [item["id"]]
        assert set(expected) - {None} <= ids, item["q"]


#: the tuning batches, which are also the knowledge base's example questions (faq/examples.yaml),
#: measured 98.7 % (233/236), 98.2 % (391/398), 98.7 % (300/304), 98.4 % (779/792) and 96.1 %
#: (896/932): 97.6 % together (2599/2662); a regression floor. What generalises is measured
#: leave-one-batch-out (bench/bench_faq.py --cross), not here
TUNING_FLOOR = 0.94


def test_tuning_part_top1_accuracy() -> None:
    tuning = [*HOWTO, *TUNE2, *TUNE3, *TUNE4, *TUNE5]
    share, misses = _accuracy([i for i in tuning if i["part"] == "tune"])
    assert share >= TUNING_FLOOR, f"tuning accuracy {share:.1%}; misses:\n" + "\n".join(misses)


def test_earlier_set_is_no_worse_than_before() -> None:
    share, misses = _accuracy(EARLIER)
    assert share >= EARLIER_MIN, f"earlier-set accuracy {share:.1%}; misses:\n" + "\n".join(misses)
