"""The special categories' prompt belongs to a data release: chosen by `prompt_version`, checked
against the loaded data, sent as that release's wording and recorded when not the default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import k2eval
from k2eval.adapters.acebench import AceBenchAdapter
from k2eval.adapters.acebench.data import data_release, load_items
from k2eval.errors import ConfigError
from k2eval.spec import TaskSpec
from k2eval.testing.fake_openai import Reply

TASK_FILE = Path(__file__).resolve().parents[2] / "tasks" / "acebench-en.yaml"
REFUSAL = '["Due to the limitations of the function, I cannot solve this problem."]'
NEW_OPENING = 'You are an AI assistant with the role name "assistant". Based on'
OLD_OPENING = 'You are an AI system with the role name "system." Based on'


def spec(**options: object) -> TaskSpec:
    base = TaskSpec.from_dict(yaml.safe_load(TASK_FILE.read_text()), source=str(TASK_FILE))
    return base.with_overrides(options=options)


def _rows(path: Path, n: int) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()[:n]]


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def first_release(acebench_dir: Path, tmp_path: Path) -> Path:
    """Three rows of each of two special categories with gold answers in the February 2025
    form: the irrelevant sentence of that release, incorrect values keyed by function name."""
    out = tmp_path / "data_en"
    for category in ("special_irrelevant", "special_error_param"):
        rows = _rows(acebench_dir / f"data_{category}.json", 3)
        _write(out / f"data_{category}.json", rows)
        gold: list[dict[str, Any]] = []
        for row in rows:
            if category == "special_irrelevant":
                answer: Any = "The question exceeds the function's capabilities."
            else:
                answer = {row["function"][0]["name"]: ["'wrong value'"]}
            gold.append({"id": row["id"], "ground_truth": answer})
        _write(out / "possible_answer" / f"data_{category}.json", gold)
    return out


@pytest.mark.parametrize(("categories", "release"), [
    (("special_irrelevant",), "2025-07"),
    (("special_error_param",), "2025-07"),
    (("special_incomplete", "normal_atom_bool"), None),
])
def test_the_release_of_the_data_here_is_told_by_its_special_gold(
        acebench_dir: Path, categories: tuple[str, ...], release: str | None) -> None:
    assert data_release(load_items(acebench_dir, categories)) == release


@pytest.mark.parametrize("category", ["special_irrelevant", "special_error_param"])
def test_first_release_gold_is_recognised(first_release: Path, category: str) -> None:
    assert data_release(load_items(first_release, (category,))) == "2025-02"


@pytest.mark.parametrize(("which", "version", "fix"), [
    ("first", "2025-07", "prompt_version=2025-02"),
    ("current", "2025-02", "prompt_version=2025-07"),
])
def test_a_prompt_version_of_another_release_stops_the_run_and_names_the_fix(
        first_release: Path, acebench_dir: Path, which: str, version: str, fix: str) -> None:
    data = first_release if which == "first" else acebench_dir
    with pytest.raises(ConfigError, match=f"pass --option {fix}"):
        AceBenchAdapter().load(spec(categories="special_irrelevant,special_error_param",
                                    prompt_version=version), str(data))


def test_an_unknown_prompt_version_is_a_config_error(acebench_dir: Path) -> None:
    with pytest.raises(ConfigError, match="prompt_version must be one of"):
        AceBenchAdapter().load(spec(prompt_version="2024"), str(acebench_dir))


def test_data_without_a_release_marker_loads_under_either_version(acebench_dir: Path) -> None:
    items = AceBenchAdapter().load(spec(categories="normal_atom_bool",
                                        prompt_version="2025-02"), str(acebench_dir))
    assert len(items) == 50


@pytest.mark.parametrize(("which", "options", "opening", "role_line", "conditions"), [
    ("current", {}, NEW_OPENING, "assistant: The AI assistant role that makes API requests", {}),
    ("first", {"prompt_version": "2025-02"}, OLD_OPENING,
     "system: The AI system role that makes API requests", {"prompt_version": "2025-02"}),
], ids=["current-release", "first-release"])
def test_the_special_prompt_sent_is_the_releases_and_recorded_when_not_the_default(
        fake_openai: Any, first_release: Path, acebench_dir: Path, tmp_path: Path, which: str,
        options: dict[str, str], opening: str, role_line: str, conditions: dict[str, str]
) -> None:
    srv = fake_openai(lambda body: Reply(text=REFUSAL))
    data = first_release if which == "first" else acebench_dir
    run = k2eval.evaluate("acebench-en", "openai:m", base_url=srv.base_url, data=data,
                          options={"categories": "special_irrelevant", **options}, limit=3,
                          out=tmp_path / "runs", run_id=which, concurrency=3)
    assert len(srv.requests) == 3
    for request in srv.requests:
        system = request["messages"][0]["content"]
        assert system.startswith(opening)
        assert f"\n\nRole Descriptions:\nuser: User\n{role_line}\n\nAPI Specifications:\n" in system
    assert run.summary["score"] == 100.0
    assert run.summary["conditions"] == conditions
    assert json.loads((run.path / "manifest.json").read_text())["conditions"] == conditions
