"""The `k2eval` command line."""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib
import json
import signal
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from k2eval.errors import (
    EXIT_BAD_INPUT,
    EXIT_INCOMPLETE,
    EXIT_INFRA,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_SIGNAL_BASE,
    EXIT_STOPPED,
    EXIT_STORAGE,
    Interrupted,
    K2EvalError,
    RunFatalError,
    StorageError,
    UserError,
)

if TYPE_CHECKING:
    from k2eval.store.runlog import RunSummary

RUN_DIR: list[Path] = []
"""The run directory the current command writes, named by the Ctrl-C and run-stopped messages."""

EPILOG = textwrap.dedent("""\
    examples:
      k2eval tasks
      export OPENAI_API_KEY=...            # any value for servers without auth
      k2eval run --task aime2025 --model openai:kimi-k2 --base-url http://localhost:8000/v1
      k2eval run --task gpqa-diamond --model openai:gpt-4.1 --data dataset.zip --k 2 --limit 20
      k2eval resume runs/aime2025-20250101-120000-ab12     # after a crash or Ctrl-C
      k2eval rescore runs/aime2025-20250101-120000-ab12    # regrade, no model calls
      k2eval report runs/* --format md

    Run directories hold manifest.json, attempts.jsonl, scores.jsonl and summary.json.

    exit status: 0 finished, 2 bad input, 3 incomplete (resume it), 4 stopped by the endpoint,
    5 output cannot be written (disk full, read-only), 6 infrastructure, 70 internal error,
    128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM); 1 is only nightly's "regression".
    """)

# Modules that add their own subcommands through `register(subparsers)`, by command name.
# Only the module of the command being run is imported, so heavy imports stay off the
# start-up path of every other command.
PLUGINS = {
    "sandbox": "k2eval.sandbox.cli",
    "reference": "k2eval.models.reference.cli",
    "serve": "k2eval.models.reference.cli",
    "report": "k2eval.report.cli",
    "compare": "k2eval.report.cli",
    "nightly": "k2eval.report.cli",
    "dashboard": "k2eval.report.cli",
    "swebench": "k2eval.adapters.swebench.cli",
    "cache": "k2eval.store.cli",
}
PLUGIN_HELP = {
    "sandbox": "Docker sandboxes: build images, doctor, gc",
    "reference": "the local reference MoE model (init a checkpoint)",
    "serve": "serve a reference checkpoint as an OpenAI-compatible endpoint",
    "report": "comparison table of run directories (md, csv, html, json)",
    "compare": "side-by-side comparison page of runs",
    "nightly": "run a suite, record history, report regressions",
    "dashboard": "the nightly dashboard: every series across nights",
    "swebench": "SWE-bench: grade predictions, prepare images",
    "cache": "the response cache: stats, prune",
}


def _add_model_flags(p: argparse.ArgumentParser, role: str = "") -> None:
    pre = f"{role}-" if role else ""
    who = f"the {role} model" if role else "the model"
    p.add_argument(f"--{pre}base-url", help=f"endpoint of {who} (default: $OPENAI_BASE_URL)")
    p.add_argument(f"--{pre}api-key-env", metavar="VAR",
                   help=f"environment variable holding {who}'s API key (default: OPENAI_API_KEY)")


def add_executor_flags(p: Any) -> None:
    """--executor, --ray-address, --ray-workers (`run`, `resume`, `rescore`, `nightly`); read by
    `executor_of`."""
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="where attempts run: local (this process, default) or ray (the workers "
                        "of a Ray cluster; pip install 'k2eval[ray]')")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="Ray cluster to use with --executor ray (default: $RAY_ADDRESS, else "
                        "auto: the cluster `ray start` started on this machine)")
    p.add_argument("--ray-workers", type=int, metavar="N",
                   help="Ray worker processes for tasks without sandboxes (default: one per "
                        "node); sandboxed tasks use one per sandbox_slots unit")


def executor_of(args: argparse.Namespace) -> Any:
    """A fresh executor for one run, from the flags of `add_executor_flags`."""
    from k2eval.engine.executors import make_executor

    return make_executor(args.executor, address=args.ray_address, workers=args.ray_workers)


