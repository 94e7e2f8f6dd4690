"""Fixtures for the OJBench tests: the hand-written problems, the judge on the host (the
reference) and the sandbox image. Submissions are in `oj_solutions.py`."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

# The test modules import the hand-written submissions from `oj_solutions` under any import mode.
sys.path.insert(0, str(Path(__file__).parent))

from oj_solutions import FIXTURE_DATA


@pytest.fixture
def ojbench_data(tmp_path: Path) -> Path:
    """A writable copy of the hand-written OJBench_testdata folder."""
    return Path(shutil.copytree(FIXTURE_DATA, tmp_path / "OJBench_testdata"))


@pytest.fixture(scope="session")
def host_judge() -> None:
    """The DMOJ judge installed on the host with g++ and pypy3 where the judge looks for them
    (scripts/test.sh installs them). Skips without them; fails under K2EVAL_REQUIRE_DOCKER=1."""
    from k2eval.adapters.ojbench import RUNTIME_PATHS

    missing = [path for path in RUNTIME_PATHS.values() if not os.access(path, os.X_OK)]
    try:
        import dmoj.cptbox  # noqa: F401
    except ImportError as exc:
        missing.append(f"the dmoj package ({exc})")
    if missing:
        msg = f"the host judge needs {', '.join(missing)}: run scripts/test.sh"
        if os.environ.get("K2EVAL_REQUIRE_DOCKER") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture
def ojbench_image(require_docker: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The shipped judge image, built when missing (also for the engine's lookups)."""
    from k2eval.sandbox import ensure_image
    from k2eval.sandbox.images import AUTOBUILD_ENV

    monkeypatch.setenv(AUTOBUILD_ENV, "1")
    return ensure_image("ojbench")
