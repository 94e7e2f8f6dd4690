"""Nightly regression: run a suite, index every run, compare each with its baseline, report.

A suite is a YAML list of runs (or a mapping with `name:` and `runs:`), each a task, a model and
the overrides `k2eval run` accepts (data, k, limit, base_url, options, ...). An entry's `name`
names its series across nights (default `task @ model`); the baseline of a series is its latest
earlier run, or a night or run named with --baseline. Relative `data` paths are relative to the
suite file. A group task (tau2) runs as its member tasks, one series each.

A run that failed (nothing graded) or never finished gets a "failed" verdict naming its cause
and is not indexed: it has no score to serve as anyone's baseline. Whatever ends a run (an
endpoint error, a full disk, a bug), the night goes on and its pages are written; a stop
signal (SIGTERM, SIGHUP, Ctrl-C) ends the night early: the run in progress and those not
started are "failed", the pages are still written, and the exit status is 128 + the signal
unless a task regressed (exit status 1 is only ever a regression). `reindex` rebuilds the index
aside and swaps it in when complete, skipping (and naming) such run directories.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import re
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from k2eval.engine.signals import recording_stop_signals
from k2eval.errors import (
    EXIT_INCOMPLETE,
    EXIT_REGRESSION,
    Interrupted,
    K2EvalError,
    StorageError,
    UserError,
)
from k2eval.report import charts
from k2eval.report.render import render
from k2eval.report.runs import DamagedRun, RunView, diff_protocols, find_run_dirs
from k2eval.scoring import ci95
from k2eval.scoring.paired import PairedResult, paired_compare
from k2eval.spec import RunConfig
from k2eval.store.history import HistoryStore, IndexWriter, NightRow, RunRow
from k2eval.store.rundir import check_writable, write_json_atomic

NIGHT_FILE = "night.json"

Runner = Callable[[RunConfig, Path], Path]
AsyncRunner = Callable[[RunConfig, Path], Awaitable[Path]]


# --- the suite ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SuiteEntry:
    slot: str
    task: str
    model: str
    overrides: dict[str, Any]
    where: str
    """file:line of the entry, for error messages."""
    group: tuple[str, str] | None = None
    """For a member of a group task (tau2): (the group's series, the group task)."""


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    entries: tuple[SuiteEntry, ...]


def load_suite(path: str | Path) -> Suite:
    """Parse a suite file; errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except FileNotFoundError:
        raise UserError(f"--suite {path}: no such file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}{line}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    name = path.stem
    items_node = node
    if isinstance(raw, dict):
        name = str(raw.get("name") or name)
        raw = raw.get("runs")
        items_node = next((v for k, v in node.value if k.value == "runs"), None) if node else None
    if not isinstance(raw, list) or not raw or items_node is None:
        raise UserError(f"{path}:1: a suite is a non-empty list of runs "
                        "(or a mapping with `runs:`), each with `task` and `model`")
    entries: list[SuiteEntry] = []
    for entry, entry_node in zip(raw, items_node.value, strict=True):
        where = f"{path}:{entry_node.start_mark.line + 1}"
        if not isinstance(entry, dict) or not entry.get("task") or not entry.get("model"):
            raise UserError(f"{where}: each run needs `task` and `model`")
        overrides = {k: v for k, v in entry.items() if k not in ("task", "model", "name")}
        if isinstance(overrides.get("data"), str) and not Path(overrides["data"]).is_absolute():
            overrides["data"] = str((path.parent / overrides["data"]).resolve())
        members = _member_tasks(str(entry["task"]), where)
        group_slot = str(entry.get("name") or f"{entry['task']} @ {entry['model']}")
        group = (group_slot, str(entry["task"])) if members != [entry["task"]] else None
        for task in members:
            slot = f"{task} @ {entry['model']}"
            if entry.get("name"):
                slot = str(entry["name"]) + ("" if task == entry["task"] else f"/{task}")
            if any(e.slot == slot for e in entries):
                raise UserError(f"{where}: a second run named {slot!r}; give it a distinct `name`")
            entries.append(SuiteEntry(slot, task, str(entry["model"]), overrides, where, group))
    return Suite(name, path, tuple(entries))


def _member_tasks(task: str, where: str) -> list[str]:
    """A group task (tau2) runs as its member tasks, each its own series."""
    from k2eval.spec import load_task

    try:
        spec = load_task(task)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    return list(spec.members) or [task]


def build_config(entry: SuiteEntry, defaults: dict[str, Any] | None = None) -> RunConfig:
    """The entry's run config; `defaults` (e.g. the nightly's --cache) apply where the entry
    sets nothing."""
    from k2eval.engine.config import build_run_config

    try:
        return build_run_config(entry.task, entry.model, **{**(defaults or {}), **entry.overrides})
    except (TypeError, ValueError, UserError) as exc:  # wrong value types surface as Type/ValueError
        raise UserError(f"{entry.where}: {exc}") from None


# --- indexing -------------------------------------------------------------------------------

def run_row(view: RunView, night_id: str, slot: str) -> RunRow:
    ci = view.ci95
    return RunRow(run_id=view.run_id, night_id=night_id, slot=slot, task=view.task,
                  model=view.model, metric=view.metric, k=view.k, score=view.score,
                  ci_lo=ci[0] if ci else None, ci_hi=ci[1] if ci else None,
                  n_items=view.n_items, n_errors=view.n_errors, complete=view.complete,
                  is_binary=view.binary, protocol=view.protocol(),
                  started=view.started or 0.0, run_dir=str(view.path.resolve()),
                  output_tokens=view.output_tokens)


def index_run(store: IndexWriter, view: RunView, night_id: str, slot: str) -> RunRow:
    row = run_row(view, night_id, slot)
    store.add_run(row, view.item_scores)
    return row


@dataclass
class ReindexResult:
    nights: int
    runs: int
    skipped: list[tuple[Path, str]]
    """Run directories of a night not indexed, with why (failed, unfinished, damaged)."""
    left_out: list[Path]
    """Run directories outside any night (no night.json above them)."""


def reindex(store: HistoryStore, root: Path) -> ReindexResult:
    """Rebuild the index from the nights under `root`. The new index is built aside and replaces
    the old one only when complete; run directories without a score are skipped and named."""
    if not root.is_dir():
        raise UserError(f"--out {root}: no such directory")
    n_nights = n_runs = 0
    indexed: set[Path] = set()
    skipped: list[tuple[Path, str]] = []
    with store.rebuilding() as fresh:
        for night_file in sorted(root.rglob(NIGHT_FILE)):
            try:
                night = json.loads(night_file.read_text(encoding="utf-8"))
                night_id = str(night["night_id"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise UserError(f"{night_file}: not a valid night record ({exc}); fix or remove "
                                "it (the history database was left unchanged)") from None
            fresh.add_night(NightRow(night_id, str(night.get("suite", "")),
                                     float(night.get("started", 0.0)), str(night_file.parent)))
            n_nights += 1
            slots = {r["run_id"]: r["slot"] for r in night.get("runs", []) if r.get("run_id")}
            for run_dir in find_run_dirs(night_file.parent):
                indexed.add(run_dir.resolve())
                try:
                    view = RunView.load(run_dir)
                except DamagedRun as exc:
                    skipped.append((run_dir, str(exc)))
                    continue
                if not view.usable:
                    skipped.append((run_dir, view.status_text))
                    continue
                index_run(fresh, view, night_id,
                          slots.get(view.run_id, f"{view.task} @ {view.model}"))
                n_runs += 1
    left_out = [p for p in find_run_dirs(root) if p.resolve() not in indexed]
    return ReindexResult(n_nights, n_runs, skipped, left_out)


# --- verdicts -------------------------------------------------------------------------------

@dataclass
class Verdict:
    slot: str
    task: str
    model: str
    status: str
    """"regressed", "improved", "unchanged", "no-baseline", "not-comparable" or "failed"."""
    note: str = ""
    run: RunRow | None = None
    baseline: RunRow | None = None
    test: PairedResult | None = None
    trend: list[RunRow] = field(default_factory=list)
    pooled: bool = False
    """A group task's verdict over its members' pooled items (run and baseline are synthetic)."""
    worse_items: list[str] = field(default_factory=list)
    better_items: list[str] = field(default_factory=list)

    @property
    def delta(self) -> float | None:
        """Change of the headline score (percentage points) from the baseline."""
        now = self.run.score if self.run else None
        before = self.baseline.score if self.baseline else None
        return None if now is None or before is None else now - before


@dataclass
class Thresholds:
    alpha: float = 0.05
    """A change counts when its paired test gives p < alpha ..."""
    min_delta: float = 0.0
    """... and it moves the shared-item mean by at least this many percentage points."""


def judge(verdict: Verdict, store: HistoryStore, thresholds: Thresholds) -> None:
    """Compare the verdict's run with its baseline: status, note, test and moved items."""
    run, baseline = verdict.run, verdict.baseline
    assert run is not None and baseline is not None
    diffs = diff_protocols(baseline.protocol, run.protocol)
    if run.task != baseline.task:
        diffs.insert(0, f"task: {baseline.task} vs {run.task}")
    if diffs:
        verdict.status, verdict.note = "not-comparable", "protocol changed: " + "; ".join(diffs)
        return
    _apply_test(verdict, store.item_scores(baseline.run_id), store.item_scores(run.run_id),
                run.is_binary and baseline.is_binary, thresholds)


