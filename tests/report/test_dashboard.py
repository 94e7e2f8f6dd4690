"""The nightly dashboard: five nights of two series, one planted regression, on SQLite and
PostgreSQL; the page in headless Chromium from a file:// URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runfixtures import task_spec, write_run

from k2eval.cli import main
from k2eval.report.dashboard import series_views
from k2eval.report.nightly import NightResult, run_nightly
from k2eval.spec import RunConfig
from k2eval.store.history import open_history

N_ITEMS = 12
# Night by night, the share of right answers: night 4 drops AIME 2025 from 12/12 to 2/12.
AIME25 = [12, 12, 11, 2, 2]
AIME24 = [6, 6, 6, 6, 7]


def five_nights(history: str, root: Path) -> list[NightResult]:
    suite = root / "suite.yaml"
    suite.write_text("- task: aime2025\n  model: openai:m\n  k: 1\n  limit: 12\n"
                     "- task: aime2024\n  model: openai:m\n  k: 1\n  limit: 12\n")
    plan = {"aime2025": list(AIME25), "aime2024": list(AIME24)}

    def runner(config: RunConfig, out: Path) -> Path:
        right = plan[config.task.name].pop(0)
        outcomes = {f"q{i}": [float(i < right)] for i in range(N_ITEMS)}
        night = 5 - len(plan[config.task.name])
        return write_run(out, task_spec(config.task.name, k=1), "m", outcomes,
                         run_id=f"{config.task.name}-night{night}", limit=N_ITEMS)

    store = open_history(history)
    try:
        return [run_nightly(suite, store, root / "nights", runner=runner, log=lambda _: None)
                for _ in range(5)]
    finally:
        store.close()


def test_every_series_shows_every_night_and_the_planted_regression(
        database_url: str, tmp_path: Path) -> None:
    results = five_nights(database_url, tmp_path)
    assert [r.exit_code for r in results] == [0, 0, 0, 1, 0]
    store = open_history(database_url)
    views = {v.slot: v for v in series_views(store, tmp_path / "nights" / "dashboard")}
    store.close()
    assert set(views) == {"aime2025 @ openai:m", "aime2024 @ openai:m"}
    drop = views["aime2025 @ openai:m"]
    assert [p.status for p in drop.points] == ["first", "unchanged", "unchanged", "regressed",
                                               "unchanged"]
    assert [p.run.score for p in drop.points] == pytest.approx([100 * r / 12 for r in AIME25], abs=1e-3)
    assert drop.points[3].delta == pytest.approx(100 * (2 - 11) / 12, abs=1e-3)
    assert drop.points[3].compare_page is not None and drop.points[3].regression_page is not None
    assert [p.status for p in views["aime2024 @ openai:m"].points][1:] == ["unchanged"] * 4
    # The page each night writes is the same dashboard.
    page = (tmp_path / "nights" / "dashboard" / "index.html").read_text()
    assert page.count('class="night regressed"') == 1 and "aime2024 @ openai:m" in page


@pytest.mark.browser
def test_the_dashboard_reads_right_in_a_browser_offline(
        open_page: Callable[[Path], Any], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    history = str(tmp_path / "history.db")
    five_nights(history, tmp_path)
    out = tmp_path / "site"
    assert main(["dashboard", "--history", history, "-o", str(out)]) == 0
    driver = open_page(out / "index.html")
    assert driver.title == "k2eval nightly dashboard"  # the latest night recovered
    assert driver.find_element(By.ID, "verdict").text == \
        "No series regressed on its latest night."
    rows = driver.find_elements(By.CSS_SELECTOR, "#overview tbody tr")
    assert len(rows) == 2
    charts = driver.find_elements(By.CSS_SELECTOR, "section.series svg.chart")
    assert len(charts) == 2
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart path.mark.regressed")) == 1
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart polygon.band")) == 2
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []
    driver.save_screenshot(str(tmp_path / "dashboard.png"))
    regressed = driver.find_element(By.CSS_SELECTOR, "tr.night.regressed")
    regressed.find_element(By.LINK_TEXT, "items side by side").click()
    assert driver.current_url.endswith("/compare/aime2025-openai-m.html")
    assert [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []


def test_report_reads_a_night_from_the_history(database_url: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import json

    five_nights(database_url, tmp_path)
    capsys.readouterr()
    assert main(["report", "--history", database_url, "--format", "json"]) == 0
    latest = json.loads(capsys.readouterr().out)["cells"]
    scores = {c["task"]: c["score"] for c in latest if c["kind"] == "measured"}
    assert scores == pytest.approx({"aime2025": 100 * 2 / 12, "aime2024": 100 * 7 / 12}, abs=0.1)
    store = open_history(database_url)
    first = store.nights()[0].night_id
    store.close()
    assert main(["report", "--history", database_url, "--night", first, "--format", "json"]) == 0
    scores = {c["task"]: c["score"] for c in json.loads(capsys.readouterr().out)["cells"]
              if c["kind"] == "measured"}
    assert scores == pytest.approx({"aime2025": 100.0, "aime2024": 50.0}, abs=0.1)
    assert main(["report", "--history", database_url, "--night", "no-such-night"]) == 2
    assert "no such night in the history" in capsys.readouterr().err
