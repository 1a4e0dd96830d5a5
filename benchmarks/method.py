"""The measuring method every benchmark here shares.

- Two sides are timed alternately in ABBA order (A B, then B A, then A B, ...)
  over at least five rounds, so a drift in machine load hits both alike. An
  untimed warm-up call of each side comes first (imports, allocators, caches).
- Each round gives one ratio; a figure is the median of the rounds' ratios,
  reported with their min and max (the spread).
- A side may time itself: a function returning ``Measured(seconds, value)`` is
  counted for ``seconds`` (e.g. the training steps only, without set-up); any
  other return value is counted for the wall time of the call.
- The load average and CPU count are recorded at the start and the end. A run
  is ``quiet`` when the 1-minute load at its start was below 1; otherwise a
  warning line is printed, because a ratio taken under load is noise. (The run's
  own work raises the load, so the end value says little; the start decides.) Each
  round also records the CPU time other processes took (``OthersClock``), so a run
  that others joined half-way shows it.

Every script prints one JSON object as its last line: ``{"benchmark": ..., "figures":
{name: {median, min, max, target, higher_is_better, rounds, per_round, seconds}},
"machine": {"start": ..., "end": ...}, "quiet": bool, ...}``; ``benchmarks/run_all.py``
collects them into one table.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MIN_ROUNDS = 5
QUIET_LOAD = 1.0
OTHERS_CPU: list[float] = []  # per timed round of this run: other processes' share of the cpus


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


class OthersClock:
    """CPU time spent by other processes while this one measures: the machine's busy time
    (/proc/stat) minus this process's and its children's CPU time. As a share of all
    cores: 0 on an idle machine, 1 when others keep every core busy. None where /proc is missing.
    """

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = (sum(fields[:3]) + sum(fields[5:8])) / self.tick  # user nice system, irq softirq steal
        own = sum(getattr(resource.getrusage(who), k) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                  for k in ("ru_utime", "ru_stime"))
        return busy, own + self._live_children(), time.monotonic()

    @staticmethod
    def _live_children() -> float:
        """CPU seconds of this process's running descendants (e.g. a Prefect test server)."""
        try:
            import psutil
        except ImportError:
            return 0.0
        total = 0.0
        for child in psutil.Process().children(recursive=True):
            try:
                times = child.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total

    def share(self) -> float | None:
        """Others' CPU share since the last call (or creation), and restart the clock."""
        now = self._sample()
        start, self.start = self.start, now
        if start is None or now is None or now[2] <= start[2]:
            return None
        others = (now[0] - start[0]) - (now[1] - start[1])
        return max(0.0, others / ((now[2] - start[2]) * machine_state()["cpus"]))


def wait_until_quiet(max_seconds: float, *, poll: float = 10.0, below: float = QUIET_LOAD) -> dict[str, Any]:
    """Wait (at most ``max_seconds``) for the 1-minute load to fall below ``below``; returns the state then."""
    deadline = time.monotonic() + max_seconds
    state = machine_state()
    while state["load1"] >= below and time.monotonic() < deadline:
        time.sleep(min(poll, max(deadline - time.monotonic(), 0.1)))
        state = machine_state()
    return state