def _apply_test(verdict: Verdict, before: dict[str, float], after: dict[str, float],
                binary: bool, thresholds: Thresholds, prefix: str = "") -> None:
    verdict.test = test = paired_compare(before, after, binary=binary)
    shared = sorted(before.keys() & after.keys(), key=_natural)
    verdict.worse_items = [i for i in shared if after[i] < before[i]]
    verdict.better_items = [i for i in shared if after[i] > before[i]]
    if test.n == 0:
        verdict.status, verdict.note = "not-comparable", "no item was scored in both runs"
        return
    verdict.status, verdict.note = _decide(test, thresholds), prefix + _describe(test)


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting 'q2' before 'q10'."""
    return tuple((0, int(part)) if part.isdigit() else (1, part)
                 for part in re.split(r"(\d+)", text))


def _decide(test: PairedResult, thresholds: Thresholds) -> str:
    moved = abs(100 * test.delta) >= thresholds.min_delta
    if test.p_value < thresholds.alpha and moved and test.delta != 0:
        return "improved" if test.delta > 0 else "regressed"
    return "unchanged"


def _describe(test: PairedResult) -> str:
    return (f"{100 * test.delta:+.1f} points on {test.n} shared items, p = {test.p_value:.3g} "
            f"({test.method})")


def _pooled_row(rows: list[RunRow], store: HistoryStore, slot: str, task: str
                ) -> tuple[RunRow, dict[str, float]]:
    """A group's row (micro-average over the members' items) and its pooled item scores."""
    items = {f"{r.task}/{item}": v for r in rows for item, v in store.item_scores(r.run_id).items()}
    values = list(items.values())
    lo, hi = ci95(values) if values else (float("nan"), float("nan"))
    row = dataclasses.replace(
        rows[0], run_id="+".join(r.run_id for r in rows), slot=slot, task=task,
        score=100.0 * sum(values) / len(values) if values else None, ci_lo=100.0 * lo,
        ci_hi=100.0 * hi, n_items=len(values), n_errors=sum(r.n_errors for r in rows),
        complete=all(r.complete for r in rows), is_binary=all(r.is_binary for r in rows))
    return row, items


def _pooled_trend(member_slots: list[str], store: HistoryStore, slot: str, task: str
                  ) -> list[RunRow]:
    """The group's micro-average on each past night that ran all of its members."""
    by_night: dict[str, list[RunRow]] = {}
    for member in member_slots:
        for row in store.series(member):
            by_night.setdefault(row.night_id, []).append(row)
    rows = [_pooled_row(runs, store, slot, task)[0] for runs in by_night.values()
            if len(runs) == len(member_slots)]
    return sorted(rows, key=lambda r: r.started)


