"""The comparison table in the layout of the Kimi K2 README, built as a pandas DataFrame.

One row per benchmark and metric, grouped Coding / Tool use / Math & STEM; one column per
measured model (score with its 95% CI) next to the reported numbers for the same row.
Reported numbers sit in the row of the task's protocol metric (e.g. Avg@64); a run under other
settings (a smaller k) gets a row of its own below, without reported numbers beside it.
A run that failed or never finished keeps its cell, which says so and why ("failed: 52/52
attempts errored (...)", "unfinished (interrupted)"); the notes under the table list every run
that is not finished with its cause.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from k2eval import scoring
from k2eval.errors import UserError
from k2eval.report.render import md_cell, render
from k2eval.report.runs import FINISHED, INCOMPLETE, RUN_STATES, DamagedRun, RunView
from k2eval.scoring import ci95, group_by_item, pass_hat_over_tasks
from k2eval.scoring.toolcalls import rates
from k2eval.spec import METRICS, TaskSpec, all_tasks

GROUP_ORDER = ("Coding", "Tool use", "Math & STEM")
ROW_ORDER = (
    "livecodebench-v6", "ojbench", "swebench-verified-agentless", "swebench-verified",
    "swebench-verified-multi-attempt", "swebench-multilingual",
    "tau2-retail", "tau2-airline", "tau2-telecom", "tau2", "acebench-en",
    "aime2024", "aime2025", "gpqa-diamond",
)


def metric_label(metric: str, k: int) -> str:
    """The label the run's summary gives its headline ('avg@k', 64 -> 'Avg@64'; 'pass@k' at
    any k -> 'Pass@1', the figure it is); a metric of no shipped task keeps its name."""
    if metric in METRICS:
        return scoring.metric_label(metric, k)
    return metric[:1].upper() + metric[1:]


def _spec_dict(run: RunView, specs: dict[str, TaskSpec]) -> dict[str, Any]:
    """The shipped task spec (the protocol), else the one recorded in the run's manifest."""
    return specs[run.task].to_dict() if run.task in specs else run.task_spec


def _metric_row(metric: str, k: int, spec: dict[str, Any]) -> tuple[str, bool]:
    """(row label, follows the protocol): the protocol is the task spec's metric and k."""
    label = metric_label(metric, k)
    protocol = spec.get("metric") == metric and int(spec.get("k") or 0) == k
    reported_label = (spec.get("reported") or {}).get("metric_label") or ""
    if protocol:
        return reported_label or label, True
    if spec.get("metric"):
        spec_k = int(spec.get("k") or 1)
        protocol_label = metric_label(spec["metric"], spec_k)
        note = (f"protocol: {protocol_label}" if protocol_label != label
                else f"k={k}, protocol: k={spec_k}")  # pass@k: Pass@1 from other sample counts
        return f"{label} ({note})", False
    return label, False


