"""AIME extraction and grading edge cases, and the real data."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from k2eval.adapters.aime import AimeAdapter, equivalent, last_boxed, normalize_integer
from k2eval.adapters.base import Attempt, Item, ScoreContext
from k2eval.errors import DataError
from k2eval.spec import ModelSpec, RunConfig, load_task


@pytest.mark.parametrize("text,expected", [
    ("so \\boxed{70}.", "70"),
    ("\\boxed{1} then \\boxed{2}", "2"),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("\\boxed 5", "5"),
    ("\\fbox{12}", "12"),
    ("no box here", None),
    ("\\boxed{3} and a broken \\boxed{4", "3"),
    ("$\\boxed{\\text{033}}$", "\\text{033}"),
])
def test_last_boxed(text: str, expected: str | None) -> None:
    assert last_boxed(text) == expected


@pytest.mark.parametrize("raw,expected", [
    ("070", 70), ("\\text{70}", 70), ("70.", 70), (" 70 ", 70), ("$70$", 70),
    ("\\textbf{\\text{070}}", 70), ("70.0", 70), ("-3", -3), ("x+1", None), ("1/2", None),
])
def test_normalize_integer(raw: str, expected: int | None) -> None:
    assert normalize_integer(raw) == expected


def test_equivalent_integer_and_general_paths() -> None:
    assert equivalent("070", "70")
    assert not equivalent("71", "70")
    assert equivalent("\\frac{140}{2}", "70")  # math-verify path
    assert not equivalent("\\frac{141}{2}", "70")
    assert not equivalent("x", "70")


def _score(text: str, gold: str = "70", finish: str = "stop") -> tuple[float, str]:
    item = Item("1", {"problem": "p", "answer": gold})
    attempt = Attempt("1", 0, messages=[{"role": "user", "content": "?"},
                                        {"role": "assistant", "content": text}],
                      output={"finish_reason": finish})
    ctx = ScoreContext(config=RunConfig(load_task("aime2025"), ModelSpec("openai:m")))
    s = asyncio.run(AimeAdapter().score(item, attempt, ctx))
    return s.value, s.reason


def test_score_reasons() -> None:
    assert _score("\\boxed{070}") == (1.0, "correct")
    assert _score("The answer is 70.")[1] == "no final answer"
    assert "token limit" in _score("thinking...", finish="length")[1]
    value, reason = _score("\\boxed{69}")
    assert value == 0.0 and "69" in reason


def test_real_data_loads(shared_data: Path) -> None:
    for task, name in (("aime2024", "aime24.jsonl"), ("aime2025", "aime25.jsonl")):
        items = AimeAdapter().load(load_task(task), str(shared_data / "aime" / name))
        assert len(items) == 30
        assert all(normalize_integer(it.data["answer"]) is not None for it in items)
        assert len({it.id for it in items}) == 30


def test_malformed_row_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "aime.jsonl"
    bad.write_text('{"problem": "a", "answer": "1"}\n\n{"problem": "b", "answer": \n')
    with pytest.raises(DataError, match=r"aime\.jsonl:3: not valid JSON"):
        AimeAdapter().load(load_task("aime2025"), str(bad))
    bad.write_text('{"problem": "a", "answer": "1"}\n{"question_text": "b"}\n')
    with pytest.raises(DataError, match=r"aime\.jsonl:2"):
        AimeAdapter().load(load_task("aime2025"), str(bad))