def group_verdicts(entries: tuple[SuiteEntry, ...], verdicts: list[Verdict], store: HistoryStore,
                   thresholds: Thresholds) -> list[Verdict]:
    """Verdicts for group tasks (tau2) whose members were all compared: items pooled."""
    groups: dict[tuple[str, str], list[Verdict]] = {}
    for entry, verdict in zip(entries, verdicts, strict=True):
        if entry.group is not None:
            groups.setdefault(entry.group, []).append(verdict)
    out = []
    for (slot, task), members in groups.items():
        if any(v.test is None or v.run is None or v.baseline is None or
               v.status == "not-comparable" for v in members):
            continue
        run, run_items = _pooled_row([v.run for v in members if v.run], store, slot, task)
        base, base_items = _pooled_row([v.baseline for v in members if v.baseline], store,
                                       slot, task)
        verdict = Verdict(slot, task, members[0].model, "unchanged", "", run, base, pooled=True)
        _apply_test(verdict, base_items, run_items, run.is_binary and base.is_binary, thresholds,
                    "micro-average over its members' items: ")
        verdict.trend = _pooled_trend([v.slot for v in members], store, slot, task)
        out.append(verdict)
    return out


@dataclass
class NightResult:
    night_id: str
    night_dir: Path
    suite: Suite
    baseline: str
    thresholds: Thresholds
    verdicts: list[Verdict]
    interrupted: Interrupted | None = None
    """The signal that stopped the night before every run was done (the rest are "failed")."""

    def by_status(self, status: str) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == status]

    @property
    def exit_code(self) -> int:
        """1 for a regression (even on a night cut short), else 128 + the signal that stopped
        the night, else 3 when a run failed or is incomplete, else 0."""
        if self.by_status("regressed"):
            return EXIT_REGRESSION
        if self.interrupted is not None:
            return self.interrupted.exit_status
        if self.by_status("failed") or any(v.run and not v.run.complete for v in self.verdicts):
            return EXIT_INCOMPLETE
        return 0


