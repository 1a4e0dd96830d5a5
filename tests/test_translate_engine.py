"""The translation engine on the tiny model: faithful to HF, order-preserving, deduplicated, cached."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch
from transformers import AutoTokenizer, M2M100ForConditionalGeneration

from polyqa.languages import UnknownLanguageError
from polyqa.translate.cache import TranslationCache
from polyqa.translate.engine import DecodingSettings, TranslationEngine, TranslationStats
from polyqa.translate.sample_text import sample_lines

GREEDY_20 = DecodingSettings(beam_size=1, max_length_ratio=0.0, max_length_extra=20)


@pytest.fixture(scope="module")
def engine(tiny_model):
    with TranslationEngine(tiny_model.ct2_dir, decoding=GREEDY_20) as eng:
        yield eng


def test_greedy_text_equals_hf_generate(engine, tiny_model):
    texts = sample_lines()[:20]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model.hf_dir)
    model = M2M100ForConditionalGeneration.from_pretrained(tiny_model.hf_dir).eval()
    tokenizer.src_lang = "eng_Latn"
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        generated = model.generate(
            **batch,
            forced_bos_token_id=tokenizer.convert_tokens_to_ids("fra_Latn"),
            num_beams=1,
            do_sample=False,
            max_new_tokens=21,  # HF counts the forced language token among the new tokens
        )
    expected = [t.strip() for t in tokenizer.batch_decode(generated, skip_special_tokens=True)]
    assert engine.translate(texts, "en", "fr") == expected
    assert len(set(expected)) > 10  # the comparison is not between identical babble


def test_order_restored_after_length_sorting(tiny_model):
    lines = sample_lines()
    shuffled = random.Random(7).sample(lines, len(lines))
    # A small budget forces many batches, so sorting by length reorders a lot.
    settings = dataclasses.replace(GREEDY_20, max_batch_tokens=96)
    with TranslationEngine(tiny_model.ct2_dir, decoding=settings) as small_batches:
        together = small_batches.translate(shuffled, "eng_Latn", "deu_Latn")
        assert small_batches.stats.batches >= 10  # 44 lines of ~20-60 tokens under a 96-token budget
        one_by_one = [small_batches.translate([s], "eng_Latn", "deu_Latn")[0] for s in shuffled]
    assert together == one_by_one
    assert len(set(together)) > len(lines) // 2


def test_translate_many_dedups_and_normalises(engine):
    before = dataclasses.replace(engine.stats)
    segments = ["The river flows.", "", "The river flows.", "   ", "Who wrote the novel?"]
    out = engine.translate_many(segments, "en", ["de", "zh-Hant", "deu"])
    assert list(out) == ["deu_Latn", "zho_Hant"]
    for translations in out.values():
        assert len(translations) == len(segments)
        assert translations[1] == "" and translations[3] == ""
        assert translations[0] == translations[2] != ""
    delta = {k: v - getattr(before, k) for k, v in engine.stats.as_dict().items()}
    assert delta["segments_requested"] == 10
    assert delta["unique_segments"] == 4
    assert delta["translated"] == 4  # no persistent cache: every unique pair once
    assert delta["target_tokens"] > 0 and delta["source_tokens"] > 0


def test_each_call_returns_its_own_work_while_another_thread_translates(engine):
    """Two threads share one engine: each call's statistics are its own, and they sum to the engine's."""
    import threading

    before = dataclasses.replace(engine.stats)
    calls = {"a": ["A dog sleeps.", "A cat runs."] * 3, "b": ["The sun rises over hills.", "", "Rain falls."]}
    got = {}

    def run(name):
        got[name] = engine.translate_counted(calls[name], "en", ["fr"])

    threads = [threading.Thread(target=run, args=(name,)) for name in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    a, b = got["a"][1], got["b"][1]
    assert (a.segments_requested, a.unique_segments, a.translated) == (6, 2, 2)
    assert (b.segments_requested, b.unique_segments, b.translated) == (3, 2, 2)
    assert got["a"][0]["fra_Latn"][0] == got["a"][0]["fra_Latn"][2] != "" and got["b"][0]["fra_Latn"][1] == ""
    summed = TranslationStats().add(before).add(a).add(b)
    assert {k: round(v, 6) for k, v in summed.as_dict().items()} == \
        {k: round(v, 6) for k, v in engine.stats.as_dict().items()}


def test_empty_input_never_calls_the_model(engine):
    translated = engine.stats.translated
    assert engine.translate(["", " ", "\n"], "en", "de") == ["", "", ""]
    assert engine.translate([], "en", "de") == []
    assert engine.stats.translated == translated


def test_same_language_is_identity_and_bad_codes_fail(engine):
    assert engine.translate(["Hello there."], "en", "eng_Latn") == ["Hello there."]
    with pytest.raises(UnknownLanguageError):
        engine.translate(["Hello."], "en", "klingon")


def test_second_run_translates_nothing(tiny_model, tmp_path):
    lines = sample_lines()[:12]
    cache_path = tmp_path / "cache.sqlite"
    with TranslationEngine(tiny_model.ct2_dir, decoding=GREEDY_20, cache=cache_path) as first:
        first_out = first.translate_many(lines, "en", ["de", "fr"])
        assert first.stats.translated == 24 and first.stats.cache_hits == 0
    with TranslationEngine(tiny_model.ct2_dir, decoding=GREEDY_20, cache=cache_path) as second:
        second_out = second.translate_many(lines + lines[:3], "en", ["de", "fr"])
        assert second.stats.translated == 0
        assert second.stats.cache_hits == 24
        assert second_out["deu_Latn"][:12] == first_out["deu_Latn"]
        assert second_out["fra_Latn"][12:] == first_out["fra_Latn"][:3]
        # a new target shares nothing with the cached pairs
        second.translate(lines, "en", "es")
        assert second.stats.translated == 12
    # different decoding settings are a different cache key
    with TranslationEngine(
        tiny_model.ct2_dir, decoding=dataclasses.replace(GREEDY_20, max_length_extra=5), cache=cache_path
    ) as other:
        shorter = other.translate(lines, "en", "de")
        assert other.stats.cache_hits == 0 and other.stats.translated == 12
        assert shorter != first_out["deu_Latn"]
    assert len(TranslationCache(cache_path)) == 48


def test_output_length_limits(tiny_model):
    settings = DecodingSettings(beam_size=2, max_length_ratio=0.0, max_length_extra=3)
    with TranslationEngine(tiny_model.ct2_dir, decoding=settings) as eng:
        eng.translate(sample_lines()[:8], "en", "de")
        assert eng.stats.target_tokens <= 8 * 3
    forced = DecodingSettings(beam_size=1, max_length_ratio=0.0, max_length_extra=7, min_output_tokens=7)
    with TranslationEngine(tiny_model.ct2_dir, decoding=forced) as eng:
        eng.translate(sample_lines()[:8], "en", "de")
        assert eng.stats.target_tokens == 8 * 7


def test_beam_and_penalties_change_outputs(tiny_model):
    lines = sample_lines()[:6]
    plain = DecodingSettings(beam_size=4, max_length_extra=8)
    with TranslationEngine(tiny_model.ct2_dir, decoding=plain, inter_threads=1, intra_threads=2) as eng:
        baseline = eng.translate(lines, "en", "de")
        assert eng.inter_threads == 1 and eng.intra_threads == 2
    penalised = dataclasses.replace(plain, no_repeat_ngram_size=2, repetition_penalty=1.3)
    with TranslationEngine(tiny_model.ct2_dir, decoding=penalised) as eng:
        constrained = eng.translate(lines, "en", "de")
    assert all(constrained) and constrained != baseline
    # random weights babble in repeats (e.g. one character over and over): the penalties break them up
    assert sum(len(set(t)) for t in constrained) > sum(len(set(t)) for t in baseline)


def test_count_tokens(engine):
    counts = engine.count_tokens(["", "Dr. Smith moved.", "The river flows through the city."])
    assert counts[0] == 0
    assert counts[1] == len(engine.tokenizer("Dr. Smith moved.").input_ids)
    assert counts[2] > counts[1]


def test_translate_passages_keeps_sentence_structure(engine):
    passages = ["Dr. Smith moved to the U.S. in 1998.  He stayed.\n\nThe end.", "", "One sentence only."]
    out = engine.translate_passages(passages, "en", ["de", "zh"])
    german, chinese = out["deu_Latn"], out["zho_Hans"]
    assert len(german[0].sentences) == 3 and german[1].text == "" and len(german[2].sentences) == 1
    for translated in (german[0], chinese[0]):
        for sentence, start in zip(translated.sentences, translated.starts):
            assert translated.text[start : start + len(sentence)] == sentence
    assert "\n\n" in german[0].text
    direct = engine.translate(["Dr. Smith moved to the U.S. in 1998.", "He stayed.", "The end."], "en", "de")
    assert german[0].sentences == direct


def test_stats_merge_and_model_info(engine):
    total = TranslationStats().add(engine.stats).add(engine.stats)
    assert total.translated == 2 * engine.stats.translated
    json.dumps(total.as_dict())
    info = engine.model_info
    assert info["fingerprint"] == engine.model_fingerprint and info["quantization"] == "float32"
    assert info["inter_threads"] >= 1 and info["decoding"]["beam_size"] == 1
    assert GREEDY_20.fingerprint() == DecodingSettings(beam_size=1, max_length_ratio=0.0, max_length_extra=20).fingerprint()
    assert GREEDY_20.fingerprint() == dataclasses.replace(GREEDY_20, max_batch_tokens=7).fingerprint()
    assert GREEDY_20.fingerprint() != dataclasses.replace(GREEDY_20, beam_size=2).fingerprint()
    with pytest.raises(ValueError):
        DecodingSettings(beam_size=0)


LONG_SENTENCE = ("The lighthouse keeper, who had lived on the island for more than forty years, wrote in his "
                 "journal that the storm of 1887, which destroyed the harbour, the chapel, the school and most "
                 "of the fishing boats, was the worst he had ever seen; the villagers, however, remembered it "
                 "differently, and their accounts, collected decades later by a historian from the mainland, "
                 "describe a night of wind, rain, thunder and fear that lasted until the morning tide. ") * 3


def test_split_pieces_prefers_clause_then_word_boundaries():
    from polyqa.translate.batching import split_pieces

    pieces = ["\u2581a", "b", ",", "\u2581c", "d", "\u2581e", "f", "\u2581g", "h", "i"]
    assert split_pieces(pieces, 20) == [pieces]
    parts = split_pieces(pieces, 4)
    assert [p for part in parts for p in part] == pieces and all(len(p) <= 4 for p in parts)
    assert parts[0] == ["\u2581a", "b", ","]  # ends after the comma
    no_marks = ["x"] * 10
    assert [len(p) for p in split_pieces(no_marks, 4)] == [4, 4, 2]


def test_long_segments_never_crash_the_model_and_are_translated_in_parts(tiny_model):
    """The tiny model has 256 positions: a longer input or output used to end in a RuntimeError."""
    settings = DecodingSettings(beam_size=1, max_length_ratio=1.5, max_length_extra=8)  # > 256 output tokens
    with TranslationEngine(tiny_model.ct2_dir, decoding=settings) as eng:
        assert eng.max_positions == 256 and eng.max_input_tokens == 256
        n_tokens = eng.count_tokens([LONG_SENTENCE])[0]
        assert n_tokens > 256
        short = "The river flows."
        out = eng.translate([LONG_SENTENCE, short], "en", "de")
        assert all(out) and eng.stats.split_inputs == 1 and eng.split_segments == {LONG_SENTENCE}
        assert eng.stats.target_tokens <= 255 * 3 + 255
        # the short one is translated exactly as it is alone
        with TranslationEngine(tiny_model.ct2_dir, decoding=settings) as alone:
            assert alone.translate([short], "en", "de") == [out[1]]


def test_batches_are_even_and_keep_every_worker_busy():
    from polyqa.translate.batching import plan_batches

    # A greedy cut under the budget gives 51 + 12 sentences: one worker of two would idle most of the time.
    assert plan_batches([40] * 63, 2048, 2) == [(0, 32), (32, 63)]
    assert plan_batches([40] * 200, 2048, 2) == [(0, 50), (50, 100), (100, 150), (150, 200)]
    assert plan_batches([40] * 10, 2048, 4) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert plan_batches([10, 10, 10], 2048, 8) == [(0, 1), (1, 2), (2, 3)]  # never more batches than items
    assert plan_batches([3000, 10], 2048, 1) == [(0, 1), (1, 2)]  # an item over the budget goes alone
    assert plan_batches([], 2048, 2) == []
    widths = sorted(random.Random(3).choices(range(10, 60), k=97), reverse=True)
    for workers in (1, 2, 3):
        cuts = plan_batches(widths, 1024, workers)
        assert cuts[0][0] == 0 and cuts[-1][1] == len(widths)
        assert all(a[1] == b[0] for a, b in zip(cuts, cuts[1:]))  # contiguous runs of the sorted order
        assert all((b - a) * widths[a] <= 1024 for a, b in cuts)  # padded size within the budget


def test_observers_see_exactly_the_work_sent_to_the_model(tiny_model, tmp_path):
    from polyqa.translate.engine import observe_translations

    seen = []
    with TranslationEngine(tiny_model.ct2_dir, decoding=GREEDY_20, cache=tmp_path / "cache.sqlite") as eng:
        eng.translate(["The river flows.", "Who wrote it?"], "en", "de")
        with observe_translations(lambda source, target, segments: seen.append((source, target, segments))):
            eng.translate_many(["The river flows.", "A new one.", "A new one.", ""], "en", ["de", "en"])
        eng.translate(["After the observer."], "en", "de")
    # cache hits, duplicates, empty segments, the same-language target and later calls are not model work
    assert seen == [("eng_Latn", "deu_Latn", ["A new one."])]
