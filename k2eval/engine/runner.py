"""The run engine: items x k attempts, solved concurrently, journaled, scored, summarized.

Solve and score are separate phases joined by a queue: attempts are graded while others are
still being generated, with their own concurrency bound (the sandbox count for adapters that
run code). Everything finished is on disk, so `resume` repeats nothing that completed and
`rescore` recomputes grades without calling the model.

Memory stays nearly flat in the number of attempts: a transcript is dropped once it is
journaled and graded (a bounded queue holds those waiting for a grader), and the summary is
built from a `Tally`: a status byte per attempt, usage totals, and the scores (a float and a
byte each where the adapter's summary reads no score details).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import time
from array import array
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k2eval.adapters.base import Adapter, get_adapter
from k2eval.engine.executors import Executor, WorkPlan, make_executor
from k2eval.engine.executors.attempts import RunModels
from k2eval.engine.progress import Progress, node_label
from k2eval.engine.signals import cancel_on_stop_signals
from k2eval.errors import (
    Interrupted,
    K2EvalError,
    RunDirError,
    RunFatalError,
    StorageError,
    UserError,
    signal_name,
)
from k2eval.records import Attempt, Item, Score, Usage
from k2eval.scoring import group_by_item, metric_label, pass_at_ks, summarize_metric
from k2eval.scoring.toolcalls import empty_counts
from k2eval.spec import RunConfig, split_url_credentials
from k2eval.store.rundir import Redactor, RunDir, load_run
from k2eval.store.rundir import RunRecord as RunRecord
from k2eval.store.runlog import DatasetRecord, ModelRecord, RunManifest, RunStatus, RunSummary


@dataclass
class Run:
    """A run directory and its summary."""

    path: Path
    summary: RunSummary

    @property
    def score(self) -> float | None:
        return self.summary.score

    def record(self) -> RunRecord:
        return load_run(self.path)


def new_run_id(task: str) -> str:
    return f"{task}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def dataset_fingerprint(items: list[Item]) -> str:
    h = hashlib.sha256()
    for it in items:
        h.update(json.dumps([it.id, it.data], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("k2eval")
    except PackageNotFoundError:
        return "0+unknown"


def load_items(adapter: Adapter, config: RunConfig) -> list[Item]:
    items = adapter.load(config.task, config.data)
    if config.item_ids:
        wanted = set(config.item_ids)
        items = [it for it in items if it.id in wanted]
        missing = wanted - {it.id for it in items}
        if missing:
            raise UserError(f"unknown item ids for {config.task.name}: {sorted(missing)[:5]}")
    if config.limit is not None:
        items = items[: config.limit]
    if not items:
        raise UserError(f"task {config.task.name} has no items to run (check --data / filters)")
    return items


def _secrets(config: RunConfig) -> list[str]:
    specs = [s for s in (config.model, config.user_model, config.judge_model) if s is not None]
    passwords = [split_url_credentials(s.base_url)[2] or "" for s in specs if s.base_url]
    return ([os.environ.get(s.api_key_env, "") for s in specs] + [os.environ.get("HF_TOKEN", "")]
            + passwords)


Key = tuple[str, int]
"""(item id, attempt index)."""

_NONE, _OK, _ERROR = 0, 1, 2
_NO_DETAILS: dict[str, Any] = {}
"""The details of every light score the summary makes (read, never written)."""


class Tally:
    """What the summary needs of each attempt of `items` x `k`, held for every attempt of a
    run and so kept small: per item, a status byte per attempt index and the scores; usage as
    running totals. For adapters whose summaries read no score details
    (`Adapter.summary_reads_details`), a score is a float and a status byte until the summary
    makes `Score`s of them. Attempts and scores outside `items` x `k` are ignored."""

    def __init__(self, items: list[Item], k: int, keep_details: bool) -> None:
        self.k = k
        self.keep_details = keep_details
        self.status = {it.id: bytearray(k) for it in items}
        self.score_status = {it.id: bytearray(k) for it in items}
        self.values = {it.id: array("d", bytes(8 * k)) for it in items} if not keep_details else {}
        self.details: dict[str, dict[int, Score]] = {it.id: {} for it in items} if keep_details else {}
        self.usage: dict[str, Usage] = {}
        self.toolcalls: dict[str, int] | None = None
        """Tool-call conformance counts summed over the attempts (None: no call offered tools)."""
        self._errored: dict[Key, Attempt] = {}
        """Errored attempts (without transcripts), taken back out of the totals if `resume`
        replaces them."""

    def _live(self, item_id: str, index: int) -> bool:
        return item_id in self.status and 0 <= index < self.k

    def add_attempt(self, attempt: Attempt) -> None:
        """Record an attempt; it replaces an earlier one of the same item and index."""
        item_id, index = attempt.item_id, attempt.index
        if not self._live(item_id, index):
            return
        replaced = self._errored.pop((item_id, index), None)
        if replaced is not None:
            self._count(replaced, sign=-1)
        self._count(attempt, sign=1)
        ok = attempt.status == "ok"
        self.status[item_id][index] = _OK if ok else _ERROR
        if not ok:
            self._errored[(item_id, index)] = Attempt(item_id, index, usage=attempt.usage,
                                                      toolcalls=attempt.toolcalls)

    def _count(self, attempt: Attempt, sign: int) -> None:
        for role, counts in attempt.usage.items():
            self.usage.setdefault(sys.intern(role), Usage()).add(Usage.from_dict(counts), sign)
        if attempt.toolcalls is not None:
            if self.toolcalls is None:
                self.toolcalls = empty_counts()
            for name, n in attempt.toolcalls.items():
                self.toolcalls[name] = self.toolcalls.get(name, 0) + sign * n

    def add_score(self, score: Score) -> None:
        item_id, index = score.item_id, score.index
        if not self._live(item_id, index):
            return
        self.score_status[item_id][index] = _OK if score.status == "ok" else _ERROR
        if self.keep_details:
            self.details[item_id][index] = score
        else:
            self.values[item_id][index] = score.value

    def attempt_ok(self, key: Key) -> bool:
        return self._live(*key) and self.status[key[0]][key[1]] == _OK

    def score_ok(self, key: Key) -> bool:
        return self._live(*key) and self.score_status[key[0]][key[1]] == _OK

    def scores(self) -> list[Score]:
        """The scores of attempts that finished, by item and index."""
        out: list[Score] = []
        for item_id, graded in self.score_status.items():
            status = self.status[item_id]
            for index, state in enumerate(graded):
                if state == _NONE or status[index] != _OK:
                    continue
                if self.keep_details:
                    out.append(self.details[item_id][index])
                else:
                    out.append(Score(item_id, index, self.values[item_id][index],
                                     details=_NO_DETAILS, status="ok" if state == _OK else "error"))
        return out

    def counts(self) -> tuple[int, int]:
        """(attempts recorded, of which errors)."""
        return (sum(len(s) - s.count(_NONE) for s in self.status.values()),
                sum(s.count(_ERROR) for s in self.status.values()))

    def usage_summary(self) -> dict[str, Any]:
        total = self.usage.get("agent", Usage())
        out: dict[str, Any] = total.to_dict()
        out["by_role"] = {r: u.to_dict() for r, u in sorted(self.usage.items())}
        return out

    @classmethod
    def of(cls, items: list[Item], k: int, adapter: Adapter, attempts: Iterable[Attempt],
           scores: Iterable[Score]) -> Tally:
        tally = cls(items, k, adapter.summary_reads_details)
        for a in attempts:
            tally.add_attempt(a)
        for s in scores:
            tally.add_score(s)
        return tally


def summarize(config: RunConfig, adapter: Adapter, items: list[Item],
              attempts: Mapping[Key, Attempt], scores: Mapping[Key, Score],
              model_label: str) -> RunSummary:
    """The summary of a run's latest attempt and score records, by (item id, index)."""
    tally = Tally.of(items, config.task.k, adapter, attempts.values(), scores.values())
    return summarize_tally(config, adapter, items, tally, model_label)


