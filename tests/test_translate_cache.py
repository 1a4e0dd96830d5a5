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


def test_a_file_that_is_not_a_database_is_set_aside_not_deleted(tmp_path):
    import pytest

    from polyqa.translate.cache import CacheDamagedWarning

    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not sqlite, it is a user's notes\n" * 100)
    with pytest.warns(CacheDamagedWarning, match="damaged"):
        cache = TranslationCache(path)
    assert cache.set_aside is not None and cache.set_aside.read_bytes().startswith(b"this is not sqlite")
    cache.put_many("p", [("a", "A")])
    assert cache.get_many("p", ["a"]) == {"a": "A"}


def test_a_damaged_entry_is_dropped_and_reported_never_returned(tmp_path):
    import sqlite3

    cache = TranslationCache(tmp_path / "c.sqlite")
    cache.put_many("p", [("a", "A"), ("b", "B")])
    cache.close()
    with sqlite3.connect(tmp_path / "c.sqlite") as conn:  # bit rot: the text changed under its checksum
        conn.execute("UPDATE translations SET translation = 'garbage' WHERE translation = 'A'")
    cache = TranslationCache(tmp_path / "c.sqlite")
    assert cache.get_many("p", ["a", "b"]) == {"b": "B"}
    assert cache.damaged_entries == 1 and len(cache) == 1
    cache.put_many("p", [("a", "A")])  # translated again and stored whole
    assert cache.get_many("p", ["a"]) == {"a": "A"}


def _write_forever(path: str, ready) -> None:
    cache = TranslationCache(path)
    i = 0
    while True:
        cache.put_many("p", [(f"text-{i}-{j}", f"translation-{i}-{j}") for j in range(200)])
        i += 1
        if i == 3:
            ready.set()


def test_a_kill_during_a_cache_write_loses_only_the_open_transaction(tmp_path):
    import os
    import signal

    path = str(tmp_path / "c.sqlite")
    ready = multiprocessing.get_context("fork").Event()
    writer = multiprocessing.get_context("fork").Process(target=_write_forever, args=(path, ready))
    writer.start()
    assert ready.wait(60)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()
    cache = TranslationCache(path)  # opens cleanly: no set-aside
    assert cache.set_aside is None
    n = len(cache)
    assert n >= 600 and n % 200 == 0  # whole transactions only
    rounds = n // 200
    assert cache.get_many("p", [f"text-{rounds - 1}-199"]) == {f"text-{rounds - 1}-199": f"translation-{rounds - 1}-199"}


def test_cache_files_follow_the_users_umask(tmp_path):
    import os
    import stat

    old = os.umask(0o027)
    try:
        cache = TranslationCache(tmp_path / "sub" / "c.sqlite")
        cache.put_many("p", [("a", "A")])
    finally:
        os.umask(old)
    for f in (tmp_path / "sub").iterdir():
        mode = stat.S_IMODE(f.stat().st_mode)
        assert not mode & stat.S_IWOTH and not mode & stat.S_IROTH, (f, oct(mode))
