"""GPQA-Diamond: the official zip, per-attempt choice orders, simple-evals extraction."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from k2eval.adapters import gpqa
from k2eval.adapters.base import Attempt, Item, ScoreContext
from k2eval.errors import DataError
from k2eval.spec import ModelSpec, RunConfig, load_task

HEADER = "Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3,Record ID\n"


def test_official_zip_loads(shared_data: Path) -> None:
    items = gpqa.load_items(load_task("gpqa-diamond"), str(shared_data / "gpqa" / "dataset.zip"))
    assert len(items) == 198
    assert len({it.id for it in items}) == 198
    assert all(len(it.data["incorrect"]) == 3 and it.data["correct"] for it in items)


def test_wrong_zip_password_is_a_clear_error(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpqa, "ZIP_PASSWORD", b"not-the-password")
    with pytest.raises(DataError, match="wrong password"):
        gpqa.load_items(load_task("gpqa-diamond"), str(shared_data / "gpqa" / "dataset.zip"))


def test_csv_bad_row_names_line(tmp_path: Path) -> None:
    path = tmp_path / "g.csv"
    path.write_text(HEADER + "Q1,a,b,c,d,rec1\nQ2,a,b\n")
    with pytest.raises(DataError, match=r"g\.csv:3"):
        gpqa.load_items(load_task("gpqa-diamond"), str(path))
    path.write_text("Question,Correct Answer\nQ1,a\n")
    with pytest.raises(DataError, match="missing column"):
        gpqa.load_items(load_task("gpqa-diamond"), str(path))


def test_prompt_layout_and_order() -> None:
    item = Item("r", {"question": "What?", "correct": "right", "incorrect": ["w1", "w2", "w3"]})
    order = [2, 0, 3, 1]
    prompt = gpqa.build_prompt(item, order)
    assert prompt.startswith("Answer the following multiple choice question. The last line")
    assert prompt.endswith("What?\n\nA) w2\nB) right\nC) w3\nD) w1")


def test_choice_order_is_a_permutation_fixed_by_the_attempts_seed() -> None:
    orders = [gpqa.choice_order(random.Random(seed)) for seed in range(20)]
    assert all(sorted(order) == [0, 1, 2, 3] for order in orders)
    assert gpqa.choice_order(random.Random(5)) == orders[5]
    assert {order.index(0) for order in orders} == {0, 1, 2, 3}, "the correct answer moves"


@pytest.mark.parametrize("text,letter", [
    ("blah\nAnswer: B", "B"), ("answer:$c$", "C"), ("Answer : D\nAnswer: A", "D"),
    ("ANSWER:\tA", "A"), ("The answer is B", None), ("Answer: E", None),
])
def test_extraction_matches_simple_evals(text: str, letter: str | None) -> None:
    assert gpqa.extract_letter(text) == letter


def test_score_uses_the_attempts_own_order() -> None:
    item = Item("r", {"question": "q", "correct": "right", "incorrect": ["a", "b", "c"]})
    ctx = ScoreContext(config=RunConfig(load_task("gpqa-diamond"), ModelSpec("openai:m")))
    attempt = Attempt("r", 0, messages=[{"role": "assistant", "content": "Answer: C"}],
                      output={"choice_order": [1, 2, 0, 3]})
    assert asyncio.run(gpqa.GpqaAdapter().score(item, attempt, ctx)).value == 1.0
    attempt = Attempt("r", 1, messages=[{"role": "assistant", "content": "Answer: A"}],
                      output={"choice_order": [1, 2, 0, 3]})
    s = asyncio.run(gpqa.GpqaAdapter().score(item, attempt, ctx))
    assert s.value == 0.0 and "expected C" in s.reason
    attempt = Attempt("r", 2, messages=[{"role": "assistant", "content": "I think it's C"}])
    assert "choice order" in asyncio.run(gpqa.GpqaAdapter().score(item, attempt, ctx)).reason
