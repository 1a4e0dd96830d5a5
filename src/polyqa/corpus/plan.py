"""What a build will cost, before it starts: ``polyqa build-corpus --plan``.

:func:`plan_build` reads and segments the sources exactly as the build does (ingest into a
temporary folder: nothing is written to the output), deduplicates the English segments each
language needs, counts their source tokens with the model's tokenizer, looks them up in the
translation cache, and estimates the translation time from measured engine throughput
(``polyqa/data/throughput.yaml``; each figure says whether it was measured or estimated, and how).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from polyqa.corpus.config import BuildConfig, load_config
from polyqa.corpus.ingest import ingest, read_stage_shard
from polyqa.corpus.rows import is_imported, unique_segments
from polyqa.languages import ENGLISH
from polyqa.markdown import table as markdown_table

log = logging.getLogger(__name__)

# Without the model's tokenizer, tokens are estimated from words (NLLB's SentencePiece gives about
# 1.35 pieces per English word), plus the language code and </s> of every segment.
TOKENS_PER_WORD = 1.35
SPECIAL_TOKENS = 2


@dataclass(frozen=True)
class Throughput:
    """Source tokens the engine translates per second, for one model on one device."""

    model: str
    device: str  # cpu | cuda
    beam_size: int
    tokens_per_second: float
    measured: bool  # False: an estimate, to be replaced by a measurement
    basis: str  # how the figure was obtained (command and machine, or the assumption)


def throughputs() -> list[Throughput]:
    """The shipped throughput figures."""
    text = resources.files("polyqa.data").joinpath("throughput.yaml").read_text("utf-8")
    return [Throughput(**entry) for entry in yaml.safe_load(text)["figures"]]


@dataclass
class LanguagePlan:
    lang: str
    rows: int  # rows this language will have
    translated_rows: int  # of which machine-translated (the others are imported)
    segments: int  # distinct English segments to translate (the cache makes repeats free)
    source_tokens: int
    cached_segments: int  # already in the translation cache
    new_segments: int
    new_tokens: int  # source tokens left to translate: what the time estimate is for


@dataclass
class Estimate:
    device: str
    hours: float
    throughput: Throughput


@dataclass
class BuildPlan:
    name: str
    records: int
    quarantined: int
    n_shards: int
    model: str | None
    tokens_counted_with: str  # "the model's tokenizer" or the word-based estimate
    cache: str | None  # the cache looked in, or why none was
    languages: list[LanguagePlan] = field(default_factory=list)
    estimates: list[Estimate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def new_tokens(self) -> int:
        return sum(lang.new_tokens for lang in self.languages)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"new_tokens": self.new_tokens}

    def render(self) -> str:
        """The plan as the command prints it."""
        rows = [[p.lang, p.rows, p.translated_rows, p.segments, p.source_tokens, p.cached_segments,
                 p.new_segments, p.new_tokens] for p in self.languages]
        total = [sum(r[i] for r in rows) for i in range(1, 8)]
        lines = [f"plan for {self.name}: {self.records} English QA pairs in {self.n_shards} shards, "
                 f"{self.quarantined} rows to the quarantine; model {self.model}",
                 "",
                 *markdown_table(["language", "rows", "translated rows", "unique segments", "source tokens",
                                 "in cache", "to translate", "tokens to translate"],
                                [*rows, ["all", *total]]),
                 "",
                 f"tokens counted with {self.tokens_counted_with}; cache: {self.cache}"]
        if self.estimates:
            lines.append(f"estimated translation time for {self.new_tokens:,} source tokens:")
            for e in self.estimates:
                kind = "measured" if e.throughput.measured else "ESTIMATE"
                lines.append(f"  {e.device}: {_duration(e.hours)} at {e.throughput.tokens_per_second:,.0f} "
                             f"tokens/s, beam {e.throughput.beam_size} ({kind}: {e.throughput.basis})")
        lines += [f"note: {note}" for note in self.notes]
        lines.append("nothing was written; run without --plan to build")
        return "\n".join(lines)


def _duration(hours: float) -> str:
    if hours < 1 / 60:
        return f"{hours * 3600:.0f} s"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    return f"{hours:,.1f} h"


def plan_build(config: BuildConfig | Any, progress: Callable[[str], None] = lambda _: None) -> BuildPlan:
    """The cost of building ``config``: per-language segments and tokens, cache hits, estimated time."""
    config = load_config(config)
    with tempfile.TemporaryDirectory(prefix="polyqa-plan-") as scratch:
        summary = ingest(config, scratch, progress)
        needed: dict[str, dict[str, None]] = {lang: {} for lang in config.languages}
        translated_rows = dict.fromkeys(config.languages, 0)
        markers = config.projection_settings()
        for index in range(summary.n_shards):
            records = read_stage_shard(scratch, index)
            for lang in config.languages:
                to_translate = [r for r in records if not is_imported(r, lang)]
                translated_rows[lang] += len(to_translate)
                if to_translate and config.model is not None:
                    needed[lang].update(dict.fromkeys(unique_segments(to_translate, markers)))
    model = _plan_model(config)
    plan = BuildPlan(name=config.name, records=summary.records, quarantined=summary.quarantine["rows"],
                     n_shards=summary.n_shards, model=config.model, tokens_counted_with=model.counted_with,
                     cache=None, notes=list(model.notes))
    counts = _token_counts(model, set().union(*needed.values()) if needed else set())
    cache = _open_cache(config, model, plan)
    for lang in config.languages:
        segments = list(needed[lang])
        cached = set(cache(lang, segments)) if cache else set()
        new = [s for s in segments if s not in cached]
        plan.languages.append(LanguagePlan(
            lang=lang, rows=summary.records, translated_rows=translated_rows[lang], segments=len(segments),
            source_tokens=sum(counts[s] for s in segments), cached_segments=len(cached),
            new_segments=len(new), new_tokens=sum(counts[s] for s in new)))
    plan.estimates = estimates(config, plan.new_tokens, plan.notes)
    return plan


@dataclass
class _PlanModel:
    counted_with: str
    tokenizer: Any = None  # a tokenizers.Tokenizer, or None: words x TOKENS_PER_WORD
    fingerprint: str | None = None  # the converted model's, for cache keys
    notes: tuple[str, ...] = ()


def _plan_model(config: BuildConfig) -> _PlanModel:
    """The model's tokenizer and fingerprint when the model is on this machine (the tiny one is built)."""
    estimate = f"an estimate ({TOKENS_PER_WORD} tokens per word + {SPECIAL_TOKENS} per segment)"
    if config.model is None:
        return _PlanModel("nothing (no model: imported languages only)")
    from tokenizers import Tokenizer

    from polyqa.translate.convert import resolve_model

    try:
        if config.model == "tiny":
            from polyqa.translate.tiny import build_tiny_model

            resolved = resolve_model(build_tiny_model(config.tiny_model_path).ct2_dir)
        else:
            resolved = resolve_model(config.model, quantization=config.quantization, revision=config.revision,
                                     models_dir=config.models_path)
    except Exception as exc:  # offline, not downloaded, not convertible: count without it
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        first = first if len(first) <= 200 else first[:200] + "..."
        return _PlanModel(estimate, notes=(f"model {config.model} is not available here ({first}); tokens are "
                                           "estimated and the cache is not consulted",))
    tokenizer_file = Path(resolved.ct2_dir) / "tokenizer.json"
    if not tokenizer_file.is_file():
        return _PlanModel(estimate, fingerprint=resolved.fingerprint,
                          notes=(f"{tokenizer_file} is missing; tokens are estimated",))
    return _PlanModel("the model's tokenizer", Tokenizer.from_file(str(tokenizer_file)), resolved.fingerprint)