def _resolve_baseline(store: HistoryStore, baseline: str, entry: SuiteEntry, night_started: float
                      ) -> tuple[RunRow | None, str]:
    if baseline == "latest":
        found = store.latest_run(entry.slot, night_started)
        return found, "" if found else "first night for this series: no baseline yet"
    if store.night(baseline) is not None:
        found = next((r for r in store.runs_of_night(baseline) if r.slot == entry.slot), None)
        return found, "" if found else f"night {baseline} has no run of this series"
    run = store.run(baseline)
    if run is not None and run.task == entry.task:
        return run, ""
    return None, f"baseline run {baseline} is of task {run.task if run else '?'}"


def _check_baseline(store: HistoryStore, baseline: str) -> None:
    if baseline == "latest" or store.night(baseline) or store.run(baseline):
        return
    recent = [n.night_id for n in store.nights()[-3:]]
    known = f" (latest nights: {', '.join(recent)})" if recent else " (the history is empty)"
    raise UserError(f"--baseline {baseline}: no such night or run in {store.url}{known}")


def _night_id(out: Path) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    night_id, n = stamp, 1
    while (out / night_id).exists():
        n += 1
        night_id = f"{stamp}-{n}"
    return night_id


def _default_runner(config: RunConfig, out_dir: Path) -> Path:
    from k2eval.engine.runner import run_task

    return run_task(config, out_dir, progress=False)


# --- launching the runs ---------------------------------------------------------------------

@dataclass(frozen=True)
class ConcurrentRuns:
    """Run the suite's runs concurrently on one event loop of this process: at most `at_once`
    in flight (None: all of them), all inside `session` (e.g. the one Ray connection they
    share). Each run keeps its own run directory, journal, lock and --concurrency.

    For executors whose attempts run elsewhere (Ray): the local executor's sandboxes belong to
    this process and its runs share its cores, so it runs them one after another."""

    run: AsyncRunner
    at_once: int | None = None
    session: Callable[[list[RunConfig]], contextlib.AbstractContextManager[Any]] | None = None


Outcome = Callable[[], Path]
"""A run's result: its run directory, or the error it raised."""


def launch_runs(runner: Runner | ConcurrentRuns, suite: Suite, configs: list[RunConfig],
                night_dir: Path, log: Callable[[str], None]) -> list[Outcome]:
    """The outcome of each run of the suite, in suite order. A plain runner runs each one when
    its outcome is asked for (one after another); `ConcurrentRuns` runs them all now."""
    prefix = f"[{night_dir.name}]"
    if not isinstance(runner, ConcurrentRuns):
        def one(slot: str, config: RunConfig) -> Path:
            log(f"{prefix} {slot}: running")
            return runner(config, night_dir)

        return [functools.partial(one, e.slot, c) for e, c in zip(suite.entries, configs,
                                                                     strict=True)]
    slots = [e.slot for e in suite.entries]
    at_once = min(runner.at_once or len(configs), len(configs))
    log(f"{prefix} running {len(configs)} runs, {at_once} at a time")
    with runner.session(configs) if runner.session else contextlib.nullcontext():
        results = asyncio.run(_run_all(runner, slots, configs, night_dir, at_once, log))
    return [functools.partial(_outcome, r) for r in results]


def _outcome(result: Path | BaseException) -> Path:
    if isinstance(result, BaseException):
        raise result
    return result


