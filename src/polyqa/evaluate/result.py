"""The result of one evaluation: computed from per-query scores, and read back typed.

:func:`summarize_lareqa` and :func:`summarize_miracl` aggregate a benchmark's per-query
scores into the result mapping that OUT.json holds. Averages are macro: per query
language (or per ordered language pair) first, then the plain mean over languages
(pairs). Language keys are NLLB codes. :class:`EvaluationResult` reads such a mapping
back with named fields, for readers such as the study (rendering is
:mod:`polyqa.evaluate.report`'s).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from polyqa import languages as langs
from polyqa.encoders import resolve_encoder
from polyqa.evaluate.benchmark import Benchmark
from polyqa.evaluate.retrieval import LareqaScores, MiraclScores

SETTINGS = ("monolingual", "cross-lingual", "multilingual")  # LAReQA's; MIRACL has monolingual only


def mean_or_none(values) -> float | None:
    """The mean of the values that are numbers (None and NaN left out); None when there are none."""
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(vals)) if vals else None


def _nanmean(arr: np.ndarray) -> float | None:
    arr = np.asarray(arr, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else None


def training_languages(model: str) -> list[str] | None:
    """The model's training languages (NLLB codes) if its folder says so, else None.

    Looked up in ``polyqa_training.json`` (``{"languages": [...]}``) next to the
    model, then in a ``polyqa:`` mapping with ``languages`` in the YAML front
    matter of the model card (README.md).
    """
    folder = Path(resolve_encoder(model))
    if not folder.is_dir():
        return None
    info = folder / "polyqa_training.json"
    if info.exists():
        data = json.loads(info.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("languages"), list):
            raise ValueError(f"{info}: field 'languages' should be a list of language codes")
        return langs.normalize_many(data["languages"])
    card = folder / "README.md"
    if card.exists():
        text = card.read_text(encoding="utf-8")
        if text.startswith("---"):
            import yaml

            front = text.split("---", 2)[1] if text.count("---") >= 2 else ""
            meta = yaml.safe_load(front) or {}
            section = meta.get("polyqa") if isinstance(meta, dict) else None
            if isinstance(section, dict) and isinstance(section.get("languages"), list):
                return langs.normalize_many(section["languages"])
    return None


def _split_means(per_language: dict[str, float | None], seen: set[str]) -> dict:
    return {
        "seen": mean_or_none(v for k, v in per_language.items() if k in seen),
        "unseen": mean_or_none(v for k, v in per_language.items() if k not in seen),
    }


def _split_pairs(per_pair: dict[str, dict[str, float | None]], seen: set[str]) -> dict:
    groups: dict[str, list] = {"seen->seen": [], "seen->unseen": [], "unseen->seen": [], "unseen->unseen": []}
    for q, row in per_pair.items():
        for c, v in row.items():
            key = f"{'seen' if q in seen else 'unseen'}->{'seen' if c in seen else 'unseen'}"
            groups[key].append(v)
    return {k: mean_or_none(v) for k, v in groups.items()}


def _seen_header(lang_list: list[str], seen: set[str]) -> dict:
    return {"training_languages": sorted(seen),
            "seen": [lang for lang in lang_list if lang in seen],
            "unseen": [lang for lang in lang_list if lang not in seen]}


def summarize_lareqa(benchmark: Benchmark, scores: LareqaScores, ks=(1, 10),
                     seen_languages: list[str] | None = None) -> dict:
    lang_list = benchmark.languages
    q_lang = np.array([lang_list.index(q.language) for q in benchmark.queries])
    rows = {lang: q_lang == i for i, lang in enumerate(lang_list)}

    def per_lang(values: np.ndarray) -> dict[str, float | None]:
        return {lang: _nanmean(values[rows[lang]]) for lang in lang_list}

    def block(col: np.ndarray, qi: str, ci: int):
        return _nanmean(col[rows[qi], ci])

    mono = {lang: block(scores.ap_lang, lang, i) for i, lang in enumerate(lang_list)}
    mono_recall = {f"R@{k}": {lang: block(scores.recall_lang[k], lang, i) for i, lang in enumerate(lang_list)} for k in ks}
    cross = {q: {c: block(scores.ap_lang, q, ci) for ci, c in enumerate(lang_list) if c != q} for q in lang_list}
    cross_recall = {
        f"R@{k}": {q: {c: block(scores.recall_lang[k], q, ci) for ci, c in enumerate(lang_list) if c != q} for q in lang_list}
        for k in ks
    }
    multi = per_lang(scores.ap_pool)
    # mAP@20 (XTREME-R's LAReQA metric) beside the full mAP; absent for scores made without it.
    ap20_lang = scores.ap20_lang if scores.ap20_lang is not None else np.full_like(scores.ap_lang, np.nan)
    ap20_pool = scores.ap20_pool if scores.ap20_pool is not None else np.full_like(scores.ap_pool, np.nan)
    mono20 = {lang: block(ap20_lang, lang, i) for i, lang in enumerate(lang_list)}
    cross20 = {q: {c: block(ap20_lang, q, ci) for ci, c in enumerate(lang_list) if c != q} for q in lang_list}
    multi20 = per_lang(ap20_pool)
    multi_recall = {f"R@{k}": per_lang(scores.recall_pool[k]) for k in ks}
    rank_dist = per_lang(scores.rank_distance)

    def n_with(values: np.ndarray) -> int:
        return int((~np.isnan(values)).sum())

    settings = {
        "monolingual": {
            "mAP": mean_or_none(mono.values()),
            "per_language": mono,
            "mAP@20": mean_or_none(mono20.values()),
            "mAP@20_per_language": mono20,
            **{name: mean_or_none(v.values()) for name, v in mono_recall.items()},
            "recall_per_language": mono_recall,
            "queries": int(sum(n_with(scores.ap_lang[rows[lang], i]) for i, lang in enumerate(lang_list))),
        },
        "cross-lingual": {
            "mAP": mean_or_none(v for row in cross.values() for v in row.values()),
            "per_pair": cross,
            "mAP@20": mean_or_none(v for row in cross20.values() for v in row.values()),
            "mAP@20_per_pair": cross20,
            **{name: mean_or_none(v for row in m.values() for v in row.values()) for name, m in cross_recall.items()},
            "recall_per_pair": cross_recall,
            "query_pairs": int(sum(
                n_with(scores.ap_lang[rows[q], ci]) for q in lang_list for ci, c in enumerate(lang_list) if c != q
            )),
        },
        "multilingual": {
            "mAP": mean_or_none(multi.values()),
            "per_language": multi,
            "mAP@20": mean_or_none(multi20.values()),
            "mAP@20_per_language": multi20,
            **{name: mean_or_none(v.values()) for name, v in multi_recall.items()},
            "recall_per_language": multi_recall,
            "queries": n_with(scores.ap_pool),
        },
    }
    result = {
        "settings": settings,
        "rank_distance": {
            "mean": mean_or_none(rank_dist.values()),
            "per_language": rank_dist,
            "queries": n_with(scores.rank_distance),
            "definition": "per query in the multilingual pool: largest minus smallest rank of its relevant "
                          "candidates; mean over queries, macro over query languages; lower is better",
        },
    }
    if seen_languages is not None:
        seen = set(seen_languages)
        result["seen_unseen"] = {
            **_seen_header(lang_list, seen),
            "monolingual": _split_means(mono, seen),
            "cross-lingual": _split_pairs(cross, seen),
            "multilingual": _split_means(multi, seen),
            "rank_distance": _split_means(rank_dist, seen),
        }
    else:
        result["seen_unseen"] = None
    return result


PER_QUERY_SETTINGS = ("monolingual", "multilingual")


def per_query_ap(benchmark: Benchmark, scores: LareqaScores) -> dict[str, list]:
    """Every query's AP in the monolingual and multilingual settings, as columns
    (``setting``, ``language``, ``qid``, ``ap``, ``ap_at_20``): what a paired test over queries needs.

    A query is a question id in one language; monolingual ranks that language's candidates only.
    Queries whose AP is undefined in a setting (no relevant candidate there) are left out.
    """
    lang_index = {lang: i for i, lang in enumerate(benchmark.languages)}
    cols: dict[str, list] = {"setting": [], "language": [], "qid": [], "ap": [], "ap_at_20": []}
    ap20_lang = scores.ap20_lang if scores.ap20_lang is not None else np.full_like(scores.ap_lang, np.nan)
    ap20_pool = scores.ap20_pool if scores.ap20_pool is not None else np.full_like(scores.ap_pool, np.nan)
    for setting in PER_QUERY_SETTINGS:
        for i, q in enumerate(benchmark.queries):
            li = lang_index[q.language]
            ap, ap20 = ((scores.ap_lang[i, li], ap20_lang[i, li]) if setting == "monolingual"
                        else (scores.ap_pool[i], ap20_pool[i]))
            if np.isnan(ap):
                continue
            cols["setting"].append(setting)
            cols["language"].append(q.language)
            cols["qid"].append(q.qid)
            cols["ap"].append(float(ap))
            cols["ap_at_20"].append(None if np.isnan(ap20) else float(ap20))
    return cols


def summarize_miracl(benchmark: Benchmark, scores: MiraclScores, seen_languages: list[str] | None = None) -> dict:
    lang_list = benchmark.languages
    per_language = {}
    for lang in lang_list:
        sel = np.array([q.language == lang for q in benchmark.queries], dtype=bool)
        per_language[lang] = {"nDCG@10": _nanmean(scores.ndcg[sel]), "Recall@100": _nanmean(scores.recall[sel]),
                              "queries": int(sel.sum())}
    result = {
        "settings": {
            "monolingual": {
                "nDCG@10": mean_or_none(v["nDCG@10"] for v in per_language.values()),
                "Recall@100": mean_or_none(v["Recall@100"] for v in per_language.values()),
                "per_language": per_language,
                "queries": len(benchmark.queries),
            }
        },
        "rank_distance": None,
    }
    if seen_languages is not None:
        seen = set(seen_languages)
        result["seen_unseen"] = {
            **_seen_header(lang_list, seen),
            "nDCG@10": _split_means({k: v["nDCG@10"] for k, v in per_language.items()}, seen),
            "Recall@100": _split_means({k: v["Recall@100"] for k, v in per_language.items()}, seen),
        }
    else:
        result["seen_unseen"] = None
    return result


@dataclass(frozen=True)
class SettingScores:
    """One setting's scores: mAP, mAP@20 and recall for LAReQA, nDCG@10 and Recall@100 for MIRACL,
    with the per-language (or, cross-lingual, per query->candidate pair) mAP where there is one."""

    map: float | None = None
    map_at_20: float | None = None
    recall: Mapping[int, float | None] = field(default_factory=dict)  # R@k by k
    ndcg_at_10: float | None = None
    recall_at_100: float | None = None
    per_language: Mapping[str, float | None] | None = None
    per_pair: Mapping[str, Mapping[str, float | None]] | None = None

    @classmethod
    def from_dict(cls, block: Mapping[str, Any]) -> SettingScores:
        recall = {int(key[2:]): value for key, value in block.items() if key.startswith("R@") and key[2:].isdigit()}
        per_language = block.get("per_language")
        if per_language and all(isinstance(v, Mapping) for v in per_language.values()):
            per_language = None  # MIRACL's per-language blocks hold nDCG and recall, not an mAP
        return cls(map=block.get("mAP"), map_at_20=block.get("mAP@20"), recall=recall,
                   ndcg_at_10=block.get("nDCG@10"), recall_at_100=block.get("Recall@100"),
                   per_language=per_language, per_pair=block.get("per_pair"))

    def map_of(self, languages: Set[str]) -> float | None:
        """Mean mAP over the given languages; cross-lingual: over the pairs with both sides among them."""
        if self.per_pair is not None:
            return mean_or_none(v for q, row in self.per_pair.items() for c, v in (row or {}).items()
                         if q in languages and c in languages)
        return mean_or_none(v for lang, v in (self.per_language or {}).items() if lang in languages)

    def map_touching(self, languages: Set[str]) -> float | None:
        """Cross-lingual: mean mAP over the pairs with either side among ``languages``; else :meth:`map_of`."""
        if self.per_pair is None:
            return self.map_of(languages)
        return mean_or_none(v for q, row in self.per_pair.items() for c, v in (row or {}).items()
                     if q in languages or c in languages)


@dataclass(frozen=True)
class EvaluationResult:
    """An evaluation result (OUT.json) with named fields."""

    benchmark: str
    languages: list[str]
    settings: Mapping[str, SettingScores]
    rank_distance: float | None = None
    queries: int | None = None
    candidates: int | None = None

    @property
    def has_language_pairs(self) -> bool:
        """LAReQA scores query x candidate language pairs; MIRACL scores each language alone."""
        return "cross-lingual" in self.settings

    @classmethod
    def from_dict(cls, result: Mapping[str, Any]) -> EvaluationResult:
        counts = result.get("counts") or {}
        return cls(benchmark=str(result.get("benchmark", "")), languages=list(result.get("languages") or []),
                   settings={name: SettingScores.from_dict(block or {})
                             for name, block in (result.get("settings") or {}).items()},
                   rank_distance=(result.get("rank_distance") or {}).get("mean"),
                   queries=counts.get("queries"), candidates=counts.get("candidates"))

    @classmethod
    def load(cls, path: str | Path) -> EvaluationResult:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
