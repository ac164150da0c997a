"""Knowledge-base benchmark: index build time, lookup latency and top-1 accuracy.

    .venv/bin/python bench/bench_faq.py           # figures for the report
    .venv/bin/python bench/bench_faq.py --tune    # accuracy over a grid of ranking weights
    .venv/bin/python bench/bench_faq.py --tuning-only   # figures without the held-out sets
    .venv/bin/python bench/bench_faq.py --cross   # leave-one-batch-out over the tuning batches

Runs over the question sets of the tests: tests/data/faq_questions.yaml (the earlier set) and
tests/data/faq_questions_howto.yaml (how-to, column and operations questions), whose questions
are marked ``part: tune`` or ``part: held``.  ``--tune`` only ever scores the earlier set and the
tuning part; the held-out part is scored once, with the chosen weights, in the report.

``--cross`` measures how the ranking generalises to a writer it has not seen: each tuning batch
(the earlier set and the tuning batches 1-4, the sources of faq/examples.yaml) is ranked with an
index built from the other batches only (their example questions; no alias or keyword that
nearly copies one of the left-out batch's questions), without and with the example questions.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from make_faq_examples import TUNING_BATCHES, batch_items, grouped  # noqa: E402

from faq import lookup  # noqa: E402
from faq.documents import _load, documents  # noqa: E402
from faq.index import Index, _words, build_index, get_index  # noqa: E402
from faq.lookup import WEIGHTS, Weights  # noqa: E402
from faq.text import normalise  # noqa: E402

DATA = ROOT / "tests" / "data"
QUESTIONS = DATA / "faq_questions.yaml"
HOWTO = DATA / "faq_questions_howto.yaml"
#: the second and third tuning batches (every item ``part: tune``)
TUNE2 = DATA / "faq_questions_howto_tune2.yaml"
TUNE3 = DATA / "faq_questions_tune3.yaml"
#: the fourth tuning batch, by another independent writer
TUNE4 = DATA / "faq_questions_tune4.yaml"
TUNE5 = DATA / "faq_questions_tune5.yaml"
#: the second and third held-out batches, each written independently (every item held out)
HELD2 = DATA / "faq_questions_heldout2.yaml"
HELD3 = DATA / "faq_questions_heldout3.yaml"
HELD4 = DATA / "faq_questions_heldout4.yaml"
ROUNDS = 20
#: sets whose misses are never printed, only counted (neither their text nor their ids may
#: steer the tuning)
HIDDEN = {
    "how-to set, held-out part",
    "held-out batch 2",
    "held-out batch 3",
    "held-out batch 4",
    "held-out, all batches together",
}


Expected = str | list[str] | None  # one id, any of several ids, or no answer


def load_questions(path: Path = QUESTIONS, part: str | None = None) -> list[tuple[str, Expected]]:
    """(question, expected) pairs; the second held-out batch names the answer ``expect``."""
    items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return [
        (i["q"], i["expect"] if "expect" in i else i["id"])
        for i in items
        if part is None or i.get("part", part) == part
    ]


def accuracy(
    questions: list[tuple[str, Expected]],
    weights: Weights = WEIGHTS,
    show_text: bool = True,
    index: Index | None = None,
) -> tuple[float, list[str]]:
    """Top-1 accuracy and the misses; ``show_text=False`` leaves the text of a miss out."""
    misses = []
    for question, expected in questions:
        result = lookup(question, weights=weights, index=index)
        got = result.best.id if result.best else None
        if got not in expected if isinstance(expected, list) else got != expected:
            what = f"{question!r}: " if show_text else ""
            misses.append(f"{what}expected {expected}, got {got}")
    return 1 - len(misses) / len(questions), misses


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def bench(sets: dict[str, list[tuple[str, Expected]]], show_misses: bool = True) -> None:
    # each question once (the sets overlap: "all four batches", "all batches together")
    questions = list({q: e for qs in sets.values() for q, e in qs}.items())
    start = time.perf_counter()
    _load.cache_clear()
    index = build_index()
    build_ms = (time.perf_counter() - start) * 1000
    print(f"documents: {len(index.docs)}, phrasings: {len(index.phrases)}")
    print(f"index build (documents read + parsed + indexed): {build_ms:.1f} ms")

    get_index()
    for question, _ in questions:  # warm-up: first-use caches (typo corrections)
        lookup(question)
    timings, cpu = [], []
    for _ in range(ROUNDS):
        for question, _ in questions:
            t0, c0 = time.perf_counter(), time.thread_time()
            lookup(question)
            timings.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.thread_time() - c0) * 1000)
    print(
        f"lookup over {len(questions)} questions x {ROUNDS} rounds: "
        f"median {statistics.median(timings):.3f} ms, p99 {percentile(timings, 0.99):.3f} ms, "
        f"max {max(timings):.3f} ms (wall clock)"
    )
    # On a shared machine the wall clock includes waiting for a core; the thread's CPU time
    # is what one lookup costs.
    print(
        f"  CPU time of the lookup thread: median {statistics.median(cpu):.3f} ms, "
        f"p99 {percentile(cpu, 0.99):.3f} ms; load average {os.getloadavg()[0]:.1f}"
    )
    for name, part in sets.items():
        share, misses = accuracy(part, show_text=name not in HIDDEN)
        print(f"top-1 accuracy, {name}: {share:.1%} ({len(part) - len(misses)}/{len(part)})")
        if name in HIDDEN or not show_misses:
            continue  # a count only
        for miss in misses:
            print("  miss:", miss)


#: an alias or keyword this close (token_sort_ratio of the content words) to a question of the
#: batch left out was most likely written from that question: it is left out with the batch
ALIAS_FROM_QUESTION = 90.0


def strip_aliases(questions: list[str]) -> tuple[list, int]:
    """The documents without the aliases and keywords that copy one of ``questions``."""
    from rapidfuzz import fuzz, process

    asked = [_words(q) for q in questions]
    out, dropped = [], 0
    for doc in documents():
        keep = {}
        for key in ("aliases", "keywords"):
            phrasings = getattr(doc, key)
            if not phrasings:
                keep[key] = phrasings
                continue
            near = process.cdist(
                [_words(p) for p in phrasings], asked, scorer=fuzz.token_sort_ratio
            ).max(axis=1)
            kept = tuple(p for p, n in zip(phrasings, near) if n < ALIAS_FROM_QUESTION)
            if doc.kind.value == "column" and key == "aliases":
                kept = (phrasings[0], *[p for p in kept if p != phrasings[0]])  # the header
            dropped += len(phrasings) - len(kept)
            keep[key] = kept
        out.append(dataclasses.replace(doc, **keep))
    return out, dropped


def tuning_batches() -> dict[str, list[dict]]:
    """Each tuning batch's items (name -> items), the batches that exist."""
    return {n: items for n in TUNING_BATCHES if (items := batch_items(n))}


