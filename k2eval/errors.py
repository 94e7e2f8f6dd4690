"""Error types and the exit statuses the CLI maps them to.

Every error k2eval raises on purpose is printed by the CLI as one line, no traceback, and ends
the command with its own exit status (`EXIT_*`, listed in the README). Exit status 1 is only
ever the nightly's "a task regressed".
"""

from __future__ import annotations

import signal as _signal

EXIT_OK = 0
EXIT_REGRESSION = 1
"""`nightly` only: a task regressed significantly."""
EXIT_BAD_INPUT = 2
"""Bad flags, files or environment; a run directory in use by another command."""
EXIT_INCOMPLETE = 3
"""The run finished with errored or ungraded attempts (`nightly`: a run failed)."""
EXIT_STOPPED = 4
"""The endpoint cannot serve the run (`RunFatalError`): stopped, resumable."""
EXIT_STORAGE = 5
"""Output cannot be written: disk full, read-only or not permitted (`StorageError`)."""
EXIT_INFRA = 6
"""The infrastructure failed (sandbox engine, Ray cluster) or another k2eval error."""
EXIT_INTERNAL = 70
"""An unexpected exception (a bug): one line, the traceback saved to a file."""
EXIT_SIGNAL_BASE = 128
"""A run stopped by a signal exits 128 + its number: 129 SIGHUP, 130 Ctrl-C, 143 SIGTERM."""


class K2EvalError(Exception):
    """Base class of every error k2eval raises on purpose."""


class UserError(K2EvalError):
    """Bad input from the user (flags, files, environment); the message says what to do."""


class DataError(UserError):
    """A dataset file or row that cannot be read; the message names the file and line."""


class ConfigError(UserError):
    """An invalid task spec, run config or model spec."""


class RunDirError(UserError):
    """A missing or damaged run directory; the message names the file."""


class ModelError(K2EvalError):
    """A model call failed. The engine records it as an error, never as a wrong answer."""

    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class RetryableModelError(ModelError):
    """Rate limit, 5xx, timeout, dropped connection, malformed response: worth another try."""

    retryable = True


class FatalModelError(ModelError):
    """Bad request, unknown model: another try would fail the same way."""


class ContextOverflow(FatalModelError):
    """The conversation no longer fits the model's context window (HTTP 400 "maximum context
    length" and its variants). Mid-conversation it is the model's failure on that attempt: the
    engine scores the attempt 0 with the transcript so far, as the official harnesses do."""

    role: str | None = None
    """Which model of the attempt overflowed ("agent", "user"), set by `AttemptContext.chat`."""


class RunFatalError(K2EvalError):
    """The endpoint cannot serve this run any more: the engine stops the whole run at once.

    Finished attempts stay journaled and `k2eval resume` continues later. The message is one
    line saying what to fix."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationFailed(RunFatalError):
    """HTTP 401/403 on a model call: every other attempt would be rejected the same way."""


class EndpointRefused(RunFatalError):
    """Consecutive calls ran out of tries on 429/503: the endpoint keeps refusing the run."""


class StorageError(K2EvalError):
    """A file k2eval must write cannot be written: disk full, read-only file system, no
    permission. The message names the file and the cause; the run can be resumed later."""


class Interrupted(K2EvalError):
    """The command was stopped by a signal (SIGTERM, SIGHUP); finished attempts are saved."""

    def __init__(self, signum: int, message: str = "") -> None:
        self.signum = signum
        self.signal_name = signal_name(signum)
        super().__init__(message or f"interrupted by {self.signal_name}")

    @property
    def exit_status(self) -> int:
        return EXIT_SIGNAL_BASE + self.signum


def signal_name(signum: int) -> str:
    """'SIGTERM' for 15 (the number as text when unknown)."""
    try:
        return _signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class EndpointUnreachable(UserError):
    """The endpoint did not answer the preflight check."""


class LimitExceeded(K2EvalError):
    """A per-attempt limit (steps, tokens, time) was reached; the attempt ends and is scored."""


class InfraError(K2EvalError):
    """Sandbox or environment failure unrelated to the model's answer; retryable by rescore."""
