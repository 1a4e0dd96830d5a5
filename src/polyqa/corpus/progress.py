"""How far a build is, per language, and when it should end: what long runs report about themselves.

:class:`BuildProgress` is fed every recorded unit by :meth:`polyqa.corpus.job.BuildJob.record`,
so the command and the flow (on any task runner) report the same figures: per language, shards
written of its total, rows, segments translated and an ETA from the pace of this run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from polyqa.markdown import table as markdown_table


@dataclass
class LanguageProgress:
    total_units: int
    done_units: int = 0
    rows: int = 0
    segments: int = 0  # translated by the model (cache hits not counted)
    cache_hits: int = 0


@dataclass
class BuildProgress:
    """Per-language progress of one run of a build; ETAs come from this run's seconds per unit."""

    languages: dict[str, LanguageProgress]
    started: float = field(default_factory=lambda: time.monotonic())
    done_this_run: int = 0
    last_report: float = field(default_factory=lambda: time.monotonic())

    @classmethod
    def for_units(cls, languages: list[str], n_shards: int, pending: list[tuple[int, str]],
                  recorded: list[dict] = ()) -> BuildProgress:
        """Progress of a build of ``n_shards`` shards per language of which ``pending`` (index, lang)
        remain; ``recorded``: the manifest's shard entries (the rows already written)."""
        progress = cls({lang: LanguageProgress(n_shards, n_shards) for lang in languages})
        for _, lang in pending:
            progress.languages[lang].done_units -= 1
        for entry in recorded:
            if entry.get("lang") in progress.languages:
                progress.languages[entry["lang"]].rows += int(entry.get("rows", 0))
        return progress

    def record(self, lang: str, rows: int, translated: int, cache_hits: int) -> None:
        entry = self.languages[lang]
        entry.done_units += 1
        entry.rows += rows
        entry.segments += translated
        entry.cache_hits += cache_hits
        self.done_this_run += 1

    @property
    def remaining_units(self) -> int:
        return sum(p.total_units - p.done_units for p in self.languages.values())

    def eta_seconds(self, remaining: int | None = None) -> float | None:
        """Seconds left for ``remaining`` units (default: all) at this run's pace; None before the first unit."""
        if not self.done_this_run:
            return None
        pace = (time.monotonic() - self.started) / self.done_this_run
        return pace * (self.remaining_units if remaining is None else remaining)

    def due(self, every: float) -> bool:
        """True at most once per ``every`` seconds, and when the build is done (for periodic reports)."""
        now = time.monotonic()
        if self.remaining_units == 0 or now - self.last_report >= every:
            self.last_report = now
            return True
        return False

    def summary(self) -> str:
        """Every language's shards, rows, segments and ETA, then the whole build's ETA (the progress
        artifact's description)."""
        parts = [f"{lang} {p.done_units}/{p.total_units} shards, {p.rows:,} rows, {p.segments:,} segments, "
                 f"ETA {format_eta(self.eta_seconds(p.total_units - p.done_units))}"
                 for lang, p in self.languages.items()]
        return "; ".join(parts) + f"; whole build ETA {format_eta(self.eta_seconds())}"

    def line(self) -> str:
        """One log line: :meth:`summary`."""
        return "progress: " + self.summary()

    def markdown(self) -> str:
        """The per-language table the flow publishes as an artifact."""
        rows = [[lang, f"{p.done_units}/{p.total_units}", f"{p.rows:,}", f"{p.segments:,}", f"{p.cache_hits:,}",
                 format_eta(self.eta_seconds(p.total_units - p.done_units))]
                for lang, p in self.languages.items()]
        head = ["language", "shards", "rows", "segments translated", "cache hits", "ETA"]
        return "\n".join(markdown_table(head, rows)) + f"\n\nETA of the whole build: {format_eta(self.eta_seconds())}\n"


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 1:
        return "done" if seconds == 0 else "< 1 s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
