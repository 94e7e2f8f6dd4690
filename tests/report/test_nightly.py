"""Nightly over the real engine and a scripted OpenAI-compatible server (real HTTP).

Two series run each night (AIME 2025 and AIME 2024, 8 problems, one attempt each). Night 1 has
no baseline; night 2 repeats night 1; night 3 plants a regression in AIME 2025 only.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from k2eval.cli import main
from k2eval.errors import UserError
from k2eval.testing.fake_openai import Reply, last_user_text

pytestmark = pytest.mark.slow
N_ITEMS = 8


class ScriptedModel:
    """Answers each AIME problem right, except the problems listed in `wrong`."""

    def __init__(self, shared_data: Path) -> None:
        self.answers: dict[str, str] = {}
        for name in ("aime24.jsonl", "aime25.jsonl"):
            for line in (shared_data / "aime" / name).read_text().splitlines()[:N_ITEMS]:
                row = json.loads(line)
                self.answers[row["problem"]] = str(row["answer"])
        self.wrong: set[str] = set()

    def __call__(self, request: dict[str, Any]) -> Reply:
        prompt = last_user_text(request)
        problem = next(p for p in self.answers if p in prompt)
        answer = self.answers[problem]
        if problem in self.wrong:
            answer = str(int(answer) + 1)
        return Reply(text=f"Let me think.\n\\boxed{{{answer}}}")


@pytest.fixture
def nightly_env(fake_openai: Callable[..., Any], shared_data: Path, tmp_path: Path
                ) -> tuple[ScriptedModel, Path, list[str]]:
    model = ScriptedModel(shared_data)
    server = fake_openai(model)
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: core\n"
        "runs:\n"
        f"  - task: aime2025\n    model: openai:fake-model\n    base_url: {server.base_url}\n"
        f"    data: {shared_data / 'aime' / 'aime25.jsonl'}\n    k: 1\n    limit: {N_ITEMS}\n"
        "    concurrency: 4\n"
        f"  - name: aime24-nightly\n    task: aime2024\n    model: openai:fake-model\n"
        f"    base_url: {server.base_url}\n    data: {shared_data / 'aime' / 'aime24.jsonl'}\n"
        f"    k: 1\n    limit: {N_ITEMS}\n")
    args = ["nightly", "--suite", str(suite), "--history", f"sqlite:///{tmp_path}/history.db",
            "--out", str(tmp_path / "nights")]
    return model, tmp_path, args


def _night_dirs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "nights").iterdir() if p.is_dir() and p.name != "dashboard")


def test_planted_regression_fails_the_night_and_is_named(
        nightly_env: tuple[ScriptedModel, Path, list[str]],
        capsys: pytest.CaptureFixture[str]) -> None:
    model, root, args = nightly_env

    assert main(args) == 0  # night 1: nothing to compare with
    first = _night_dirs(root)[0]
    md = (first / "regression.md").read_text()
    assert "No significant regression." in md
    assert md.count("first night for this series: no baseline yet") == 2
    assert "First night for every series: the history has no baseline yet" in md

    assert main(args) == 0  # night 2: same answers
    second = _night_dirs(root)[1]
    md = (second / "regression.md").read_text()
    assert "| aime2025 @ openai:fake-model | aime2025 | openai:fake-model | unchanged | 100.0" in md
    capsys.readouterr()

    model.wrong = {p for p in list(model.answers)[N_ITEMS:N_ITEMS + 7]}  # 7 of 8 AIME 2025 problems
    assert main(args) == 1  # night 3: planted regression
    out = capsys.readouterr()
    assert "REGRESSION in aime2025 @ openai:fake-model" in out.err
    third = _night_dirs(root)[2]
    md = (third / "regression.md").read_text()
    assert "**REGRESSION: 1 series got significantly worse: aime2025 @ openai:fake-model.**" in md
    row = next(line for line in md.splitlines() if line.startswith("| aime2025 @"))
    assert "| regressed | 12.5 [" in row and "| 100.0 (" in row and "| -87.5 |" in row
    assert f"p = {2 * 1 / 2**7:.3g} (mcnemar-exact)" in row  # 7 lost, 0 gained: 2 * C(7,0) / 2^7
    assert "([items](compare/aime2025-openai-fake-model.html))" in row
    page = (third / "compare" / "aime2025-openai-fake-model.html").read_text()
    assert page.count('data-status="worse"') == 7
    assert "| aime24-nightly | aime2024 | openai:fake-model | unchanged |" in md
    moved = next(line for line in md.splitlines() if line.startswith("- **aime2025 @"))
    assert moved.startswith("- **aime2025 @ openai:fake-model** (regressed): worse on 7 item(s): ")
    assert moved.endswith("; better on 0.")
    html = (third / "regression.html").read_text()
    assert 'class="banner bad" id="verdict"' in html and "aime2025 @ openai:fake-model" in html
    assert html.count("<polyline") == 2  # a trend line per series over the three nights
    night = json.loads((third / "night.json").read_text())
    assert night["verdicts"] == {"aime2025 @ openai:fake-model": "regressed",
                                 "aime24-nightly": "unchanged"}
    assert night["exit_code"] == 1

    # the table of a night, straight from the engine's run directories, equals their summaries
    capsys.readouterr()
    assert main(["report", str(third), "--format", "json"]) == 0
    cells = [c for c in json.loads(capsys.readouterr().out)["cells"] if c["kind"] == "measured"]
    summaries = [json.loads(p.read_text()) for p in third.glob("*/summary.json")]
    assert sorted((c["task"], c["score"], [c["ci_lo"], c["ci_hi"]]) for c in cells) == sorted(
        (s["task"], s["score"], s["ci95"]) for s in summaries)

    # --baseline a named night; and the index can be rebuilt from the run directories alone
    assert main([*args, "--baseline", second.name]) == 1
    db = root / "history.db"
    before = sqlite3.connect(db).execute("SELECT run_id, score FROM runs ORDER BY run_id").fetchall()
    db.unlink()
    assert main(["nightly", "reindex", "--history", str(db), "--out", str(root / "nights")]) == 0
    after = sqlite3.connect(db).execute("SELECT run_id, score FROM runs ORDER BY run_id").fetchall()
    assert after == before and len(after) == 8
    assert "indexed 8 runs from 4 nights" in capsys.readouterr().out
    model.wrong = set()
    assert main(args) == 0  # night 5, all right again: better than night 4, its latest baseline
    md = (_night_dirs(root)[4] / "regression.md").read_text()
    assert "| aime2025 @ openai:fake-model | aime2025 | openai:fake-model | improved |" in md


def test_bad_suites_and_baselines(nightly_env: tuple[ScriptedModel, Path, list[str]],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    _, root, args = nightly_env
    suite = root / "broken.yaml"
    suite.write_text("runs:\n  - task: aime2025\n    model: openai:x\n  - task: aime2024\n")
    assert main([*args[:1], "--suite", str(suite), *args[3:]]) == 2
    assert f"{suite}:4: each run needs `task` and `model`" in capsys.readouterr().err
    suite.write_text("- task: aime2025\n  model: openai:x\n  kk: 3\n")
    assert main([*args[:1], "--suite", str(suite), *args[3:]]) == 2
    assert f"{suite}:1: unknown override(s): kk" in capsys.readouterr().err
    assert main([*args, "--baseline", "20990101-000000"]) == 2
    assert "no such night or run" in capsys.readouterr().err
    assert main(["nightly", "--history", "x.db", "--out", str(root)]) == 2
    assert "nightly needs --suite" in capsys.readouterr().err
    assert not (root / "nights").exists()  # nothing ran


def test_suite_entries_name_series_and_expand_group_tasks(tmp_path: Path) -> None:
    from k2eval.report.nightly import load_suite

    suite = tmp_path / "suite.yaml"
    suite.write_text("- task: tau2\n  model: openai:m\n  data: tau2\n"
                     "- name: nightly-aime\n  task: aime2025\n  model: openai:m\n  k: 2\n")
    loaded = load_suite(suite)
    assert [(e.slot, e.task) for e in loaded.entries] == [
        ("tau2-airline @ openai:m", "tau2-airline"), ("tau2-retail @ openai:m", "tau2-retail"),
        ("tau2-telecom @ openai:m", "tau2-telecom"), ("nightly-aime", "aime2025")]
    assert loaded.entries[0].overrides == {"data": str(tmp_path / "tau2")}
    assert loaded.entries[3].overrides == {"k": 2}
    assert loaded.entries[3].where == f"{suite}:4"
    suite.write_text("- task: aime2099\n  model: openai:m\n")
    with pytest.raises(UserError, match=r"suite\.yaml:1: unknown task 'aime2099'"):
        load_suite(suite)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_reindex_never_prints_the_history_databases_password(
        database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The server trusts loopback, so the password is accepted and ignored: what matters is
    that the confirmation line shows the URL with it masked."""
    (tmp_path / "nights").mkdir()
    url = database_url.replace("postgresql://k2eval@", "postgresql://k2eval:hunter2-secret@")
    assert url != database_url
    assert main(["nightly", "reindex", "--history", url, "--out", str(tmp_path / "nights")]) == 0
    out = capsys.readouterr().out
    assert "hunter2-secret" not in out
    assert "indexed 0 runs from 0 nights into postgresql://k2eval:***@127.0.0.1:" in out
