"""Encode a benchmark once and score every setting with batched matrix products.

Encoding: each unique (prompt, text) is encoded once per run, whatever the
number of languages and settings it appears in; embeddings are L2-normalised,
so a dot product is the cosine similarity. With a cache folder, embeddings
are saved in blocks as they are computed and a rerun resumes from them.

Scoring (LAReQA): queries are scored in chunks against the whole candidate
pool (all languages). For each relevant candidate r of a query we need, per
language, how many candidates score at least s_r: that is r's pessimistic
rank inside each language block, and their sum its rank in the multilingual
pool. One ``searchsorted`` of every score among the query's few sorted
relevant scores plus a per-language histogram gives all of them at once. Average precision (full and at
20), R@k and rank distance follow from these ranks (see ``metrics.py``) without sorting any score row.
One pass therefore yields the monolingual, every cross-lingual pair and the
multilingual numbers.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from polyqa import storage
from polyqa.encoders import load_sentence_transformer, resolve_encoder
from polyqa.evaluate.benchmark import Benchmark, Query
from polyqa.evaluate.config import CANDIDATE_MODES
from polyqa.evaluate.metrics import MAP_CUTOFF

log = logging.getLogger(__name__)


def load_encoder(path_or_id: str, device: str = "cpu", trust_remote_code: bool = False):
    """A SentenceTransformer for a model folder, a hub id or an alias of :mod:`polyqa.encoders`
    (safetensors weights only; remote code only when ``trust_remote_code``)."""
    return load_sentence_transformer(path_or_id, device=device, trust_remote_code=trust_remote_code)


def model_fingerprint(path_or_id: str) -> str:
    """A cache key for a model: its hub id (aliases resolved), or for a local folder its path plus weight
    file sizes and times."""
    resolved = resolve_encoder(path_or_id)
    path = Path(resolved)
    if not path.is_dir():
        return resolved
    parts = [str(path.resolve())]
    for f in sorted(path.rglob("*")):
        if f.is_file() and f.suffix in {".safetensors", ".bin", ".json", ".txt"}:
            st = f.stat()
            parts.append(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def context_separator(model) -> str:
    """Text put between a sentence and its paragraph in ``sentence+context`` mode.

    The tokenizer's own separator token (``[SEP]`` for BERT-style, ``</s>`` for
    XLM-R), which the tokenizer turns back into the special token, so the model
    sees "sentence [SEP] paragraph" as LAReQA's (sentence, context) pair; a
    plain newline for tokenizers without one.
    """
    tokenizer = getattr(model, "tokenizer", None)
    sep = getattr(tokenizer, "sep_token", None)
    return f" {sep} " if sep else "\n"


def candidate_texts(benchmark: Benchmark, mode: str, separator: str) -> list[str]:
    """Candidate texts as encoded: alone (``sentence``) or with their paragraph (``sentence+context``)."""
    if mode not in CANDIDATE_MODES:
        raise ValueError(f"unknown candidates mode {mode!r}; choose one of {CANDIDATE_MODES}")
    if mode == "sentence":
        return [c.text for c in benchmark.candidates]
    return [f"{c.text}{separator}{c.context}" for c in benchmark.candidates]


@dataclass
class EncodeStats:
    texts: int = 0
    unique_texts: int = 0
    encoded: int = 0
    from_cache: int = 0
    seconds: float = 0.0


class Encoder:
    """Encodes texts with one model, each unique (prompt, text) once per run, optionally cached on disk."""

    def __init__(self, model, model_key: str, batch_size: int = 64, cache_dir: str | Path | None = None,
                 block_size: int = 2048):
        self.model = model
        self.model_key = model_key
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.block_size = block_size
        self.memory: dict[tuple[str, str], np.ndarray] = {}
        self.stats = EncodeStats()

    def encode(self, texts: Sequence[str], prompt: str = "", keep: bool = True) -> np.ndarray:
        """Embeddings of ``texts`` (rows aligned). ``keep=False``: not remembered for later calls, for
        texts seen once (a streamed corpus), so memory stays that of one call."""
        start = time.perf_counter()
        self.stats.texts += len(texts)
        memory = self.memory if keep else {}
        todo = [t for t in dict.fromkeys(texts) if (prompt, t) not in self.memory]
        self.stats.unique_texts += len(todo)
        # Longest first: similar lengths share a batch (little padding) and memory peaks early.
        todo.sort(key=len, reverse=True)
        n_blocks = (len(todo) + self.block_size - 1) // self.block_size
        for b in range(n_blocks):
            block = todo[b * self.block_size: (b + 1) * self.block_size]
            vectors = self._encode_block(block, prompt)
            for text, vec in zip(block, vectors):
                memory[(prompt, text)] = vec
            log.log(logging.INFO if keep else logging.DEBUG, "encoded block %d/%d (%d texts, prompt %r)",
                    b + 1, n_blocks, len(block), prompt)
        self.stats.seconds += time.perf_counter() - start
        if not texts:
            return np.zeros((0, self.model.get_sentence_embedding_dimension() or 0), dtype=np.float32)

        def row(text: str) -> np.ndarray:
            key = (prompt, text)
            return memory[key] if key in memory else self.memory[key]

        return np.stack([row(t) for t in texts]).astype(np.float32, copy=False)

    def _encode_block(self, block: list[str], prompt: str) -> np.ndarray:
        path = None
        if self.cache_dir is not None:
            digest = hashlib.sha256("\x00".join([self.model_key, prompt, *block]).encode()).hexdigest()[:32]
            path = self.cache_dir / f"emb-{digest}.npy"
            if path.exists():
                cached = _read_block_file(path, len(block))
                if cached is not None:
                    self.stats.from_cache += len(block)
                    return cached
        vectors = self.model.encode(
            block, prompt=prompt or None, batch_size=self.batch_size, convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=False,
        ).astype(np.float32)
        self.stats.encoded += len(block)
        if path is not None:
            buffer = io.BytesIO()
            np.save(buffer, vectors)
            storage.atomic_write_bytes(path, buffer.getvalue())  # a block counts only once it is complete
        return vectors


def _read_block_file(path: Path, rows: int) -> np.ndarray | None:
    """A cached block, or None (with a warning) when it is damaged or of another shape: it is encoded again."""
    try:
        vectors = np.load(path, allow_pickle=False)  # never unpickle a file from disk
    except (OSError, ValueError) as exc:
        log.warning("embedding cache block %s is unreadable (%s): encoding it again", path, exc)
        return None
    if vectors.ndim != 2 or vectors.shape[0] != rows or vectors.dtype != np.float32:
        log.warning("embedding cache block %s has shape %s %s, expected (%d, d) float32: encoding it again",
                    path, vectors.shape, vectors.dtype, rows)
        return None
    return vectors


def encode_benchmark(benchmark: Benchmark, encoder: Encoder, candidates: str = "sentence+context",
                     query_prompt: str = "", passage_prompt: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Query and candidate embeddings (rows aligned with ``benchmark.queries`` / ``.candidates``)."""
    cand_texts = candidate_texts(benchmark, candidates, context_separator(encoder.model))
    q_emb = encoder.encode([q.text for q in benchmark.queries], query_prompt)
    c_emb = encoder.encode(cand_texts, passage_prompt)
    return q_emb, c_emb


