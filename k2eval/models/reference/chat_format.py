"""Kimi K2's chat format: rendering OpenAI-style messages, parsing tool calls out of output.

Every turn is `<|im_{user|assistant|system}|>{name or role}<|im_middle|>{body}<|im_end|>`.
Tools are declared first, in a `tool_declare` system turn holding the tools as compact JSON;
a conversation that does not open with a system message gets K2's default system prompt;
tool results are system-class turns named after the tool whose body starts
`## Return of {tool_call_id}`. The generation prompt is `<|im_assistant|>assistant<|im_middle|>`.
Calls come out as `<|tool_calls_section_begin|>` followed by one or more
`<|tool_call_begin|>functions.NAME:IDX<|tool_call_argument_begin|>{json}<|tool_call_end|>`
and `<|tool_calls_section_end|>`.

Thinking: K2 Instruct's chat format has no thinking section, so this template never produces
reasoning of its own. A checkpoint that writes `<think>...</think>` in front of its answer (as
K2 Thinking-style models do) has that block parsed out of the content exactly as
`k2eval.models.reasoning.split_think_tags` does for endpoints, and returned as reasoning:
`reasoning_content` from `k2eval serve`, `Completion.reasoning` from `reference:` models.
Reasoning in earlier assistant turns is not rendered into the prompt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from k2eval.models.base import Message, ToolCall, ToolSchema
from k2eval.models.reasoning import split_think_tags

DEFAULT_SYSTEM_PROMPT = "You are Kimi, an AI assistant created by Moonshot AI."
GENERATION_PROMPT = "<|im_assistant|>assistant<|im_middle|>"
IM_END = "<|im_end|>"
SECTION_BEGIN = "<|tool_calls_section_begin|>"
SECTION_END = "<|tool_calls_section_end|>"
CALL_BEGIN = "<|tool_call_begin|>"
ARGUMENT_BEGIN = "<|tool_call_argument_begin|>"
CALL_END = "<|tool_call_end|>"
_CALL_ID = re.compile(r"^[^<\s]+:\d+$")
_ROLE_MARKER = {"user": "<|im_user|>", "assistant": "<|im_assistant|>"}


class ChatFormatError(ValueError):
    """A message that cannot be rendered (the message says which and why)."""


def render_chat(messages: list[Message], tools: list[ToolSchema] | None = None,
                add_generation_prompt: bool = True) -> str:
    parts: list[str] = []
    if tools:
        parts.append(f"<|im_system|>tool_declare<|im_middle|>{_json(tools)}{IM_END}")
    if messages and messages[0].get("role") != "system":
        parts.append(f"<|im_system|>system<|im_middle|>{DEFAULT_SYSTEM_PROMPT}{IM_END}")
    for i, message in enumerate(messages):
        role = message.get("role")
        if not isinstance(role, str):
            raise ChatFormatError(f"message {i} has no role")
        name = message.get("name") or role
        parts.append(f"{_ROLE_MARKER.get(role, '<|im_system|>')}{name}<|im_middle|>")
        if role == "assistant" and message.get("tool_calls"):
            parts.append(_text(message.get("content"), i))
            parts.append(SECTION_BEGIN)
            for call in message["tool_calls"]:
                try:
                    arguments = call["function"]["arguments"]
                    parts.append(f"{CALL_BEGIN}{call['id']}{ARGUMENT_BEGIN}"
                                 f"{arguments if isinstance(arguments, str) else _json(arguments)}{CALL_END}")
                except (KeyError, TypeError):
                    raise ChatFormatError(f"message {i}: a tool call needs id and function.arguments") from None
            parts.append(SECTION_END)
        elif role == "tool":
            parts.append(f"## Return of {message.get('tool_call_id')}\n{_text(message.get('content'), i)}")
        else:
            parts.append(_text(message.get("content"), i))
        parts.append(IM_END)
    if add_generation_prompt:
        parts.append(GENERATION_PROMPT)
    return "".join(parts)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _text(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type", "text") != "text":
                raise ChatFormatError(f"message {index}: only text content parts are supported")
            texts.append(str(part.get("text", "")))
        return "".join(texts)
    raise ChatFormatError(f"message {index}: content must be a string or a list of text parts")


@dataclass
class ParsedOutput:
    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """What was malformed about the tool-call section, if anything."""
    reasoning: str | None = None
    """A leading `<think>` block, taken out of `content` (see the module docstring)."""


def parse_assistant_output(text: str, tool_calls: bool = True) -> ParsedOutput:
    """Split generated text into reasoning, content and (with `tool_calls`) OpenAI-style tool
    calls. Malformed calls are reported in `errors` (their raw text stays in `content`), never
    raised."""
    parsed = _parse_calls(text) if tool_calls else ParsedOutput(text)
    if parsed.content:
        content, reasoning = split_think_tags(parsed.content)
        parsed.content, parsed.reasoning = content or None, reasoning or None
    return parsed


def _parse_calls(text: str) -> ParsedOutput:
    start = text.find(SECTION_BEGIN)
    if start < 0:
        return ParsedOutput(text)
    content = text[:start] or None
    section = text[start + len(SECTION_BEGIN):]
    end = section.find(SECTION_END)
    errors: list[str] = []
    if end < 0:
        errors.append("tool-call section is not closed by <|tool_calls_section_end|>")
    else:
        trailing = section[end + len(SECTION_END):]
        section = section[:end]
        if trailing.strip():
            errors.append("text after <|tool_calls_section_end|> was dropped")
    calls: list[ToolCall] = []
    chunks = section.split(CALL_BEGIN)
    if chunks[0].strip():
        errors.append(f"unexpected text in the tool-call section: {chunks[0][:80]!r}")
    for n, chunk in enumerate(chunks[1:]):
        call, problem = _parse_call(chunk)
        if call is None:
            errors.append(f"tool call {n}: {problem}")
        else:
            calls.append(call)
            if problem:
                errors.append(f"tool call {n}: {problem}")
    if errors and not calls:
        return ParsedOutput(text, [], errors)
    return ParsedOutput(content, calls, errors)


def _parse_call(chunk: str) -> tuple[ToolCall | None, str | None]:
    if CALL_END not in chunk:
        return None, "not closed by <|tool_call_end|>"
    body, rest = chunk.split(CALL_END, 1)
    if ARGUMENT_BEGIN not in body:
        return None, "no <|tool_call_argument_begin|>"
    call_id, arguments = (s.strip() for s in body.split(ARGUMENT_BEGIN, 1))
    if not _CALL_ID.match(call_id):
        return None, f"malformed call id {call_id[:80]!r} (expected functions.NAME:IDX)"
    name = call_id.rsplit(":", 1)[0].removeprefix("functions.")
    problem = f"text after <|tool_call_end|> was dropped: {rest[:80]!r}" if rest.strip() else None
    try:
        json.loads(arguments)
    except json.JSONDecodeError as e:
        problem = f"arguments of {name} are not valid JSON ({e.msg})"
    return ToolCall(id=call_id, name=name, arguments=arguments), problem
