"""`k2eval swebench eval|images` and the run's image pre-check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from k2eval.adapters.swebench.agentic import ELIDED, fit_context
from k2eval.cli import main
from k2eval.testing.fake_openai import Reply

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "swebench"


@pytest.mark.docker
def test_images_list_shows_missing_images_and_a_disk_estimate(
        require_docker: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["swebench", "images", "--list", "--task", "swebench-multilingual",
                 "--data", str(SHARED / "multilingual.parquet"), "--limit", "3"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == "swebench/sweb.eval.x86_64.apache_1776_druid-13704:latest\tmissing"
    assert out[-1].startswith("0/3 images present") and "3 missing, about 9 GiB" in out[-1]


@pytest.mark.docker
def test_run_stops_before_any_model_call_when_images_are_missing(
        require_docker: Any, fake_openai: Any, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    server = fake_openai(lambda request: Reply(text="should not be asked"))
    code = main(["run", "--task", "swebench-verified", "--model", "openai:fake-model",
                 "--base-url", server.base_url, "--data", str(SHARED / "verified.parquet"),
                 "--limit", "2", "--out", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "2 instance image(s) for swebench-verified are not present locally" in err
    assert "k2eval swebench images --pull --task swebench-verified" in err
    assert server.requests == []


@pytest.mark.docker
def test_gold_validation_and_bad_predictions(
        synthetic_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["swebench", "eval", "--gold", "--data", str(synthetic_data),
                 "--out", str(tmp_path), "--run-id", "gold"])
    assert code == 0 and "resolved 1/1 (100.0%)" in capsys.readouterr().out
    report = json.loads((tmp_path / "gold" / "report.json").read_text())
    assert report["resolved_ids"] == ["k2eval__wordstats-1"] and report["error_ids"] == []
    stray = tmp_path / "preds.jsonl"
    stray.write_text(json.dumps({"instance_id": "astropy__astropy-12907",
                                 "model_name_or_path": "m", "model_patch": "x"}) + "\n")
    code = main(["swebench", "eval", "--predictions", str(stray), "--data", str(synthetic_data)])
    assert code == 2
    assert "prediction(s) for instances not in the selected dataset" in capsys.readouterr().err


@pytest.mark.docker
def test_eval_grades_the_last_of_two_predictions_and_records_the_network(
        synthetic_data: Path, synthetic_row: dict[str, Any], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"instance_id": synthetic_row["instance_id"],
                                         "model_name_or_path": "m", "model_patch": patch}) + "\n"
                             for patch in ("", synthetic_row["patch"])))
    code = main(["swebench", "eval", "--predictions", str(preds), "--data", str(synthetic_data),
                 "--network", "none", "--out", str(tmp_path), "--run-id", "dup"])
    captured = capsys.readouterr()
    assert code == 0 and "resolved 1/1 (100.0%)" in captured.out
    assert "keeping the last of each, as the official harness does" in captured.err
    report = json.loads((tmp_path / "dup" / "report.json").read_text())
    assert report["submitted_instances"] == 1
    assert report["resolved_ids"] == [synthetic_row["instance_id"]]
    assert report["conditions"] == {"network": "none", "network_requested": "none",
                                    "official_conditions": False}


def test_context_fitting_elides_the_oldest_observations_first() -> None:
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "issue"}]
    for i in range(10):
        messages.append({"role": "assistant", "content": f"step {i}"})
        messages.append({"role": "tool", "tool_call_id": str(i), "content": str(i) * 4000})
    assert fit_context(messages, 100_000, keep_recent=5) is messages
    fitted = fit_context(messages, 7_000, keep_recent=5)
    tools = [m["content"] for m in fitted if m["role"] == "tool"]
    assert tools[:4] == [ELIDED] * 4 and tools[4] == "4" * 4000
    assert all(m["content"] != ELIDED for m in messages)  # the trajectory itself is kept
    tiny = fit_context(messages, 10, keep_recent=5)
    assert [m["content"] for m in tiny if m["role"] == "tool"][5:] == \
        [str(i) * 4000 for i in range(5, 10)]  # the most recent ones are never elided


@pytest.mark.docker
def test_pull_failures_are_reported_per_image(
        require_docker: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # a registry that refuses connections: every pull fails fast, each is named
    code = main(["swebench", "images", "--pull", "--data", str(SHARED / "verified.parquet"),
                 "--limit", "2", "--image-namespace", "127.0.0.1:9/mirror"])
    out = capsys.readouterr().out
    assert code == 1
    assert out.count("FAILED 127.0.0.1:9/mirror/sweb.eval.x86_64.") == 2
    assert "0/2 images present" in out


@pytest.mark.docker
def test_synthetic_instance_command_writes_a_gradable_row(
        synthetic_image: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = tmp_path / "rows.jsonl"
    assert main(["swebench", "images", "--synthetic", str(rows)]) == 0
    assert f"built {synthetic_image}" in capsys.readouterr().out
    [row] = [json.loads(line) for line in rows.read_text().splitlines()]
    assert row["image"] == synthetic_image and row["log_parser"] == "parse_log_pytest"
    assert main(["swebench", "images", "--list", "--data", str(rows)]) == 0
    assert capsys.readouterr().out.startswith(f"{synthetic_image}\t0.")