def _option(text: str) -> tuple[str, Any]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, yaml.safe_load(value)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _add_reasoning_flags(p: argparse.ArgumentParser) -> None:
    r = p.add_argument_group("reasoning models and request options (the model under test)")
    r.add_argument("--reasoning-format",
                   choices=["auto", "reasoning_content", "reasoning", "think-tags", "none"],
                   help="where the endpoint returns reasoning: auto (default: the "
                        "reasoning_content or reasoning field, and <think> blocks in the "
                        "content), one of those only, or none (leave the content as it is). "
                        "Graders read the answer without its reasoning")
    r.add_argument("--reasoning-passback", choices=["auto", "keep", "drop"],
                   help="send earlier reasoning back in assistant turns: auto (default: in the "
                        "field it came in, as Kimi K2 Thinking and DeepSeek need across tool "
                        "calls; <think> reasoning is dropped), keep (all), drop (none)")
    r.add_argument("--reasoning-effort", metavar="LEVEL",
                   help="sent as reasoning_effort in every request (e.g. low, medium, high)")
    r.add_argument("--extra-body", type=_json_object, metavar="JSON",
                   help="JSON object merged into every request and recorded in the manifest, "
                        "e.g. '{\"chat_template_kwargs\": {\"thinking\": true}}'")


def _add_run_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="evaluate a model on a task",
        description="Evaluate a model on a task under the task's protocol (see `k2eval tasks`). "
                    "Flags override the protocol; the manifest records what was used.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--task", required=True,
                   help="task name (see `k2eval tasks`), or lm-eval:<task-or-group> for an "
                        "lm-evaluation-harness task")
    p.add_argument("--model", required=True,
                   help="openai:<model-name> (any OpenAI-compatible endpoint) or reference:<checkpoint-dir>")
    _add_model_flags(p)
    p.add_argument("--data", metavar="PATH",
                   help="local dataset in the benchmark's native format (default: the hub); "
                        "for lm-eval:<task>, a folder of extra lm-eval task YAMLs")
    g = p.add_argument_group("protocol overrides (defaults from the task)")
    g.add_argument("--k", type=int, help="samples per item")
    g.add_argument("--max-tokens", type=int, help="max output tokens per model call")
    g.add_argument("--temperature", type=float)
    g.add_argument("--top-p", type=float)
    g.add_argument("--max-steps", type=int,
                   help="per-attempt step limit: agent model calls (Tau2: every message "
                        "between agent, user and environment, as tau2 counts max_steps)")
    g.add_argument("--max-total-tokens", type=int, help="per-attempt token budget")
    g.add_argument("--option", action="append", type=_option, default=[], metavar="KEY=VALUE",
                   help="adapter option (repeatable), e.g. --option tool_format=native")
    g.add_argument("--start-date", help="LiveCodeBench: first contest date (YYYY-MM-DD)")
    g.add_argument("--end-date", help="LiveCodeBench: last contest date (YYYY-MM-DD)")
    g.add_argument("--release", help="LiveCodeBench: release version, e.g. release_v6")
    g.add_argument("--tool-format", choices=["prompt", "native"], help="ACEBench: how tools are offered")
    e = p.add_argument_group("execution")
    e.add_argument("--limit", type=int, help="only the first N items")
    e.add_argument("--item", action="append", default=[], metavar="ID", help="only these item ids")
    e.add_argument("--concurrency", type=int, help="model calls in flight (default 32)")
    e.add_argument("--sandboxes", type=int, help="sandboxes in use at once (default 4)")
    e.add_argument("--seed", type=int, help="run seed (choice orders, sampling seeds); default 0")
    e.add_argument("--request-timeout", type=float,
                   help="seconds one model call may take in all, however the server trickles "
                        "its answer (default 600)")
    e.add_argument("--max-tries", type=int, help="tries per model call before an error (default 6)")
    e.add_argument("--max-retry-after", type=float, metavar="SECONDS",
                   help="longest wait a server's Retry-After may impose before a retry "
                        "(default 60)")
    e.add_argument("--http-client", choices=["sdk", "aiohttp"],
                   help="openai: models: direct aiohttp (default; least start-up time and CPU "
                        "per call) or the openai SDK (for endpoints that need its auth or "
                        "headers); both classify errors alike")
    e.add_argument("--cache", nargs="?", const="default", metavar="PATH|URL",
                   help="serve repeated requests from a response cache: a SQLite file (default "
                        "~/.cache/k2eval/responses.db) or postgresql://user@host/db")
    e.add_argument("--cache-mode", choices=["read-write", "read-only", "refresh", "off"],
                   help="read-write (default with --cache), read-only (never store), refresh "
                        "(call the model, overwrite), off")
    add_executor_flags(e)
    _add_reasoning_flags(p)
    e.add_argument("--out", default="runs", help="directory for run directories (default ./runs)")
    e.add_argument("--run-id", help="name of the run directory (default: task-timestamp-random)")
    e.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    for role in ("user", "judge"):
        r = p.add_argument_group(f"{role} model (tau2, ACEBench)")
        r.add_argument(f"--{role}-model", help=f"{role} model spec, e.g. openai:gpt-4.1")
        _add_model_flags(r, role)
    p.set_defaults(func=cmd_run)


