"""The translation engine: NLLB/M2M100 through CTranslate2, deduplicated and cached.

One call translates a list of segments (sentences) into one or more target
languages. Work is done once per unique (segment, target): segments found in
the persistent cache are not translated again, the rest are tokenised once with
the model's own tokenizer (its ``tokenizer.json``), sorted by length, cut into
batches under a token budget, as many as keep every CTranslate2 worker busy and
of even size (:mod:`polyqa.translate.batching`), and submitted asynchronously. Results go back
to the caller's order and into the cache as each batch finishes, so an
interrupted job resumes where it stopped.

NLLB conventions: the source is
``[src_lang] + pieces + ["</s>"]``, the target prefix is ``[tgt_lang]``, the
output starts with the language code (stripped here) and CTranslate2's
``max_decoding_length`` counts that prefix.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from polyqa.languages import normalize
from polyqa.translate.batching import join_parts, plan_batches, split_pieces
from polyqa.translate.cache import TranslationCache
from polyqa.translate.convert import model_max_positions, resolve_model

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecodingSettings:
    beam_size: int = 4
    max_length_ratio: float = 2.0  # max output tokens = ceil(ratio * source tokens) + max_length_extra
    max_length_extra: int = 10
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0
    max_batch_tokens: int = 2048
    # Additions: an absolute cap on output tokens (None: only the ratio), and a
    # minimum output length (0: none; benchmarks use it to force equal lengths).
    max_output_tokens: int | None = 512
    min_output_tokens: int = 0
    # Longer sources are split at clause (else token) boundaries, each part translated and
    # the parts joined; also clamped to the model's own positions (NLLB: 1024). Counted in stats.
    max_input_tokens: int = 1024

    def __post_init__(self):
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {self.beam_size}")
        if self.max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens must be >= 1, got {self.max_batch_tokens}")
        if self.max_length_ratio < 0 or self.max_length_extra < 0:
            raise ValueError("max_length_ratio and max_length_extra must be >= 0")
        if self.max_input_tokens < 3:
            raise ValueError("max_input_tokens must be >= 3 (language code, one piece, </s>)")

    def fingerprint(self) -> str:
        """Stable hash of the settings that change outputs (not the batch budget)."""
        settings = dataclasses.asdict(self)
        settings.pop("max_batch_tokens")
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]

    def output_limit(self, source_tokens: int) -> int:
        """Maximum output tokens (language prefix not counted) for a source of that length."""
        limit = math.ceil(self.max_length_ratio * source_tokens) + self.max_length_extra
        if self.max_output_tokens is not None:
            limit = min(limit, self.max_output_tokens)
        return max(limit, self.min_output_tokens, 1)


def cache_key_prefix(model_fingerprint: str, decoding: DecodingSettings, source: str, target: str) -> str:
    """Cache key prefix: model weights, decoding settings, language pair (a plan looks up the same keys)."""
    return f"{model_fingerprint}|{decoding.fingerprint()}|{source}|{target}"


@dataclass
class TranslationStats:
    """Counters of translation work (of one call, or summed); ``add`` merges another's, ``as_dict`` is JSON-able."""

    segments_requested: int = 0  # (segment, target) pairs asked for, duplicates and empties included
    unique_segments: int = 0  # unique non-empty (segment, target) pairs
    cache_hits: int = 0  # of the unique pairs, found in the persistent cache
    translated: int = 0  # of the unique pairs, run through the model
    source_tokens: int = 0  # encoder tokens of translated pairs
    target_tokens: int = 0  # generated tokens (language prefix not counted)
    seconds: float = 0.0
    model_seconds: float = 0.0  # of ``seconds``, waiting for CTranslate2's results (the rest is polyqa's)
    cache_seconds: float = 0.0  # of ``seconds``, reading and writing the translation cache
    split_inputs: int = 0  # sources longer than the input limit, translated in parts
    batches: int = 0  # model batches submitted (to check every worker got work)

    def add(self, other: TranslationStats) -> TranslationStats:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TranslatedPassage:
    """A passage translated sentence by sentence, joined back with known sentence offsets."""

    text: str
    sentences: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)


