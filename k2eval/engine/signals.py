"""Stop signals: SIGTERM and SIGHUP end a command as cleanly as Ctrl-C does.

Outside a run's event loop (`stop_signals_raise`, for a whole command) a stop signal raises `Interrupted` in
the main thread, which the CLI prints as one line with exit status 128 + the signal number.
While a run's event loop works (`cancel_on_stop_signals`) it cancels the run's task instead, so
that the engine closes its models and sandboxes, records "interrupted" and the signal in the
manifest, and leaves the journal as it was after the last finished attempt. `nightly` only
records a signal (`recording_stop_signals`) between its runs, so that it can still write the
night's pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

from k2eval.errors import Interrupted

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _raise_interrupted(signum: int) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise `Interrupted` (main thread only;
    elsewhere a no-op)."""
    with _handling(_raise_interrupted):
        yield


@contextlib.contextmanager
def _handling(on_signal: Callable[[int], object]) -> Iterator[list[int]]:
    """Call `on_signal` for each stop signal while the block runs, after appending it to the
    yielded list; the previous handlers come back afterwards. Signals can only be caught on
    the main thread: elsewhere nothing is installed and the list stays empty."""
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)
        on_signal(signum)

    previous: dict[int, Any] = {}
    for sig in STOP_SIGNALS:
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):
            break
    try:
        yield received
    finally:
        for sig_number, old in previous.items():
            signal.signal(sig_number, old)


@contextlib.contextmanager
def cancel_on_stop_signals(task: asyncio.Task[Any] | None) -> Iterator[list[int]]:
    """While the block runs, a stop signal cancels `task` and is appended to the yielded list
    (so that the task can tell a signal from another cancellation)."""
    if task is None:
        yield []
        return
    loop = asyncio.get_running_loop()
    with _handling(lambda signum: loop.call_soon_threadsafe(task.cancel)) as received:
        yield received


@contextlib.contextmanager
def recording_stop_signals() -> Iterator[list[int]]:
    """While the block runs, a stop signal is only appended to the yielded list, for the block
    to act on when it sees fit (a run in progress sees it too: its handler takes over while it
    runs)."""
    with _handling(lambda signum: None) as received:
        yield received
