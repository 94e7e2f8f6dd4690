"""Loading OJBench_testdata: ids, problem lookup, skipped problems, filters and bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from k2eval.adapters.ojbench import OJBenchAdapter, OJBenchSettings, load_items, problem_id
from k2eval.errors import ConfigError, DataError, UserError
from k2eval.spec import TaskSpec, load_task


def spec(**options: object) -> TaskSpec:
    return load_task("ojbench").with_overrides(options=options)


def rewrite_prompts(root: Path, edit: Callable[[list[dict]], list[str]]) -> Path:
    path = root / "prompts" / "full.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(edit(rows)))
    return path


def test_every_problem_loads_once_per_language_with_its_directory(ojbench_data: Path) -> None:
    items = OJBenchAdapter().load(spec(), str(ojbench_data))
    assert [it.id for it in items] == [
        "loj-1001:cpp", "loj-1001:python", "loj-1002:cpp", "loj-1002:python",
        "pairsum:cpp", "pairsum:python", "nwerc2023_H:cpp", "nwerc2023_H:python"]
    first = items[0]
    assert first.data["problem_id"] == "loj-1001"
    assert Path(first.data["problem_dir"]) == (ojbench_data / "NOI" / "loj-1001").resolve()
    assert first.meta == {"dataset": "NOI", "language": "cpp", "difficulty": "medium"}
    assert first.data["prompt"].startswith("You are an expert competitive programmer.")
    assert Path(items[4].data["problem_dir"]).parent.name == "ICPC"


def test_a_problem_the_official_judge_skips_loads_without_test_data(ojbench_data: Path) -> None:
    items = {it.id: it for it in load_items(spec(), str(ojbench_data))}
    skipped = items["nwerc2023_H:python"]
    assert skipped.data["skipped"] and skipped.data["problem_dir"] is None
    assert not items["pairsum:python"].data["skipped"]


@pytest.mark.parametrize(("raw", "expected"), [
    (3897, "loj-3897"), ("3897", "3897"), ("nwerc2023_H", "nwerc2023_H"), (0, "loj-0")])
def test_integer_ids_name_loj_problems_as_the_judger_does(raw: object, expected: str) -> None:
    assert problem_id(raw) == expected


@pytest.mark.parametrize(("options", "ids"), [
    ({"languages": "cpp"}, ["loj-1001:cpp", "loj-1002:cpp", "pairsum:cpp", "nwerc2023_H:cpp"]),
    ({"languages": ["python"], "datasets": "ICPC"}, ["pairsum:python", "nwerc2023_H:python"]),
    ({"difficulties": "medium,hard", "languages": "python"},
     ["loj-1001:python", "nwerc2023_H:python"]),
])
def test_filters_select_languages_datasets_and_difficulties(ojbench_data: Path, options: dict,
                                                            ids: list[str]) -> None:
    assert [it.id for it in load_items(spec(**options), str(ojbench_data))] == ids


@pytest.mark.parametrize(("options", "message"), [
    ({"languages": "java"}, "option languages: use one or more of cpp, python"),
    ({"datasets": ""}, "option datasets"),
    ({"time_limit_s": "soon"}, "option time_limit_s must be a float"),
    ({"time_limit_s": 0}, "time_limit_s must be in (0, 60]"),
    ({"memory_limit_mb": 8192}, "below sandbox_memory_mb"),
])
def test_bad_options_are_named(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("]", r"\]")):
        OJBenchSettings.from_spec(spec(**options))


def test_settings_record_only_departures_from_the_official_limits() -> None:
    assert OJBenchSettings.from_spec(spec()).differences() == {}
    assert OJBenchSettings.from_spec(spec(time_limit_s=2)).differences() == {"time_limit_s": 2.0}


def test_a_problem_without_a_directory_stops_loading_with_its_name(ojbench_data: Path) -> None:
    (ojbench_data / "NOI" / "loj-1002" / "init.yml").unlink()
    with pytest.raises(DataError, match=r"full.jsonl:3: problem loj-1002 has no directory"):
        load_items(spec(), str(ojbench_data))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda rows: [json.dumps({k: v for k, v in rows[0].items() if k != "prompt"}) + "\n"],
     r"full.jsonl:1: missing field\(s\) prompt"),
    (lambda rows: [json.dumps({**rows[0], "language": "java"}) + "\n"],
     "language 'java' is not one of cpp, python"),
    (lambda rows: ["{not json\n"], "full.jsonl:1: not valid JSON"),
    (lambda rows: ["[1, 2]\n"], "expected a JSON object per line"),
    (lambda rows: [json.dumps(rows[0]) + "\n"] * 2, r"full.jsonl:2: problem loj-1001 in cpp repeats"),
    (lambda rows: [json.dumps({**rows[0], "id": True}) + "\n"], "neither a string nor an integer"),
])
def test_malformed_rows_name_the_file_and_line(ojbench_data: Path,
                                                edit: Callable[[list[dict]], list[str]],
                                                message: str) -> None:
    rewrite_prompts(ojbench_data, edit)
    with pytest.raises(DataError, match=message):
        load_items(spec(), str(ojbench_data))


def test_a_folder_that_is_not_ojbench_testdata_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"has no prompts/full\.jsonl"):
        load_items(spec(), str(tmp_path))
    with pytest.raises(UserError, match="expected an OJBench_testdata folder"):
        load_items(spec(), str(tmp_path / "absent"))
