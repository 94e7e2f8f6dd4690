"""K2 chat rendering, tool-call parsing and the tokenizers, on hand-written transcripts."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from k2eval.errors import ConfigError
from k2eval.models.base import ToolCall
from k2eval.models.reference.chat_format import ChatFormatError, parse_assistant_output, render_chat
from k2eval.models.reference.tokenizer import HFTokenizer, load_tokenizer

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def test_plain_conversation_gets_the_default_system_prompt() -> None:
    rendered = render_chat([{"role": "user", "content": "Hi"},
                            {"role": "assistant", "content": "Hello."},
                            {"role": "user", "content": [{"type": "text", "text": "2+2"}, {"type": "text", "text": "?"}]}])
    assert rendered == (
        "<|im_system|>system<|im_middle|>You are Kimi, an AI assistant created by Moonshot AI.<|im_end|>"
        "<|im_user|>user<|im_middle|>Hi<|im_end|>"
        "<|im_assistant|>assistant<|im_middle|>Hello.<|im_end|>"
        "<|im_user|>user<|im_middle|>2+2?<|im_end|>"
        "<|im_assistant|>assistant<|im_middle|>")


def test_tool_round_trip_transcript() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "functions.get_weather:0", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
            {"id": "functions.get_weather:1", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]},
        {"role": "tool", "tool_call_id": "functions.get_weather:0", "name": "get_weather", "content": "18C"},
        {"role": "tool", "tool_call_id": "functions.get_weather:1", "content": "21C"},
    ]
    assert render_chat(messages, [WEATHER_TOOL]) == (
        '<|im_system|>tool_declare<|im_middle|>[{"type":"function","function":{"name":"get_weather",'
        '"description":"Weather of a city","parameters":{"type":"object","properties":{"city":'
        '{"type":"string"}},"required":["city"]}}}]<|im_end|>'
        "<|im_system|>system<|im_middle|>Be brief.<|im_end|>"
        "<|im_user|>user<|im_middle|>Weather in Paris and Rome?<|im_end|>"
        "<|im_assistant|>assistant<|im_middle|>Checking.<|tool_calls_section_begin|>"
        '<|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{"city": "Paris"}<|tool_call_end|>'
        '<|tool_call_begin|>functions.get_weather:1<|tool_call_argument_begin|>{"city":"Rome"}<|tool_call_end|>'
        "<|tool_calls_section_end|><|im_end|>"
        "<|im_system|>get_weather<|im_middle|>## Return of functions.get_weather:0\n18C<|im_end|>"
        "<|im_system|>tool<|im_middle|>## Return of functions.get_weather:1\n21C<|im_end|>"
        "<|im_assistant|>assistant<|im_middle|>")


def test_unrenderable_messages_are_refused() -> None:
    with pytest.raises(ChatFormatError, match="message 0 has no role"):
        render_chat([{"content": "x"}])
    with pytest.raises(ChatFormatError, match="only text content parts"):
        render_chat([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])
    with pytest.raises(ChatFormatError, match="tool call needs id"):
        render_chat([{"role": "assistant", "content": "", "tool_calls": [{"function": {}}]}])


def test_parse_parallel_tool_calls_with_leading_content() -> None:
    parsed = parse_assistant_output(
        "Let me check.<|tool_calls_section_begin|>"
        '<|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{"city": "Paris"}<|tool_call_end|>'
        ' <|tool_call_begin|> functions.search:1 <|tool_call_argument_begin|> {"q": "a<b"} <|tool_call_end|>'
        "<|tool_calls_section_end|>")
    assert parsed.content == "Let me check."
    assert parsed.tool_calls == [ToolCall("functions.get_weather:0", "get_weather", '{"city": "Paris"}'),
                                 ToolCall("functions.search:1", "search", '{"q": "a<b"}')]
    assert parsed.errors == []


def test_parse_plain_text_and_call_only_output() -> None:
    assert parse_assistant_output("The answer is 4.").content == "The answer is 4."
    only = parse_assistant_output("<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0"
                                  "<|tool_call_argument_begin|>{}<|tool_call_end|><|tool_calls_section_end|>")
    assert only.content is None and only.tool_calls == [ToolCall("functions.f:0", "f", "{}")]


@pytest.mark.parametrize(("text", "error"), [
    ("<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{}",
     "not closed by <|tool_call_end|>"),
    ("<|tool_calls_section_begin|><|tool_call_begin|>get weather<|tool_call_argument_begin|>{}"
     "<|tool_call_end|><|tool_calls_section_end|>", "malformed call id"),
    ("<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0{}<|tool_call_end|>"
     "<|tool_calls_section_end|>", "no <|tool_call_argument_begin|>"),
    ("<|tool_calls_section_begin|>just words", "unexpected text in the tool-call section"),
])
def test_malformed_tool_calls_are_reported_not_raised(text: str, error: str) -> None:
    parsed = parse_assistant_output(text)
    assert parsed.tool_calls == []
    assert parsed.content == text  # the raw output is kept for the transcript
    assert any(error in e for e in parsed.errors), parsed.errors


def test_invalid_json_arguments_are_passed_through_and_reported() -> None:
    parsed = parse_assistant_output("<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0"
                                    '<|tool_call_argument_begin|>{"a": <|tool_call_end|>')
    assert parsed.tool_calls == [ToolCall("functions.f:0", "f", '{"a":')]
    assert any("not valid JSON" in e for e in parsed.errors)
    assert any("not closed by <|tool_calls_section_end|>" in e for e in parsed.errors)


def test_kimi_tokenizer_special_tokens_and_round_trip(tiny_checkpoint: Path) -> None:
    tokenizer = load_tokenizer(tiny_checkpoint)
    settings = json.loads((tiny_checkpoint / "tokenizer_config.json").read_text())
    by_name = {v["content"]: int(k) for k, v in settings["added_tokens_decoder"].items()}
    base = by_name["[BOS]"]
    # K2's layout: [BOS] 163584, [EOS] +1, <|im_end|> +2, <|im_system|> +10, <|im_middle|> +17, ...
    assert {n: i - base for n, i in by_name.items() if n.startswith("<|im") or n.startswith("[")} == {
        "[BOS]": 0, "[EOS]": 1, "<|im_end|>": 2, "<|im_user|>": 3, "<|im_assistant|>": 4,
        "<|im_system|>": 10, "<|im_middle|>": 17, "[UNK]": 254, "[PAD]": 255}
    assert (tokenizer.bos_id, tokenizer.eos_id) == (base, base + 1)
    text = render_chat([{"role": "user", "content": "你好, what's 12345?\n\n  indented"}])
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert ids.count(by_name["<|im_middle|>"]) == 3 and ids[0] == by_name["<|im_system|>"]
    assert all(i < base for i in tokenizer.encode("plain text, no specials"))
    long_run = "x" * 60_000 + " " + "y" * 10
    assert tokenizer.decode(tokenizer.encode(long_run)) == long_run


def test_kimi_pre_tokenizer_bounds_merges(tmp_path: Path) -> None:
    """BPE ranks that would merge across Kimi's pre-tokenizer boundaries are never applied:
    Han characters split from Latin letters, digits group three at a time."""
    merges = [b"12", b"123", b"1234", "文".encode()[:2], "文".encode(), "文A".encode(), b" a", b" ab"]
    ranks = [bytes([b]) for b in range(256)] + merges
    (tmp_path / "tiktoken.model").write_text(
        "".join(f"{base64.b64encode(t).decode()} {i}\n" for i, t in enumerate(ranks)))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"added_tokens_decoder": {
        str(len(ranks)): {"content": "[BOS]"}, str(len(ranks) + 1): {"content": "[EOS]"}}}))
    tokenizer = load_tokenizer(tmp_path)
    def pieces(text: str) -> list[str]:
        return [tokenizer.decode([i]) for i in tokenizer.encode(text)]
    assert pieces("1234") == ["123", "4"]
    assert pieces("文A") == ["文", "A"]
    assert pieces(" ab") == [" ab"]
    assert tokenizer.eos_id == len(ranks) + 1


def test_hf_tokenizer_json_alternative(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(["hello world, the weather is fine"] * 20,
                            trainers.BpeTrainer(vocab_size=300, special_tokens=["<|im_end|>", "[EOS]"]))
    tok.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": {"content": "[EOS]"}}))
    loaded = load_tokenizer(tmp_path)
    assert isinstance(loaded, HFTokenizer)
    assert loaded.eos_id == tok.token_to_id("[EOS]")
    ids = loaded.encode("hello world<|im_end|>")
    assert ids[-1] == loaded.token_id("<|im_end|>")
    assert loaded.decode(ids) == "hello world<|im_end|>"


def test_missing_tokenizer_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no tokenizer"):
        load_tokenizer(tmp_path)


def test_chat_needs_the_k2_chat_tokens(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """A checkpoint whose tokenizer cannot express K2's chat format is refused up front."""
    import shutil

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from k2eval.models.reference.runtime import ReferenceRuntime

    for item in tiny_checkpoint.iterdir():
        if item.name not in ("tiktoken.model", "tokenizer_config.json"):
            shutil.copy(item, tmp_path / item.name)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(["hello"] * 5, trainers.BpeTrainer(vocab_size=270, special_tokens=["</s>"]))
    tok.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
    with pytest.raises(ConfigError, match=r"lacks Kimi K2's chat tokens \(<\|im_system\|>"):
        ReferenceRuntime(tmp_path)


@pytest.mark.parametrize("text,tools,content,reasoning,calls", [
    ("<think>plan</think>Answer.", True, "Answer.", "plan", 0),
    ("<think>plan</think>" + "<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0"
     "<|tool_call_argument_begin|>{}<|tool_call_end|><|tool_calls_section_end|>", True, None, "plan", 1),
    ("<think>cut off", False, None, "cut off", 0),
    ("No thinking.", False, "No thinking.", None, 0),
    ("<think></think>Direct.", False, "Direct.", None, 0),
])
def test_think_blocks_are_parsed_out_as_reasoning(text: str, tools: bool, content: str | None,
                                                  reasoning: str | None, calls: int) -> None:
    parsed = parse_assistant_output(text, tools)
    assert (parsed.content, parsed.reasoning, len(parsed.tool_calls)) == (content, reasoning, calls)
