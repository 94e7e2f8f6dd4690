"""The pieces the perf scripts share: the AIME 2025 avg@64 workload (its data and options) and
the scripted OpenAI-compatible server (`k2eval.testing.fake_openai`) in its own process on
127.0.0.1."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AIME = REPO.parent / "shared" / "data" / "aime" / "aime25.jsonl"


@contextmanager
def scripted_server(latency: float = 0.0, answers: Path | None = None) -> Iterator[str]:
    """The server's base URL while it runs (`answers`: fixed replies by prompt substring);
    stopped on exit."""
    extra = ["--answers", str(answers)] if answers else []
    proc = subprocess.Popen([sys.executable, "-m", "k2eval.testing.fake_openai", "--host", "127.0.0.1",
                             "--latency", str(latency), *extra], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("serving "):
            raise SystemExit(f"fake server did not start: {line!r}")
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait()


def aime_workload_arguments(parser: argparse.ArgumentParser) -> None:
    """--concurrency, --latency and --k of the AIME 2025 workload (1,920 requests by default)."""
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--latency", type=float, default=0.2, help="the server's seconds per reply")
    parser.add_argument("--k", type=int, default=64, help="attempts per problem (30 problems)")
