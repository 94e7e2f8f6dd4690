"""Progress: a tqdm bar on a terminal, plain periodic lines otherwise.

Counts are those of the driver, which receives every result: with the Ray executor the bar
aggregates all workers, and once attempts come from more than one node it adds per-node counts.

Attempts in flight are shown too, so that long agent attempts are not silence: how many, and
(with the local executor, which sees them) their model calls, agent steps and output tokens so
far and how long the oldest has run. Off a terminal a plain line is written at least every
`K2EVAL_PROGRESS_INTERVAL` seconds (default 30) even when no attempt finished. The ETA appears
once a first wave of attempts (as many as ran at once) has finished, measured from when work
began (loading and preflight excluded), since concurrent attempts finish together.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

HEARTBEAT_ENV = "K2EVAL_PROGRESS_INTERVAL"
MIN_FINISHED_FOR_ETA = 3


def heartbeat_seconds() -> float:
    """Seconds between plain lines when nothing finishes ($K2EVAL_PROGRESS_INTERVAL, default 30)."""
    try:
        value = float(os.environ.get(HEARTBEAT_ENV, "30"))
    except ValueError:
        return 30.0
    return value if value > 0 else 30.0


def node_label(worker: dict[str, Any] | None) -> str:
    """A short name for the node an attempt ran on (the attempt line's `worker`)."""
    if not worker:
        return "?"
    node = str(worker.get("node_id") or "?")
    return node if node == "local" else node[:8]


@dataclass(frozen=True)
class LiveAttempt:
    """What an attempt in flight has done so far (published by the executor that runs it)."""

    item_id: str
    index: int
    elapsed_s: float
    calls: int
    """Model calls answered so far (every role)."""
    steps: int
    """Agent model calls so far."""
    tokens: int
    """Output tokens so far (every role)."""


class Progress:
    def __init__(self, total: int, desc: str, *, enabled: bool = True, stream: TextIO | None = None,
                 interval_s: float | None = None, heartbeat_s: float | None = None) -> None:
        self.total = total
        self.desc = desc
        self.done = 0
        self.errors = 0
        self.tokens = 0
        self.nodes: Counter[str] = Counter()
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.heartbeat_s = heartbeat_s or heartbeat_seconds()
        self.interval_s = min(10.0, self.heartbeat_s) if interval_s is None else interval_s
        self._start = self._work_start = self._last_line = time.monotonic()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.live: Callable[[], list[LiveAttempt]] = list
        """The executor's view of the attempts in flight (empty where it has none: Ray)."""
        self.waiting = ""
        """What the run last waited for (a retry, a rate limit), shown for `interval_s` or longer."""
        self._waiting_at = self._noted_at = -1e9
        self._bar: Any = None
        if enabled and self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="att", file=self.stream,
                             dynamic_ncols=True, smoothing=0.05)

    def begin(self) -> None:
        """Work starts now (after loading, preflight, setup): the rate is measured from here."""
        self._work_start = time.monotonic()

    def attempt_started(self) -> None:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def attempt_ended(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)

    def update(self, *, errors: int = 0, tokens: int = 0, node: str | None = None) -> None:
        self.done += 1
        self.errors += errors
        self.tokens += tokens
        if node is not None:
            self.nodes[node] += 1
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(self._postfix(), refresh=False)
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval_s or self.done == self.total:
            self._write_line(now)

    def tick(self) -> None:
        """Called periodically: refresh the bar, or write a plain line when none was written
        for `heartbeat_s` (attempts in flight but none finished)."""
        if not self.enabled or self.done >= self.total:
            return
        now = time.monotonic()
        if self._bar is not None:
            self._bar.set_postfix(self._postfix(), refresh=True)
        elif now - self._last_line >= self.heartbeat_s:
            self._write_line(now)

    async def ticking(self) -> None:
        """`tick` forever (a task the engine cancels when the run ends)."""
        period = 1.0 if self._bar is not None else min(self.heartbeat_s, 5.0)
        while True:
            await asyncio.sleep(period)
            self.tick()

    def _write_line(self, now: float) -> None:
        self._last_line = now
        self.stream.write(self.line() + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """Say what the run is waiting for; on a terminal in the bar, otherwise as a line (at
        most one per `interval_s`, so a storm of rate limits does not flood the log)."""
        now = time.monotonic()
        self.waiting, self._waiting_at = text, now
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix(self._postfix(), refresh=True)
        elif now - self._noted_at >= self.interval_s:
            self._noted_at = now
            self.stream.write(f"[{self.desc}] waiting: {text}\n")
            self.stream.flush()

    def _postfix(self) -> dict[str, Any]:
        postfix: dict[str, Any] = {"errors": self.errors, "tokens": _si(self.tokens)}
        if self.in_flight:
            postfix["in flight"] = self._in_flight_text()
        if len(self.nodes) > 1:
            postfix["nodes"] = self._nodes_text()
        if self.waiting and time.monotonic() - self._waiting_at < max(self.interval_s, 30.0):
            postfix["waiting"] = self.waiting[:80]
        return postfix

    def eta_s(self) -> float | None:
        """Seconds left, or None until a first wave of attempts has finished."""
        if self.done < min(self.total, max(MIN_FINISHED_FOR_ETA, self.peak_in_flight)):
            return None
        worked = time.monotonic() - self._work_start
        return (self.total - self.done) * worked / self.done if worked > 0 else None

    def line(self) -> str:
        elapsed = time.monotonic() - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = self.eta_s()
        pct = 100 * self.done / self.total if self.total else 100.0
        postfix = self._postfix()
        return (f"[{self.desc}] {self.done}/{self.total} ({pct:.0f}%) errors={self.errors} "
                f"tokens={_si(self.tokens)} rate={rate:.2f}/s elapsed={elapsed:.0f}s "
                f"eta={'?' if eta is None else f'{eta:.0f}s'}"
                + (f" in flight: {w}" if (w := postfix.get("in flight")) else "")
                + (f" waiting: {w}" if (w := postfix.get("waiting")) else "")
                + (f" nodes={self._nodes_text()}" if len(self.nodes) > 1 else ""))

    def _in_flight_text(self) -> str:
        """'4' or '4 (calls=37 steps=30 tokens=12.3k, oldest 580s)'."""
        live = self.live()
        if not live:
            return str(self.in_flight)
        calls = sum(a.calls for a in live)
        steps = sum(a.steps for a in live)
        tokens = sum(a.tokens for a in live)
        oldest = max(a.elapsed_s for a in live)
        return (f"{self.in_flight} (calls={calls} steps={steps} tokens={_si(tokens)}, "
                f"oldest {oldest:.0f}s)")

    def _nodes_text(self) -> str:
        return ",".join(f"{n}:{c}" for n, c in sorted(self.nodes.items()))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _si(n: int) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)
