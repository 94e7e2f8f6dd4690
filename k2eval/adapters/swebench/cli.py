"""`k2eval swebench eval|images`: grade external predictions, prepare instance images.

    k2eval swebench eval --predictions preds.jsonl --task swebench-verified --data rows.parquet
    k2eval swebench eval --gold --instance-ids django__django-11099   # validate environments
    k2eval swebench eval --predictions preds.jsonl --network none     # grade without network
    k2eval swebench images --list | --pull [--task T --data PATH --instance-ids ...]
    k2eval swebench images --synthetic rows.jsonl   # build the offline self-test instance
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from k2eval.adapters.base import Attempt, Item, Score, ScoreContext
from k2eval.adapters.swebench import SweBenchAdapter
from k2eval.adapters.swebench.images import (
    disk_summary,
    image_status,
    pull_images,
    require_images,
)
from k2eval.adapters.swebench.network import NETWORK_MODES
from k2eval.adapters.swebench.predictions import read_predictions
from k2eval.engine.sandboxes import SandboxProvider
from k2eval.errors import UserError
from k2eval.spec import ModelSpec, RunConfig, TaskSpec, load_task


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("swebench", help="SWE-bench: grade predictions, prepare images")
    commands = parser.add_subparsers(dest="swebench_command", required=True)

    evaluate = commands.add_parser("eval", help="grade predictions with the official harness")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", type=Path,
                        help="JSONL/JSON of {instance_id, model_name_or_path, model_patch}")
    source.add_argument("--gold", action="store_true",
                        help="grade the rows' gold patches (validates the environments)")
    _selection_flags(evaluate)
    evaluate.add_argument("--sandboxes", type=int, default=4,
                          help="instances graded at once (default 4)")
    evaluate.add_argument("--timeout", type=float, default=None,
                          help="eval script timeout in seconds (default: the task's, 1800)")
    evaluate.add_argument("--network", choices=NETWORK_MODES, default=None,
                          help="network of the grading containers (default: the task's, "
                               "bridge, Docker's default network as the official harness)")
    evaluate.add_argument("--out", type=Path, default=Path("swebench_eval"),
                          help="folder for <run-id>/report.json and scores.jsonl")
    evaluate.add_argument("--run-id", default=None)
    evaluate.set_defaults(func=eval_command)

    images = commands.add_parser("images", help="list or pull instance images")
    action = images.add_mutually_exclusive_group(required=True)
    action.add_argument("--list", action="store_true", help="show presence and disk usage")
    action.add_argument("--pull", action="store_true", help="pull the missing images")
    action.add_argument("--synthetic", type=Path, metavar="ROWS_JSONL",
                        help="build the offline synthetic instance; write its row here")
    _selection_flags(images)
    images.set_defaults(func=images_command)


def _selection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="swebench-verified",
                        help="task whose dataset and image options apply")
    parser.add_argument("--data", default=None, help="local rows (parquet/JSONL/JSON)")
    parser.add_argument("--instance-ids", nargs="+", default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--image-namespace", default=None,
                        help="registry/namespace holding the instance images")
    parser.add_argument("--image-tag", default=None)


def _spec_and_items(args: argparse.Namespace) -> tuple[TaskSpec, list[Item]]:
    options = {k: v for k, v in (("image_namespace", args.image_namespace),
                                 ("image_tag", args.image_tag)) if v is not None}
    if getattr(args, "timeout", None):
        options["eval_timeout_s"] = args.timeout
    if getattr(args, "network", None):
        options["network"] = args.network
    spec = load_task(args.task)
    if spec.adapter != "swebench":
        raise UserError(f"task {args.task} is not a SWE-bench task")
    spec = spec.with_overrides(options=options)
    items = SweBenchAdapter().load(spec, args.data)
    if args.instance_ids:
        known = {it.id for it in items}
        unknown = [i for i in args.instance_ids if i not in known]
        if unknown:
            raise UserError(f"instance ids not in {args.data or spec.dataset.describe()}: "
                            f"{', '.join(unknown[:5])}")
        items = [it for it in items if it.id in set(args.instance_ids)]
    if args.limit is not None:
        items = items[:args.limit]
    return spec, items


async def grade_predictions(spec: TaskSpec, items: list[Item], predictions: list[dict[str, Any]],
                            *, sandboxes: int, run_id: str,
                            adapter: SweBenchAdapter | None = None) -> list[Score]:
    """Grade each prediction exactly as a run's scoring phase does."""
    adapter = adapter or SweBenchAdapter()
    by_id = {it.id: it for it in items}
    ctx = ScoreContext(config=_config(spec, predictions, sandboxes),
                       sandbox_factory=SandboxProvider(limit=sandboxes, run_id=run_id,
                                                       purpose="swebench-eval"))

    async def one(prediction: dict[str, Any]) -> Score:
        item = by_id[prediction["instance_id"]]
        attempt = Attempt(item_id=item.id, index=0, output={"patch": prediction["model_patch"]})
        try:
            return await adapter.score(item, attempt, ctx)
        except UserError:
            raise
        except Exception as exc:
            return Score(item.id, 0, 0.0, status="error",
                         reason=f"grader failed: {type(exc).__name__}: {exc}")

    return list(await asyncio.gather(*(one(p) for p in predictions)))


