"""Error types. `UserError` and its subclasses are printed by the CLI as one line, no traceback."""

from __future__ import annotations


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


class EndpointUnreachable(UserError):
    """The endpoint did not answer the preflight check."""


class LimitExceeded(K2EvalError):
    """A per-attempt limit (steps, tokens, time) was reached; the attempt ends and is scored."""


class InfraError(K2EvalError):
    """Sandbox or environment failure unrelated to the model's answer; retryable by rescore."""