def _run_config(args: argparse.Namespace, task: Any) -> Any:
    from k2eval.engine.config import build_run_config, model_spec

    options = dict(args.option)
    for flag in ("start_date", "end_date", "release", "tool_format"):
        if getattr(args, flag):
            options[flag] = getattr(args, flag)
    return build_run_config(
        task, args.model, data=args.data, limit=args.limit, concurrency=args.concurrency,
        seed=args.seed, sandboxes=args.sandboxes, item_ids=args.item, options=options,
        base_url=args.base_url, api_key_env=args.api_key_env,
        request_timeout_s=args.request_timeout, max_tries=args.max_tries,
        http_client=args.http_client, max_retry_after_s=args.max_retry_after,
        cache=args.cache, cache_mode=args.cache_mode,
        user_model=model_spec(args.user_model, base_url=args.user_base_url,
                              api_key_env=args.user_api_key_env),
        judge_model=model_spec(args.judge_model, base_url=args.judge_base_url,
                               api_key_env=args.judge_api_key_env),
        k=args.k, max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
        max_steps=args.max_steps, max_total_tokens=args.max_total_tokens,
        reasoning_format=args.reasoning_format, reasoning_passback=args.reasoning_passback,
        reasoning_effort=args.reasoning_effort, extra_body=args.extra_body)


def _print_summary(summary: RunSummary, path: Path) -> int:
    score, ci = summary.score, summary.ci95 or [None, None]
    shown = "n/a" if score is None else f"{score:.2f}"
    ci_text = "" if ci[0] is None or ci[1] is None else f" [95% CI {ci[0]:.2f}, {ci[1]:.2f}]"
    ref = f" (K2 reported {summary.reported_k2})" if summary.reported_k2 else ""
    print(f"{summary.task}  {summary.model}  {summary.metric_label} = {shown}{ci_text}"
          f"{ref}  k={summary.k} items={summary.n_items} attempts={summary.n_attempts} "
          f"errors={summary.n_errors}")
    print(f"run directory: {path}")
    if not summary.complete:
        print(f"warning: the run is incomplete ({summary.n_errors} attempt errors, "
              f"{summary.n_score_errors} grading errors); the score covers only the "
              f"finished attempts. Retry them with: k2eval resume {path}", file=sys.stderr)
        return EXIT_INCOMPLETE
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from k2eval.engine.runner import new_run_id, run_async
    from k2eval.spec import load_task
    from k2eval.store.rundir import check_writable

    task = load_task(args.task)
    check_writable(Path(args.out))
    argv = _redacted_argv()
    if task.members:
        return _run_group(args, task, argv)
    config = _run_config(args, task)
    args.run_id = args.run_id or new_run_id(task.name)
    RUN_DIR.append(Path(args.out) / args.run_id)
    run = asyncio.run(run_async(config, Path(args.out), args.run_id,
                                progress=not args.no_progress, argv=argv,
                                executor=executor_of(args)))
    return _print_summary(run.summary, run.path)


