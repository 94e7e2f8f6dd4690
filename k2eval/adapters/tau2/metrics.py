"""tau2's pass^k (tau2-bench 0.1.3 `metrics/agent_metrics.py`).

A trial succeeds when its reward is within 1e-6 of 1. k runs from 1 to the fewest trials any
task has (tau2 caps k there, with a warning), and pass^k is the mean over every task of
C(successes, k) / C(trials, k), so all tasks count for every k.
"""

from __future__ import annotations

from typing import Any

from k2eval.adapters.base import Score
from k2eval.scoring import pass_hat_over_tasks


def is_successful(reward: float) -> bool:
    return abs(reward - 1.0) <= 1e-6


def pass_hat_ks(by_item: dict[str, list[Score]]) -> dict[str, Any]:
    """pass^k in percent for k = 1..(fewest scored trials of a task), over all tasks."""
    trials = [(len(v), sum(is_successful(s.value) for s in v)) for v in by_item.values()]
    return {f"pass^{k}": {"score": round(100 * value, 4), "n_items": len(trials)}
            for k, value in pass_hat_over_tasks(trials).items()}