# Observers of the work sent to the model, in every engine of this process: each is called with
# (source, target, segments), the unique segments of one call that were not in the cache, before
# they are translated. A benchmark replays exactly a build's work this way.
TranslationObserver = Callable[[str, str, list[str]], None]
_OBSERVERS: list[TranslationObserver] = []


@contextmanager
def observe_translations(observer: TranslationObserver) -> Iterator[TranslationObserver]:
    """Call ``observer(source, target, segments)`` for every batch of work any engine sends to its model."""
    _OBSERVERS.append(observer)
    try:
        yield observer
    finally:
        _OBSERVERS.remove(observer)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads(device: str, device_index: int | Sequence[int]) -> tuple[int, int]:
    """(inter_threads, intra_threads) that run fastest for translation throughput.

    CPU: one single-threaded worker per core; on 2-core machines this beat
    CTranslate2's default (1 worker x several threads) several times, since
    decoding small batches parallelises poorly inside one batch.
    CUDA: one worker per listed device (CTranslate2 counts inter_threads per device).
    """
    if device == "cpu":
        return available_cores(), 1
    return 1, 1


class TranslationEngine:
    def __init__(
        self,
        model: str | os.PathLike,
        *,
        quantization: str = "int8",
        device: str = "cpu",
        device_index: int | Sequence[int] = 0,
        inter_threads: int | None = None,
        intra_threads: int | None = None,
        revision: str | None = None,
        models_dir: str | os.PathLike | None = None,
        cache: TranslationCache | str | os.PathLike | None = None,
        decoding: DecodingSettings = DecodingSettings(),
    ):
        import ctranslate2
        from tokenizers import Tokenizer

        if device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
        resolved = resolve_model(model, quantization=quantization, revision=revision, models_dir=models_dir)
        self.ct2_dir: Path = resolved.ct2_dir
        self.model_fingerprint: str = resolved.fingerprint
        self.model_info: dict = resolved.as_dict()
        self.decoding = decoding
        default_inter, default_intra = default_threads(device, device_index)
        self.inter_threads = inter_threads or default_inter
        self.intra_threads = intra_threads or default_intra
        self.device = device
        self.device_index = list(device_index) if isinstance(device_index, Sequence) else [device_index]
        if not (self.ct2_dir / "tokenizer.json").is_file():
            raise FileNotFoundError(
                f"{self.ct2_dir}: no tokenizer.json next to the CTranslate2 model; copy the Hugging Face "
                "tokenizer files there (conversions made by polyqa do this)"
            )
        # The tokenizer.json itself: the very object transformers' fast tokenizer wraps, loaded in
        # a third of the time (a 256k vocabulary); ``tokenizer`` loads the transformers one on demand.
        self._backend = Tokenizer.from_file(str(self.ct2_dir / "tokenizer.json"))
        self._unk_id = self._backend.token_to_id("<unk>")
        self.translator = ctranslate2.Translator(
            str(self.ct2_dir),
            device=device,
            device_index=self.device_index,
            compute_type="default",  # run the stored quantization (int8 stays int8 on CPU)
            inter_threads=self.inter_threads,
            intra_threads=self.intra_threads,
        )
        self.num_workers = self.inter_threads * len(self.device_index)
        # Inputs and outputs beyond the model's positions crash CTranslate2: clamp both.
        self.max_positions = model_max_positions(self.ct2_dir)
        self.max_input_tokens = min(decoding.max_input_tokens, self.max_positions or decoding.max_input_tokens)
        self.split_segments: set[str] = set()  # source texts translated in parts (rows can flag them)
        if isinstance(cache, TranslationCache) or cache is None:
            self.cache, self._owns_cache = cache, False
        else:
            self.cache, self._owns_cache = TranslationCache(cache), True
        self.stats = TranslationStats()  # every call's work, summed
        # One call at a time: a call already keeps every CTranslate2 worker busy, and the cache
        # connection is shared.
        self._calls = threading.Lock()
        self.model_info.update(
            device=device,
            device_index=self.device_index,
            inter_threads=self.inter_threads,
            intra_threads=self.intra_threads,
            decoding=dataclasses.asdict(decoding),
            decoding_fingerprint=decoding.fingerprint(),
            max_positions=self.max_positions,
        )

    # ---------------------------------------------------------------- tokens
    @functools.cached_property
    def tokenizer(self):
        """The model's transformers tokenizer (loaded on first use; the engine itself does not need it)."""
        from transformers import AutoTokenizer

        # CT2's config.json has no model_type, which transformers 5 takes for an old
        # Mistral tokenizer and warns about; NLLB tokenizers need no regex fix.
        return AutoTokenizer.from_pretrained(self.ct2_dir, fix_mistral_regex=False)

    def _language_token(self, lang: str) -> str:
        code = normalize(lang)
        if self._backend.token_to_id(code) in (None, self._unk_id):
            raise ValueError(f"language {code} is not in the vocabulary of model {self.model_info['model']}")
        return code

    def _pieces(self, texts: Sequence[str]) -> list[list[str]]:
        return [enc.tokens for enc in self._backend.encode_batch(list(texts), add_special_tokens=False)]

    def count_tokens(self, segments: Sequence[str]) -> list[int]:
        """Encoder tokens per segment (language code and ``</s>`` included; 0 for empty segments)."""
        counts = [0] * len(segments)
        non_empty = [i for i, s in enumerate(segments) if s.strip()]
        for i, pieces in zip(non_empty, self._pieces([segments[i] for i in non_empty])):
            counts[i] = len(pieces) + 2
        return counts

    def _output_limit(self, source_tokens: int) -> int:
        """The decoding settings' output limit, clamped to the model's positions (prefix included)."""
        limit = self.decoding.output_limit(source_tokens)
        return min(limit, self.max_positions - 1) if self.max_positions else limit

    def _detokenize(self, hypotheses: list[list[str]]) -> list[str]:
        to_id = self._backend.token_to_id
        ids = [[i for i in (to_id(t) for t in tokens) if i is not None] for tokens in hypotheses]
        return [text.strip() for text in self._backend.decode_batch(ids, skip_special_tokens=True)]

    def key_prefix(self, source: str, target: str) -> str:
        return cache_key_prefix(self.model_fingerprint, self.decoding, source, target)

    # ----------------------------------------------------------- translation
    def translate(self, segments: Sequence[str], source: str, target: str, *, progress: bool = False) -> list[str]:
        return self.translate_many(segments, source, [target], progress=progress)[normalize(target)]

    def translate_many(
        self, segments: Sequence[str], source: str, targets: Sequence[str], *, progress: bool = False
    ) -> dict[str, list[str]]:
        """Translations of ``segments`` into each target (keys: normalised NLLB codes); see :meth:`translate_counted`."""
        return self.translate_counted(segments, source, targets, progress=progress)[0]

    def translate_counted(
        self, segments: Sequence[str], source: str, targets: Sequence[str], *, progress: bool = False
    ) -> tuple[dict[str, list[str]], TranslationStats]:
        """Translations of ``segments`` into each target, and the work of this call alone.

        Each unique non-empty (segment, target) is translated at most once and
        only if the cache does not have it. Empty segments give "" and a target
        equal to the source gives the segments back unchanged.
        """
        stats = TranslationStats()
        with self._calls:
            started = time.perf_counter()
            src = self._language_token(source)
            tgts = list(dict.fromkeys(self._language_token(t) for t in targets))
            segments = list(segments)
            stats.segments_requested += len(segments) * len(tgts)
            unique = [s for s in dict.fromkeys(segments) if s.strip()]

            done: dict[str, dict[str, str]] = {}
            jobs: list[tuple[str, str]] = []  # (segment, target) still to translate
            for tgt in tgts:
                if tgt == src:
                    done[tgt] = {s: s for s in unique}
                    continue
                stats.unique_segments += len(unique)
                looked_up = time.perf_counter()
                hits = self.cache.get_many(self.key_prefix(src, tgt), unique) if self.cache is not None else {}
                stats.cache_seconds += time.perf_counter() - looked_up
                stats.cache_hits += len(hits)
                done[tgt] = hits
                misses = [s for s in unique if s not in hits]
                for observer in list(_OBSERVERS):
                    observer(src, tgt, misses)
                jobs.extend((s, tgt) for s in misses)
            try:
                if jobs:
                    self._run(jobs, src, done, progress, stats)
            finally:  # work done before a failure is counted too
                stats.seconds += time.perf_counter() - started
                self.stats.add(stats)
        translations = {tgt: [done[tgt].get(s, "") if s.strip() else "" for s in segments] for tgt in tgts}
        return translations, stats

    def _run(self, jobs: list[tuple[str, str]], src: str, done: dict[str, dict[str, str]], progress: bool,
             stats: TranslationStats) -> None:
        from tqdm.auto import tqdm

        limit = self.max_input_tokens - 2  # room for the language code and </s>
        texts = list(dict.fromkeys(s for s, _ in jobs))
        parts_of: dict[str, list[list[str]]] = {}
        for text, pieces in zip(texts, self._pieces(texts)):
            parts = split_pieces(pieces, limit)
            if len(parts) > 1:
                stats.split_inputs += 1
                self.split_segments.add(text)
                logger.warning("source of %d tokens translated in %d parts: %.60r...", len(pieces) + 2,
                               len(parts), text)
            parts_of[text] = [[src, *part, "</s>"] for part in parts]
        # Units of work: (job, part). Most jobs have one part.
        units = [(j, k) for j, (segment, _) in enumerate(jobs) for k in range(len(parts_of[segment]))]

        def tokens(unit: tuple[int, int]) -> list[str]:
            return parts_of[jobs[unit[0]][0]][unit[1]]

        # Length-sorted batches under a padded-token budget (little padding), longest first so the
        # last ones to finish are short, and balanced over the workers (see plan_batches).
        order = sorted(range(len(units)), key=lambda u: (-len(tokens(units[u])), jobs[units[u][0]][1]))
        widths = [len(tokens(units[u])) for u in order]
        batches = [order[a:b] for a, b in plan_batches(widths, self.decoding.max_batch_tokens, self.num_workers)]
        stats.batches += len(batches)

        pending: dict[str, list[tuple[str, str]]] = {}
        partial: dict[int, dict[int, tuple[str, int]]] = {}  # job -> part -> (text, output tokens)
        last_flush = time.monotonic()
        in_flight: deque = deque()
        window = max(2 * self.num_workers, 2)
        bar = tqdm(total=len(jobs), unit="seg", desc="translate", disable=not progress, file=sys.stderr)
        try:
            batch_iter = iter(batches)
            while True:
                while len(in_flight) < window:
                    batch = next(batch_iter, None)
                    if batch is None:
                        break
                    in_flight.append((batch, self._submit([(tokens(units[u]), jobs[units[u][0]][1]) for u in batch])))
                if not in_flight:
                    break
                batch, async_results = in_flight.popleft()
                waited = time.perf_counter()
                outputs = [result.result() for result in async_results]
                stats.model_seconds += time.perf_counter() - waited
                hypotheses = []
                for u, output in zip(batch, outputs):
                    tgt = jobs[units[u][0]][1]
                    hypothesis = output.hypotheses[0]
                    if hypothesis and hypothesis[0] == tgt:
                        hypothesis = hypothesis[1:]
                    # The batch's length limit is its longest member's: cut each
                    # output to its own limit so results do not depend on batching.
                    hypotheses.append(hypothesis[: self._output_limit(len(tokens(units[u])))])
                finished = 0
                for u, hypothesis, translation in zip(batch, hypotheses, self._detokenize(hypotheses)):
                    j, k = units[u]
                    segment, tgt = jobs[j]
                    got = partial.setdefault(j, {})
                    got[k] = (translation, len(hypothesis))
                    n_parts = len(parts_of[segment])
                    if len(got) < n_parts:
                        continue
                    del partial[j]
                    translation = join_parts([got[i][0] for i in range(n_parts)], tgt)
                    done[tgt][segment] = translation
                    pending.setdefault(tgt, []).append((segment, translation))
                    stats.translated += 1
                    stats.source_tokens += sum(len(t) for t in parts_of[segment])
                    stats.target_tokens += sum(got[i][1] for i in range(n_parts))
                    finished += 1
                bar.update(finished)
                if time.monotonic() - last_flush > 5.0:
                    self._flush(src, pending, stats)
                    last_flush = time.monotonic()
        finally:
            self._flush(src, pending, stats)  # keep finished work even if a batch failed
            bar.close()
        logger.info(
            "translated %d segments from %s in %d batches (%d workers)", len(jobs), src, len(batches), self.num_workers
        )

    def _submit(self, batch: list[tuple[list[str], str]]):
        sources = [tokens for tokens, _ in batch]
        longest = max(self._output_limit(len(tokens)) for tokens in sources)
        return self.translator.translate_batch(
            sources,
            target_prefix=[[tgt] for _, tgt in batch],
            max_batch_size=self.decoding.max_batch_tokens,
            batch_type="tokens",
            asynchronous=True,
            beam_size=self.decoding.beam_size,
            no_repeat_ngram_size=self.decoding.no_repeat_ngram_size,
            repetition_penalty=self.decoding.repetition_penalty,
            max_decoding_length=longest + 1,  # + the target language prefix
            min_decoding_length=self.decoding.min_output_tokens + 1 if self.decoding.min_output_tokens else 0,
            return_scores=False,
        )

    def _flush(self, src: str, pending: dict[str, list[tuple[str, str]]], stats: TranslationStats) -> None:
        started = time.perf_counter()
        if self.cache is not None:
            for tgt, pairs in pending.items():
                self.cache.put_many(self.key_prefix(src, tgt), pairs)
        pending.clear()
        stats.cache_seconds += time.perf_counter() - started

    def translate_passages(
        self, passages: Sequence[str], source: str, targets: Sequence[str], *, progress: bool = False
    ) -> dict[str, list[TranslatedPassage]]:
        """Segment passages into sentences, translate all sentences in one call, join them back."""
        from polyqa.segment import join_translated, separators, split_sentences

        src = normalize(source)
        split = [split_sentences(p, src) for p in passages]
        seps = [separators(p, sentences) for p, sentences in zip(passages, split)]
        flat = [s.text for sentences in split for s in sentences]
        translated = self.translate_many(flat, src, targets, progress=progress)
        result: dict[str, list[TranslatedPassage]] = {}
        for tgt, outputs in translated.items():
            passages_out, position = [], 0
            for sentences, sep in zip(split, seps):
                own = outputs[position : position + len(sentences)]
                position += len(sentences)
                text, starts = join_translated(own, tgt, sep)
                passages_out.append(TranslatedPassage(text, [s.strip() for s in own], starts))
            result[tgt] = passages_out
        return result

    # ------------------------------------------------------------- lifecycle
    def close(self) -> None:
        if getattr(self, "translator", None) is not None:
            self.translator = None
        if self._owns_cache and self.cache is not None:
            self.cache.close()

    def __enter__(self) -> TranslationEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