@dataclass
class ComparisonTable:
    """The table in long form (`frame`: one row per cell) with helpers for its renderings."""

    frame: pd.DataFrame
    models: list[str]
    reported_models: list[str]
    problems: list[str] = field(default_factory=list)
    """One line per run that is not finished (or was left out), with its cause."""
    serving: list[dict[str, Any]] = field(default_factory=list)
    """Per shown run that reported reasoning tokens or counted tool calls: those figures."""

    @property
    def has_incomplete(self) -> bool:
        """Some cell shows the score of an incomplete run (marked ‡)."""
        return bool((self.frame.state == INCOMPLETE).any())

    def rows(self) -> pd.DataFrame:
        return (self.frame[["group", "task", "benchmark", "metric"]].drop_duplicates()
                .reset_index(drop=True))

    def wide(self) -> pd.DataFrame:
        """Display form: group, benchmark, metric, one column per model, reported columns."""
        out = self.rows()
        cells = self.frame.assign(text=self.frame.apply(_cell_text, axis=1))
        for kind, names, suffix in (("measured", self.models, ""),
                                    ("reported", self.reported_models, " (reported)")):
            part = cells[cells.kind == kind]
            for name in names:
                col = part[part.model == name].set_index(["task", "metric"])["text"]
                out[name + suffix] = [col.get((t, m), "") for t, m in zip(out.task, out.metric,
                                                                          strict=True)]
        return out.drop(columns=["task"])

    # --- renderings -----------------------------------------------------------------------
    def to_markdown(self) -> str:
        wide = self.wide()
        headers = ["Benchmark", "Metric", *wide.columns[3:]]
        lines = ["| " + " | ".join(map(md_cell, headers)) + " |", "|" + "---|" * len(headers)]
        for group, rows in wide.groupby("group", sort=False):
            lines.append("| **" + str(group) + "** |" + " |" * (len(headers) - 1))
            for _, row in rows.iterrows():
                cells = [str(row["benchmark"]), str(row["metric"]), *map(str, row.iloc[3:])]
                lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
        notes = ["", "Measured cells: score [95% CI], in percent."]
        if self.frame.vendor_copied.any():
            notes.append("`*` reported by the model's vendor and copied by the Kimi K2 authors.")
        if self.frame.subset.any():
            notes.append("`†` run on a subset of the items (not comparable with reported numbers).")
        if self.has_incomplete:
            notes.append("`‡` incomplete run: some attempts failed or were not graded.")
        if self.problems:
            notes += ["", "Runs not finished or left out:", *(f"- {md_cell(p)}" for p in self.problems)]
        return "\n".join(lines + notes + self._serving_markdown()) + "\n"

    def _serving_markdown(self) -> list[str]:
        if not self.serving:
            return []
        headers = list(self.serving[0])
        out = ["", "Reasoning tokens and tool-call conformance (percent of tool calls; "
                   "finish: replies whose finish reason disagrees with their calls):", "",
               "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        out += ["| " + " | ".join(md_cell(str(row[h])) for h in headers) + " |"
                for row in self.serving]
        return out

    def to_csv(self) -> str:
        return str(self.frame.to_csv(index=False))

    def to_json(self) -> str:
        records = json.loads(self.frame.to_json(orient="records"))
        return json.dumps({"models": self.models, "reported_models": self.reported_models,
                           "cells": records, "serving": self.serving}, indent=2) + "\n"


def _cell_text(cell: pd.Series) -> str:
    if cell["kind"] == "reported":
        return str(cell["reported_text"])
    if cell["state"] not in (FINISHED, INCOMPLETE):
        return str(cell["status"])
    if pd.isna(cell["score"]):
        return "–"
    text = f"{cell['score']:.1f}"
    if not (pd.isna(cell["ci_lo"]) or pd.isna(cell["ci_hi"])):
        text += f" [{cell['ci_lo']:.1f}, {cell['ci_hi']:.1f}]"
    return text + (" †" if cell["subset"] else "") + ("" if cell["complete"] else " ‡")


def build_table(runs: Sequence[RunView], specs: dict[str, TaskSpec] | None = None) -> ComparisonTable:
    """The comparison table for these runs (one run per task, model and metric)."""
    if not runs:
        raise UserError("no runs given: pass one or more run directories")
    specs = all_tasks() if specs is None else specs
    cells: list[dict[str, Any]] = []
    models: list[str] = []
    member_runs: dict[tuple[str, str], RunView] = {}
    task_specs: dict[str, dict[str, Any]] = {}
    shown, problems = _one_run_per_cell(runs, specs, task_specs)

    for run in shown:
        spec = task_specs[run.task]
        label, protocol = _metric_row(run.metric, run.k, spec)
        if run.model not in models:
            models.append(run.model)
        if run.usable:
            member_runs[(run.task, run.model)] = run
        ci = run.ci95
        cells.append(_measured_cell(spec, run.task, label, protocol, run.model, [run],
                                    run.score, ci, run.n_items))
        for j, (score, n_items) in _summary_pass_hat(run).items():
            cells.append(_measured_cell(spec, run.task, _pass_hat_label(j, protocol), protocol,
                                        run.model, [run], score, None, n_items))

    cells.extend(_group_rows(specs, member_runs, models, problems))
    for task in dict.fromkeys(c["task"] for c in list(cells)):
        spec = task_specs.get(task) or specs[task].to_dict()
        cells.extend(_reported_cells(spec))
    frame = pd.DataFrame(cells)
    reported_models = list(dict.fromkeys(frame[frame.kind == "reported"].model))
    frame["_g"] = frame.group.map(lambda g: GROUP_ORDER.index(g) if g in GROUP_ORDER else 99)
    frame["_r"] = frame.task.map(lambda t: ROW_ORDER.index(t) if t in ROW_ORDER else 99)
    frame["_off"] = ~frame.protocol.astype(bool)
    frame = (frame.sort_values(["_g", "group", "_r", "task", "_off", "metric"], kind="stable")
             .drop(columns=["_g", "_r", "_off"]).reset_index(drop=True))
    return ComparisonTable(frame, models, reported_models, problems,
                           [row for run in shown if (row := serving_row(run))])