def _run_group(args: argparse.Namespace, group: Any, argv: list[str]) -> int:
    """Run each member task; report their micro-average (items pooled across members)."""
    from k2eval.engine.runner import new_run_id, run_async
    from k2eval.spec import load_task
    from k2eval.store.rundir import write_json_atomic

    group_dir = Path(args.out) / (args.run_id or new_run_id(group.name))
    members: list[RunSummary] = []
    worst = 0
    for name in group.members:
        config = _run_config(args, load_task(name))
        RUN_DIR.append(group_dir / name)
        run = asyncio.run(run_async(config, group_dir, name, progress=not args.no_progress,
                                    argv=argv, executor=executor_of(args)))
        worst = max(worst, _print_summary(run.summary, run.path))
        members.append(run.summary)
    # Each member's score is the mean over its scored items: pool them by that count.
    scored = [(m.score, m.n_scored_items) for m in members if m.score is not None]
    n = sum(count for _, count in scored)
    micro = sum(score * count for score, count in scored) / n if n else None
    summary = {"task": group.name, "members": [m.task for m in members], "micro_average": micro,
               "n_items": n, "member_scores": {m.task: m.score for m in members}}
    write_json_atomic(group_dir / "group_summary.json", summary)
    print(f"{group.name} micro-average = {'n/a' if micro is None else f'{micro:.2f}'} over {n} items"
          f" -> {group_dir}")
    return worst


def cmd_resume(args: argparse.Namespace) -> int:
    from k2eval.engine.runner import resume_run

    RUN_DIR.append(Path(args.run_dir))
    urls = {role: url for role, url in (("model", args.base_url), ("user_model", args.user_base_url),
                                        ("judge_model", args.judge_base_url)) if url}
    run = resume_run(Path(args.run_dir), progress=not args.no_progress, base_urls=urls,
                     executor=executor_of(args))
    return _print_summary(run.summary, run.path)


def cmd_rescore(args: argparse.Namespace) -> int:
    from k2eval.engine.runner import rescore_run

    RUN_DIR.append(Path(args.run_dir))
    run = rescore_run(Path(args.run_dir), progress=not args.no_progress,
                      executor=executor_of(args))
    return _print_summary(run.summary, run.path)


def cmd_tasks(args: argparse.Namespace) -> int:
    from k2eval.spec import all_tasks

    tasks = all_tasks()
    if args.json:
        print(json.dumps({n: t.to_dict() for n, t in sorted(tasks.items())}, indent=2))
        return 0
    header = ("task", "metric", "k", "max_tokens", "temp", "K2", "dataset")
    rows = [header]
    for name, t in sorted(tasks.items()):
        if t.members:
            rows.append((name, "micro-avg", "", "", "", t.reported.k2 or "",
                         f"pooled items of {', '.join(t.members)}"))
            continue
        rows.append((name, t.reported.metric_label or t.metric, str(t.k), str(t.max_output_tokens),
                     f"{t.temperature:g}", t.reported.k2 or "", t.dataset.describe()))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    return 0