async def _run_all(runner: ConcurrentRuns, slots: list[str], configs: list[RunConfig],
                   night_dir: Path, at_once: int, log: Callable[[str], None]
                   ) -> list[Path | BaseException]:
    """Every run's directory or exception. A run that is cancelled (Ctrl-C, SIGTERM) cancels
    the others: each marks its run directory interrupted, and the night stops there."""
    gate = asyncio.Semaphore(at_once)
    prefix = f"[{night_dir.name}]"

    async def one(slot: str, config: RunConfig) -> Path:
        async with gate:
            log(f"{prefix} {slot}: running")
            path = await runner.run(config, night_dir)
            log(f"{prefix} {slot}: finished")
            return path

    tasks = [asyncio.create_task(one(s, c)) for s, c in zip(slots, configs, strict=True)]
    try:
        pending: set[asyncio.Task[Path]] = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(t.cancelled() for t in done):
                raise asyncio.CancelledError
            stopped = [t.exception() for t in done
                       if isinstance(t.exception(), Interrupted | KeyboardInterrupt)]
            if stopped:  # a stop signal reached one run: the night stops, every run with it
                raise stopped[0]  # type: ignore[misc]
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return [t.exception() or t.result() for t in tasks]


def run_nightly(suite_path: str | Path, store: HistoryStore, out: str | Path, *,
                baseline: str = "latest", thresholds: Thresholds | None = None,
                runner: Runner | ConcurrentRuns | None = None,
                log: Callable[[str], None] = print, cache: str | None = None) -> NightResult:
    """Run the suite into `out/<night>/`, index it, judge each series, write the reports.
    `runner`: how each run is made (default: `run_task`, one after another; `ConcurrentRuns`:
    all at once, then indexed and judged in suite order). `cache`: the response cache of every
    entry that names none."""
    suite = load_suite(suite_path)
    defaults = {"cache": cache} if cache else {}
    configs = [build_config(entry, defaults) for entry in suite.entries]  # fail before any run
    _check_baseline(store, baseline)
    thresholds = thresholds or Thresholds()
    runner = runner or _default_runner
    out = Path(out)
    check_writable(out)
    night_id = _night_id(out)
    night_dir = out / night_id
    night_dir.mkdir(parents=True)
    started = time.time()
    store.add_night(NightRow(night_id, suite.name, started, str(night_dir.resolve())))
    night_doc: dict[str, Any] = {"night_id": night_id, "suite": suite.name,
                                 "suite_file": str(suite.path), "started": started,
                                 "baseline": baseline, "runs": []}
    write_json_atomic(night_dir / NIGHT_FILE, night_doc)

    verdicts: list[Verdict] = []
    interrupted: Interrupted | None = None
    with recording_stop_signals() as stops:  # a signal stops the night, never its pages
        try:
            outcomes = launch_runs(runner, suite, configs, night_dir, log)
        except (Interrupted, KeyboardInterrupt, asyncio.CancelledError) as exc:  # runs at once
            interrupted = exc if isinstance(exc, Interrupted) else Interrupted(
                stops[0] if stops else signal.SIGINT)
            outcomes = []
            verdicts.extend(_failed(night_doc, entry, f"{interrupted} while it ran")
                            for entry in suite.entries)
        for entry, outcome in zip(suite.entries, outcomes, strict=True):
            if interrupted is None and stops:
                interrupted = Interrupted(stops[0])
            if interrupted is not None:
                verdicts.append(_failed(night_doc, entry, f"not run: the night was {interrupted}"))
                continue
            try:
                verdicts.append(_run_entry(entry, outcome, store, night_doc, baseline, started,
                                           thresholds))
            except (Interrupted, KeyboardInterrupt) as exc:
                interrupted = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
                verdicts.append(_failed(night_doc, entry, f"{interrupted} while it ran"))
            except Exception as exc:  # whatever happens to one run, the night's pages are written
                cause = f"{type(exc).__name__}: {exc}"
                note = str(exc) if isinstance(exc, K2EvalError) else cause
                verdicts.append(_failed(night_doc, entry, note, error=cause))
            with contextlib.suppress(StorageError):
                write_json_atomic(night_dir / NIGHT_FILE, night_doc)

        if interrupted is None and stops:
            interrupted = Interrupted(stops[0])
        verdicts.extend(group_verdicts(suite.entries, verdicts, store, thresholds))
        result = NightResult(night_id, night_dir, suite, baseline, thresholds, verdicts,
                             interrupted)
        night_doc.update(ended=time.time(), exit_code=result.exit_code,
                         verdicts={v.slot: v.status for v in verdicts})
        if interrupted is not None:
            night_doc["interrupted"] = interrupted.signal_name
        write_json_atomic(night_dir / NIGHT_FILE, night_doc)
        write_reports(result)
        from k2eval.report.dashboard import write_dashboard

        write_dashboard(store, out / "dashboard", thresholds=thresholds)
    return result