def _config(spec: TaskSpec, predictions: list[dict[str, Any]], sandboxes: int) -> RunConfig:
    model = predictions[0]["model_name_or_path"] if predictions else "unknown"
    return RunConfig(task=spec, model=ModelSpec(spec=model), sandboxes=sandboxes)


def run_report(items: list[Item], predictions: list[dict[str, Any]],
               scores: list[Score]) -> dict[str, Any]:
    """The official harness' run report: like it, an instance whose log yields no report
    (patch did not apply, timeout, container failure) is an error, one with a report but
    not resolved is unresolved; the resolved rate is resolved / total either way. The
    infrastructure-failure classification of unresolved and errored instances is advisory,
    as there: `infra_failure_ids` (environment tier), `ambiguous_failure_ids`,
    `failure_reasons`; those instances stay where they are."""
    reasons = {s.item_id: s.details.get("reason", "") for s in scores}
    ids = {
        "resolved": [i for i, r in reasons.items() if r == "resolved"],
        "unresolved": [i for i, r in reasons.items() if r in ("tests_failed", "no_test_output")],
        "empty_patch": [i for i, r in reasons.items() if r == "empty_patch"],
    }
    ids["error"] = [i for i in reasons if not any(i in group for group in ids.values())]
    ids["completed"] = ids["resolved"] + ids["unresolved"]
    failed = set(ids["unresolved"] + ids["error"])
    failure_reasons = {s.item_id: s.details["failure_reason"] for s in scores
                       if s.item_id in failed and s.details.get("failure_reason")}
    ids["infra_failure"] = [s.item_id for s in scores
                            if s.item_id in failed and s.details.get("infra_failure")]
    ids["ambiguous_failure"] = [i for i in failure_reasons if i not in ids["infra_failure"]]
    ids["incomplete"] = [it.id for it in items if it.id not in reasons]
    ids["submitted"] = [p["instance_id"] for p in predictions]
    report: dict[str, Any] = {"total_instances": len(items),
                              "submitted_instances": len(predictions)}
    for key in ("completed", "resolved", "unresolved", "infra_failure", "ambiguous_failure",
                "empty_patch", "error"):
        report[f"{key}_instances"] = len(ids[key])
    for key in ("completed", "incomplete", "empty_patch", "submitted", "resolved",
                "unresolved", "infra_failure", "ambiguous_failure"):
        report[f"{key}_ids"] = sorted(ids[key])
    report["failure_reasons"] = dict(sorted(failure_reasons.items()))
    report["error_ids"] = sorted(ids["error"])
    report["schema_version"] = 2
    return report


def eval_command(args: argparse.Namespace) -> int:
    spec, items = _spec_and_items(args)
    by_id = {it.id: it for it in items}
    if args.gold:
        predictions = [{"instance_id": it.id, "model_name_or_path": "gold",
                        "model_patch": it.data.get("patch") or ""} for it in items]
    else:
        predictions = read_predictions(args.predictions)
        unknown = [p["instance_id"] for p in predictions if p["instance_id"] not in by_id]
        if unknown:
            raise UserError(f"{args.predictions}: {len(unknown)} prediction(s) for instances "
                            f"not in the selected dataset (first: {unknown[0]}); "
                            f"check --task/--data/--instance-ids")
    if not predictions:
        raise UserError("no predictions to grade")
    asyncio.run(require_images([by_id[p["instance_id"]].data["image"] for p in predictions],
                               spec.name))
    run_id = args.run_id or time.strftime("%Y%m%d-%H%M%S")
    adapter = SweBenchAdapter()
    conditions = adapter.conditions(_config(spec, predictions, args.sandboxes))
    scores = asyncio.run(grade_predictions(spec, items, predictions, sandboxes=args.sandboxes,
                                           run_id=run_id, adapter=adapter))
    report = run_report(items, predictions, scores)
    report["conditions"] = conditions
    out = args.out / run_id
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    with (out / "scores.jsonl").open("w") as fh:
        for score in scores:
            fh.write(json.dumps(score.to_dict()) + "\n")
    n = len(predictions)
    print(f"{spec.name}: resolved {report['resolved_instances']}/{n} "
          f"({100.0 * report['resolved_instances'] / n:.1f}%), "
          f"unresolved {report['unresolved_instances']}, empty {report['empty_patch_instances']}, "
          f"errors {report['error_instances']} (no test report); "
          f"report: {out / 'report.json'}")
    return 0


def images_command(args: argparse.Namespace) -> int:
    if args.synthetic:
        from k2eval.adapters.swebench.synthetic import build_synthetic_image, synthetic_row

        tag = build_synthetic_image(log=True)
        args.synthetic.write_text(json.dumps(synthetic_row(tag)) + "\n")
        print(f"built {tag}; its row is in {args.synthetic} "
              f"(try: k2eval swebench eval --gold --data {args.synthetic})")
        return 0
    _, items = _spec_and_items(args)
    images = [it.data["image"] for it in items]
    if args.pull:
        failures = pull_images(images)
        for image, error in failures:
            print(f"FAILED {image}: {error}")
        print(disk_summary(image_status(images)))
        return 1 if failures else 0
    statuses = image_status(images)
    for status in statuses:
        size = f"{status.size_bytes / (1 << 30):.2f} GiB" if status.present else "missing"
        print(f"{status.image}\t{size}")
    print(disk_summary(statuses))
    return 0
