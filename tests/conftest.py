"""Shared fixtures: the real benchmark data beside the checkout, Docker, the scripted server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from k2eval.testing.fake_openai import FakeOpenAIServer, Fault, Reply

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`: real benchmark data (never committed into the project)."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.fail(f"{path} is missing: the tests read the real benchmark data from ../shared/data")
    return path


@pytest.fixture(scope="session")
def aime(shared_data: Path) -> Path:
    """AIME 2025 (30 problems with integer answers): the data most engine tests run on."""
    return shared_data / "aime" / "aime25.jsonl"


@pytest.fixture(scope="session")
def require_docker() -> Any:
    """A Docker client. Skips without an engine, but fails when K2EVAL_REQUIRE_DOCKER=1."""
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:
        msg = (f"no usable Docker engine ({type(exc).__name__}: {exc}); "
               "start one with scripts/setup-docker.sh")
        if os.environ.get("K2EVAL_REQUIRE_DOCKER") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return client


ServerFactory = Callable[..., FakeOpenAIServer]


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """`small_fs(size, read_only=False)`: a fresh tmpfs of that size ("200k") for disk-full and
    read-only cases, unmounted after the test. Mounting needs root: skipped otherwise."""
    import subprocess

    mounts: list[Path] = []

    def mount(size: str, read_only: bool = False) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root")
        where = tmp_path / f"fs{len(mounts)}"
        where.mkdir()
        options = ("ro," if read_only else "") + f"size={size}"
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounts.append(where)
        return where

    yield mount
    for where in reversed(mounts):
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerFactory]:
    """Start scripted OpenAI-compatible servers on loopback (real HTTP, background thread).

    `srv = fake_openai(responder, latency=0.0, **FakeOpenAIServer options)`; `srv.base_url`;
    `srv.requests`. Sets OPENAI_API_KEY for the test.
    """
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-0123456789")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    stack: list[Any] = []

    def start(responder: Callable[[dict[str, Any]], Reply | Fault], latency: float = 0.0,
              **options: Any) -> FakeOpenAIServer:
        server = FakeOpenAIServer(responder, latency=latency, **options)
        ctx = server.in_thread()
        ctx.__enter__()
        stack.append(ctx)
        return server

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server on loopback for the session (Debian's `postgresql`).

    Skips without the server binaries, but fails when K2EVAL_REQUIRE_POSTGRES=1."""
    from k2eval.testing.postgres import PostgresUnavailable, throwaway_postgres

    try:
        server = throwaway_postgres()
        url = server.__enter__()
    except PostgresUnavailable as exc:
        if os.environ.get("K2EVAL_REQUIRE_POSTGRES") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    yield url
    server.__exit__(None, None, None)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, then a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "k2eval.db")
    import uuid

    import psycopg

    server: str = request.getfixturevalue("postgres_server")
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + "/" + name
