"""Reasoning models over real HTTP: the three forms of reasoning, answers graded without it,
reasoning tokens in every usage figure, request options, and reasoning passed back."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_engine import answers, problem_of

import k2eval
from k2eval.adapters import gpqa
from k2eval.errors import ConfigError, FatalModelError
from k2eval.models.openai_api import OpenAIChatModel
from k2eval.models.reasoning import outgoing_messages, split_reasoning
from k2eval.records import Sampling
from k2eval.spec import ModelSpec, load_task
from k2eval.testing.fake_openai import Reply, last_user_text

FORMS = ["reasoning_content", "reasoning", "think-tags"]


@pytest.mark.parametrize("message,fmt,expected", [
    ({"content": "42", "reasoning_content": "think"}, "auto", ("42", "think", "reasoning_content")),
    ({"content": "42", "reasoning": "think"}, "auto", ("42", "think", "reasoning")),
    ({"content": "<think>a \\boxed{1}</think>\n\\boxed{2}"}, "auto",
     ("\\boxed{2}", "a \\boxed{1}", "think-tags")),
    ({"content": "  <think>\nlong\n</think>answer"}, "think-tags", ("answer", "long", "think-tags")),
    ({"content": "half a thought \\boxed{7}</think>The answer"}, "auto",
     ("The answer", "half a thought \\boxed{7}", "think-tags")),
    ({"content": "<think>cut by the cap \\boxed{7}"}, "auto", ("", "cut by the cap \\boxed{7}",
                                                              "think-tags")),
    ({"content": "<think>a</think>b<think>c</think>d"}, "auto", ("d", "a\nb\nc", "think-tags")),
    ({"content": "plain \\boxed{3}"}, "auto", ("plain \\boxed{3}", None, None)),
    ({"content": "x", "reasoning_content": "rc", "reasoning": "r"}, "reasoning", ("x", "r", "reasoning")),
    ({"content": "<think>t</think>x", "reasoning_content": "rc"}, "reasoning_content",
     ("<think>t</think>x", "rc", "reasoning_content")),
    ({"content": "<think>t</think>x", "reasoning_content": "rc"}, "auto",
     ("x", "rc\n\nt", "reasoning_content")),
    ({"content": "<think>t</think>x", "reasoning_content": "rc"}, "none",
     ("<think>t</think>x", None, None)),
    ({"content": None, "reasoning_content": "only thought"}, "auto",
     (None, "only thought", "reasoning_content")),
    ({"content": [{"type": "text", "text": "<think>p</think>q"}]}, "auto", ("q", "p", "think-tags")),
    ({"content": "x", "reasoning_content": "   "}, "auto", ("x", None, None)),
    ({"content": "<think>\n\n</think>\n\nHello"}, "auto", ("Hello", None, None)),
])
def test_reasoning_is_split_from_the_answer(message: dict[str, Any], fmt: str,
                                            expected: tuple[Any, ...]) -> None:
    assert split_reasoning(message, fmt) == expected


@pytest.mark.parametrize("passback,source,sent", [
    ("auto", "reasoning_content", {"reasoning_content": "r"}),
    ("auto", "reasoning", {"reasoning": "r"}),
    ("auto", "think-tags", {}),
    ("keep", "think-tags", {"reasoning_content": "r"}),
    ("keep", "reasoning", {"reasoning": "r"}),
    ("drop", "reasoning_content", {}),
])
def test_earlier_reasoning_is_sent_back_only_when_chosen(passback: str, source: str,
                                                         sent: dict[str, str]) -> None:
    history = [{"role": "user", "content": "q"},
               {"role": "assistant", "content": "a", "reasoning_content": "r",
                "reasoning_source": source}]
    out = outgoing_messages(history, passback)
    assert out[0] is history[0]
    assert out[1] == {"role": "assistant", "content": "a", **sent}
    assert history[1]["reasoning_source"] == source  # the transcript is not changed


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("http_client", ["sdk", "aiohttp"])
def test_each_form_of_reasoning_comes_back_apart_with_its_tokens(
        fake_openai: Any, form: str, http_client: str) -> None:
    srv = fake_openai(lambda body: Reply(text="\\boxed{2}", reasoning="\\boxed{1} maybe",
                                         reasoning_form=form, reasoning_tokens=40,
                                         completion_tokens=3))

    async def call() -> Any:
        model = OpenAIChatModel(ModelSpec("openai:m", base_url=srv.base_url,
                                          http_client=http_client))
        try:
            return await model.complete([{"role": "user", "content": "q"}], None, Sampling())
        finally:
            await model.aclose()

    completion = asyncio.run(call())
    assert completion.text == "\\boxed{2}"
    assert (completion.reasoning, completion.reasoning_source) == ("\\boxed{1} maybe", form)
    assert (completion.usage.completion_tokens, completion.usage.reasoning_tokens) == (43, 40)
    message = completion.as_message()
    assert message["content"] == "\\boxed{2}" and message["reasoning_content"] == "\\boxed{1} maybe"


def test_reasoning_effort_and_extra_body_reach_every_request(fake_openai: Any) -> None:
    srv = fake_openai(lambda body: Reply(text="ok"))
    spec = ModelSpec("openai:m", base_url=srv.base_url, reasoning_effort="high",
                     extra_body={"chat_template_kwargs": {"thinking": True}, "top_k": 20})

    async def call() -> None:
        model = OpenAIChatModel(spec)
        try:
            for _ in range(2):
                await model.complete([{"role": "user", "content": "q"}], None, Sampling())
        finally:
            await model.aclose()

    asyncio.run(call())
    assert len(srv.requests) == 2
    for body in srv.requests:
        assert body["reasoning_effort"] == "high" and body["top_k"] == 20
        assert body["chat_template_kwargs"] == {"thinking": True}


@pytest.mark.parametrize("changes,message", [
    ({"extra_body": {"messages": []}}, "may not set messages"),
    ({"extra_body": [1]}, "must be a JSON object"),
    ({"reasoning_format": "xml"}, "--reasoning-format 'xml'"),
    ({"reasoning_passback": "sometimes"}, "--reasoning-passback"),
])
def test_bad_reasoning_options_are_clear_errors(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ModelSpec("openai:m", **changes)


def test_a_model_that_needs_its_reasoning_back_gets_it_or_fails(fake_openai: Any) -> None:
    srv = fake_openai(lambda body: Reply(tool_calls=[("f", {})], reasoning="plan: call f"),
                      require_reasoning_back=True)

    async def two_turns(passback: str) -> None:
        model = OpenAIChatModel(ModelSpec("openai:m", base_url=srv.base_url,
                                          reasoning_passback=passback))
        try:
            messages: list[dict[str, Any]] = [{"role": "user", "content": "q"}]
            first = await model.complete(messages, None, Sampling())
            messages += [first.as_message(), {"role": "tool", "content": "done",
                                              "tool_call_id": first.tool_calls[0].id}]
            await model.complete(messages, None, Sampling())
        finally:
            await model.aclose()

    asyncio.run(two_turns("auto"))
    assert srv.requests[-1]["messages"][1]["reasoning_content"] == "plan: call f"
    assert "reasoning_source" not in srv.requests[-1]["messages"][1]
    with pytest.raises(FatalModelError, match="missing its reasoning_content"):
        asyncio.run(two_turns("drop"))


# --- graders see the answer only -----------------------------------------------------------

@pytest.mark.parametrize("form", FORMS)
def test_a_boxed_number_inside_the_reasoning_does_not_score_on_aime(
        fake_openai: Any, aime: Path, tmp_path: Path, form: str) -> None:
    gold = answers(aime)
    problems = list(gold)

    def respond(body: dict[str, Any]) -> Reply:
        problem = problem_of(body)
        right = gold[problem]
        # Item 0: right answer only in the reasoning; item 1: right in the answer only;
        # item 2: reasoning cut by the cap (think-tags: an unclosed block), no answer.
        index = problems.index(problem)
        if index == 0:
            return Reply(text=f"So \\boxed{{{int(right) + 1}}}", reasoning=f"\\boxed{{{right}}}",
                         reasoning_form=form, reasoning_tokens=100)
        if index == 1:
            return Reply(text=f"\\boxed{{{right}}}", reasoning=f"\\boxed{{{int(right) + 1}}}",
                         reasoning_form=form, reasoning_tokens=100)
        return Reply(text=None if form != "think-tags" else "", reasoning=f"\\boxed{{{right}}}",
                     reasoning_form=form, reasoning_tokens=100, finish_reason="length")

    srv = fake_openai(respond)
    run = k2eval.evaluate("aime2025", "openai:m", base_url=srv.base_url, data=aime, k=1, limit=3,
                          out=tmp_path, run_id="r")
    scores = {json.loads(line)["item_id"]: json.loads(line)["score"]
              for line in (run.path / "scores.jsonl").read_text().splitlines()}
    attempts = [json.loads(line) for line in (run.path / "attempts.jsonl").read_text().splitlines()]
    by_index = {problems.index(problem_of(a)): a
                for a in attempts}
    assert [scores[by_index[i]["item_id"]] for i in range(3)] == [0.0, 1.0, 0.0]
    reply = by_index[0]["messages"][-1]
    assert reply["reasoning_content"] == f"\\boxed{{{gold[problems[0]]}}}"
    assert reply["reasoning_source"] == form and "<think>" not in reply["content"]
    assert by_index[0]["calls"][0]["reasoning_tokens"] == 100
    assert by_index[0]["usage"]["agent"]["reasoning_tokens"] == 100
    assert run.summary["usage"]["reasoning_tokens"] == 300
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["model"]["reasoning"]["format"] == "auto"
    assert "count reasoning tokens against it" in manifest["model"]["reasoning"]["max_tokens"]


def test_reasoning_format_none_leaves_think_tags_in_the_answer(
        fake_openai: Any, aime: Path, tmp_path: Path) -> None:
    gold = answers(aime)
    srv = fake_openai(lambda body: Reply(
        text="no answer", reasoning=f"\\boxed{{{gold[problem_of(body)]}}}",
        reasoning_form="think-tags"))
    run = k2eval.evaluate("aime2025", "openai:m", base_url=srv.base_url, data=aime, k=1, limit=2,
                          out=tmp_path, run_id="r", reasoning_format="none")
    assert run.summary["score"] == 100.0  # the caller asked for the raw content to be graded
    assert json.loads((run.path / "manifest.json").read_text())["config"]["model"][
        "reasoning_format"] == "none"


def test_a_letter_inside_the_reasoning_does_not_score_on_gpqa(
        fake_openai: Any, shared_data: Path, tmp_path: Path) -> None:
    data = shared_data / "gpqa" / "dataset.zip"
    correct = {it.data["question"]: it.data["correct"]
               for it in gpqa.load_items(load_task("gpqa-diamond"), str(data))}

    def respond(body: dict[str, Any]) -> Reply:
        prompt = last_user_text(body)
        right = next(text for question, text in correct.items() if question in prompt)
        letter = re.search(rf"^([A-D])\) {re.escape(right)}$", prompt, re.M)
        assert letter is not None
        wrong = "A" if letter.group(1) != "A" else "B"
        return Reply(text=f"Answer: {wrong}", reasoning=f"Answer: {letter.group(1)}",
                     reasoning_form="reasoning_content")

    srv = fake_openai(respond)
    run = k2eval.evaluate("gpqa-diamond", "openai:m", base_url=srv.base_url, data=data, k=2,
                          limit=3, out=tmp_path, run_id="g")
    assert run.summary["score"] == 0.0 and run.summary["n_attempts"] == 6


def test_request_options_for_the_reference_model_are_refused() -> None:
    from k2eval.errors import UserError
    from k2eval.models import resolve_model

    with pytest.raises(UserError, match="reference model takes none"):
        resolve_model(ModelSpec("reference:/ckpt", extra_body={"top_k": 1}))


def test_a_cached_reply_keeps_its_reasoning_and_reasoning_tokens() -> None:
    from k2eval.models.caching import completion_from_record, completion_to_record
    from k2eval.records import Completion, Usage

    original = Completion(text="4", usage=Usage(1, 9, 1, 0, 7), reasoning="2+2",
                          reasoning_source="reasoning")
    served = completion_from_record(json.loads(json.dumps(completion_to_record(original))))
    assert (served.text, served.reasoning, served.reasoning_source) == ("4", "2+2", "reasoning")
    assert served.usage.reasoning_tokens == 7 and served.cached


def test_request_options_apply_to_a_model_given_as_a_spec() -> None:
    from k2eval.engine.config import build_run_config

    config = build_run_config("aime2025", ModelSpec("openai:m"), reasoning_effort="low",
                              extra_body={"top_k": 5})
    assert (config.model.reasoning_effort, config.model.extra_body) == ("low", {"top_k": 5})
    assert config.to_dict()["model"]["extra_body"] == {"top_k": 5}