# --------------------------------------------------------------------------- scoring


def _language_index(benchmark: Benchmark) -> tuple[np.ndarray, np.ndarray]:
    index = {lang: i for i, lang in enumerate(benchmark.languages)}
    q_lang = np.array([index[q.language] for q in benchmark.queries], dtype=np.int64)
    c_lang = np.array([index[c.language] for c in benchmark.candidates], dtype=np.int64)
    return q_lang, c_lang


def _padded_relevance(benchmark: Benchmark) -> tuple[np.ndarray, np.ndarray]:
    width = max((len(q.relevant) for q in benchmark.queries), default=1) or 1
    rel = np.full((len(benchmark.queries), width), -1, dtype=np.int64)
    gains = np.zeros((len(benchmark.queries), width), dtype=np.float32)
    for i, q in enumerate(benchmark.queries):
        rel[i, : len(q.relevant)] = q.relevant
        if q.gains:
            gains[i, : len(q.gains)] = q.gains
        else:
            gains[i, : len(q.relevant)] = 1.0
    return rel, gains


@dataclass
class LareqaScores:
    """Per-query results; NaN where a query has no relevant candidate in that language."""

    ap_pool: np.ndarray  # (queries,) multilingual pool
    ap_lang: np.ndarray  # (queries, languages) candidates of one language only
    recall_pool: dict[int, np.ndarray]
    recall_lang: dict[int, np.ndarray]
    rank_distance: np.ndarray  # (queries,) NaN with fewer than two relevant candidates
    seconds: float
    ap20_pool: np.ndarray | None = None  # (queries,) AP@20 (XTREME-R), multilingual pool
    ap20_lang: np.ndarray | None = None  # (queries, languages) AP@20 within one language's candidates


