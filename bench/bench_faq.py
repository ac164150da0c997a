"""Knowledge-base benchmark: index build time, lookup latency and top-1 accuracy.

    .venv/bin/python bench/bench_faq.py           # figures for the report
    .venv/bin/python bench/bench_faq.py --tune    # accuracy over a grid of ranking weights

Runs over the question set of the tests (tests/data/faq_questions.yaml).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faq import lookup  # noqa: E402
from faq.documents import _load  # noqa: E402
from faq.index import build_index, get_index  # noqa: E402
from faq.lookup import WEIGHTS, Weights  # noqa: E402

QUESTIONS = ROOT / "tests" / "data" / "faq_questions.yaml"
ROUNDS = 20


def load_questions() -> list[tuple[str, str | None]]:
    return [
        (item["q"], item["id"]) for item in yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))
    ]


def accuracy(
    questions: list[tuple[str, str | None]], weights: Weights = WEIGHTS
) -> tuple[float, list[str]]:
    misses = []
    for question, expected in questions:
        result = lookup(question, weights=weights)
        got = result.best.id if result.best else None
        if got != expected:
            misses.append(f"{question!r}: expected {expected}, got {got}")
    return 1 - len(misses) / len(questions), misses


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def bench(questions: list[tuple[str, str | None]]) -> None:
    start = time.perf_counter()
    _load.cache_clear()
    index = build_index()
    build_ms = (time.perf_counter() - start) * 1000
    print(f"documents: {len(index.docs)}, phrasings: {len(index.phrases)}")
    print(f"index build (documents read + parsed + indexed): {build_ms:.1f} ms")

    get_index()
    for question, _ in questions:  # warm-up: first-use caches (typo corrections)
        lookup(question)
    timings = []
    for _ in range(ROUNDS):
        for question, _ in questions:
            t0 = time.perf_counter()
            lookup(question)
            timings.append((time.perf_counter() - t0) * 1000)
    print(
        f"lookup over {len(questions)} questions x {ROUNDS} rounds: "
        f"median {statistics.median(timings):.3f} ms, p99 {percentile(timings, 0.99):.3f} ms, "
        f"max {max(timings):.3f} ms"
    )
    share, misses = accuracy(questions)
    print(f"top-1 accuracy: {share:.1%} ({len(questions) - len(misses)}/{len(questions)})")
    for miss in misses:
        print("  miss:", miss)


def tune(questions: list[tuple[str, str | None]]) -> None:
    grid = {
        "coverage": [0.25, 0.35, 0.45],
        "ratio": [0.0, 0.1, 0.2],
        "group_penalty": [2.0, 4.0, 8.0],
        "howto_bonus": [0.0, 5.0, 10.0],
        "cutoff": [55.0, 62.0, 68.0],
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
    args = parser.parse_args()
    questions = load_questions()
    tune(questions) if args.tune else bench(questions)


if __name__ == "__main__":
    main()
