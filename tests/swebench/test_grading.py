"""Official grading on the synthetic instance, in real Docker containers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from swe_helpers import score_context

from k2eval.adapters.base import Attempt, Item, Score
from k2eval.adapters.swebench import SweBenchAdapter
from k2eval.spec import load_task

pytestmark = pytest.mark.docker

PATCHES = Path(__file__).parent / "patches"
WRONG_FIX = (PATCHES / "wrong_fix.diff").read_text()
BREAKS_LONGEST_WORD = (PATCHES / "breaks_longest_word.diff").read_text()
DOES_NOT_APPLY = (PATCHES / "does_not_apply.diff").read_text()
HANGS = (PATCHES / "hangs.diff").read_text()
SYNTAX_ERROR = (PATCHES / "syntax_error.diff").read_text()


async def grade(item: Item, patch: str | None, **options: Any) -> Score:
    spec = load_task("swebench-verified").with_overrides(options=options)
    attempt = Attempt(item_id=item.id, index=0, output={"patch": patch})
    return await SweBenchAdapter().score(item, attempt, score_context(spec))


async def test_gold_patch_resolves(synthetic_item: Item) -> None:
    score = await grade(synthetic_item, synthetic_item.data["patch"])
    assert score.correct, score
    report = score.details["report"]
    assert report["tests_status"]["FAIL_TO_PASS"]["success"] == \
        ["tests/test_core.py::test_count_repeated_whitespace"]
    assert len(report["tests_status"]["PASS_TO_PASS"]["success"]) == 4
    assert score.details["apply_command"] == "git apply --verbose"


async def test_empty_patch_is_unresolved_without_a_container(synthetic_item: Item) -> None:
    for patch in (None, "", "  \n"):
        score = await grade(synthetic_item, patch)
        assert score.status == "ok" and score.value == 0.0
        assert score.reason == "empty patch"


async def test_wrong_fix_leaves_the_failing_test_failing(synthetic_item: Item) -> None:
    score = await grade(synthetic_item, WRONG_FIX)
    assert score.status == "ok" and not score.correct
    assert score.reason == "tests failed"
    tests = score.details["report"]["tests_status"]
    assert tests["FAIL_TO_PASS"]["failure"] == ["tests/test_core.py::test_count_repeated_whitespace"]
    assert tests["PASS_TO_PASS"]["failure"] == []


async def test_fix_that_breaks_a_pass_to_pass_test_is_unresolved(synthetic_item: Item) -> None:
    patch = synthetic_item.data["patch"] + BREAKS_LONGEST_WORD
    score = await grade(synthetic_item, patch)
    assert score.status == "ok" and not score.correct
    tests = score.details["report"]["tests_status"]
    assert tests["FAIL_TO_PASS"]["failure"] == []
    assert tests["PASS_TO_PASS"]["failure"] == ["tests/test_core.py::test_longest_word"]


async def test_patch_that_does_not_apply(synthetic_item: Item) -> None:
    score = await grade(synthetic_item, DOES_NOT_APPLY)
    assert score.status == "ok" and score.value == 0.0
    assert score.reason == "patch apply failed"
    assert ">>>>> Patch Apply Failed" in score.details["log_tail"]


async def test_fuzzy_patch_applies_through_the_official_fallbacks(synthetic_item: Item) -> None:
    # the gold fix with a stale context line and no index line: only `patch --fuzz` takes it
    gold = synthetic_item.data["patch"]
    stale = re.sub(r"^index .*\n", "", gold, flags=re.M).replace(
        ' """Return the number of words in `text`; words are separated by whitespace."""',
        ' """Count the words."""')
    assert stale != gold
    score = await grade(synthetic_item, stale)
    assert score.correct, score
    assert score.details["apply_command"] == "patch --batch --forward --fuzz=5 -p1 -i"


async def test_eval_timeout_is_unresolved_with_its_reason(synthetic_item: Item) -> None:
    score = await grade(synthetic_item, HANGS, eval_timeout_s=4)
    assert score.status == "ok" and score.value == 0.0
    assert score.reason == "timeout"
    assert "Timeout error: 4 seconds exceeded." in score.details["log_tail"]


async def test_missing_image_is_an_infrastructure_error(synthetic_item: Item) -> None:
    from k2eval.errors import UserError

    item = Item(synthetic_item.id, {**synthetic_item.data, "image": "k2eval/no-such-image:1"})
    with pytest.raises(UserError, match=r"no-such-image.*k2eval swebench images --pull"):
        await grade(item, synthetic_item.data["patch"])


async def test_container_failure_is_a_retryable_infrastructure_error(
        synthetic_item: Item, require_docker: Any, tmp_path: Path) -> None:
    # an image that exists but cannot start a container (no binaries at all)
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY marker /marker\n")
    (tmp_path / "marker").write_text("empty image\n")
    tag = "k2eval/swebench-test-broken:1"
    require_docker.images.build(path=str(tmp_path), tag=tag, network_mode="none", rm=True)
    try:
        item = Item(synthetic_item.id, {**synthetic_item.data, "image": tag})
        score = await grade(item, synthetic_item.data["patch"])
    finally:
        require_docker.images.remove(tag, force=True)
    assert score.status == "error" and score.value == 0.0
    assert score.reason.startswith("infrastructure failure:") and score.details["infra"] is True


def installs_from_the_network(item: Item) -> Item:
    """The instance with an eval script that fetches something before the tests, as the
    official scripts' `python -m pip install -e .` does: without network its log says
    `Could not resolve host`, the package's network_unreachable signature."""
    script = item.data["eval_script"].replace(
        "git checkout ", "git ls-remote https://github.com/k2eval/wordstats\ngit checkout ", 1)
    return Item(item.id, {**item.data, "eval_script": script}, item.meta)