def score_lareqa(benchmark: Benchmark, q_emb: np.ndarray, c_emb: np.ndarray, ks: Sequence[int] = (1, 10),
                 chunk_size: int = 1024, map_cutoff: int = MAP_CUTOFF) -> LareqaScores:
    import torch

    start = time.perf_counter()
    n_lang = len(benchmark.languages)
    _, c_lang_np = _language_index(benchmark)
    rel_np, _ = _padded_relevance(benchmark)
    cands = torch.from_numpy(np.ascontiguousarray(c_emb, dtype=np.float32))
    queries = torch.from_numpy(np.ascontiguousarray(q_emb, dtype=np.float32))
    c_lang = torch.from_numpy(c_lang_np)
    c_lang32 = c_lang.to(torch.int32)
    n_q = len(benchmark.queries)
    ap_pool = np.full(n_q, np.nan)
    ap_lang = np.full((n_q, n_lang), np.nan)
    ap20_pool = np.full(n_q, np.nan)
    ap20_lang = np.full((n_q, n_lang), np.nan)
    recall_pool = {k: np.full(n_q, np.nan) for k in ks}
    recall_lang = {k: np.full((n_q, n_lang), np.nan) for k in ks}
    rank_dist = np.full(n_q, np.nan)
    with torch.inference_mode():
        for lo in range(0, n_q, chunk_size):
            hi = min(lo + chunk_size, n_q)
            scores = queries[lo:hi] @ cands.T  # (b, candidates)
            rel = torch.from_numpy(rel_np[lo:hi])
            mask = rel >= 0
            safe = rel.clamp(min=0)
            rel_scores = scores.gather(1, safe)
            b, m = rel.shape
            # per_lang_ge[q, j, L]: candidates of language L scoring >= the j-th relevant score. One pass:
            # each candidate's bucket among the query's sorted relevant scores, a histogram per
            # (query, language, bucket), then a reverse cumulative sum; no score row is sorted.
            thresholds = torch.where(mask, rel_scores, torch.full_like(rel_scores, float("inf")))
            t_sorted, perm = torch.sort(thresholds, dim=1)
            # bucket = #thresholds <= score (0..m), turned in place into a (query, language, bucket) cell id.
            flat = torch.searchsorted(t_sorted, scores, right=True, out_int32=True)
            flat.add_((c_lang32 * (m + 1)).unsqueeze(0))
            flat.add_((torch.arange(b, dtype=torch.int32) * (n_lang * (m + 1))).unsqueeze(1))
            hist = torch.bincount(flat.view(-1), minlength=b * n_lang * (m + 1)).view(b, n_lang, m + 1)
            del flat
            cum = hist.cumsum(-1)
            ge_sorted = (cum[..., -1:] - cum[..., :m]).to(torch.float32)  # >= i-th smallest threshold
            per_lang_ge = torch.empty_like(ge_sorted).scatter_(2, perm.unsqueeze(1).expand(-1, n_lang, -1), ge_sorted)
            per_lang_ge = per_lang_ge.permute(0, 2, 1)  # (b, m, languages)
            rel_lang = c_lang[safe]  # (b, m)
            pool_rank = per_lang_ge.sum(-1)
            lang_rank = per_lang_ge.gather(2, rel_lang.unsqueeze(-1)).squeeze(-1)
            # rel_ge[q, j, j']: relevant j' scores >= relevant j (the relevant items above or tied with j).
            rel_ge = (rel_scores.unsqueeze(1) >= rel_scores.unsqueeze(2)) & mask.unsqueeze(1)
            same_lang = rel_lang.unsqueeze(1) == rel_lang.unsqueeze(2)
            maskf = mask.to(torch.float64)
            pool_rank = torch.where(mask, pool_rank, torch.ones_like(pool_rank)).to(torch.float64)
            lang_rank = torch.where(mask, lang_rank, torch.ones_like(lang_rank)).to(torch.float64)
            prec_pool = rel_ge.sum(-1).to(torch.float64) / pool_rank * maskf
            prec_lang = (rel_ge & same_lang).sum(-1).to(torch.float64) / lang_rank * maskf
            n_rel = maskf.sum(1)
            n_rel_lang = torch.zeros((b, n_lang), dtype=torch.float64).scatter_add_(1, rel_lang, maskf)
            with np.errstate(invalid="ignore", divide="ignore"):
                ap_pool[lo:hi] = (prec_pool.sum(1) / n_rel).numpy()
                ap_lang[lo:hi] = (torch.zeros_like(n_rel_lang).scatter_add_(1, rel_lang, prec_lang) / n_rel_lang).numpy()
                # AP@k (XTREME-R): only relevant items ranked within k count; divided by min(#relevant, k).
                in_pool = (pool_rank <= map_cutoff).to(torch.float64)
                in_lang = (lang_rank <= map_cutoff).to(torch.float64)
                ap20_pool[lo:hi] = ((prec_pool * in_pool).sum(1) / n_rel.clamp(max=map_cutoff)).numpy()
                ap20_lang[lo:hi] = (torch.zeros_like(n_rel_lang).scatter_add_(1, rel_lang, prec_lang * in_lang)
                                    / n_rel_lang.clamp(max=map_cutoff)).numpy()
                for k in ks:
                    hit_pool = ((pool_rank <= k) & mask).to(torch.float64)
                    hit_lang = ((lang_rank <= k) & mask).to(torch.float64)
                    recall_pool[k][lo:hi] = (hit_pool.sum(1) / n_rel).numpy()
                    recall_lang[k][lo:hi] = (torch.zeros_like(n_rel_lang).scatter_add_(1, rel_lang, hit_lang) / n_rel_lang).numpy()
            big = torch.finfo(torch.float64).max
            top = torch.where(mask, pool_rank, torch.full_like(pool_rank, -big)).max(1).values
            bottom = torch.where(mask, pool_rank, torch.full_like(pool_rank, big)).min(1).values
            dist = (top - bottom).numpy()
            dist[(n_rel < 2).numpy()] = np.nan
            rank_dist[lo:hi] = dist
            log.debug("scored queries %d-%d of %d", lo, hi, n_q)
    return LareqaScores(ap_pool, ap_lang, recall_pool, recall_lang, rank_dist, time.perf_counter() - start,
                        ap20_pool, ap20_lang)