def serving_row(run: RunView) -> dict[str, Any] | None:
    """Reasoning tokens per attempt and tool-call conformance rates of one run (None when it
    reported neither)."""
    counts = run.toolcalls
    if not run.reasoning_tokens and not counts:
        return None
    attempts = max(1, run.summary.n_attempts)
    row: dict[str, Any] = {"Task": run.task, "Model": run.model, "Run": run.run_id,
                           "Reasoning tokens / attempt": round(run.reasoning_tokens / attempts)}
    percent = rates(counts or {})
    row["Tool calls"] = int(counts.get("calls", 0)) if counts else "–"
    for key, label in (("invalid_json", "Invalid JSON"), ("schema_violations", "Schema"),
                       ("unknown_tool", "Unknown tool"), ("truncated", "Truncated")):
        value = percent[key]
        row[label] = "–" if value is None else f"{value:.1f}"
    row["Finish mismatch"] = int(counts.get("finish_mismatch", 0)) if counts else "–"
    return row


def _one_run_per_cell(runs: Sequence[RunView], specs: dict[str, TaskSpec],
                      task_specs: dict[str, dict[str, Any]]) -> tuple[list[RunView], list[str]]:
    """The run shown in each cell (task, metric row, model), and the notes on runs that are not
    finished. A cell with a run that has a score shows it over failed or unfinished runs (a crashed
    run next to its rerun), which are then named in the notes; two runs with scores are refused."""
    chosen: dict[tuple[str, str, str], RunView] = {}
    left_out: list[RunView] = []
    for run in runs:
        spec = task_specs.setdefault(run.task, _spec_dict(run, specs))
        key = (run.task, _metric_row(run.metric, run.k, spec)[0], run.model)
        other = chosen.get(key)
        if other is None:
            chosen[key] = run
            continue
        if run.usable and other.usable:
            raise UserError(f"two runs of {run.task} ({key[1]}) for {run.model}: "
                            f"{other.path} and {run.path}; pass only one")
        keep = run if run.usable or (not other.usable and (run.started or 0) > (other.started or 0)) \
            else other
        left_out.append(other if keep is run else run)
        chosen[key] = keep
    problems = [f"{r.run_id} ({r.task}, {r.model}): {r.status_text}"
                + ("" if r.still_running else f"; continue it with `k2eval resume {r.path}`")
                for r in chosen.values() if r.state != FINISHED]
    problems += [f"{r.run_id} ({r.task}, {r.model}): {r.status_text} (not shown: another run "
                 "of the same cell is)" for r in left_out]
    return list(chosen.values()), problems


def _measured_cell(spec: dict[str, Any], task: str, label: str, protocol: bool, model: str,
                   runs: list[RunView], score: float | None, ci: tuple[float, float] | None,
                   n_items: int) -> dict[str, Any]:
    return {"group": spec.get("group") or "Other", "task": task,
            "benchmark": spec.get("benchmark") or task, "metric": label, "protocol": protocol,
            "model": model, "kind": "measured", "score": score,
            "ci_lo": ci[0] if ci else None, "ci_hi": ci[1] if ci else None,
            "n_items": n_items, "n_errors": sum(r.n_errors for r in runs), "k": runs[0].k,
            "subset": any(r.subset for r in runs), "complete": all(r.complete for r in runs),
            "run_id": ",".join(r.run_id for r in runs), "vendor_copied": False,
            "reported_text": "", "state": _worst_state(runs),
            "status": "; ".join(r.status_text for r in runs if r.state != FINISHED) or FINISHED}


def _worst_state(runs: list[RunView]) -> str:
    return max((r.state for r in runs), key=RUN_STATES.index)