def _redacted_argv() -> list[str]:
    """The command line as typed, minus anything that looks like a secret value."""
    from k2eval.spec import redact_url_credentials

    out, hide_next = [], False
    for a in sys.argv:
        if hide_next:
            out.append("[REDACTED]")
            hide_next = False
            continue
        if a.startswith(("--api-key=", "--token=")):
            out.append(a.split("=", 1)[0] + "=[REDACTED]")
            continue
        hide_next = a in ("--api-key", "--token")
        out.append(redact_url_credentials(a))
    return out


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the plugin module of `command` (if any) is imported."""
    parser = argparse.ArgumentParser(
        prog="k2eval",
        description="Reproduce the Kimi K2 benchmark results for any model: an OpenAI-compatible "
                    "endpoint or the local reference MoE. Start with `k2eval tasks`.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    from k2eval import __version__

    parser.add_argument("--version", action="version", version=f"k2eval {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    t = sub.add_parser("tasks", help="list tasks and their protocol",
                       description="List every task with its protocol and the reported K2 number.")
    t.add_argument("--json", action="store_true", help="full task specs as JSON")
    t.set_defaults(func=cmd_tasks)
    _add_run_parser(sub)
    for name, func, text in (("resume", cmd_resume, "finish an interrupted run without repeating finished attempts"),
                             ("rescore", cmd_rescore, "recompute scores from stored attempts (no model calls)")):
        r = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        r.add_argument("run_dir", help="a run directory (holds manifest.json)")
        r.add_argument("--no-progress", action="store_true")
        add_executor_flags(r.add_argument_group("execution"))
        if func is cmd_resume:
            for role in ("", "user-", "judge-"):
                r.add_argument(f"--{role}base-url", metavar="URL",
                               help=f"the {role[:-1] or 'agent'} model's base URL again, when it held "
                                    "user:password@ (credentials are never recorded)")
        r.set_defaults(func=func)
    loaded: set[str] = set()
    for name, module in PLUGINS.items():
        if command != name:  # `k2eval --help` lists the plugins without importing them
            if name not in loaded and name not in sub.choices:
                sub.add_parser(name, help=PLUGIN_HELP[name], add_help=False)
            continue
        if module in loaded:
            continue
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            if exc.name and exc.name.startswith("k2eval"):
                continue  # that part is not installed in this build
            raise
        loaded.add(module)
        mod.register(sub)
    return parser


def _resume_hint(when: str = "") -> str:
    """'; finished attempts are saved: continue with `k2eval resume DIR`' + `when`, when the
    command wrote a run directory."""
    if RUN_DIR and (RUN_DIR[-1] / "manifest.json").exists():
        return (f"; finished attempts are saved: continue with `k2eval resume {RUN_DIR[-1]}`"
                f"{when}")
    return ""


def _after_bar() -> str:
    """A line break that ends a progress bar cut off mid-line (terminals only)."""
    return "\n" if sys.stderr.isatty() else ""


STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def _internal_error(exc: BaseException) -> int:
    """An unexpected exception (a bug): one line, the traceback kept in a file (with the
    command line, secrets removed)."""
    import tempfile
    import traceback

    where = ""
    try:
        with tempfile.NamedTemporaryFile("w", prefix="k2eval-crash-", suffix=".txt",
                                         delete=False) as fh:
            fh.write(" ".join(_redacted_argv()) + "\n\n" + traceback.format_exc())
        where = f"; traceback in {fh.name}"
    except OSError:
        pass
    first = (str(exc).strip().splitlines() or [""])[0]
    print(f"internal error (please report it): {type(exc).__name__}: {first}{where}"
          f"{_resume_hint()}", file=sys.stderr)
    return EXIT_INTERNAL


def main(argv: list[str] | None = None) -> int:
    """Run one command; every failure ends in one line on stderr and its own exit status
    (`k2eval.errors.EXIT_*`, listed in the README)."""
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    RUN_DIR.clear()
    from k2eval.engine.signals import stop_signals_raise

    try:
        with stop_signals_raise():
            return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RunFatalError as exc:
        where = f"`k2eval resume {RUN_DIR[-1]}`" if RUN_DIR else "`k2eval resume` on the run"
        print(f"error: {exc}; finished attempts are saved: continue with {where}", file=sys.stderr)
        return EXIT_STOPPED
    except StorageError as exc:
        print(f"error: {exc}{_resume_hint(' once it can be written')}", file=sys.stderr)
        return EXIT_STORAGE
    except Interrupted as exc:
        print(f"{_after_bar()}{exc}{_resume_hint()}", file=sys.stderr)
        return exc.exit_status
    except K2EvalError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INFRA
    except BrokenPipeError:  # output piped into `head` and the like
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"{_after_bar()}interrupted{_resume_hint()}", file=sys.stderr)
        return EXIT_SIGNAL_BASE + signal.SIGINT
    except OSError as exc:
        if exc.errno not in STORAGE_ERRNOS:
            return _internal_error(exc)
        what = f"cannot write {exc.filename}" if exc.filename else "cannot write"
        print(f"error: {what} ({exc.strerror}){_resume_hint(' once it can be written')}",
              file=sys.stderr)
        return EXIT_STORAGE
    except Exception as exc:
        return _internal_error(exc)


if __name__ == "__main__":
    sys.exit(main())
