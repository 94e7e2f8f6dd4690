"""`k2eval report`, `k2eval compare` and `k2eval nightly [reindex]`."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

from k2eval.cli import add_executor_flags, executor_of
from k2eval.errors import UserError

FORMATS = ("md", "csv", "html", "json")


SUITE_EXAMPLE = """\
suite file (relative data paths are relative to it; `name` names a series across nights):

  name: nightly-core
  runs:
    - task: aime2025
      model: openai:my-checkpoint
      base_url: http://localhost:8000/v1
      data: data/aime25.jsonl
      k: 8
    - name: gpqa-quick
      task: gpqa-diamond
      model: openai:my-checkpoint
      base_url: http://localhost:8000/v1
      data: data/gpqa.zip
      limit: 100

examples:
  k2eval nightly --suite nightly.yaml --history sqlite:///nightly.db --out nights
  k2eval nightly --suite nightly.yaml --history nightly.db --out nights --baseline 20250601-020000
  k2eval nightly reindex --history nightly.db --out nights
"""


def _add(sub: argparse._SubParsersAction, name: str, help: str, description: str,
         epilog: str | None = None) -> argparse.ArgumentParser | None:
    """Add a subcommand unless the main parser already holds one by that name."""
    if name in sub.choices:
        return None
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=textwrap.fill(description, 79), epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


def register(sub: argparse._SubParsersAction) -> None:
    p = _add(sub, "report", help="comparison table of run directories (md, csv, html, json)",
             description="The comparison table in the layout of the Kimi K2 README: one row per "
                         "benchmark and metric, one column per model (score [95% CI]), next to "
                         "the reported numbers.")
    if p is not None:
        p.add_argument("runs", nargs="*", metavar="RUN_DIR",
                       help="run directories, or folders holding run directories")
        p.add_argument("--history", metavar="DB",
                       help="also (or instead) the runs of a night from a nightly history: "
                            "SQLite file path or postgresql://user@host:port/db")
        p.add_argument("--night", metavar="NIGHT_ID",
                       help="with --history: which night (default: the latest)")
        p.add_argument("--format", choices=FORMATS, help="output format (default: from -o, else md)")
        p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
        p.set_defaults(func=cmd_report)
    register_dashboard(sub)

    p = _add(sub, "compare", help="side-by-side comparison page of runs",
             description="One self-contained HTML page comparing runs of the same task: deltas "
                         "with paired significance tests, a filterable per-item table and the "
                         "transcripts side by side. The first run is the baseline.")
    if p is not None:
        p.add_argument("runs", nargs="+", metavar="RUN",
                       help="two or more run directories (or folders of runs, matched by task)")
        p.add_argument("-o", "--output", metavar="FILE", required=True, help="the HTML page to write")
        p.add_argument("--force", action="store_true",
                       help="compare runs of different tasks or protocols (marked on the page)")
        p.add_argument("--attempts", type=int, default=4, metavar="N",
                       help="attempts per item and run embedded in the page (default 4)")
        p.set_defaults(func=cmd_compare)

    p = _add(sub, "nightly", help="run a suite, record history, report regressions",
             description="Run a suite (YAML list of task + model + overrides), index every run in "
                         "the history database, compare each with its baseline and write "
                         "regression.html / regression.md, whatever happened to the runs. Exit status: "
                         "0 no regression, 1 a significant regression, 2 bad input, 3 a run "
                         "failed or is incomplete, 5 the pages cannot be written, 128+N the "
                         "night was stopped by signal N (after writing its pages).",
             epilog=SUITE_EXAMPLE)
    if p is None:
        return
    p.add_argument("--suite", metavar="SUITE.yaml", help="the suite to run")
    _history_flags(p, required=False)
    p.add_argument("--baseline", default="latest", metavar="latest|NIGHT_ID|RUN_ID",
                   help="compare with the latest earlier night (default), a night or a run")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="significance level of the paired tests (default 0.05)")
    p.add_argument("--min-delta", type=float, default=0.0, metavar="POINTS",
                   help="smallest change in percentage points that counts (default 0)")
    p.add_argument("--cache", metavar="PATH|URL",
                   help="response cache for every run whose suite entry names none "
                        "(see `k2eval run --cache`)")
    execution = p.add_argument_group("execution (each run of the suite)")
    add_executor_flags(execution)
    execution.add_argument(
        "--parallel-runs", type=int, metavar="N",
        help="with --executor ray, how many runs of the suite are in flight at once (default: "
             "all). Each run keeps its own --concurrency, so two runs against one endpoint "
             "may send it twice that many calls at once. The local executor runs them one "
             "after another")
    p.set_defaults(func=cmd_nightly)
    nsub = p.add_subparsers(dest="nightly_command", metavar="SUBCOMMAND")
    r = nsub.add_parser("reindex", help="rebuild the history database from the run directories",
                        description="Rebuild the history database from the nights under --out "
                                    "(run directories are the source of truth). The new index "
                                    "is built aside and replaces the old one only when "
                                    "complete; run directories without a score (failed, "
                                    "unfinished, damaged) are skipped and listed.")
    _history_flags(r, required=True)
    r.set_defaults(func=cmd_reindex)


def register_dashboard(sub: argparse._SubParsersAction) -> None:
    p = _add(sub, "dashboard", help="the nightly dashboard: every series across nights",
             description="Write a self-contained static site from the history database: for "
                         "every series (task x model x protocol) the score per night with its "
                         "confidence band, the nights where the paired test fired, token use and "
                         "errors per night, and links to each night's pages. `k2eval nightly` "
                         "writes it to OUT/dashboard after every night; this rebuilds it anywhere.",
             epilog="example:\n  k2eval dashboard --history postgresql://k2eval@db:5432/k2eval "
                    "-o /srv/www/k2eval")
    if p is None:
        return
    p.add_argument("--history", required=True, metavar="DB",
                   help="history database: SQLite file path or postgresql://user@host:port/db")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write")
    p.add_argument("--nights", type=int, default=60, help="nights per series (default 60)")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="significance level of the paired tests (default 0.05)")
    p.add_argument("--min-delta", type=float, default=0.0, metavar="POINTS",
                   help="smallest change in percentage points that counts (default 0)")
    p.set_defaults(func=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from k2eval.report.dashboard import write_dashboard
    from k2eval.report.nightly import Thresholds
    from k2eval.store.history import open_history

    if args.nights < 1:
        raise UserError(f"--nights must be >= 1 (got {args.nights})")
    store = open_history(args.history)
    try:
        page = write_dashboard(store, args.output, nights=args.nights,
                               thresholds=Thresholds(args.alpha, args.min_delta))
    finally:
        store.close()
    print(f"wrote {page}")
    return 0


def _history_flags(p: argparse.ArgumentParser, *, required: bool) -> None:
    # `nightly` checks its own flags so that `nightly reindex --history ...` parses
    p.add_argument("--history", required=required, metavar="DB",
                   help="history database: SQLite file path (or sqlite:///PATH) or "
                        "postgresql://user@host:port/db (password in PGPASSWORD)")
    p.add_argument("--out", required=required, metavar="DIR", help="folder of the nightly runs")


def cmd_report(args: argparse.Namespace) -> int:
    from k2eval.report.runs import load_runs
    from k2eval.report.table import build_table, render_table_html

    fmt = args.format or (Path(args.output).suffix.lstrip(".") if args.output else "md")
    if fmt not in FORMATS:
        raise UserError(f"-o {args.output}: cannot tell the format; pass --format "
                        f"({', '.join(FORMATS)})")
    if args.night and not args.history:
        raise UserError("--night needs --history")
    paths = list(args.runs) + (_night_runs(args.history, args.night) if args.history else [])
    if not paths:
        raise UserError("report needs run directories or --history (k2eval report runs/* or "
                        "k2eval report --history nightly.db)")
    skipped: list[str] = []
    table = build_table(load_runs(paths, skipped=skipped))
    _warn_skipped(skipped)
    text = {"md": table.to_markdown, "csv": table.to_csv, "json": table.to_json,
            "html": lambda: render_table_html(table)}[fmt]()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _night_runs(history: str, night_id: str | None) -> list[str]:
    """The run directories the history indexed for a night (default: the latest one)."""
    from k2eval.store.history import open_history

    store = open_history(history)
    try:
        nights = store.nights()
        if not nights:
            raise UserError(f"--history {history}: the history holds no night yet")
        night = nights[-1] if night_id is None else store.night(night_id)
        if night is None:
            latest = ", ".join(n.night_id for n in nights[-3:])
            raise UserError(f"--night {night_id}: no such night in the history (latest: {latest})")
        runs = store.runs_of_night(night.night_id)
    finally:
        store.close()
    missing = [r.run_dir for r in runs if not Path(r.run_dir).is_dir()]
    for path in missing:
        print(f"warning: left out {path}: the run directory is not on this machine",
              file=sys.stderr)
    return [r.run_dir for r in runs if r.run_dir not in missing]


def _warn_skipped(skipped: list[str]) -> None:
    for reason in skipped:
        print(f"warning: left out {reason}", file=sys.stderr)


def cmd_compare(args: argparse.Namespace) -> int:
    from k2eval.report.compare import build_comparison, render_compare_page

    if args.attempts < 1:
        raise UserError(f"--attempts must be >= 1 (got {args.attempts})")
    comparison = build_comparison(args.runs, force=args.force)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_compare_page(comparison, max_attempts=args.attempts), encoding="utf-8")
    for task in comparison.tasks:
        for run, test in zip(task.runs[1:], task.tests, strict=True):
            print(f"{task.title}: {run.run_id} vs {task.runs[0].run_id}: "
                  f"{100 * test.delta:+.1f} points on {test.n} shared items, "
                  f"p = {test.p_value:.3g} ({test.method})")
    for run in comparison.not_compared:
        print(f"{run.task}: {run.run_id} not compared: {run.status_text}")
    _warn_skipped(comparison.skipped)
    if comparison.forced:
        print("warning: compared runs that differ in task or protocol (--force)", file=sys.stderr)
    print(f"wrote {out}")
    return 0


def cmd_nightly(args: argparse.Namespace) -> int:
    from k2eval.report.nightly import Thresholds, run_nightly
    from k2eval.store.history import open_history

    missing = [flag for flag in ("suite", "history", "out") if not getattr(args, flag)]
    if missing:
        raise UserError(f"nightly needs {', '.join('--' + m for m in missing)} "
                        "(k2eval nightly --suite SUITE.yaml --history DB --out DIR)")
    if not 0 < args.alpha < 1:
        raise UserError(f"--alpha must be between 0 and 1 (got {args.alpha})")
    store = open_history(args.history)
    try:
        result = run_nightly(args.suite, store, args.out, baseline=args.baseline,
                             thresholds=Thresholds(args.alpha, args.min_delta),
                             cache=args.cache, runner=_suite_runner(args))
    finally:
        store.close()
    for v in result.verdicts:
        print(f"{v.status:>14}  {v.slot}  {v.note}")
    print(f"wrote {result.night_dir / 'regression.html'} and regression.md")
    regressed = result.by_status("regressed")
    if regressed:
        print(f"REGRESSION in {', '.join(v.slot for v in regressed)}", file=sys.stderr)
    if result.interrupted is not None:
        print(f"the night was {result.interrupted}: runs not done are marked failed",
              file=sys.stderr)
    return result.exit_code


SUITE_READY_S = 24 * 3600.0
"""How long a run of a concurrent suite waits for its first Ray worker (its sandbox slots may
be held by the suite's other sandboxed runs until they end)."""


def _suite_runner(args: argparse.Namespace) -> Any:
    """None (the default runner, one run after another) for the local executor; for Ray, every
    run of the suite at once (at most --parallel-runs), sharing one connection to the cluster,
    each on a fresh executor."""
    import functools

    from k2eval.engine.executors import make_executor
    from k2eval.engine.runner import run_async
    from k2eval.report.nightly import ConcurrentRuns

    executor_of(args)  # bad executor flags fail before any run
    at_once = args.parallel_runs
    if args.executor == "local":
        if at_once is not None:
            raise UserError("--parallel-runs only applies with --executor ray (the local "
                            "executor runs the suite's runs one after another)")
        return None
    if at_once is not None and at_once < 1:
        raise UserError(f"--parallel-runs must be >= 1 (got {at_once})")
    from k2eval.engine.executors.ray_cluster import (
        probe_address,
        resolve_address,
        shared_connection,
    )

    probe_address(resolve_address(args.ray_address))  # before the night is recorded
    async def run(config: Any, out_dir: Path) -> Path:
        executor = make_executor(args.executor, address=args.ray_address,
                                 workers=args.ray_workers, ready_timeout_s=SUITE_READY_S)
        return (await run_async(config, out_dir, progress=False, executor=executor)).path

    return ConcurrentRuns(run, at_once, functools.partial(shared_connection, args.ray_address))


def cmd_reindex(args: argparse.Namespace) -> int:
    from k2eval.report.nightly import reindex
    from k2eval.store.database import redact_url
    from k2eval.store.history import open_history

    store = open_history(args.history)
    try:
        result = reindex(store, Path(args.out))
    finally:
        store.close()
    print(f"indexed {result.runs} runs from {result.nights} nights into "
          f"{redact_url(args.history)}")
    if result.skipped:
        print(f"skipped {len(result.skipped)} run directories without a score (failed, unfinished "
              "or damaged; resume or rerun them, then reindex):")
        for path, why in result.skipped:
            print(f"  {path}: {why}")
    if result.left_out:
        print(f"left out {len(result.left_out)} run directories outside any night "
              f"(no night.json above them), e.g. {result.left_out[0]}")
    return 0