def _reported_cells(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The reported numbers of a task, in the row of its protocol metric."""
    reported = spec.get("reported") or {}
    if not spec.get("metric"):
        return []
    label = reported.get("metric_label") or metric_label(spec["metric"], int(spec.get("k") or 1))
    cells = []
    for model, raw in (reported.get("values") or {}).items():
        text = str(raw)
        try:
            score: float | None = float(text.rstrip("*").strip())
        except ValueError:
            score = None
        cells.append({"group": spec.get("group") or "Other", "task": spec["name"],
                      "benchmark": spec.get("benchmark") or spec["name"], "metric": label,
                      "protocol": True, "model": model, "kind": "reported", "score": score,
                      "ci_lo": None, "ci_hi": None, "n_items": None, "n_errors": None,
                      "k": spec.get("k"), "subset": False, "complete": True, "run_id": None,
                      "vendor_copied": text.endswith("*"), "reported_text": text,
                      "state": "", "status": ""})
    return cells


def _group_rows(specs: dict[str, TaskSpec], member_runs: dict[tuple[str, str], RunView],
                models: list[str], problems: list[str]) -> list[dict[str, Any]]:
    """Rows for group tasks (e.g. tau2): the micro-average over all member runs' items.

    A model gets a group cell when it has a run of every member under the same metric and k
    whose scores can be read (a damaged journal is named in `problems` instead).
    """
    cells: list[dict[str, Any]] = []
    for spec in specs.values():
        if not spec.members:
            continue
        for model in models:
            found = [member_runs.get((m, model)) for m in spec.members]
            runs = [r for r in found if r is not None]
            if len(runs) < len(found) or len({(r.metric, r.k) for r in runs}) != 1:
                continue
            try:
                values = [v for r in runs for v in r.item_scores.values()]
            except DamagedRun as exc:
                problems.append(f"no {spec.name} micro-average for {model}: {exc}")
                continue
            if not values:
                continue
            label, protocol = _metric_row(runs[0].metric, runs[0].k, spec.to_dict())
            lo, hi = ci95(values)
            cells.append(_measured_cell(spec.to_dict(), spec.name, label, protocol, model, runs,
                                        100.0 * float(np.mean(values)),
                                        (100.0 * lo, 100.0 * hi), len(values)))
            if all(_summary_pass_hat(r) for r in runs):
                for j, (score, n_items) in _pooled_pass_hat(runs).items():
                    cells.append(_measured_cell(spec.to_dict(), spec.name,
                                                _pass_hat_label(j, protocol), protocol, model,
                                                runs, score, None, n_items))
    return cells


def _pass_hat_label(j: int, protocol: bool) -> str:
    return f"Pass^{j}" + ("" if protocol else " (off protocol)")


def _summary_pass_hat(run: RunView) -> dict[int, tuple[float, int]]:
    """pass^j (percent, items) for j = 1..k from the run's summary (tau2 reports them)."""
    found = run.breakdowns.get("pass^k")
    out: dict[int, tuple[float, int]] = {}
    if isinstance(found, dict):
        for key, cell in found.items():
            if str(key).startswith("pass^") and isinstance(cell, dict) and "score" in cell:
                out[int(str(key)[5:])] = (float(cell["score"]), int(cell.get("n_items") or 0))
    return dict(sorted(out.items()))


def _pooled_pass_hat(runs: list[RunView]) -> dict[int, tuple[float, int]]:
    """pass^j over the pooled items of several runs (a group's members), by the rule each
    run's summary follows: j up to the fewest graded trials of any item, every item counted."""
    trials = [(len(v), sum(s.correct for s in v)) for r in runs
              for v in group_by_item(r.live_scores()).values()]
    return {j: (100.0 * value, len(trials)) for j, value in pass_hat_over_tasks(trials).items()}


def render_table_html(table: ComparisonTable) -> str:
    wide = table.wide()
    columns = list(wide.columns[3:])
    groups = [(group, rows.to_dict("records")) for group, rows in wide.groupby("group", sort=False)]
    return render("table.html", columns=columns, groups=groups, n_measured=len(table.models),
                  has_subset=bool(table.frame.subset.any()),
                  has_incomplete=table.has_incomplete, problems=table.problems,
                  serving=table.serving,
                  generated=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
