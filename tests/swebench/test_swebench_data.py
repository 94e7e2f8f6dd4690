"""Loading the official SWE-bench rows and building the package's test specs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from k2eval.adapters.swebench import SweBenchAdapter
from k2eval.adapters.swebench.agentic import env_setup_from, is_test_path
from k2eval.adapters.swebench.data import build_test_spec, default_image, retarget_image
from k2eval.adapters.swebench.predictions import read_predictions
from k2eval.errors import DataError
from k2eval.spec import load_task

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "swebench"


@pytest.mark.parametrize(("task", "file", "count"), [
    ("swebench-verified", "verified.parquet", 500),
    ("swebench-multilingual", "multilingual.parquet", 300),
])
def test_all_official_rows_load_and_build_test_specs(task: str, file: str, count: int) -> None:
    items = SweBenchAdapter().load(load_task(task), str(SHARED / file))
    assert len(items) == count
    assert len({it.id for it in items}) == count
    for item in items:
        spec = build_test_spec(item.data)
        assert spec.instance_id == item.id
        assert spec.image == default_image(item.id) == item.data["image"]
        assert spec.FAIL_TO_PASS or spec.PASS_TO_PASS, item.id
        assert all(isinstance(t, str) for t in spec.FAIL_TO_PASS + spec.PASS_TO_PASS)
        script = spec.eval_script
        assert script.startswith("#!/bin/bash\nset -uxo pipefail\n")
        assert ">>>>> Start Test Output" in script and ">>>>> Test Exit Code" in script
        assert item.meta["repo"] == item.data["repo"]


def test_multilingual_lists_arrive_as_arrays_and_become_lists() -> None:
    items = SweBenchAdapter().load(load_task("swebench-multilingual"),
                                   str(SHARED / "multilingual.parquet"))
    row = items[0].data
    assert type(row["FAIL_TO_PASS"]) is list and type(row["PASS_TO_PASS"]) is list
    json.dumps(row)  # rows must stay plain JSON for the run directory


def _row(**changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "instance_id": "org__proj-1", "repo": "org/proj", "base_commit": "abc",
        "problem_statement": "broken", "FAIL_TO_PASS": '["t::a"]', "PASS_TO_PASS": [],
        "eval_script": "#!/bin/bash\nset -uxo pipefail\ncd /testbed\n",
        "log_parser": "parse_log_pytest", "eval_type": "pass_and_fail", "version": "1.0"}
    row.update(changes)
    return row


def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_local_jsonl_fills_default_image_and_parses_json_lists(tmp_path: Path) -> None:
    data = _write_jsonl(tmp_path / "rows.jsonl", [_row()])
    [item] = SweBenchAdapter().load(load_task("swebench-verified"), str(data))
    assert item.data["image"] == "swebench/sweb.eval.x86_64.org_1776_proj-1:latest"
    assert item.data["FAIL_TO_PASS"] == ["t::a"]


@pytest.mark.parametrize(("row", "message"), [
    (_row(log_parser="parse_log_nothing"), "rows.jsonl:2: unknown log_parser"),
    (_row(eval_script=""), "rows.jsonl:2: missing column(s) eval_script"),
    (_row(FAIL_TO_PASS="[broken"), "rows.jsonl:2: column FAIL_TO_PASS is not valid JSON"),
    (_row(eval_type="sometimes"), "rows.jsonl:2: unknown eval_type"),
])
def test_bad_rows_name_file_and_line(tmp_path: Path, row: dict[str, object], message: str) -> None:
    data = _write_jsonl(tmp_path / "rows.jsonl", [_row(instance_id="ok__ok-1"), row])
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        SweBenchAdapter().load(load_task("swebench-verified"), str(data))


def test_duplicate_ids_and_invalid_json_are_reported(tmp_path: Path) -> None:
    data = _write_jsonl(tmp_path / "dup.jsonl", [_row(), _row()])
    with pytest.raises(DataError, match=r"dup.jsonl:2: duplicate instance_id org__proj-1"):
        SweBenchAdapter().load(load_task("swebench-verified"), str(data))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_row()) + "\n{not json\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: invalid JSON"):
        SweBenchAdapter().load(load_task("swebench-verified"), str(bad))


def test_image_options_retarget_to_a_mirror(tmp_path: Path) -> None:
    spec = load_task("swebench-verified").with_overrides(
        options={"image_namespace": "localhost:5000/mirror", "image_tag": "v2"})
    [item] = SweBenchAdapter().load(spec, str(_write_jsonl(tmp_path / "r.jsonl", [_row()])))
    assert item.data["image"] == "localhost:5000/mirror/sweb.eval.x86_64.org_1776_proj-1:v2"
    assert retarget_image("k2eval/synthetic:latest", namespace="") == "synthetic:latest"


def test_environment_activation_is_taken_from_the_eval_script() -> None:
    items = SweBenchAdapter().load(load_task("swebench-verified"), str(SHARED / "verified.parquet"))
    assert env_setup_from(items[0].data["eval_script"]) == \
        "source /opt/miniconda3/bin/activate && conda activate testbed"
    assert env_setup_from("#!/bin/bash\nset -uxo pipefail\ncd /testbed\ngit status\n") == ""


@pytest.mark.parametrize(("path", "is_test"), [
    ("tests/test_views.py", True), ("astropy/io/tests/helper.py", True),
    ("testing/logging/test_fixture.py", True), ("pkg/widget_test.go", True),
    ("src/test/java/org/FooTest.java", True), ("web/__tests__/a.js", True),
    ("lib/parser.spec.ts", True), ("spec/models/user_spec.rb", True),
    ("django/test/utils.py", False), ("sympy/testing/pytest.py", False),
    ("src/_pytest/logging.py", False), ("pkg/contest.py", False), ("src/main/java/Foo.java", False),
])
def test_test_file_heuristic(path: str, is_test: bool) -> None:
    assert is_test_path(path) is is_test


def test_predictions_files_are_validated(tmp_path: Path) -> None:
    good = _write_jsonl(tmp_path / "p.jsonl", [
        {"instance_id": "a", "model_name_or_path": "m", "model_patch": "diff"},
        {"instance_id": "b", "model_patch": None}])
    rows = read_predictions(good)
    assert [r["instance_id"] for r in rows] == ["a", "b"] and rows[1]["model_patch"] is None
    as_map = tmp_path / "p.json"
    as_map.write_text(json.dumps({"a": {"instance_id": "a", "model_patch": "x"}}))
    assert read_predictions(as_map)[0]["model_patch"] == "x"
    bad = _write_jsonl(tmp_path / "bad.jsonl", [{"instance_id": "a"}, {"model_patch": "x"}])
    with pytest.raises(DataError, match=r"bad.jsonl:2: prediction has no instance_id"):
        read_predictions(bad)


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_two_predictions_for_one_instance_keep_the_last_with_a_warning(
        tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"instance_id": i, "model_patch": p}
            for i, p in (("a", "first"), ("b", "b"), ("a", "second"), ("a", "last"))]
    path = tmp_path / f"p{suffix}"
    if suffix == ".jsonl":
        _write_jsonl(path, rows)
    else:
        path.write_text(json.dumps(rows))
    kept = read_predictions(path)
    # as the official harness' {instance_id: prediction} map: last value, first position
    assert [(r["instance_id"], r["model_patch"]) for r in kept] == [("a", "last"), ("b", "b")]
    err = capsys.readouterr().err.splitlines()
    assert err == [f"warning: {path}: 1 instance(s) have more than one prediction (first: a, "
                   f"3 predictions); keeping the last of each, as the official harness does"]
    read_predictions(_write_jsonl(tmp_path / "once.jsonl", rows[:2]))
    assert capsys.readouterr().err == ""


def test_bad_agent_option_fails_at_load(tmp_path: Path) -> None:
    from k2eval.errors import ConfigError

    spec = load_task("swebench-verified").with_overrides(options={"command_timeout_s": "soon"})
    with pytest.raises(ConfigError, match="option command_timeout_s must be a float"):
        SweBenchAdapter().load(spec, str(_write_jsonl(tmp_path / "r.jsonl", [_row()])))


def test_hub_path_reads_rows_through_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub loader (`datasets.load_dataset(hub, split)`), fed a local dataset folder."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "SWE-bench_Multilingual"
    folder.mkdir()
    (folder / "test.parquet").symlink_to((SHARED / "multilingual.parquet").resolve())
    spec = load_task("swebench-multilingual")
    spec = spec.with_overrides(dataset=type(spec.dataset)(hub=str(folder), split="test"))
    items = SweBenchAdapter().load(spec, None)
    assert len(items) == 300 and items[0].id == "apache__druid-13704"
    assert type(items[0].data["FAIL_TO_PASS"]) is list


def test_multilingual_items_carry_their_language() -> None:
    from collections import Counter

    items = SweBenchAdapter().load(load_task("swebench-multilingual"),
                                   str(SHARED / "multilingual.parquet"))
    languages = Counter(it.meta.get("language") for it in items)
    assert None not in languages and sum(languages.values()) == 300
    assert set(languages) == {"C", "C++", "Go", "Java", "JavaScript/TypeScript", "PHP", "Ruby",
                              "Rust"}
    assert languages["Rust"] == 43  # the 43 rows graded with the cargo log parser
    assert {it.meta["language"] for it in items if it.data["log_parser"] == "parse_log_gotest"} \
        == {"Go"}
