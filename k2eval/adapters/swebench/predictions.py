"""Predictions in the official SWE-bench format: {instance_id, model_name_or_path, model_patch}."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from k2eval.adapters.base import Attempt
from k2eval.adapters.data import iter_jsonl
from k2eval.errors import DataError

KEYS = ("instance_id", "model_name_or_path", "model_patch")


def prediction_rows(attempts: list[Attempt], model_name: str) -> list[dict[str, Any]]:
    """One prediction per instance: its first finished attempt (an errored one has none)."""
    first: dict[str, Attempt] = {}
    for attempt in sorted(attempts, key=lambda a: (a.item_id, a.index)):
        if attempt.status == "ok" and attempt.item_id not in first:
            first[attempt.item_id] = attempt
    return [{"instance_id": item_id, "model_name_or_path": model_name,
             "model_patch": attempt.output.get("patch") or ""}
            for item_id, attempt in first.items()]


def _check(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise DataError(f"{where}: a prediction must be a JSON object")
    if not isinstance(raw.get("instance_id"), str):
        raise DataError(f"{where}: prediction has no instance_id")
    patch = raw.get("model_patch")
    if patch is not None and not isinstance(patch, str):
        raise DataError(f"{where}: model_patch must be a string or null")
    return {"instance_id": raw["instance_id"],
            "model_name_or_path": str(raw.get("model_name_or_path") or "unknown"),
            "model_patch": patch}


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """Predictions from a .jsonl file, or a .json list / {instance_id: prediction} mapping."""
    if not path.is_file():
        raise DataError(f"{path}: no such predictions file")
    rows: list[dict[str, Any]] = []
    if path.suffix == ".jsonl":
        rows = [_check(raw, f"{path}:{lineno}")
                for lineno, raw in iter_jsonl(path, invalid="invalid JSON")]
    elif path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        entries = list(data.values()) if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise DataError(f"{path}: expected a list of predictions or an id -> prediction map")
        rows = [_check(raw, f"{path} entry {i}") for i, raw in enumerate(entries)]
    else:
        raise DataError(f"{path}: predictions must be a .jsonl or .json file")
    return keep_last(rows, str(path))


def keep_last(rows: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """One prediction per instance: the last one, as the official harness keeps it (its
    `{instance_id: prediction}` map), at the place of the first; one warning line on stderr
    when any instance had more than one."""
    latest: dict[str, dict[str, Any]] = {}
    counts: Counter[str] = Counter()
    for row in rows:
        latest[row["instance_id"]] = row
        counts[row["instance_id"]] += 1
    repeated = [(i, n) for i, n in counts.items() if n > 1]
    if repeated:
        first, n = repeated[0]
        print(f"warning: {where}: {len(repeated)} instance(s) have more than one prediction "
              f"(first: {first}, {n} predictions); keeping the last of each, as the official "
              f"harness does", file=sys.stderr)
    return list(latest.values())


def write_predictions(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps({k: row[k] for k in KEYS}) + "\n")
