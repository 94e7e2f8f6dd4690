"""Every page rendered in headless Chromium: no console errors, filters, transcripts, safety."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runfixtures import task_spec

from k2eval.report.compare import write_compare_page
from k2eval.report.runs import load_runs
from k2eval.report.table import build_table, render_table_html

pytestmark = pytest.mark.browser
MakeRun = Callable[..., Path]

HOSTILE = ("<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"
           "\x1b[31mRED\x1b[0m <b>bold?</b>")
PATCH = ("diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n"
         " def add(a, b):\n-    return a - b\n+    return a + b\n")


def _console_errors(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


AGENT_LOOP = [
    {"role": "system", "content": "You fix bugs."},
    {"role": "user", "content": "Fix add() in calc.py"},
    {"role": "assistant", "content": "",
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "bash", "arguments": "{\"command\": \"cat calc.py\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "name": "bash",
     "content": "def add(a, b):\n    return a - b"},
    {"role": "assistant", "content": "Done.", "reasoning_content": "The tests pass: \\boxed{1}",
     "reasoning_source": "reasoning_content"},
]


@pytest.fixture
def compare_page(make_run: MakeRun, tmp_path: Path) -> Path:
    spec = task_spec("codetask", k=1, group="Coding")
    meta = {f"q{i}": {"difficulty": "easy" if i < 3 else "hard"} for i in range(6)}
    base = make_run(spec, "base", {f"q{i}": [1.0] for i in range(6)}, meta=meta,
                    messages={"q1": AGENT_LOOP},
                    details={"q1": {"patch": PATCH, "test_output": "\x1b[32mPASSED\x1b[0m test_add"}})
    new = make_run(spec, "new", {f"q{i}": [float(i != 1 and i != 4)] for i in range(6)}, meta=meta,
                   texts={"q1": HOSTILE},
                   details={"q1": {"patch": PATCH.replace("a + b", "a * b"),
                                   "test_output": "FAILED test_add"}})
    return write_compare_page([base, new], tmp_path / "compare.html")


def test_compare_page_filters_and_opens_transcripts(open_page: Callable[[Path], Any],
                                                    compare_page: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = open_page(compare_page)
    rows = driver.find_elements(By.CSS_SELECTOR, "tr.item-row")
    assert len(rows) == 6
    visible = [r.get_attribute("data-item") for r in rows if r.is_displayed()]
    assert visible == ["q1", "q4"]  # default filter: outcomes differ
    assert driver.find_element(By.CSS_SELECTOR, ".f-count").text == "2 of 6 items shown"
    Select(driver.find_element(By.CSS_SELECTOR, ".f-status")).select_by_value("all")
    driver.find_element(By.CSS_SELECTOR, ".f-text").send_keys("4")
    assert [r.get_attribute("data-item") for r in rows if r.is_displayed()] == ["q4"]
    driver.find_element(By.CSS_SELECTOR, ".f-text").clear()
    Select(driver.find_element(By.CSS_SELECTOR, ".f-status")).select_by_value("same")
    assert len([r for r in rows if r.is_displayed()]) == 4

    Select(driver.find_element(By.CSS_SELECTOR, ".f-status")).select_by_value("worse")
    driver.find_element(By.CSS_SELECTOR, 'tr[data-item="q1"]').click()
    viewer = driver.find_element(By.ID, "viewer")
    WebDriverWait(driver, 10).until(
        lambda d: viewer.get_attribute("data-ready") == "q1")  # transcripts inflate asynchronously
    assert viewer.is_displayed()
    columns = viewer.find_elements(By.CSS_SELECTOR, ".col")
    assert [c.find_element(By.TAG_NAME, "h4").text for c in columns] == [
        "openai:base · codetask-base", "openai:new · codetask-new"]
    assert "✓ correct" in columns[0].text and "✗ not correct" in columns[1].text
    assert "Grader reason" in columns[1].text and "differs" in columns[1].text
    # tool calls with pretty-printed arguments, and the tool's result
    call = columns[0].find_element(By.CSS_SELECTOR, ".msg.role-assistant .toolcall")
    assert call.find_element(By.CSS_SELECTOR, ".tc-name").text == "→ bash (call_1)"
    assert call.find_element(By.TAG_NAME, "pre").text == '{\n  "command": "cat calc.py"\n}'
    result = columns[0].find_element(By.CSS_SELECTOR, ".msg.role-tool")
    assert result.find_element(By.CSS_SELECTOR, ".role").text == "TOOL · BASH ← CALL_1"
    assert "return a - b" in result.find_element(By.TAG_NAME, "pre").text
    # reasoning is folded above the answer
    thinking = columns[0].find_element(By.CSS_SELECTOR, ".msg.role-assistant details.reasoning")
    assert thinking.get_attribute("open") is None
    assert thinking.find_element(By.TAG_NAME, "summary").text == "Reasoning (25 characters)"
    answer = thinking.find_element(By.XPATH, "following-sibling::pre")
    assert answer.text == "Done."
    thinking.find_element(By.TAG_NAME, "summary").click()
    assert thinking.find_element(By.TAG_NAME, "pre").text == "The tests pass: \\boxed{1}"
    # the patch is a coloured diff; added and removed lines keep their text
    added = [e.text for e in columns[1].find_elements(By.CSS_SELECTOR, "pre.diff .add")]
    removed = [e.text for e in columns[1].find_elements(By.CSS_SELECTOR, "pre.diff .del")]
    assert "+    return a * b" in added and "-    return a - b" in removed
    # model output is text: no script ran, no element was injected, ANSI escapes are visible
    assert driver.execute_script("return window.__pwned === undefined")
    assert not viewer.find_elements(By.CSS_SELECTOR, "img, b, script")
    assistant = columns[1].find_element(By.CSS_SELECTOR, ".msg.role-assistant pre").text
    assert "<script>window.__pwned = 1</script>" in assistant
    assert "<img src=x onerror=" in assistant and "␛[31mRED␛[0m" in assistant
    assert "\x1b" not in viewer.text
    driver.save_screenshot(str(tmp_path / "compare-transcript.png"))
    # with the "worse" filter only q1 and q4 are shown: Next walks the shown rows
    driver.find_element(By.ID, "viewer-next").click()
    WebDriverWait(driver, 10).until(lambda d: viewer.get_attribute("data-ready") == "q4")
    assert driver.find_element(By.ID, "viewer-title").text == "q4"
    driver.find_element(By.ID, "viewer-prev").click()
    WebDriverWait(driver, 10).until(lambda d: viewer.get_attribute("data-ready") == "q1")
    driver.find_element(By.ID, "viewer-close").click()
    assert not viewer.is_displayed()
    driver.save_screenshot(str(tmp_path / "compare.png"))
    assert (tmp_path / "compare-transcript.png").stat().st_size > 10_000
    assert _console_errors(driver) == []
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    # charts are inline SVG: per-category bars and the score distribution
    titles = [t.get_attribute("textContent") for t in driver.find_elements(By.CSS_SELECTOR, "svg.chart > title")]
    assert titles == ["codetask: score by difficulty", "codetask: distribution of per-item scores"]


def test_table_page_renders(open_page: Callable[[Path], Any], make_run: MakeRun,
                            tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    spec = task_spec("mathtask", k=2)
    runs = [make_run(spec, m, {f"q{i}": [1.0, float(i % 2)] for i in range(4)})
            for m in ("alpha", "<b>beta</b>")]
    page = tmp_path / "table.html"
    page.write_text(render_table_html(build_table(load_runs(runs), specs={})))
    driver = open_page(page)
    headers = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "thead th")]
    assert headers[:4] == ["Benchmark", "Metric", "openai:alpha", "openai:<b>beta</b>"]
    assert driver.find_element(By.CSS_SELECTOR, "tr.group td").text == "Math & STEM"
    assert _console_errors(driver) == []
    driver.save_screenshot(str(tmp_path / "table.png"))


def test_regression_page_renders(open_page: Callable[[Path], Any], tmp_path: Path) -> None:
    from runfixtures import write_run
    from selenium.webdriver.common.by import By

    from k2eval.report.nightly import run_nightly
    from k2eval.spec import RunConfig
    from k2eval.store.history import open_history

    suite = tmp_path / "suite.yaml"
    suite.write_text("- task: aime2025\n  model: openai:m\n  k: 1\n  limit: 8\n")
    nights = [[1.0] * 8, [1.0] * 8, [0.0] * 8]
    spec = task_spec("aime2025", k=1)

    def runner(config: RunConfig, out: Path) -> Path:
        outcomes = nights.pop(0)
        return write_run(out, spec, "m", {f"q{i}": [v] for i, v in enumerate(outcomes)},
                         run_id=f"aime2025-{len(nights)}", limit=8)

    store = open_history(str(tmp_path / "h.db"))
    results = [run_nightly(suite, store, tmp_path / "nights", runner=runner, log=lambda _: None)
               for _ in range(3)]
    assert [r.exit_code for r in results] == [0, 0, 1]
    driver = open_page(results[-1].night_dir / "regression.html")
    assert driver.find_element(By.ID, "verdict").text.startswith(
        "Regression: 1 series got significantly worse: aime2025 @ openai:m")
    assert driver.title.startswith("REGRESSION")
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart circle")) == 3
    assert _console_errors(driver) == []
    driver.save_screenshot(str(tmp_path / "regression.png"))
    driver.find_element(By.LINK_TEXT, "items side by side").click()
    assert driver.current_url.endswith("/compare/aime2025-openai-m.html")
    assert [r.get_attribute("data-status") for r in driver.find_elements(
        By.CSS_SELECTOR, "tr.item-row") if r.is_displayed()] == ["worse"] * 8
    assert _console_errors(driver) == []