def _token_counts(model: _PlanModel, segments: Iterable[str]) -> dict[str, int]:
    """Encoder tokens per segment, as the engine counts them (language code and </s> included)."""
    segments = list(segments)
    counts = dict.fromkeys(segments, 0)
    non_empty = [s for s in segments if s.strip()]
    if model.tokenizer is None:
        for s in non_empty:
            counts[s] = round(len(s.split()) * TOKENS_PER_WORD) + SPECIAL_TOKENS
        return counts
    for start in range(0, len(non_empty), 10_000):
        chunk = non_empty[start:start + 10_000]
        for s, enc in zip(chunk, model.tokenizer.encode_batch(chunk, add_special_tokens=False)):
            counts[s] = len(enc.tokens) + SPECIAL_TOKENS
    return counts


def _open_cache(config: BuildConfig, model: _PlanModel, plan: BuildPlan):
    """A look-up ``(lang, segments) -> cached segments``, or None (saying why in the plan)."""
    path = config.cache_path
    if path is None:
        plan.cache = "none configured (every segment is translated)"
        return None
    if model.fingerprint is None:
        plan.cache = f"{path} (not consulted: the model's fingerprint is unknown)"
        return None
    if not path.is_file():
        plan.cache = f"{path} (does not exist yet)"
        return None
    from polyqa.translate.cache import TranslationCache
    from polyqa.translate.engine import DecodingSettings, cache_key_prefix

    decoding = DecodingSettings(**config.decoding)
    cache = TranslationCache(path)
    plan.cache = str(path)

    def cached(lang: str, segments: list[str]) -> list[str]:
        return list(cache.get_many(cache_key_prefix(model.fingerprint, decoding, ENGLISH, lang), segments))

    return cached


def estimates(config: BuildConfig, tokens: int, notes: list[str]) -> list[Estimate]:
    """Hours to translate ``tokens`` source tokens with the config's model, per device with a figure."""
    from polyqa.translate.engine import DecodingSettings

    beam = DecodingSettings(**config.decoding).beam_size
    figures = [t for t in throughputs() if t.model == config.model]
    if config.model is not None and not figures:
        known = sorted({t.model for t in throughputs()})
        notes.append(f"no throughput figure for model {config.model}, so no time estimate "
                     f"(figures exist for {', '.join(known)}; measure yours with benchmarks/throughput.py)")
    out = []
    for device in dict.fromkeys(t.device for t in figures):
        candidates = [t for t in figures if t.device == device]
        best = min(candidates, key=lambda t: (abs(t.beam_size - beam), not t.measured))
        if best.beam_size != beam:
            notes.append(f"{device}: the figure is for beam {best.beam_size}, the config decodes with beam {beam}")
        out.append(Estimate(device, tokens / best.tokens_per_second / 3600, best))
    return out
