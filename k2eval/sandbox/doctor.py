"""`k2eval sandbox doctor`: check the daemon, permissions, images and a round-trip exec."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass

import docker

from k2eval.errors import UserError
from k2eval.sandbox import cleanup
from k2eval.sandbox.base import SandboxLimits
from k2eval.sandbox.client import default_bridge_available, ensure_docker
from k2eval.sandbox.docker_backend import docker_sandbox
from k2eval.sandbox.images import image_exists, image_names, image_tag


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"
        return f"{text}\n     -> {self.fix}" if self.fix else text


def run_checks() -> list[Check]:
    try:
        client = ensure_docker()
    except UserError as exc:
        return [Check("daemon", False, "unreachable", str(exc))]
    info = client.info()
    checks = [Check("daemon", True, f"Docker {info.get('ServerVersion')}, cgroup v"
                    f"{info.get('CgroupVersion', '1')}, {info.get('NCPU')} CPUs")]
    if not info.get("SwapLimit", True):
        checks.append(Check("swap limit", False, "the kernel ignores memory+swap limits",
                            "boot with cgroup swap accounting (swapaccount=1) or disable swap"))
    missing = [name for name in image_names() if not image_exists(client, image_tag(name))]
    for name in image_names():
        tag = image_tag(name)
        present = name not in missing
        checks.append(Check(f"image {name}", present, tag + (" present" if present else " missing"),
                            "" if present else f"run `k2eval sandbox build {name}`"))
    if "python" not in missing:
        checks.append(asyncio.run(_round_trip(image_tag("python"))))
    if missing and not shutil.which("debootstrap"):
        checks.append(Check("debootstrap", False, "not installed (needed without a registry)",
                            "`sudo apt-get install debootstrap`"))
    checks.append(_leftovers(client))
    checks.append(_default_network())
    return checks


def _default_network() -> Check:
    """Informational: benchmarks that need network (SWE-bench) use Docker's default bridge."""
    if default_bridge_available():
        return Check("default network", True, "`bridge` present (SWE-bench containers get "
                     "network, as the official harness)")
    return Check("default network", True, "none (engine started with --bridge=none?): "
                 "SWE-bench containers run without network, recorded as network=none")


async def _round_trip(tag: str) -> Check:
    try:
        async with docker_sandbox(tag, SandboxLimits(memory_mb=256), purpose="doctor") as sandbox:
            result = await sandbox.exec("python3 -c 'print(6*7)'; ls /sys/class/net", timeout=30)
    except Exception as exc:
        return Check("round trip", False, f"{type(exc).__name__}: {exc}",
                     "rebuild with `k2eval sandbox build --force python`")
    words = result.stdout.split()
    if result.exit_code != 0 or words[:1] != ["42"]:
        return Check("round trip", False, f"exit {result.exit_code}: {result.stderr.strip()[:200]}",
                     "rebuild with `k2eval sandbox build --force python`")
    if words[1:] != ["lo"]:
        return Check("round trip", False, f"network interfaces {words[1:]} (want only lo)",
                     "the daemon must honour network_mode=none")
    return Check("round trip", True, f"exec in {tag} ({result.duration * 1000:.0f} ms), only `lo`")


def _leftovers(client: docker.DockerClient) -> Check:
    containers = cleanup.managed_containers(client)
    dead = [cleanup.container_name(c) for c in containers
            if not cleanup.owner_alive((c.get("Labels") or {}).get(cleanup.LABEL_OWNER, ""))]
    if dead:
        return Check("leftovers", False, f"{len(dead)} container(s) of dead runs",
                     "run `k2eval sandbox gc`")
    return Check("leftovers", True, f"{len(containers)} live sandbox container(s)")
