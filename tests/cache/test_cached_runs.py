"""Runs through the response cache: real HTTP, the server counts what reaches it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import k2eval
from k2eval.testing.fake_openai import Reply, last_user_text


def counting_server(fake_openai: Any) -> Any:
    """Replies differ per request (a counter), so a served-from-cache reply is recognisable."""
    seen: list[str] = []

    def respond(body: dict[str, Any]) -> Reply:
        seen.append(last_user_text(body))
        return Reply(text=f"reply {len(seen)} \\boxed{{{len(seen) % 3}}}")

    srv = fake_openai(respond)
    srv.seen = seen
    return srv


@dataclass
class CachedRuns:
    """AIME 2025 runs against a counting server through one cache file."""

    srv: Any
    cache: str
    aime: Path
    out: Path

    def run(self, run_id: str, **options: Any) -> Any:
        return k2eval.evaluate("aime2025", "openai:m", run_id=run_id, base_url=self.srv.base_url,
                               data=self.aime, out=self.out, cache=self.cache, **options)


@pytest.fixture
def cached(fake_openai: Any, aime: Path, tmp_path: Path) -> CachedRuns:
    return CachedRuns(counting_server(fake_openai), str(tmp_path / "cache.db"), aime, tmp_path)


def journal(run_dir: Path) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in (run_dir / "attempts.jsonl").read_text().splitlines()]
    return sorted(lines, key=lambda a: (a["item_id"], a["attempt"]))


def test_a_cached_rerun_sends_nothing_and_gives_identical_transcripts(cached: CachedRuns) -> None:
    srv, cache = cached.srv, cached.cache
    first = cached.run("first", k=2, limit=3, concurrency=2)
    assert len(srv.seen) == 6
    second = cached.run("second", k=2, limit=3, concurrency=2)
    assert len(srv.seen) == 6, "a cache hit must not reach the server"
    a, b = journal(first.path), journal(second.path)
    assert [x["messages"] for x in a] == [x["messages"] for x in b]
    assert [x["output"] for x in a] == [x["output"] for x in b]
    assert first.summary["score"] == second.summary["score"]
    assert all(c.get("cached") for x in b for c in x["calls"])
    assert all(x.get("cached") is True for x in b) and not any("cached" in x for x in a)
    assert not any(c.get("cached") for x in a for c in x["calls"])
    # Honest figures: the cached run spent nothing; what it replayed is counted apart.
    spent, replayed = second.summary["usage"], second.summary["usage"]["by_role"]["agent:cached"]
    assert (spent["calls"], spent["completion_tokens"]) == (0, 0)
    assert replayed["calls"] == 6
    assert replayed["completion_tokens"] == first.summary["usage"]["completion_tokens"]
    manifest = json.loads((second.path / "manifest.json").read_text())
    assert manifest["config"]["cache"] == cache and manifest["config"]["cache_mode"] == "read-write"


@pytest.mark.parametrize(("mode", "stored_after"), [
    ("read-only", 0), ("refresh", 6), ("off", 0)])
def test_cache_modes(cached: CachedRuns, mode: str, stored_after: int) -> None:
    from k2eval.store.cache import ResponseCache

    cached.run("first", k=2, limit=3, cache_mode=mode)
    assert ResponseCache(cached.cache).stats().entries == stored_after
    cached.run("second", k=2, limit=3)
    assert len(cached.srv.seen) == 6 + (0 if stored_after else 6)


def test_read_only_serves_hits_without_storing_misses(cached: CachedRuns) -> None:
    from k2eval.store.cache import ResponseCache

    cached.run("warm", k=1, limit=2)
    assert len(cached.srv.seen) == 2
    cached.run("ro", k=1, limit=4, cache_mode="read-only")
    assert len(cached.srv.seen) == 4  # two hits, two misses sent
    assert ResponseCache(cached.cache).stats().entries == 2


def test_another_k_sample_is_never_served_an_earlier_sample(cached: CachedRuns) -> None:
    cached.run("k1", k=1, limit=1)
    run = cached.run("k3", k=3, limit=1)
    assert len(cached.srv.seen) == 3  # attempt 0 from the cache, attempts 1 and 2 sent
    texts = {a["messages"][-1]["content"] for a in journal(run.path)}
    assert len(texts) == 3


def test_a_password_in_the_cache_url_is_refused(aime: Path, tmp_path: Path) -> None:
    with pytest.raises(k2eval.UserError, match="PGPASSWORD"):
        k2eval.evaluate("aime2025", "openai:m", data=aime, out=tmp_path,
                        cache="postgresql://u:secret@127.0.0.1:5432/db")


def test_a_nightly_with_a_cache_replays_the_same_baseline_without_requests(
        fake_openai: Any, aime: Path, tmp_path: Path) -> None:
    from k2eval.cli import main

    srv = counting_server(fake_openai)
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"- task: aime2025\n  model: openai:m\n  base_url: {srv.base_url}\n"
                     f"  data: {aime}\n  k: 1\n  limit: 4\n")
    args = ["nightly", "--suite", str(suite), "--history", str(tmp_path / "h.db"),
            "--out", str(tmp_path / "nights"), "--cache", str(tmp_path / "cache.db")]
    assert main(args) == 0
    assert len(srv.seen) == 4
    assert main(args) == 0  # the same replies: unchanged, and nothing sent
    assert len(srv.seen) == 4
    night = sorted(p for p in (tmp_path / "nights").iterdir() if p.name != "dashboard")[-1]
    assert "unchanged" in (night / "regression.md").read_text()
