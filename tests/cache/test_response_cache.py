"""The response cache store, on a SQLite file and on a real PostgreSQL server."""

from __future__ import annotations

import threading
import time

import pytest

from k2eval.errors import UserError
from k2eval.store.cache import ResponseCache, parse_age

REPLY = {"text": "4", "tool_calls": [], "finish_reason": "stop",
         "usage": {"prompt_tokens": 12, "completion_tokens": 1}, "latency": 0.2}


def test_a_stored_reply_comes_back_identical_and_counts_its_hits(database_url: str) -> None:
    cache = ResponseCache(database_url)
    assert cache.get("k1") is None
    cache.put("k1", endpoint="127.0.0.1:8000/v1", model="kimi-k2", response=REPLY)
    assert cache.get("k1") == REPLY
    assert cache.get("k1") == REPLY
    stats = cache.stats()
    assert (stats.entries, stats.hits, stats.by_model) == (1, 2, {"kimi-k2": 1})
    cache.close()


def test_a_refreshed_reply_replaces_the_old_one(database_url: str) -> None:
    cache = ResponseCache(database_url)
    cache.put("k1", endpoint="e", model="m", response=REPLY)
    cache.put("k1", endpoint="e", model="m", response={**REPLY, "text": "four"})
    assert cache.get("k1") == {**REPLY, "text": "four"}
    assert cache.stats().entries == 1
    cache.close()


def test_prune_removes_only_entries_unused_for_longer_than_the_age(database_url: str) -> None:
    cache = ResponseCache(database_url)
    cache.put("old", endpoint="e", model="m", response=REPLY)
    time.sleep(0.3)
    cache.put("new", endpoint="e", model="m", response=REPLY)
    assert cache.prune(0.2) == 1
    assert cache.get("old") is None and cache.get("new") == REPLY
    cache.close()


def test_writers_in_several_threads_lose_nothing(database_url: str) -> None:
    """Two processes (or machines) filling one cache at once: every reply is stored once."""
    caches = [ResponseCache(database_url) for _ in range(2)]

    def fill(cache: ResponseCache, offset: int) -> None:
        for i in range(40):
            key = f"k{(i + offset) % 60}"  # the two writers overlap on 20 keys
            cache.put(key, endpoint="e", model="m", response={**REPLY, "text": key})

    threads = [threading.Thread(target=fill, args=(c, 20 * n)) for n, c in enumerate(caches)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert caches[0].stats().entries == 60
    assert all(caches[1].get(f"k{i}") == {**REPLY, "text": f"k{i}"} for i in range(60))
    for c in caches:
        c.close()


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    with pytest.raises(UserError, match="cannot be opened") as info:
        ResponseCache("postgresql://k2eval:hunter2@127.0.0.1:1/none")
    assert "hunter2" not in str(info.value) and "\n" not in str(info.value)


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(UserError, match="unsupported database URL scheme"):
        ResponseCache("mysql://u@127.0.0.1/db")


@pytest.mark.parametrize(("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200),
                                               ("90m", 5400), ("45", 45.0), ("1w", 604800)])
def test_ages_read_with_units(text: str, seconds: float) -> None:
    assert parse_age(text) == seconds


def test_an_unreadable_age_is_a_user_error() -> None:
    with pytest.raises(UserError, match="30d"):
        parse_age("soon")


def test_concurrent_puts_through_one_cache_are_all_stored(database_url: str) -> None:
    """A run stores replies from many attempts at once (one thread each)."""
    cache = ResponseCache(database_url)
    threads = [threading.Thread(target=cache.put, args=(f"k{i}",),
                                kwargs={"endpoint": "e", "model": "m", "response": REPLY})
               for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.stats().entries == 24
    cache.close()