def summarize_tally(config: RunConfig, adapter: Adapter, items: list[Item], tally: Tally,
                    model_label: str, *, run_id: str | None = None,
                    conditions: dict[str, Any] | None = None) -> RunSummary:
    spec = config.task
    k = spec.k
    n_attempts, n_errors = tally.counts()
    live_scores = tally.scores()
    n_score_errors = sum(1 for s in live_scores if s.status != "ok")
    by_item = group_by_item(live_scores)
    headline = adapter.headline(items, live_scores, k) or summarize_metric(spec.metric, by_item, k)
    expected = len(items) * k
    complete = (n_attempts == expected and n_errors == 0
                and len(live_scores) == expected and n_score_errors == 0)
    fields: dict[str, Any] = {
        "run_id": run_id,
        "task": spec.name,
        "benchmark": spec.benchmark,
        "group": spec.group,
        "model": model_label,
        "metric": spec.metric,
        "metric_label": metric_label(spec.metric, k),
        "reported_metric_label": spec.reported.metric_label,
        "k": k,
        **headline,
        "n_items": len(items),
        "n_attempts": n_attempts,
        "n_errors": n_errors,
        "n_score_errors": n_score_errors,
        "complete": complete,
        "usage": tally.usage_summary(),
        "toolcalls": tally.toolcalls,
        "reported_k2": spec.reported.k2,
        "breakdowns": adapter.breakdowns(items, live_scores),
        "conditions": conditions or {},
    }
    if spec.metric == "pass@k":
        fields["pass_at_k"] = pass_at_ks(by_item, (1, 5, 10))
    return RunSummary.model_validate(fields)