@dataclass
class MiraclScores:
    ndcg: np.ndarray  # (queries,) nDCG@10
    recall: np.ndarray  # (queries,) Recall@100
    seconds: float  # scoring only: encoding streamed passages is in the encoder's seconds


# Passages per streamed chunk: its embeddings (50k x 768 float32 = 150 MB) and one query chunk's
# scores against it (256 x 50k = 51 MB) are what scoring a MIRACL corpus holds at once.
STREAM_CHUNK = 50_000


def score_miracl(benchmark: Benchmark, q_emb: np.ndarray, c_emb: np.ndarray, ndcg_k: int = 10,
                 recall_k: int = 100, chunk_size: int = 256, encode=None,
                 stream_chunk: int = STREAM_CHUNK) -> MiraclScores:
    """nDCG@k and Recall@k per query, each language searching its own corpus.

    ``c_emb`` holds the embeddings of ``benchmark.candidates`` (the judged passages); the
    rest of each language's corpus (``benchmark.streamed``) is encoded ``stream_chunk``
    passages at a time with ``encode(texts)``. Per query only the k best streamed scores
    are kept (with how many streamed passages tie the k-th, so ties at the cut-off
    average exactly as over the whole corpus), and per relevant passage how many
    streamed passages score at least as high: its rank, as if all were scored at once.
    """
    import torch

    from polyqa.evaluate.metrics import dcg_at_k_tied, ideal_dcg_at_k

    start, encoding = time.perf_counter(), 0.0
    q_lang, c_lang = _language_index(benchmark)
    rel_np, gains_np = _padded_relevance(benchmark)
    ndcg = np.full(len(benchmark.queries), np.nan)
    recall = np.full(len(benchmark.queries), np.nan)
    with torch.inference_mode():
        for li, lang in enumerate(benchmark.languages):
            c_rows = np.nonzero(c_lang == li)[0]
            q_rows = np.nonzero(q_lang == li)[0]
            if len(q_rows) == 0:
                continue
            local = np.full(len(c_lang), -1, dtype=np.int64)
            local[c_rows] = np.arange(len(c_rows))
            queries = torch.from_numpy(np.ascontiguousarray(q_emb[q_rows]))
            held = queries @ torch.from_numpy(np.ascontiguousarray(c_emb[c_rows])).T  # (q, judged)
            rel = rel_np[q_rows]
            valid = torch.from_numpy(rel >= 0)
            rel_local = torch.from_numpy(np.where(rel >= 0, local[np.maximum(rel, 0)], 0))
            rel_scores = torch.where(valid, held.gather(1, rel_local), torch.full(rel.shape, float("inf")))
            # Streamed state per query: the k best scores (descending), how many streamed passages
            # score exactly the k-th of them, and per relevant passage how many score >= it.
            top = torch.full((len(q_rows), ndcg_k), float("-inf"))
            at_kth = torch.zeros(len(q_rows), dtype=torch.int64)
            above_rel = torch.zeros(rel.shape, dtype=torch.int64)
            stream = benchmark.streamed.get(lang)
            if stream is not None and stream.passages:
                if encode is None:
                    raise ValueError(f"MIRACL {lang}: {stream.passages} streamed passages need an encode function")
                done = 0
                for texts in stream.chunks(stream_chunk):
                    encode_start = time.perf_counter()
                    passages = torch.from_numpy(np.ascontiguousarray(encode(texts)))
                    encoding += time.perf_counter() - encode_start
                    for lo in range(0, len(q_rows), chunk_size):
                        sl = slice(lo, lo + chunk_size)
                        scores = queries[sl] @ passages.T
                        ordered = scores.sort(dim=1).values
                        above_rel[sl] += scores.shape[1] - torch.searchsorted(ordered, rel_scores[sl].contiguous())
                        old = top[sl]
                        new = torch.cat([old, ordered[:, -ndcg_k:]], 1).topk(ndcg_k, dim=1).values
                        kth, old_kth = new[:, -1:], old[:, -1:]
                        # Passages tying the new k-th: in this chunk, plus before it (all of them are in
                        # the old top when the k-th rose; the running count when it did not).
                        before = torch.where(kth.squeeze(1) == old_kth.squeeze(1), at_kth[sl], (old == kth).sum(1))
                        at_kth[sl] = before + (scores == kth).sum(1)
                        top[sl] = new
                    done += len(texts)
                    log.info("MIRACL %s: %d of %d passages scored", lang, done, stream.passages)
            for i, row in enumerate(q_rows):
                ok = valid[i].numpy()
                gains = gains_np[row][ok]
                rel_s = rel_scores[i][valid[i]]
                ranks = (held[i].unsqueeze(0) >= rel_s.unsqueeze(1)).sum(1) + above_rel[i][valid[i]]
                recall[row] = float(np.mean(ranks.numpy() <= recall_k))
                streamed_top = top[i][torch.isfinite(top[i])]
                both = torch.cat([held[i], streamed_top])
                kth = both.topk(min(ndcg_k, len(both))).values[-1]
                gain_of = dict(zip(local[rel[i][ok]].tolist(), gains.tolist()))
                held_idx = torch.nonzero(held[i] >= kth).squeeze(1).numpy()
                top_scores = [held[i][held_idx].numpy()]
                top_gains = [np.array([gain_of.get(j, 0.0) for j in held_idx.tolist()])]
                # Everything scoring >= the k-th: the full tie group at the cut-off (streamed gains are 0).
                over = streamed_top[streamed_top >= kth]
                if len(streamed_top) == ndcg_k and bool(kth == streamed_top[-1]):
                    over = torch.cat([over[over > kth], kth.repeat(int(at_kth[i]))])
                top_scores.append(over.numpy())
                top_gains.append(np.zeros(len(over)))
                ndcg[row] = (dcg_at_k_tied(np.concatenate(top_scores), np.concatenate(top_gains), ndcg_k)
                             / ideal_dcg_at_k(gains, ndcg_k))
    return MiraclScores(ndcg, recall, time.perf_counter() - start - encoding)  # encoding counts as encoding