@dataclass(frozen=True)
class Measured:
    """What a side returns when it times itself: the seconds that count, and its output."""

    seconds: float
    value: Any = None


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, output) of one call; a ``Measured`` return gives its own seconds."""
    gc.collect()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    if isinstance(out, Measured):
        return out.seconds, out.value
    return seconds, out


@dataclass
class Figure:
    """One figure: per-round values (ratios of two sides' seconds, or plain values) and their summary."""

    name: str
    target: float | None
    higher_is_better: bool = True
    values: list[float] = field(default_factory=list)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    unit: str = "x"  # "x": a ratio; anything else names the unit of a plain value
    note: str = ""

    def summary(self) -> dict[str, Any]:
        return {"median": round(statistics.median(self.values), 3), "min": round(min(self.values), 3),
                "max": round(max(self.values), 3), "target": self.target,
                "higher_is_better": self.higher_is_better, "met": self.met, "rounds": len(self.values),
                "unit": self.unit, "per_round": [round(r, 3) for r in self.values],
                "seconds": {k: [round(s, 3) for s in v] for k, v in self.seconds.items()},
                **({"note": self.note} if self.note else {})}

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def met(self) -> bool | None:
        if self.target is None or not self.values:
            return None
        return self.median >= self.target if self.higher_is_better else self.median <= self.target


def alternate(label: str, sides: list[tuple[str, Callable[[], Any]]], *, rounds: int = MIN_ROUNDS,
              warmup: bool = True, check: Callable[[dict[str, Any]], None] | None = None) -> dict[str, list[float]]:
    """Time every side once per round, the order reversed every other round (A B C, C B A, ...).

    The palindrome gives every pair of sides the same mean position, so a drift in machine
    load hits them alike (ABBA for two sides). ``check(outputs by side)`` runs on every round's
    outputs and should raise when they disagree. Returns the seconds of each side per round.
    """
    rounds = max(rounds, MIN_ROUNDS)
    seconds: dict[str, list[float]] = {side: [] for side, _ in sides}
    if warmup:
        for side, fn in sides:
            spent, _ = timed(fn)
            log(f"{label} warm-up: {side} {spent:.2f} s (not counted)")
    others = OthersClock()
    shares: list[float | None] = []
    for r in range(rounds):
        order = sides if r % 2 == 0 else sides[::-1]
        outputs: dict[str, Any] = {}
        for side, fn in order:
            spent, outputs[side] = timed(fn)
            seconds[side].append(spent)
        shares.append(others.share())
        if check is not None:
            check(outputs)
        busy = "" if shares[-1] is None else f" (other processes used {shares[-1]:.0%} of the cpus)"
        log(f"{label} round {r + 1}/{rounds}: " + ", ".join(f"{side} {seconds[side][-1]:.2f} s" for side, _ in sides)
            + busy)
    OTHERS_CPU.extend(s for s in shares if s is not None)
    return seconds


def ratio_figure(name: str, seconds: dict[str, list[float]], reference: str, subject: str, *,
                 target: float | None = None, note: str = "") -> Figure:
    """Per round, ``reference`` seconds / ``subject`` seconds (> 1: the subject is faster)."""
    figure = Figure(name, target, note=note,
                    values=[a / b for a, b in zip(seconds[reference], seconds[subject])],
                    seconds={reference: list(seconds[reference]), subject: list(seconds[subject])})
    log(f"{name}: median {figure.median:.3f} (min {min(figure.values):.3f}, max {max(figure.values):.3f})"
        + (f", target >= {target}" if target is not None else ""))
    return figure


def side_by_side(name: str, reference: tuple[str, Callable[[], Any]], subject: tuple[str, Callable[[], Any]], *,
                 rounds: int = MIN_ROUNDS, target: float | None = None, warmup: bool = True,
                 check: Callable[[Any, Any], None] | None = None, note: str = "") -> Figure:
    """Time ``reference`` and ``subject`` in ABBA order; each round's figure is reference s / subject s.

    So a figure above 1 means the subject is faster (a speed-up factor), below 1 slower.
    ``check(reference_output, subject_output)`` runs on every round's outputs (e.g. equal output
    lengths) and should raise when they differ. ``warmup`` calls each side once, untimed, first.
    """
    ref_name, sub_name = reference[0], subject[0]
    seconds = alternate(name, [reference, subject], rounds=rounds, warmup=warmup,
                        check=None if check is None else (lambda out: check(out[ref_name], out[sub_name])))
    return ratio_figure(name, seconds, ref_name, sub_name, target=target, note=note)


def value_figure(name: str, values: list[float], *, target: float | None = None, higher_is_better: bool = True,
                 unit: str = "", note: str = "", seconds: dict[str, list[float]] | None = None) -> Figure:
    """A figure of plain per-round values (seconds, MB, rows/s, shares), summarised like the ratios;
    ``seconds``: the sides' per-round seconds it was computed from, kept in the JSON."""
    return Figure(name, target, higher_is_better, values=list(values), seconds=dict(seconds or {}), unit=unit,
                  note=note)


class Run:
    """One benchmark script's run: machine state at start and end, figures, and the final JSON line.

    Create it first thing in ``main()``, before any work, so the start state is the machine's,
    not this script's.
    """

    def __init__(self, benchmark: str, settings: dict[str, Any] | None = None) -> None:
        self.benchmark = benchmark
        self.start = machine_state()
        self.figures: list[Figure] = []
        self.extra: dict[str, Any] = {"settings": dict(settings or {})}
        log(f"{benchmark}: load {self.start['load1']} (1 min), {self.start['cpus']} cpus")
        if not self.quiet:
            log(f"warning: load average {self.start['load1']} at the start (>= {QUIET_LOAD}): this machine is "
                "not quiet, and the ratios below are not results")

    @property
    def quiet(self) -> bool:
        return self.start["load1"] < QUIET_LOAD

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def finish(self) -> dict[str, Any]:
        end = machine_state()
        others = {"others_cpu_share_max": round(max(OTHERS_CPU), 3),
                  "others_cpu_share_median": round(statistics.median(OTHERS_CPU), 3)} if OTHERS_CPU else {}
        summary = {
            "benchmark": self.benchmark,
            "figures": {f.name: f.summary() for f in self.figures},
            "machine": {"start": self.start, "end": end, "cpus": self.start["cpus"], **others},
            "quiet": self.quiet,
            **self.extra,
        }
        for f in self.figures:
            spread = f"{min(f.values):.3f}-{max(f.values):.3f}"
            target = "" if f.target is None else f" (target {'>=' if f.higher_is_better else '<='} {f.target})"
            print(f"{f.name}: median {f.median:.3f} {f.unit}, spread {spread} over {len(f.values)} rounds{target}",
                  flush=True)
        if others:
            print(f"other processes used {others['others_cpu_share_median']:.0%} of the cpus in the median round, "
                  f"{others['others_cpu_share_max']:.0%} at most", flush=True)
        if not self.quiet:
            print(f"warning: not quiet (load {self.start['load1']} at start, {end['load1']} at end): "
                  "rerun alone on an idle machine", flush=True)
        print(json.dumps(summary), flush=True)
        return summary