class Engine:
    """Runs (or resumes, or regrades) one run directory: decides what is left to do, hands it
    to an executor, journals every result as it comes back, and writes the summary."""

    def __init__(self, config: RunConfig, rundir: RunDir, manifest: RunManifest, *,
                 progress: bool = True, adapter: Adapter | None = None,
                 executor: Executor | None = None) -> None:
        self.config = config
        self.rundir = rundir
        self.manifest = manifest
        self.progress_enabled = progress
        self.adapter = adapter or get_adapter(config.task.adapter)
        self.executor = executor or make_executor("local")

    @contextlib.asynccontextmanager
    async def _session(self, *, n_solve: int, n_score: int, label: str, setup: bool,
                       solving: list[Item] | None = None) -> AsyncIterator[Progress]:
        """The setup and teardown `execute` and `rescore` share: models (those the items in
        `solving` need), executor, preflight (only when attempts are solved), the adapter's
        conditions, the progress bar."""
        config, adapter = self.config, self.adapter
        needs_models = n_solve > 0 or (adapter.needs_judge_model and n_score > 0)
        models = RunModels(config, adapter, solving) if needs_models else None
        progress = Progress(n_solve + n_score, label, enabled=self.progress_enabled)
        for retrying in models.retrying if models else ():
            retrying.notify = progress.note
        try:
            await self.executor.start(WorkPlan(config=config, adapter=adapter,
                                               run_id=self.manifest.run_id, models=models,
                                               n_solve=n_solve, n_score=n_score))
            self.manifest.executor = self.executor.describe()
            if n_solve and models is not None:
                await models.preflight()
                assert models.agent is not None
                self.manifest.model = _model_record(config, models.agent.describe())
            self.rundir.write_manifest(self.manifest)
            if setup:
                await self.executor.setup()
            await self._record_conditions()
            progress.live = self.executor.live
            progress.begin()
            ticker = asyncio.create_task(progress.ticking())
            try:
                yield progress
            finally:
                ticker.cancel()
        finally:
            progress.close()
            await self.executor.aclose()
            self.manifest.executor = self.executor.describe()  # with what happened
            if models is not None:
                await models.aclose()

    async def execute(self, items: list[Item]) -> RunSummary:
        config, rundir = self.config, self.rundir
        by_id = {it.id: it for it in items}
        k = config.task.k
        tally = Tally.of(items, k, self.adapter, (), rundir.scores().values())
        journal = rundir.attempts()
        to_score = [a for key, a in journal.items() if a.status == "ok" and a.item_id in by_id
                    and key[1] < k and not tally.score_ok(key)]
        for a in journal.values():
            tally.add_attempt(a)
        del journal  # transcripts: only those still to grade are kept
        done = {item_id: bytes(status) for item_id, status in tally.status.items()}  # a snapshot
        solving = [it for it in items if any(done[it.id][i] != _OK for i in range(k))]
        n_todo = sum(1 for it in solving for i in range(k) if done[it.id][i] != _OK)
        todo_pairs = ((it, i) for it in solving for i in range(k) if done[it.id][i] != _OK)
        async with self._session(n_solve=n_todo, n_score=len(to_score),
                                 label=config.task.name, setup=True,
                                 solving=solving) as progress:
            await self._pipeline(by_id, todo_pairs, n_todo, to_score, tally, progress)
        return self._finish(items, tally)

    async def _pipeline(self, by_id: dict[str, Item], todo: Iterable[tuple[Item, int]],
                        n_todo: int, to_score: list[Attempt], tally: Tally,
                        progress: Progress) -> None:
        """Solve `todo` and grade each attempt as it finishes (plus `to_score`), journaling
        every result the moment it comes back. Solvers wait when the graders fall behind, so
        at most a bounded number of transcripts is in memory."""
        executor, rundir = self.executor, self.rundir
        score_queue: asyncio.Queue[Attempt | None] = asyncio.Queue(
            maxsize=2 * max(1, executor.solve_slots, executor.score_slots))
        pending = list(reversed(to_score))
        to_score.clear()
        work = iter(todo)

        async def solver() -> None:
            for item, index in work:
                progress.attempt_started()
                try:
                    attempt = await executor.solve(item, index)
                finally:
                    progress.attempt_ended()
                rundir.append_attempt(attempt)
                tally.add_attempt(attempt)
                if attempt.status == "ok":
                    await score_queue.put(attempt)
                else:
                    progress.update(errors=1, node=node_label(attempt.worker))

        async def scorer() -> None:
            while True:
                attempt = pending.pop() if pending else await score_queue.get()
                if attempt is None:
                    return
                score = await executor.score(by_id[attempt.item_id], attempt)
                rundir.append_score(score)
                tally.add_score(score)
                tokens = sum(int(u.get("completion_tokens", 0)) for u in attempt.usage.values())
                progress.update(errors=int(score.status != "ok"), tokens=tokens,
                                node=node_label(attempt.worker))

        scorers = [asyncio.create_task(scorer()) for _ in range(max(1, executor.score_slots))]
        solvers = [asyncio.create_task(solver())
                   for _ in range(max(1, min(executor.solve_slots, n_todo)))] if n_todo else []
        async def solve_all() -> None:
            await asyncio.gather(*solvers)
            for _ in scorers:
                await score_queue.put(None)

        feeder = asyncio.create_task(solve_all())
        try:  # a grader that raises must not leave the solvers waiting on a full queue
            done, _ = await asyncio.wait([feeder, *scorers],
                                         return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()
        finally:
            for t in (feeder, *solvers, *scorers):
                t.cancel()

    async def rescore(self, items: list[Item]) -> RunSummary:
        """Regrade every solved attempt (no model calls); see `rescore_async`. The journal is
        streamed: an attempt is read when a grading slot is free and its transcript dropped
        once graded, so memory stays bounded by the slots, not the journal's size."""
        config, rundir = self.config, self.rundir
        by_id = {it.id: it for it in items}
        index = rundir.attempt_index()
        n_todo = sum(1 for (item_id, i), (_, status) in index.items()
                     if status == "ok" and item_id in by_id and i < config.task.k)
        tally = Tally(items, config.task.k, self.adapter.summary_reads_details)
        async with self._session(n_solve=0, n_score=n_todo, label=f"rescore {config.task.name}",
                                 setup=False) as progress:
            gate = asyncio.Semaphore(max(1, self.executor.score_slots))
            pending: set[asyncio.Task[None]] = set()
            with rundir.scores_writer() as write:

                async def one(a: Attempt) -> None:
                    try:
                        s = await self.executor.score(by_id[a.item_id], a)
                    finally:
                        gate.release()
                    write(s)
                    tally.add_score(s)
                    progress.update(errors=int(s.status != "ok"), node=node_label(a.worker))

                try:
                    for a in rundir.attempts_at(offset for offset, _ in index.values()):
                        tally.add_attempt(a)
                        if a.status == "ok" and a.item_id in by_id and a.index < config.task.k:
                            await gate.acquire()
                            task = asyncio.create_task(one(a))
                            pending.add(task)
                            task.add_done_callback(pending.discard)
                    await asyncio.gather(*pending)
                finally:
                    for task in pending:
                        task.cancel()
        return self._finish(items, tally)

    async def _record_conditions(self) -> None:
        self.manifest.conditions = await self.executor.conditions()
        self.rundir.write_manifest(self.manifest)

    def _finish(self, items: list[Item], tally: Tally) -> RunSummary:
        summary = summarize_tally(self.config, self.adapter, items, tally,
                                  self.manifest.model.label, run_id=self.manifest.run_id,
                                  conditions=self.manifest.conditions)
        if type(self.adapter).exports is not Adapter.exports:  # transcripts from the journal
            exports = self.adapter.exports(self.config, items,
                                           list(self.rundir.attempts().values()))
            for name, rows in exports.items():
                self.rundir.write_jsonl(name, rows)
        self.rundir.write_summary(summary)
        self.manifest.mark_ended("finished" if summary.complete else "incomplete")
        self.rundir.write_manifest(self.manifest)
        return summary


def _ended(engine: Engine, status: RunStatus, *, signal: str | None = None,
           error: str | None = None) -> None:
    """Record in the manifest how the run ended, if it can still be written."""
    engine.manifest.mark_ended(status, signal=signal, error=error)
    with contextlib.suppress(StorageError):
        engine.rundir.write_manifest(engine.manifest)


async def _drive(engine: Engine, items: list[Item], *, rescore: bool = False) -> RunSummary:
    """Run the engine, recording in the manifest how the run ended when it did not finish:
    "interrupted" (with the signal), "stopped" (run-fatal endpoint error) or "failed" (with
    the error). A failed rescore leaves the manifest as it was (the old scores stand)."""
    with cancel_on_stop_signals(asyncio.current_task()) as received:
        try:
            return await (engine.rescore(items) if rescore else engine.execute(items))
        except (asyncio.CancelledError, KeyboardInterrupt):
            if not rescore:
                _ended(engine, "interrupted", signal=signal_name(received[0] if received
                                                                 else signal.SIGINT))
            if received:
                raise Interrupted(received[0]) from None
            raise
        except RunFatalError as exc:
            _ended(engine, "stopped", error=str(exc))
            raise
        except Exception as exc:
            if not rescore:
                cause = str(exc) if isinstance(exc, K2EvalError) else f"{type(exc).__name__}: {exc}"
                _ended(engine, "failed", error=cause)
            raise
        finally:
            engine.rundir.close()
            await _cleanup_sandboxes()


async def _cleanup_sandboxes() -> None:
    """Remove any container this process still holds (after a crash or Ctrl-C)."""
    if "k2eval.sandbox.cleanup" not in sys.modules:
        return  # no sandbox was ever created by this process
    from k2eval.sandbox import close_all_sandboxes

    with contextlib.suppress(Exception):
        await asyncio.to_thread(close_all_sandboxes)


def _model_record(config: RunConfig, described: dict[str, Any] | None = None) -> ModelRecord:
    """The manifest's model entry; the backend's own description is added once it exists."""
    return ModelRecord.model_validate({**(described or {}), "label": config.model.spec,
                                       "spec": config.model.to_dict()})


ExecutorChoice = Executor | str | None
"""An `Executor`, or a name for `make_executor` ("local", the default, or "ray")."""


def _executor(choice: ExecutorChoice) -> Executor:
    return choice if isinstance(choice, Executor) else make_executor(choice or "local")


async def run_async(config: RunConfig, out_dir: Path, run_id: str | None = None, *,
                    progress: bool = True, argv: list[str] | None = None,
                    executor: ExecutorChoice = None) -> Run:
    chosen = _executor(executor)
    adapter = get_adapter(config.task.adapter)
    items = await asyncio.to_thread(load_items, adapter, config)
    run_id = run_id or new_run_id(config.task.name)
    manifest = RunManifest(
        run_id=run_id, k2eval_version=_version(), git_sha=_git_sha(),
        python=sys.version.split()[0], platform=platform.platform(), command=argv,
        config=config.to_dict(), model=_model_record(config),
        dataset=DatasetRecord(source=config.data or config.task.dataset.describe(),
                              fingerprint=dataset_fingerprint(items), n_items=len(items)),
        seed=config.seed, started=time.time(), status="running")
    rundir = RunDir.create(Path(out_dir) / run_id, manifest, Redactor(_secrets(config)))
    engine = Engine(config, rundir, manifest, progress=progress, adapter=adapter, executor=chosen)
    summary = await _drive(engine, items)
    return Run(rundir.path, summary)


def _reopen(path: Path, *, progress: bool, executor: ExecutorChoice,
            base_urls: dict[str, str] | None = None) -> tuple[Engine, list[Item]]:
    rundir = RunDir.open(Path(path))
    manifest = rundir.read_manifest()
    config = RunConfig.from_dict(manifest.config).with_base_urls(base_urls or {})
    rundir.redact = Redactor(_secrets(config))
    engine = Engine(config, rundir, manifest, progress=progress, executor=_executor(executor))
    items = load_items(engine.adapter, config)
    fp = dataset_fingerprint(items)
    if fp != manifest.dataset.fingerprint:
        raise RunDirError(f"the dataset changed since {path} was started (fingerprint {fp} != "
                          f"{manifest.dataset.fingerprint}): use the same --data")
    return engine, items


async def resume_async(path: Path, *, progress: bool = True, executor: ExecutorChoice = None,
                       base_urls: dict[str, str] | None = None) -> Run:
    """Finish a run: attempts already journaled as finished are not repeated; errored ones are.
    Any executor can resume a run started on any other. `base_urls` (by role: model,
    user_model, judge_model) give back credentials in base URLs, which are never recorded."""
    engine, items = await asyncio.to_thread(_reopen, path, progress=progress, executor=executor,
                                            base_urls=base_urls)
    engine.manifest.mark_resumed()
    engine.rundir.write_manifest(engine.manifest)
    summary = await _drive(engine, items)
    return Run(engine.rundir.path, summary)


async def rescore_async(path: Path, *, progress: bool = True,
                        executor: ExecutorChoice = None) -> Run:
    """Recompute every score from stored attempts, without calling the model.

    Attempts that never finished stay unfinished (`resume` completes them)."""
    engine, items = await asyncio.to_thread(_reopen, path, progress=progress, executor=executor)
    summary = await _drive(engine, items, rescore=True)
    return Run(engine.rundir.path, summary)


def run_task(config: RunConfig, out_dir: Path, run_id: str | None = None, *,
             progress: bool = True, executor: ExecutorChoice = None) -> Path:
    """Synchronous entry point: run a task to completion and return its run directory."""
    return asyncio.run(run_async(config, out_dir, run_id, progress=progress,
                                 executor=executor)).path


def resume_run(path: Path, *, progress: bool = True, executor: ExecutorChoice = None,
               base_urls: dict[str, str] | None = None) -> Run:
    return asyncio.run(resume_async(Path(path), progress=progress, executor=executor,
                                    base_urls=base_urls))


def rescore_run(path: Path, *, progress: bool = True, executor: ExecutorChoice = None) -> Run:
    return asyncio.run(rescore_async(Path(path), progress=progress, executor=executor))