def as_questions(items: list[dict]) -> list[tuple[str, Expected]]:
    return [(i["q"], i["id"] if "id" in i else i["expect"]) for i in items]


def cross_indexes() -> dict[str, tuple[Index, list[tuple[str, Expected]], int]]:
    """For each tuning batch: an index built from everything but that batch (the other
    batches' example questions; no alias that copies one of its questions), and its questions."""
    batches = tuning_batches()
    out = {}
    for name, items in batches.items():
        # a question of another batch with the same words as one left out is left out too
        left_out = {normalise(i["q"]) for i in items}
        others = [
            (doc_id, q)
            for other, its in batches.items()
            if other != name
            for doc_id, qs in grouped(its).items()
            for q in qs
            if normalise(q) not in left_out
        ]
        docs, dropped = strip_aliases([i["q"] for i in items])
        out[name] = (build_index(docs, tuple(others)), as_questions(items), dropped)
    return out


def cross(candidates: dict[str, Weights]) -> None:
    """Leave-one-batch-out accuracy of each candidate ranking: every tuning batch is ranked
    with what was learned from the other batches only."""
    folds = cross_indexes()
    print(f"leave-one-batch-out (aliases within {ALIAS_FROM_QUESTION:.0f} of a left-out question")
    print("dropped with it: " + ", ".join(f"{n}: {d}" for n, (_, _, d) in folds.items()) + ")")
    for label, weights in candidates.items():
        right = total = 0
        parts = []
        for name, (index, questions, _) in folds.items():
            share, misses = accuracy(questions, weights, index=index)
            right += len(questions) - len(misses)
            total += len(questions)
            parts.append(f"{name.removeprefix('faq_questions_').removesuffix('.yaml')} {share:.1%}")
        print(f"{label}: overall {right / total:.1%} ({right}/{total}); " + ", ".join(parts))


