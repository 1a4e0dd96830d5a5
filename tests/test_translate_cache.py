"""The SQLite translation cache: lookups by prefix, persistence, concurrent writers lose nothing."""

from __future__ import annotations

import multiprocessing
import pickle

from polyqa.translate.cache import TranslationCache


def test_get_put_by_prefix(tmp_path):
    cache = TranslationCache(tmp_path / "c.sqlite")
    assert cache.get_many("m|d|eng|deu", ["a", "b"]) == {}
    cache.put_many("m|d|eng|deu", [("a", "A-de"), ("b", "B-de")])
    cache.put_many("m|d|eng|fra", [("a", "A-fr")])
    assert cache.get_many("m|d|eng|deu", ["a", "b", "c", "a"]) == {"a": "A-de", "b": "B-de"}
    assert cache.get_many("m|d|eng|fra", ["a", "b"]) == {"a": "A-fr"}
    assert cache.get_many("other-model|d|eng|deu", ["a"]) == {}
    cache.put_many("m|d|eng|deu", [("a", "changed")])  # first writer wins: entries are immutable
    assert cache.get_many("m|d|eng|deu", ["a"]) == {"a": "A-de"}
    cache.put_many("m|d|eng|deu", [])
    assert len(cache) == 3
    cache.close()
    reopened = TranslationCache(tmp_path / "c.sqlite")
    assert reopened.get_many("m|d|eng|deu", ["b"]) == {"b": "B-de"}
    assert pickle.loads(pickle.dumps(reopened)).get_many("m|d|eng|fra", ["a"]) == {"a": "A-fr"}


def test_many_keys_in_one_lookup(tmp_path):
    cache = TranslationCache(tmp_path / "c.sqlite")
    texts = [f"sentence {i} with unicode ü 中 {i * 7}" for i in range(5000)]
    cache.put_many("p", ((t, t.upper()) for t in texts))
    found = cache.get_many("p", texts + ["missing"])
    assert len(found) == 5000 and found[texts[4321]] == texts[4321].upper()


def _writer(path: str, worker: int, rounds: int, per_round: int, start) -> None:
    cache = TranslationCache(path)
    start.wait(60)  # all writers begin together (barrier), so their transactions interleave
    for r in range(rounds):
        # overlapping keys between workers ("shared") and own keys
        pairs = [(f"own-{worker}-{r}-{i}", f"t{worker}") for i in range(per_round)]
        pairs += [(f"shared-{r}-{i}", "same") for i in range(per_round // 2)]
        cache.put_many("prefix", pairs)
        assert len(cache.get_many("prefix", [p for p, _ in pairs])) == len(pairs)


def test_concurrent_writer_processes_lose_nothing(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    TranslationCache(path).close()
    rounds, per_round, workers = 150, 20, 3
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(workers)
    procs = [ctx.Process(target=_writer, args=(path, w, rounds, per_round, start)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * workers
    cache = TranslationCache(path)
    assert len(cache) == workers * rounds * per_round + rounds * (per_round // 2)
    own = [f"own-{w}-{r}-{i}" for w in range(workers) for r in range(rounds) for i in range(per_round)]
    found = cache.get_many("prefix", own)
    assert len(found) == len(own)
    assert all(found[k] == f"t{k.split('-')[1]}" for k in own)