def _run_entry(entry: SuiteEntry, outcome: Outcome, store: HistoryStore,
               night_doc: dict[str, Any], baseline: str, started: float,
               thresholds: Thresholds) -> Verdict:
    """The entry's run (made when `outcome` is asked for, or already made), indexed and judged
    against its baseline."""
    view = RunView.load(outcome())
    if not view.usable:
        note = view.status_text + ("" if view.still_running else
                                   f"; continue it with `k2eval resume {view.path}`")
        return _failed(night_doc, entry, note, error=view.status_text, run_id=view.run_id,
                       run_dir=view.path.name)
    row = index_run(store, view, night_doc["night_id"], entry.slot)
    night_doc["runs"].append({"slot": entry.slot, "task": entry.task, "model": entry.model,
                              "status": "ok", "run_id": row.run_id, "run_dir": view.path.name})
    base, note = _resolve_baseline(store, baseline, entry, started)
    verdict = Verdict(entry.slot, entry.task, view.model, "no-baseline", note, row, base)
    if base is not None:
        judge(verdict, store, thresholds)
    if not row.complete:
        verdict.note += f"; {view.status_text}: k2eval resume {view.path}"
    verdict.trend = store.series(entry.slot)
    return verdict


def _failed(night_doc: dict[str, Any], entry: SuiteEntry, note: str, **record: Any) -> Verdict:
    """A "failed" verdict for `entry`, recorded in the night's document with its cause."""
    night_doc["runs"].append({"slot": entry.slot, "task": entry.task, "model": entry.model,
                              "status": "failed", "error": record.pop("error", note), **record})
    return Verdict(entry.slot, entry.task, entry.model, "failed", note)


# --- reports --------------------------------------------------------------------------------

SECTIONS = (("regressed", "Regressed"), ("failed", "Failed to run"), ("improved", "Improved"),
            ("not-comparable", "Not comparable with the baseline"),
            ("no-baseline", "No baseline (first night)"), ("unchanged", "Unchanged within noise"))


def night_label(night_id: str) -> str:
    """'20250612-031500' -> '06-12 03:15' (other ids unchanged)."""
    m = re.fullmatch(r"\d{4}(\d\d)(\d\d)-(\d\d)(\d\d)\d\d(-\d+)?", night_id)
    return f"{m[1]}-{m[2]} {m[3]}:{m[4]}{m[5] or ''}" if m else night_id


def _trend_chart(v: Verdict) -> Any:
    points = [(night_label(r.night_id), r.score, r.ci_lo, r.ci_hi)
              for r in v.trend if r.score is not None]
    return charts.trend_chart(points, f"{v.slot}: score per night") if points else ""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


def _compare_pages(result: NightResult) -> dict[str, str]:
    """A side-by-side page (baseline vs tonight) per compared series: slot -> relative link."""
    from k2eval.report.compare import write_compare_page

    links: dict[str, str] = {}
    for v in result.verdicts:
        if v.run is None or v.baseline is None or v.test is None or v.pooled:
            continue
        name = f"compare/{_slug(v.slot)}.html"
        try:
            write_compare_page([v.baseline.run_dir, v.run.run_dir], result.night_dir / name)
        except UserError as exc:  # e.g. the baseline's run directory was moved away
            v.note += f"; no comparison page ({exc})"
            continue
        links[v.slot] = name
    return links


def write_reports(result: NightResult) -> tuple[Path, Path]:
    context = {"r": result, "sections": SECTIONS,
               "trends": {v.slot: _trend_chart(v) for v in result.verdicts},
               "anchors": {v.slot: _slug(v.slot) for v in result.verdicts},
               "links": _compare_pages(result)}
    html_path = result.night_dir / "regression.html"
    md_path = result.night_dir / "regression.md"
    html_path.write_text(render("regression.html", **context), encoding="utf-8")
    md_path.write_text(render("regression.md", **context), encoding="utf-8")
    return html_path, md_path
