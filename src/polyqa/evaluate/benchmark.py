"""What a loaded benchmark is, and the registry that finds a benchmark by name.

A loaded benchmark is a flat, array-friendly structure: a list of queries, a
list of candidates (grouped by language, in language order) and, per query, the
indices of its relevant candidates. Scoring (``retrieval.py``) never looks at
the files again.

A benchmark is registered under its name (``xquad-r``, ``mlqa-r``, ``lareqa``, ``polyqa-corpus``, ``miracl``)
with its loader and the way it is scored and summarised::

    @register_benchmark("xquad-r", score=..., summarize=..., options=("titles", "exclude_titles"))
    def load_xquad_r(data_dir, *, languages, max_questions, titles, exclude_titles) -> Benchmark: ...

so adding a benchmark is one module, and choosing one is a lookup, not a branch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyqa.errors import ConfigError

# Load options beyond ``languages`` and ``max_questions``; a benchmark accepts the ones it registers.
LOAD_OPTIONS = ("titles", "exclude_titles", "split")


class BenchmarkFormatError(ValueError):
    """A benchmark file that does not follow its format (names file, row and field)."""


class UnknownBenchmarkError(ConfigError):
    """A benchmark name that is not registered."""


@dataclass(frozen=True)
class Candidate:
    language: str  # NLLB code
    text: str  # the sentence (LAReQA) or "title text" passage (MIRACL)
    context: str  # the paragraph (LAReQA); "" for MIRACL
    title: str
    key: str  # stable id: "<lang>/<article>.<paragraph>/<sentence>" or the MIRACL docid


@dataclass(frozen=True)
class Query:
    qid: str
    language: str  # NLLB code
    text: str
    title: str
    relevant: tuple[int, ...]  # candidate indices (any language)
    gains: tuple[float, ...] = ()  # graded relevance aligned with ``relevant`` (MIRACL)


@dataclass
class Benchmark:
    name: str
    languages: list[str]  # NLLB codes, in candidate block order
    queries: list[Query]
    candidates: list[Candidate]
    source_codes: dict[str, str] = field(default_factory=dict)  # NLLB code -> file code
    quarantine: list[dict] = field(default_factory=list)  # unusable rows with a reason
    stats: dict = field(default_factory=dict)
    data_dir: str | None = None  # the folder read (resolved), for the report
    # Per language, more candidates that stay on disk and are scored in chunks (MIRACL's corpora,
    # far larger than memory): a ``miracl.PassageStream`` with ``passages`` and ``chunks(size)``.
    streamed: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict:
        per_lang_q = {lang: 0 for lang in self.languages}
        per_lang_c = {lang: 0 for lang in self.languages}
        for q in self.queries:
            per_lang_q[q.language] += 1
        for c in self.candidates:
            per_lang_c[c.language] += 1
        for lang, stream in self.streamed.items():
            per_lang_c[lang] += stream.passages
        return {
            "queries": len(self.queries),
            "candidates": sum(per_lang_c.values()),
            "queries_per_language": per_lang_q,
            "candidates_per_language": per_lang_c,
            "question_ids": len({q.qid for q in self.queries}),
            "quarantined": len(self.quarantine),
            **self.stats,
        }


# --------------------------------------------------------------------------- registry

Loader = Callable[..., Benchmark]
# (benchmark, query embeddings, candidate embeddings, *, chunk_size=queries per matrix product)
# -> per-query scores (with their ``seconds``)
Scorer = Callable[..., Any]
# (benchmark, scores, seen_languages=...) -> the "settings", "rank_distance", "seen_unseen" part of a result
Summarizer = Callable[..., dict]


@dataclass(frozen=True)
class BenchmarkKind:
    """A registered benchmark: how to load it, score it and summarise the scores."""

    name: str
    load: Loader
    score: Scorer
    summarize: Summarizer
    options: frozenset[str]  # load options it accepts (of LOAD_OPTIONS)
    contexts: bool  # candidates carry a paragraph, so "sentence+context" applies
    description: str = ""
    title: str = ""  # as reports name it (XQuAD-R); the name when empty

    def check_options(self, **given: Any) -> None:
        """ConfigError naming the options set (not None) that this benchmark does not take."""
        refused = [key for key, value in given.items() if value is not None and key not in self.options]
        if refused:
            takers = sorted(n for n, k in _BENCHMARKS.items() if set(refused) <= k.options)
            raise ConfigError(f"option(s) {', '.join(refused)} do not apply to benchmark {self.name!r}",
                              todo=f"they apply to: {', '.join(takers)}" if takers else None)


_BENCHMARKS: dict[str, BenchmarkKind] = {}


def register_benchmark(name: str, *, score: Scorer, summarize: Summarizer, options: Iterable[str] = (),
                       contexts: bool = False, description: str = "", title: str = "") -> Callable[[Loader], Loader]:
    """Decorator: make ``name`` loadable by :func:`load_benchmark` (and ``polyqa evaluate --benchmark``).

    The loader is called as ``load(data_dir, languages=..., max_questions=..., **options)``
    with exactly the ``options`` it registers.
    """
    unknown = sorted(set(options) - set(LOAD_OPTIONS))
    if unknown:
        raise ValueError(f"benchmark {name!r}: unknown load option(s) {unknown}; known: {list(LOAD_OPTIONS)}")

    def deco(load: Loader) -> Loader:
        doc_line = next(iter((load.__doc__ or "").strip().splitlines()), "")
        _BENCHMARKS[name] = BenchmarkKind(name, load, score, summarize, frozenset(options), contexts,
                                          description or doc_line, title or name)
        return load

    return deco


def _load_builtin_benchmarks() -> None:
    # Imported for their @register_benchmark side effect.
    from polyqa.evaluate import beir, corpus, lareqa, miracl  # noqa: F401


def benchmark_names() -> list[str]:
    _load_builtin_benchmarks()
    return sorted(_BENCHMARKS)


def benchmark_title(name: str) -> str:
    """The benchmark as reports name it: its registered title, else the name as given."""
    _load_builtin_benchmarks()
    kind = _BENCHMARKS.get(name)
    return kind.title if kind is not None else name


def benchmark_kind(name: str) -> BenchmarkKind:
    """The registered benchmark ``name``; UnknownBenchmarkError listing the known ones otherwise."""
    _load_builtin_benchmarks()
    try:
        return _BENCHMARKS[name]
    except KeyError:
        raise UnknownBenchmarkError(f"unknown benchmark {name!r}",
                                    todo=f"choose one of: {', '.join(sorted(_BENCHMARKS))}") from None


def load_benchmark(
    name: str,
    data_dir: str | Path | None = None,
    *,
    languages: Iterable[str] | None = None,
    max_questions: int | None = None,
    titles: set[str] | None = None,
    exclude_titles: set[str] | None = None,
    split: str | None = None,
) -> Benchmark:
    """Load the registered benchmark ``name``; an option it does not take is an error when set."""
    kind = benchmark_kind(name)
    given = {"titles": titles, "exclude_titles": exclude_titles, "split": split}
    kind.check_options(**given)
    options = {key: value for key, value in given.items() if key in kind.options}
    return kind.load(data_dir, languages=languages, max_questions=max_questions, **options)
