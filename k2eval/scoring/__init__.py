"""Metrics: avg@k, unbiased pass@k, pass^k, item-clustered standard errors and 95% CIs."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from k2eval.records import Item, Score

Z95 = 1.959963984540054


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k: 1 - C(n-c, k) / C(n, k) (Chen et al., 2021)."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and k >= 1 (n={n}, c={c}, k={k})")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per item (got {n})")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k (tau-bench): probability that k trials drawn without replacement all succeed."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass^k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    return math.comb(c, k) / math.comb(n, k)


def pass_hat_over_tasks(trials: Sequence[tuple[int, int]]) -> dict[int, float]:
    """pass^k (fraction) for k = 1..(fewest trials of any task), each the mean over every task
    of C(successes, k) / C(trials, k), as tau2-bench computes it. `trials`: (n, successes)."""
    if not trials:
        return {}
    max_k = min(n for n, _ in trials)
    return {k: mean([pass_hat_k(n, c, k) for n, c in trials]) for k in range(1, max_k + 1)}


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def clustered_stderr(per_item: Sequence[float]) -> float:
    """Standard error of the mean of per-item scores (attempts clustered by item)."""
    n = len(per_item)
    if n < 2:
        return 0.0
    m = mean(per_item)
    var = sum((x - m) ** 2 for x in per_item) / (n - 1)
    return math.sqrt(var / n)


def ci95(per_item: Sequence[float]) -> tuple[float, float]:
    """Normal-approximation 95% CI of the mean of per-item scores, clipped to [0, 1]."""
    if not per_item:
        return (float("nan"), float("nan"))
    m, se = mean(per_item), clustered_stderr(per_item)
    return (max(0.0, m - Z95 * se), min(1.0, m + Z95 * se))


def group_by_item(scores: Iterable[Score]) -> dict[str, list[Score]]:
    """Scores per item, ignoring grader errors (status != "ok")."""
    out: dict[str, list[Score]] = defaultdict(list)
    for s in scores:
        if s.status == "ok":
            out[s.item_id].append(s)
    return out


def per_item_values(metric: str, by_item: dict[str, list[Score]], k: int) -> dict[str, float]:
    """Each item's contribution to the headline: mean score (avg@k, acc), pass@1 (pass@k:
    the headline is Pass@1, estimated without bias from however many samples there are;
    pass@5 and pass@10 go to the summary's `pass_at_k`) or pass^k."""
    out: dict[str, float] = {}
    for item_id, item_scores in by_item.items():
        n = len(item_scores)
        if metric in ("avg@k", "acc"):
            out[item_id] = mean([s.value for s in item_scores])
            continue
        c = sum(1 for s in item_scores if s.correct)
        out[item_id] = pass_at_k(n, c, 1) if metric == "pass@k" else pass_hat_k(n, c, min(k, n))
    return out


def summarize_metric(metric: str, by_item: dict[str, list[Score]], k: int) -> dict[str, Any]:
    """Headline score (percent), its 95% CI (percent) and the item count."""
    values = per_item_values(metric, by_item, k)
    vals = list(values.values())
    lo, hi = ci95(vals)
    return {"score": round(100 * mean(vals), 4) if vals else None,
            "ci95": [round(100 * lo, 4), round(100 * hi, 4)] if vals else None,
            "stderr": round(100 * clustered_stderr(vals), 4) if vals else None,
            "n_scored_items": len(vals)}


def pass_at_ks(by_item: dict[str, list[Score]], ks: Iterable[int]) -> dict[str, float]:
    """pass@k in percent for each k that every item has enough samples for."""
    out: dict[str, float] = {}
    if not by_item:
        return out
    min_n = min(len(v) for v in by_item.values())
    for k in ks:
        if k <= min_n:
            vals = [pass_at_k(len(v), sum(s.correct for s in v), k) for v in by_item.values()]
            out[f"pass@{k}"] = round(100 * mean(vals), 4)
    return out


def breakdown_by_meta(items: list[Item], scores: list[Score],
                      keys: Sequence[str] | None = None) -> dict[str, Any]:
    """Mean score (percent) and counts per value of each item `meta` key (category, ...)."""
    by_item = group_by_item(scores)
    if keys is None:
        keys = sorted({k for it in items for k, v in it.meta.items()
                       if isinstance(v, (str, int, bool))})
    out: dict[str, Any] = {}
    for key in keys:
        groups: dict[str, list[float]] = defaultdict(list)
        for it in items:
            if key in it.meta and it.id in by_item:
                groups[str(it.meta[key])].append(mean([s.value for s in by_item[it.id]]))
        if 1 < len(groups) <= 64:
            out[key] = {g: {"score": round(100 * mean(v), 4), "n_items": len(v)}
                        for g, v in sorted(groups.items())}
    return out


def metric_label(metric: str, k: int) -> str:
    """Display name of a metric at a given k: Avg@64, Pass@1, Pass^4, Acc."""
    return {"avg@k": f"Avg@{k}", "pass@k": "Pass@1", "pass^k": f"Pass^{k}", "acc": "Acc"}[metric]
