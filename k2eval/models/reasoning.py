"""Reasoning ("thinking") traces: where endpoints put them, and what is sent back.

Thinking models return their reasoning apart from the answer in one of three forms:

- `reasoning_content`: a message field (vLLM's and SGLang's reasoning parsers, DeepSeek,
  Moonshot's Kimi K2 Thinking);
- `reasoning`: a message field (OpenRouter, recent vLLM, gpt-oss servers);
- `think-tags`: `<think>...</think>` at the start of `content`, when the server runs no
  reasoning parser. A reply whose `<think>` is never closed (cut by the token cap) is all
  reasoning and has no answer; otherwise everything before the last `</think>` is reasoning,
  also when the opening tag is missing (templates that put `<think>` into the prompt).

`ReasoningFormat` chooses which forms are read: `auto` (the default) reads the first field that
is present, then also takes any think-tag block out of the content, so that graders never see
reasoning; `none` reads none and leaves the content untouched. The answer (the content without
its reasoning) is what graders read; the reasoning goes into the transcript as the assistant
message's `reasoning_content`, with `reasoning_source` naming the form it came in.

Passing it back (`ReasoningPassback`): an assistant message sent back to the endpoint carries
its reasoning again only when that is chosen. `auto` (the default) sends reasoning back in the
field it came in (`reasoning_content` or `reasoning`), as Kimi K2 Thinking and DeepSeek's
thinking mode with tool calls require, and drops think-tag reasoning (the chat templates of
the models that emit tags strip it from earlier turns); `keep` sends all of it, think-tag
reasoning as `reasoning_content`; `drop` sends none.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

ReasoningFormat = Literal["auto", "reasoning_content", "reasoning", "think-tags", "none"]
ReasoningPassback = Literal["auto", "keep", "drop"]
REASONING_FORMATS: tuple[str, ...] = get_args(ReasoningFormat)
REASONING_PASSBACK: tuple[str, ...] = get_args(ReasoningPassback)
FIELDS = ("reasoning_content", "reasoning")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
_LEADING_OPEN = re.compile(r"^\s*<think>")


def split_think_tags(content: str) -> tuple[str, str | None]:
    """(answer, reasoning) of a content that may hold `<think>` blocks: everything up to the
    last `</think>` is reasoning (tags removed), the rest the answer."""
    close = content.rfind(THINK_CLOSE)
    if close < 0:
        opened = _LEADING_OPEN.match(content)
        if opened:  # never closed: cut by the token cap, no answer yet
            return "", content[opened.end():].strip()
        return content, None
    reasoning = content[:close].replace(THINK_OPEN, "\n").replace(THINK_CLOSE, "\n").strip()
    return content[close + len(THINK_CLOSE):].lstrip(), reasoning


def split_reasoning(message: dict[str, Any], fmt: str = "auto"
                    ) -> tuple[str | None, str | None, str | None]:
    """(answer content, reasoning, source) of a chat-completion message under `fmt`."""
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if fmt == "none":
        return content, None, None
    parts: list[str] = []
    source: str | None = None
    for name in FIELDS:
        if fmt in ("auto", name):
            value = message.get(name)
            if isinstance(value, str) and value.strip():
                parts.append(value.strip())
                source = name
                break
    if fmt in ("auto", "think-tags") and isinstance(content, str):
        content, tagged = split_think_tags(content)
        if tagged:  # an empty block (thinking switched off) is no reasoning
            parts.append(tagged)
            source = source or "think-tags"
    return content, ("\n\n".join(parts) if parts else None), source


def outgoing_messages(messages: list[dict[str, Any]], passback: str) -> list[dict[str, Any]]:
    """The messages as sent to the endpoint: reasoning kept or dropped by `passback`, and the
    transcript-only `reasoning_source` removed. Messages without reasoning pass unchanged."""
    if not any("reasoning_content" in m for m in messages):
        return messages
    out = []
    for message in messages:
        if "reasoning_content" not in message:
            out.append(message)
            continue
        sent = {k: v for k, v in message.items()
                if k not in ("reasoning_content", "reasoning_source")}
        source = message.get("reasoning_source") or "reasoning_content"
        reasoning = message.get("reasoning_content")
        if reasoning and (passback == "keep" or (passback == "auto" and source in FIELDS)):
            sent["reasoning" if source == "reasoning" else "reasoning_content"] = reasoning
        out.append(sent)
    return out
