"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from k2eval.adapters.base import Item, Score
from k2eval.scoring import (
    breakdown_by_meta,
    ci95,
    clustered_stderr,
    group_by_item,
    metric_label,
    pass_at_k,
    pass_at_ks,
    pass_hat_k,
    per_item_values,
    summarize_metric,
)


def test_pass_at_k_hand_values() -> None:
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - 21 / 252)  # 1 - C(7,5)/C(10,5)
    assert pass_at_k(4, 0, 2) == 0.0
    assert pass_at_k(4, 4, 4) == 1.0
    assert pass_at_k(4, 3, 2) == 1.0  # n - c < k: every draw holds a success


def test_pass_at_k_rejects_impossible_inputs() -> None:
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 5)


def test_pass_hat_k_hand_values() -> None:
    assert pass_hat_k(4, 2, 1) == pytest.approx(0.5)
    assert pass_hat_k(4, 2, 2) == pytest.approx(1 / 6)  # C(2,2)/C(4,2)
    assert pass_hat_k(4, 3, 3) == pytest.approx(1 / 4)  # C(3,3)/C(4,3)
    assert pass_hat_k(4, 1, 2) == 0.0


def test_clustered_stderr_and_ci() -> None:
    vals = [1.0, 0.5, 0.0, 0.75]
    mean = 0.5625
    var = sum((v - mean) ** 2 for v in vals) / 3
    assert clustered_stderr(vals) == pytest.approx(math.sqrt(var / 4))
    lo, hi = ci95(vals)
    assert lo == pytest.approx(mean - 1.959964 * math.sqrt(var / 4), abs=1e-6)
    assert hi == pytest.approx(mean + 1.959964 * math.sqrt(var / 4), abs=1e-6)
    assert ci95([1.0, 1.0]) == (1.0, 1.0)
    assert ci95([0.0, 1.0]) == (0.0, 1.0)  # clipped to [0, 1]


def _scores(table: dict[str, list[float]]) -> list[Score]:
    return [Score(item, i, v) for item, vals in table.items() for i, v in enumerate(vals)]


def test_avg_at_k_is_mean_of_item_means() -> None:
    scores = _scores({"a": [1, 1, 0, 0], "b": [1, 0, 0, 0], "c": [0, 0, 0, 0]})
    out = summarize_metric("avg@k", group_by_item(scores), 4)
    assert out["score"] == pytest.approx(100 * (0.5 + 0.25 + 0) / 3)
    assert out["n_scored_items"] == 3


def test_pass_at_k_summary_and_grader_errors_excluded() -> None:
    scores = _scores({"a": [1, 0, 0, 0, 0], "b": [1, 1, 0, 0, 0]})
    scores.append(Score("a", 5, 0.0, status="error"))
    by_item = group_by_item(scores)
    assert len(by_item["a"]) == 5
    out = summarize_metric("pass@k", by_item, 1)
    assert out["score"] == pytest.approx(100 * (0.2 + 0.4) / 2)
    ks = pass_at_ks(by_item, (1, 5, 10))
    assert ks == {"pass@1": pytest.approx(30.0), "pass@5": pytest.approx(100.0)}


@pytest.mark.parametrize("k", [1, 2, 5])
def test_the_pass_at_k_headline_is_pass_at_1_whatever_the_samples_as_its_label_says(k: int) -> None:
    """Five samples per item: the headline is the unbiased pass@1 (c/n) at any k, as the label
    "Pass@1" says, never pass@k shown under that label."""
    by_item = group_by_item(_scores({"a": [1, 0, 0, 0, 0], "b": [1, 1, 0, 0, 0]}))
    assert metric_label("pass@k", k) == "Pass@1"
    assert summarize_metric("pass@k", by_item, k)["score"] == pytest.approx(30.0)
    assert per_item_values("pass@k", by_item, k) == {"a": pytest.approx(0.2),
                                                     "b": pytest.approx(0.4)}


def test_pass_hat_k_summary() -> None:
    scores = _scores({"a": [1, 1, 0, 0], "b": [1, 1, 1, 1]})
    out = summarize_metric("pass^k", group_by_item(scores), 2)
    assert out["score"] == pytest.approx(100 * (1 / 6 + 1) / 2)


def test_breakdown_by_meta() -> None:
    items = [Item("a", {}, {"difficulty": "easy"}), Item("b", {}, {"difficulty": "hard"}),
             Item("c", {}, {"difficulty": "hard"})]
    scores = _scores({"a": [1.0], "b": [0.0], "c": [1.0]})
    out = breakdown_by_meta(items, scores)
    assert out["difficulty"]["easy"] == {"score": 100.0, "n_items": 1}
    assert out["difficulty"]["hard"] == {"score": 50.0, "n_items": 2}
