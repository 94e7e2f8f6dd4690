"""The `ojbench` image: the judge's toolchain is there, and the container grants it nothing
beyond a non-root user without capabilities, network or a writable root."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from k2eval.adapters.ojbench import OJBenchSettings
from k2eval.sandbox import SandboxLimits, docker_sandbox
from k2eval.sandbox.images import _context_dir, _listed

PROBES = {
    "user": "id -u",
    "capabilities": "sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status",
    "interfaces": "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    "root writable": "touch /usr/probe 2>/dev/null && echo yes || echo no",
    "g++": "g++ --version | head -1",
    "pypy3": "pypy3 -c 'import sys; print(sys.implementation.name)'",
    "dmoj": "python3 -c 'import dmoj.cptbox._cptbox, importlib.metadata as m; print(m.version(\"dmoj\"))'",
}


@pytest.mark.docker
def test_the_judge_runs_unprivileged_offline_with_its_toolchain(ojbench_image: str) -> None:
    settings = OJBenchSettings()
    limits = SandboxLimits(memory_mb=settings.sandbox_memory_mb, disk_mb=settings.sandbox_disk_mb)

    async def probe() -> dict[str, str]:
        async with docker_sandbox(ojbench_image, limits, purpose="ojbench-test") as box:
            results = {name: await box.exec(["sh", "-c", cmd], timeout=60)
                       for name, cmd in PROBES.items()}
        return {name: r.stdout.strip() for name, r in results.items()}

    seen = asyncio.run(probe())
    assert seen["user"] == "1000"
    assert seen["capabilities"] == "0000000000000000"
    assert seen["interfaces"] == "lo"
    assert seen["root writable"] == "no"
    assert seen["g++"].startswith("g++ (Debian 12")
    assert seen["pypy3"] == "pypy"
    assert seen["dmoj"] == "4.1.0"


def test_package_lists_give_entries_and_build_environment(tmp_path: Path) -> None:
    listing = tmp_path / "source-wheels.txt"
    listing.write_text("# a comment\nENV DMOJ_REDIST=1\n\ndmoj==4.1.0  # pinned\nfoo bar\n")
    assert _listed(listing) == (["dmoj==4.1.0", "foo", "bar"], {"DMOJ_REDIST": "1"})
    entries, env = _listed(_context_dir("ojbench") / "debs.txt")
    assert entries == ["g++", "pypy3"] and env == {}