async def test_patch_breaking_collection_is_unresolved_with_an_advisory_infra_flag(
        synthetic_item: Item) -> None:
    # the package flags the log (no test output + "Could not resolve host") as a likely
    # environment failure; officially that is advisory: unresolved, still in the denominator
    score = await grade(installs_from_the_network(synthetic_item), SYNTAX_ERROR, network="none")
    assert score.status == "ok" and score.value == 0.0
    assert score.details["report"]["infra_failure"] is True
    assert score.details["report"]["resolved"] is False
    assert score.details["reason"] == "no_test_output"
    assert (score.details["infra_failure"], score.details["failure_reason"],
            score.details["failure_tier"]) == (True, "network_unreachable", "environment")
    assert score.reason == \
        "no test output (log suggests an environment failure: network_unreachable)"
    # without the network step the same patch is an ordinary failure, with no flag at all
    plain = await grade(synthetic_item, SYNTAX_ERROR, network="none")
    assert plain.status == "ok" and plain.reason == "no test output"
    assert plain.details["infra_failure"] is False and plain.details["failure_reason"] is None


async def test_run_report_matches_the_official_harness_on_the_same_patches(
        synthetic_item: Item, require_docker: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The official `run_instance` + `make_run_report` and `k2eval swebench eval`'s report
    agree on resolved / unresolved / error ids and the advisory failure classification."""
    from swebench.harness.reporting import make_run_report
    from swebench.harness.run_evaluation import run_instance

    from k2eval.adapters.swebench.cli import run_report
    from k2eval.adapters.swebench.data import build_test_spec

    fetching = installs_from_the_network(synthetic_item)
    cases = {"gold": (fetching, fetching.data["patch"], 600),
             "syntax": (fetching, SYNTAX_ERROR, 600),
             "wrong": (fetching, WRONG_FIX, 600), "no-apply": (fetching, DOES_NOT_APPLY, 600),
             "empty": (fetching, "", 600), "hangs": (synthetic_item, HANGS, 5),
             "syntax-offline": (synthetic_item, SYNTAX_ERROR, 600)}
    items = {name: Item(f"k2eval__wordstats-{name}",
                        {**base.data, "instance_id": f"k2eval__wordstats-{name}"})
             for name, (base, _, _) in cases.items()}
    predictions = {items[name].id: {"instance_id": items[name].id, "model_name_or_path": "m",
                                    "model_patch": patch}
                   for name, (_, patch, _) in cases.items()}
    monkeypatch.chdir(tmp_path)  # the harness writes logs/ under the working directory
    # its cleanup waits 15 s for `tail -f` to ignore SIGTERM; removing at once is equivalent
    monkeypatch.setattr("swebench.harness.run_evaluation.cleanup_container",
                        lambda client, container, log: container and container.remove(force=True))
    scores = []
    for name, (_, patch, timeout) in cases.items():
        item = items[name]
        if patch:
            run_instance(build_test_spec(item.data), predictions[item.id], require_docker,
                         "k2eval-xcheck", timeout=timeout)
        scores.append(await grade(item, patch, network="none", eval_timeout_s=timeout))
    official = json.loads(make_run_report(predictions, [it.data for it in items.values()],
                                          "k2eval-xcheck").read_text())
    ours = run_report(list(items.values()), list(predictions.values()), scores)
    keys = ("resolved_ids", "unresolved_ids", "error_ids", "empty_patch_ids", "completed_ids",
            "infra_failure_ids", "ambiguous_failure_ids", "failure_reasons")
    assert {k: ours[k] for k in keys} == {k: official[k] for k in keys}
    # the cross-check covers unresolved, error, environment-flagged and ambiguous instances
    assert official["unresolved_ids"] == ["k2eval__wordstats-syntax",
                                          "k2eval__wordstats-syntax-offline",
                                          "k2eval__wordstats-wrong"]
    assert official["error_ids"] == ["k2eval__wordstats-hangs", "k2eval__wordstats-no-apply"]
    assert "k2eval__wordstats-syntax" in official["infra_failure_ids"]
    assert official["ambiguous_failure_ids"] == ["k2eval__wordstats-hangs"]