def ranked_run(benchmark: Benchmark, q_emb: np.ndarray, c_emb: np.ndarray, k: int = 100,
               same_language: bool = False, chunk_size: int = 256) -> list[tuple[Query, list[tuple[int, float]]]]:
    """Each query's ``k`` best candidates (index, cosine score), best first: the run a TREC tool scores.

    ``same_language``: search only the query's language (as MIRACL and BEIR folders are scored);
    otherwise the whole multilingual pool (LAReQA). Candidates held on disk are not searched.
    """
    import torch

    if benchmark.streamed:
        raise ValueError(f"{benchmark.name}: a run of a benchmark streamed from disk is not kept")
    q_lang, c_lang = _language_index(benchmark)
    cands = torch.from_numpy(np.ascontiguousarray(c_emb, dtype=np.float32))
    run = []
    with torch.inference_mode():
        for lo in range(0, len(benchmark.queries), chunk_size):
            queries = torch.from_numpy(np.ascontiguousarray(q_emb[lo:lo + chunk_size], dtype=np.float32))
            scores = queries @ cands.T
            if same_language:
                other = torch.from_numpy(q_lang[lo:lo + chunk_size, None] != c_lang[None, :])
                scores = scores.masked_fill(other, float("-inf"))
            top = scores.topk(min(k, scores.shape[1]), dim=1)
            for row, (values, indices) in enumerate(zip(top.values.tolist(), top.indices.tolist())):
                run.append((benchmark.queries[lo + row],
                            [(i, v) for i, v in zip(indices, values) if v != float("-inf")]))
    return run
