"""The measuring method every benchmark here shares.

- Two sides are timed alternately in ABBA order (A B, then B A, ...) over at least
  five rounds, so a drift in machine load hits both alike.
- Each round gives one ratio; a figure is the median of the rounds' ratios with
  their min and max.
- The load average and CPU count are recorded at the start and the end. A run
  is ``quiet`` when the 1-minute load at the start was below 1; otherwise a
  warning line is printed, because a ratio taken under load is noise.

Every script prints one JSON object as its last line: ``{"figures": {name: {median,
min, max, target, higher_is_better, rounds}}, "machine": {...}, ...}``;
``benchmarks/run_all.py`` collects them into one table.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MIN_ROUNDS = 5


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_state() -> dict[str, Any]:
    load1, load5, load15 = os.getloadavg()
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return {"load1": round(load1, 2), "load5": round(load5, 2), "load15": round(load15, 2), "cpus": cpus,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


@dataclass
class Figure:
    """One side-by-side figure: per-round ratios of ``numerator`` seconds over ``denominator`` seconds."""

    name: str
    target: float | None
    higher_is_better: bool = True
    ratios: list[float] = field(default_factory=list)
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"median": round(statistics.median(self.ratios), 3), "min": round(min(self.ratios), 3),
                "max": round(max(self.ratios), 3), "target": self.target,
                "higher_is_better": self.higher_is_better, "rounds": len(self.ratios),
                "per_round": [round(r, 3) for r in self.ratios],
                "seconds": {k: [round(s, 3) for s in v] for k, v in self.seconds.items()}}

    @property
    def met(self) -> bool | None:
        if self.target is None or not self.ratios:
            return None
        median = statistics.median(self.ratios)
        return median >= self.target if self.higher_is_better else median <= self.target


def side_by_side(name: str, slow: tuple[str, Callable[[], Any]], fast: tuple[str, Callable[[], Any]], *,
                 rounds: int = MIN_ROUNDS, target: float | None = None,
                 check: Callable[[Any, Any], None] | None = None) -> Figure:
    """Time ``slow`` and ``fast`` in ABBA order; the figure is slow seconds / fast seconds per round.

    With ``check``, each round's two outputs are compared (e.g. equal output lengths) before counting.
    """
    rounds = max(rounds, MIN_ROUNDS)
    figure = Figure(name, target)
    (slow_name, slow_fn), (fast_name, fast_fn) = slow, fast
    figure.seconds = {slow_name: [], fast_name: []}
    for r in range(rounds):
        order = ((slow_name, slow_fn), (fast_name, fast_fn))
        if r % 2:  # ABBA: the side that went second now goes first
            order = order[::-1]
        outputs: dict[str, Any] = {}
        for side, fn in order:
            seconds, outputs[side] = timed(fn)
            figure.seconds[side].append(seconds)
        if check is not None:
            check(outputs[slow_name], outputs[fast_name])
        ratio = figure.seconds[slow_name][-1] / figure.seconds[fast_name][-1]
        figure.ratios.append(ratio)
        log(f"{name} round {r + 1}/{rounds}: {slow_name} {figure.seconds[slow_name][-1]:.2f} s, "
            f"{fast_name} {figure.seconds[fast_name][-1]:.2f} s, ratio {ratio:.3f}")
    return figure


class Run:
    """One benchmark script's run: machine state at start and end, figures, and the final JSON line."""

    def __init__(self, benchmark: str) -> None:
        self.benchmark = benchmark
        self.start = machine_state()
        self.figures: list[Figure] = []
        self.extra: dict[str, Any] = {}
        if self.start["load1"] >= 1:
            log(f"warning: load average {self.start['load1']} at the start (>= 1): this machine is not quiet, "
                "and the ratios below are not results")

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def finish(self) -> dict[str, Any]:
        end = machine_state()
        quiet = self.start["load1"] < 1
        summary = {
            "benchmark": self.benchmark,
            "figures": {f.name: f.summary() for f in self.figures},
            "machine": {"start": self.start, "end": end, "cpus": self.start["cpus"]},
            "quiet": quiet,
            **self.extra,
        }
        if not quiet:
            print(f"warning: not quiet (load {self.start['load1']} at start, {end['load1']} at end): "
                  "rerun alone on an idle machine", flush=True)
        print(json.dumps(summary), flush=True)
        return summary
