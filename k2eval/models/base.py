"""The `ChatModel` contract: one async call from messages (+ tools) to a `Completion`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = dict[str, Any]
"""An OpenAI-style chat message: {"role", "content", optional "tool_calls", "tool_call_id", "name"}."""

ToolSchema = dict[str, Any]
"""An OpenAI function tool definition: {"type": "function", "function": {name, description, parameters}}."""


@dataclass(frozen=True)
class Sampling:
    max_tokens: int = 8192
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str
    """Raw JSON text as the model produced it; parse with `parsed_arguments()`."""

    def to_message(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    retries: int = 0

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.calls += other.calls
        self.retries += other.retries

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "calls": self.calls, "retries": self.retries}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Usage:
        d = d or {}
        return cls(int(d.get("prompt_tokens", 0)), int(d.get("completion_tokens", 0)),
                   int(d.get("calls", 0)), int(d.get("retries", 0)))


@dataclass(frozen=True)
class Completion:
    text: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    latency: float = 0.0
    raw: dict[str, Any] | None = None
    cached: bool = False
    """Served from the response cache: no request was sent and no tokens were spent."""

    def as_message(self) -> Message:
        """The assistant message to append to a conversation."""
        msg: Message = {"role": "assistant", "content": self.text or ""}
        if self.tool_calls:
            msg["tool_calls"] = [tc.to_message() for tc in self.tool_calls]
        return msg


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
