"""The manifest and the summary as typed, versioned records: the same JSON keys on disk,
old files read, newer ones refused, a damaged field named."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from storecli import bare_manifest

from k2eval.engine.config import build_run_config
from k2eval.engine.runner import run_async
from k2eval.errors import RunDirError
from k2eval.report.runs import DamagedRun, RunView
from k2eval.store.rundir import MANIFEST, SUMMARY, RunDir, load_run
from k2eval.store.runlog import FORMAT_VERSION, RunManifest, RunSummary
from k2eval.testing.fake_openai import Reply

MANIFEST_KEYS = {"version", "run_id", "k2eval_version", "git_sha", "python", "platform", "command",
                 "config", "model", "dataset", "seed", "started", "ended", "status", "resumed",
                 "executor", "conditions", "signal", "error"}
SUMMARY_KEYS = {"version", "run_id", "task", "benchmark", "group", "model", "metric",
                "metric_label", "reported_metric_label", "k", "score", "ci95", "stderr",
                "n_scored_items", "n_items", "n_attempts", "n_errors", "n_score_errors",
                "complete", "usage", "toolcalls", "reported_k2", "breakdowns", "conditions"}

OLD_MANIFEST = {  # as k2eval 0.1 wrote it: no version, executor, conditions or resumed
    "run_id": "aime2025-20250801-120000-ab12", "k2eval_version": "0.1.0", "git_sha": None,
    "python": "3.11.9", "platform": "Linux", "command": ["k2eval", "run", "--task", "aime2025"],
    "config": {"task": {"name": "aime2025", "metric": "avg@k", "k": 2}},
    "model": {"scheme": "openai", "model": "m", "base_url": "http://127.0.0.1:8000/v1",
              "label": "openai:m", "spec": {"spec": "openai:m"}},
    "dataset": {"source": "aime25.jsonl", "fingerprint": "0123456789abcdef", "n_items": 2},
    "seed": 0, "started": 1754049600.0, "ended": 1754049660.0, "status": "finished"}
OLD_SUMMARY = {  # as k2eval 0.1 wrote it: no version, toolcalls, conditions or usage by role
    "task": "aime2025", "benchmark": "AIME 2025", "group": "Math & STEM", "model": "openai:m",
    "metric": "avg@k", "metric_label": "Avg@2", "reported_metric_label": "Avg@64", "k": 2,
    "score": 75.0, "ci95": [50.0, 100.0], "stderr": 12.5, "n_scored_items": 2, "n_items": 2,
    "n_attempts": 4, "n_errors": 0, "n_score_errors": 0, "complete": True,
    "usage": {"prompt_tokens": 400, "completion_tokens": 80, "calls": 4, "retries": 0},
    "reported_k2": "49.5", "breakdowns": {}, "run_id": "aime2025-20250801-120000-ab12"}


@pytest.fixture
def engine_run(fake_openai: Any, shared_data: Path, tmp_path: Path) -> Path:
    srv = fake_openai(lambda body: Reply(text="\\boxed{70}"))
    config = build_run_config("aime2025", "openai:m", base_url=srv.base_url, k=2, limit=3,
                              data=shared_data / "aime" / "aime25.jsonl")
    return asyncio.run(run_async(config, tmp_path / "runs", "typed", progress=False)).path


def test_the_engine_writes_versioned_documents_with_the_stable_keys(engine_run: Path) -> None:
    manifest = json.loads((engine_run / MANIFEST).read_text())
    summary = json.loads((engine_run / SUMMARY).read_text())
    assert set(manifest) == MANIFEST_KEYS
    assert set(summary) == SUMMARY_KEYS  # avg@k: no pass_at_k key
    assert manifest["version"] == summary["version"] == FORMAT_VERSION
    assert manifest["status"] == "finished" and manifest["executor"] == {"name": "local"}
    assert set(manifest["model"]) >= {"label", "spec", "scheme", "base_url"}
    assert set(summary["usage"]) == {"prompt_tokens", "completion_tokens", "calls", "retries",
                                     "reasoning_tokens", "by_role"}

    record = load_run(engine_run)
    assert isinstance(record.manifest, RunManifest) and isinstance(record.summary, RunSummary)
    assert record.summary.n_attempts == 6 and record.summary.usage.by_role["agent"].calls == 6
    assert record.manifest.to_json() == manifest and record.summary.to_json() == summary


def test_files_without_a_version_are_read_as_the_first_layout(tmp_path: Path) -> None:
    run = tmp_path / "old"
    run.mkdir()
    (run / MANIFEST).write_text(json.dumps(OLD_MANIFEST))
    (run / SUMMARY).write_text(json.dumps(OLD_SUMMARY))
    (run / "attempts.jsonl").write_text("")
    (run / "scores.jsonl").write_text("")
    view = RunView.load(run)
    assert view.manifest.version == view.summary.version == 1
    assert (view.task, view.model, view.score, view.ci95) == ("aime2025", "openai:m", 75.0,
                                                              (50.0, 100.0))
    assert view.manifest.conditions == {} and view.manifest.resumed == []
    assert view.summary.usage.completion_tokens == 80 and view.summary.usage.by_role == {}
    assert view.manifest["model"]["base_url"] == "http://127.0.0.1:8000/v1"  # kept, undeclared


@pytest.mark.parametrize("document", [MANIFEST, SUMMARY])
def test_a_file_from_a_newer_k2eval_is_refused_with_what_to_do(engine_run: Path,
                                                                 document: str) -> None:
    path = engine_run / document
    path.write_text(json.dumps({**json.loads(path.read_text()), "version": FORMAT_VERSION + 1}))
    message = (f"{path} was written by a newer k2eval (run format {FORMAT_VERSION + 1}; this "
               f"one reads up to {FORMAT_VERSION}): upgrade k2eval to read it")
    with pytest.raises(RunDirError, match=re.escape(message)):
        load_run(engine_run)


@pytest.mark.parametrize(("document", "change", "message"), [
    (MANIFEST, {"status": "exploded"}, "field 'status': input should be 'running', "),
    (MANIFEST, {"dataset": {"n_items": 3}}, "field 'dataset.fingerprint': field required"),
    (MANIFEST, {"version": "one"}, "version 'one' is not a run format version"),
    (SUMMARY, {"score": "high"}, "field 'score': input should be a valid number"),
    (SUMMARY, {"complete": None}, "field 'complete': input should be a valid boolean"),
    (SUMMARY, {"n_attempts": [4]}, "field 'n_attempts': input should be a valid integer"),
])
def test_a_damaged_field_is_named_and_the_report_calls_the_run_damaged(
        engine_run: Path, document: str, change: dict[str, Any], message: str) -> None:
    path = engine_run / document
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(RunDirError, match=re.escape(f"{path}: {message}")):
        load_run(engine_run)
    with pytest.raises(DamagedRun, match=re.escape(message) + ".*the run directory is damaged"):
        RunView.load(engine_run)


def test_keys_a_record_does_not_declare_are_kept_flat_and_written_back(engine_run: Path) -> None:
    path = engine_run / MANIFEST
    path.write_text(json.dumps({**json.loads(path.read_text()), "launched_by": "ci-night-7"}))
    summary = RunSummary.model_validate({**OLD_SUMMARY, "pass_hat_k": {"1": 50.0},
                                         "by_language": {"CPP17": 40.0}})
    assert summary["pass_hat_k"] == {"1": 50.0} and summary.get("absent", "-") == "-"
    assert "pass_hat_k" in summary and "score" in summary and "absent" not in summary
    assert summary["usage"]["completion_tokens"] == 80  # nested records read as on disk
    assert summary.to_json()["by_language"] == {"CPP17": 40.0}

    run = RunDir.open(engine_run)
    manifest = run.read_manifest()
    manifest.mark_resumed()
    run.write_manifest(manifest)
    run.close()
    written = json.loads(path.read_text())
    assert written["launched_by"] == "ci-night-7" and written["status"] == "running"
    assert len(written["resumed"]) == 1


def test_a_run_that_ends_records_its_status_signal_and_error_typed(tmp_path: Path) -> None:
    manifest = bare_manifest(status="running")
    before = time.time()
    manifest.mark_ended("interrupted", signal="SIGTERM")
    assert (manifest.status, manifest.signal, manifest.error) == ("interrupted", "SIGTERM", None)
    assert manifest.ended is not None
    assert before <= manifest.ended <= time.time()
    with pytest.raises(ValueError, match="status"):
        manifest.status = "done"  # type: ignore[assignment]
