"""Progress: a tqdm bar on a terminal, plain periodic lines otherwise.

Counts are those of the driver, which receives every result: with the Ray executor the bar
aggregates all workers, and once attempts come from more than one node it adds per-node counts.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, TextIO


def node_label(worker: dict[str, Any] | None) -> str:
    """A short name for the node an attempt ran on (the attempt line's `worker`)."""
    if not worker:
        return "?"
    node = str(worker.get("node_id") or "?")
    return node if node == "local" else node[:8]


class Progress:
    def __init__(self, total: int, desc: str, *, enabled: bool = True, stream: TextIO | None = None,
                 interval_s: float = 10.0) -> None:
        self.total = total
        self.desc = desc
        self.done = 0
        self.errors = 0
        self.tokens = 0
        self.nodes: Counter[str] = Counter()
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.interval_s = interval_s
        self._start = time.monotonic()
        self._last_line = self._start
        self.waiting = ""
        """What the run last waited for (a retry, a rate limit), shown for `interval_s` or longer."""
        self._waiting_at = self._noted_at = -1e9
        self._bar: Any = None
        if enabled and self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="att", file=self.stream,
                             dynamic_ncols=True, smoothing=0.05)

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
        if len(self.nodes) > 1:
            postfix["nodes"] = self._nodes_text()
        if self.waiting and time.monotonic() - self._waiting_at < max(self.interval_s, 30.0):
            postfix["waiting"] = self.waiting[:80]
        return postfix

    def line(self) -> str:
        elapsed = time.monotonic() - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        pct = 100 * self.done / self.total if self.total else 100.0
        return (f"[{self.desc}] {self.done}/{self.total} ({pct:.0f}%) errors={self.errors} "
                f"tokens={_si(self.tokens)} rate={rate:.2f}/s elapsed={elapsed:.0f}s "
                f"eta={'?' if eta != eta else f'{eta:.0f}s'}"
                + (f" waiting: {w}" if (w := self._postfix().get("waiting")) else "")
                + (f" nodes={self._nodes_text()}" if len(self.nodes) > 1 else ""))

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
