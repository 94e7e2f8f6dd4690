"""How an attempt ends when its model call cannot succeed (kept out of the run loop)."""

from __future__ import annotations

from k2eval.adapters.base import Attempt, AttemptContext
from k2eval.errors import ContextOverflow

CONTEXT_OVERFLOW = "context_overflow"


def record_context_overflow(attempt: Attempt, exc: ContextOverflow, ctx: AttemptContext) -> None:
    """An attempt whose conversation outgrew the model's context window.

    After at least one answered agent call it is the model's failure, as the official harnesses
    count it: a finished attempt with the messages of the last call and the reason, which the
    engine scores 0 (`resume` does not repeat it). On the first agent call the task's own prompt
    does not fit the served context (a too short --max-model-len, a too large --max-tokens):
    that is the endpoint's configuration, so the attempt is an error, never a zero score.
    """
    if ctx.steps == 0 and exc.role in (None, "agent"):
        attempt.status = "error"
        attempt.error = {"type": "ContextOverflow", "status": exc.status,
                         "message": f"{exc}: the first prompt of the attempt does not fit the "
                                    "served context window; serve a longer context or lower "
                                    "--max-tokens"}
        return
    role = exc.role or "agent"
    attempt.messages = list(ctx.last_messages)
    attempt.output = {"ended_by": CONTEXT_OVERFLOW, "role": role,
                      "reason": f"context overflow ({role} model): {exc}"}
