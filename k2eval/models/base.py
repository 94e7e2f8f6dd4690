"""The `ChatModel` contract: one async call from messages (+ tools) to a `Completion`.

The records it exchanges (`Sampling`, `Completion`, `Usage`, ...) live in `k2eval.records`
and are re-exported here."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from k2eval.records import Completion, Message, Sampling, ToolCall, ToolSchema, Usage

__all__ = ["ChatModel", "Completion", "Message", "Sampling", "ToolCall", "ToolSchema", "Usage"]


@runtime_checkable
class ChatModel(Protocol):
    """Any chat model. Failures raise `k2eval.errors.ModelError` subclasses."""

    name: str

    async def complete(self, messages: list[Message], tools: list[ToolSchema] | None,
                       sampling: Sampling) -> Completion: ...

    def describe(self) -> dict[str, Any]:
        """What the manifest records about this model. Never secrets."""
        ...

    async def preflight(self) -> None:
        """Fail fast (UserError) when the model cannot be reached or is misconfigured."""
        ...

    async def aclose(self) -> None: ...