def tune(questions: list[tuple[str, Expected]]) -> None:
    grid = {
        "unknown_word_weight": [0.6, 1.0],
        "howto_bonus": [3.0, 5.0, 8.0],
        "cutoff": [58.0, 62.0],
        "long_cutoff": [50.0, 52.0, 55.0],
        "absence_penalty": [0.0, 6.0],
    }
    results = []
    for values in itertools.product(*grid.values()):
        weights = dataclasses.replace(WEIGHTS, **dict(zip(grid, values)))
        share, _ = accuracy(questions, weights)
        results.append((share, dict(zip(grid, values))))
    results.sort(key=lambda r: -r[0])
    for share, values in results[:15]:
        print(f"{share:.3f} {values}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tune", action="store_true", help="grid-search the ranking weights")
    parser.add_argument(
        "--tuning-only",
        action="store_true",
        help="time and score the earlier set and the tuning batches only (while tuning: the "
        "held-out questions are then neither timed nor scored)",
    )
    parser.add_argument(
        "--cross",
        action="store_true",
        help="leave-one-batch-out accuracy over the tuning batches (the ranking without example "
        "questions, and with them)",
    )
    args = parser.parse_args()
    if args.cross:
        off = {
            "example_vote": 0.0,
            "example_words": 0.0,
            "example_bayes": 0.0,
            "example_one_word_share": 0.0,
        }
        cross(
            {
                "without example questions": dataclasses.replace(WEIGHTS, **off),
                "nearest examples only": dataclasses.replace(
                    WEIGHTS, example_words=0.0, example_bayes=0.0
                ),
                "word evidence only": dataclasses.replace(WEIGHTS, example_vote=0.0),
                "as shipped": WEIGHTS,
            }
        )
        return
    earlier = load_questions()
    batches = {
        "tuning batch 1 (tuning part of the how-to set)": load_questions(HOWTO, "tune"),
        "tuning batch 2": load_questions(TUNE2, "tune"),
        "tuning batch 3": load_questions(TUNE3, "tune"),
        "tuning batch 4": load_questions(TUNE4, "tune"),
        "tuning batch 5": load_questions(TUNE5, "tune"),
    }
    tuning = [q for qs in batches.values() for q in qs]
    if args.tune:
        tune(earlier + tuning)
        return
    sets = {"earlier set": earlier, **batches, "tuning, all five batches": tuning}
    if args.tuning_only:
        bench(sets, show_misses=False)
        return
    held = load_questions(HOWTO, "held")
    sets["how-to set, held-out part"] = held
    every = list(held)
    for name, path in (
        ("held-out batch 2", HELD2),
        ("held-out batch 3", HELD3),
        ("held-out batch 4", HELD4),
    ):
        if path.exists():
            sets[name] = load_questions(path, "held")
            every += sets[name]
    sets["held-out, all batches together"] = every
    bench(sets)


if __name__ == "__main__":
    main()
