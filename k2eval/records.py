"""The records that cross layers and processes: items, attempts, scores, sampling, usage.

This module is the ground floor of the package: it imports nothing from k2eval, so adapters,
models, scoring, store, report and the engine (and Ray workers, which receive and return these
records) all build on it without importing each other. `k2eval.adapters.base` and
`k2eval.models.base` re-export these names for adapters and models.

`Attempt.to_dict` / `Score.to_dict` define the lines of attempts.jsonl and scores.jsonl;
their keys are the on-disk format and stay stable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "error"]
"""Of an attempt: finished, or ended in an error (never scored as wrong). Of a score: graded,
or the grader itself failed (infrastructure; rescore retries it)."""

Message = dict[str, Any]
"""An OpenAI-style chat message: {"role", "content", optional "tool_calls", "tool_call_id", "name"};
assistant messages may also hold "reasoning_content" and "reasoning_source" (see `Completion`)."""

ToolSchema = dict[str, Any]
"""An OpenAI function tool definition: {"type": "function", "function": {name, description, parameters}}."""


# --- model calls ---------------------------------------------------------------------------

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
    reasoning_tokens: int = 0
    """The part of `completion_tokens` spent on reasoning, where the endpoint reports it
    (`completion_tokens_details.reasoning_tokens`); 0 otherwise."""

    def add(self, other: Usage, sign: int = 1) -> None:
        """Add `other`'s counts to these (take them away with `sign=-1`)."""
        self.prompt_tokens += sign * other.prompt_tokens
        self.completion_tokens += sign * other.completion_tokens
        self.calls += sign * other.calls
        self.retries += sign * other.retries
        self.reasoning_tokens += sign * other.reasoning_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "calls": self.calls, "retries": self.retries,
                "reasoning_tokens": self.reasoning_tokens}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Usage:
        d = d or {}
        return cls(int(d.get("prompt_tokens", 0)), int(d.get("completion_tokens", 0)),
                   int(d.get("calls", 0)), int(d.get("retries", 0)),
                   int(d.get("reasoning_tokens", 0)))


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
    reasoning: str | None = None
    """The reasoning returned apart from the answer (`text`), see `k2eval.models.reasoning`."""
    reasoning_source: str | None = None
    """Where it came from: "reasoning_content", "reasoning" or "think-tags"."""

    def as_message(self, role: str = "assistant") -> Message:
        """The message to append to a conversation. Reasoning goes into `reasoning_content`
        (with its `reasoning_source`); the model client decides whether it is sent back."""
        msg: Message = {"role": role, "content": self.text or ""}
        if self.reasoning:
            msg["reasoning_content"] = self.reasoning
            msg["reasoning_source"] = self.reasoning_source or "reasoning_content"
        if self.tool_calls:
            msg["tool_calls"] = [tc.to_message() for tc in self.tool_calls]
        return msg


# --- items, attempts, scores ---------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    """One benchmark item. `data` is what solve/score need; `meta` feeds breakdowns."""

    id: str
    data: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class SolveResult:
    """What `solve` returns: the conversation and whatever the grader needs."""

    messages: list[Message]
    output: dict[str, Any] = field(default_factory=dict)


@dataclass
class Attempt:
    """One finished (or failed) attempt at an item; one line of attempts.jsonl."""

    item_id: str
    index: int
    status: Status = "ok"
    """"ok" or "error" (the model could not be reached; never scored as wrong)."""
    messages: list[Message] = field(default_factory=list)
    output: dict[str, Any] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, dict[str, int]] = field(default_factory=dict)
    """Token usage per model role ("agent", "user", "judge"), summed across retries."""
    started: float = 0.0
    ended: float = 0.0
    error: dict[str, Any] | None = None
    worker: dict[str, Any] | None = None
    """Where the attempt ran: {"node_id", "hostname", "pid"} (see `k2eval.engine.executors`)."""
    toolcalls: dict[str, int] | None = None
    """Tool-call conformance counts of the agent's calls that offered tools
    (`k2eval.scoring.toolcalls`); None when no call offered any."""

    @property
    def duration(self) -> float:
        return max(0.0, self.ended - self.started)

    @property
    def cached(self) -> bool:
        """Every model call of the attempt was served from the response cache."""
        return bool(self.calls) and all(c.get("cached") for c in self.calls)

    def to_dict(self) -> dict[str, Any]:
        line = {"item_id": self.item_id, "attempt": self.index, "status": self.status,
                "messages": self.messages, "output": self.output, "calls": self.calls,
                "usage": self.usage, "started": self.started, "ended": self.ended,
                "duration": round(self.duration, 4), "error": self.error, "worker": self.worker,
                "toolcalls": self.toolcalls}
        if self.cached:
            line["cached"] = True
        return line

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Attempt:
        return cls(item_id=str(d["item_id"]), index=int(d["attempt"]), status=d.get("status", "ok"),
                   messages=d.get("messages") or [], output=d.get("output") or {},
                   calls=d.get("calls") or [], usage=d.get("usage") or {},
                   started=float(d.get("started", 0.0)), ended=float(d.get("ended", 0.0)),
                   error=d.get("error"), worker=d.get("worker"), toolcalls=d.get("toolcalls"))


@dataclass
class Score:
    """The grade of one attempt; one line of scores.jsonl."""

    item_id: str
    index: int
    value: float
    """In [0, 1]; 1.0 means correct."""
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    status: Status = "ok"
    """"ok", or "error" when grading itself failed (infrastructure); rescore retries those."""

    @property
    def correct(self) -> bool:
        return self.status == "ok" and self.value >= 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "attempt": self.index, "status": self.status,
                "score": self.value, "correct": self.correct, "reason": self.reason,
                "details": self.details}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Score:
        return cls(item_id=str(d["item_id"]), index=int(d["attempt"]), value=float(d["score"]),
                   reason=d.get("reason", ""), details=d.get("details") or {},
                   status=d.get("status", "ok"))
