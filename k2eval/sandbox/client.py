"""The Docker client and the thread pool that keeps its blocking calls off the event loop."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import docker
import docker.errors

from k2eval.errors import UserError

T = TypeVar("T")

START_DAEMON_HINT = (
    "start it with `sudo dockerd --bridge=none --iptables=false &` "
    "(or `sudo systemctl start docker`; scripts/setup-docker.sh does both), "
    "then run `k2eval sandbox doctor`"
)

_client: docker.DockerClient | None = None
_client_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None

# Enough threads (and HTTP connections) for many sandboxes streaming output at once;
# the default executor has only cpu+4 threads.
SANDBOX_THREADS = int(os.environ.get("K2EVAL_SANDBOX_THREADS", "64"))


def _explain(exc: BaseException) -> str:
    text = str(exc)
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if "Permission denied" in text or "PermissionError" in text:
        return (f"permission denied on the Docker socket ({host}): add your user to the "
                "`docker` group (`sudo usermod -aG docker $USER`, then log in again) or run "
                "as root; then run `k2eval sandbox doctor`")
    return f"cannot reach the Docker daemon at {host}: {START_DAEMON_HINT}"


def ensure_docker() -> docker.DockerClient:
    """A connected client, shared by the process; `UserError` saying what to do otherwise."""
    global _client
    with _client_lock:
        if _client is not None:
            return _client
        try:
            client = docker.from_env(timeout=120, max_pool_size=SANDBOX_THREADS)
            client.ping()
        except docker.errors.DockerException as exc:
            raise UserError(_explain(exc)) from None
        except OSError as exc:
            raise UserError(_explain(exc)) from None
        _client = client
        return client


def executor() -> ThreadPoolExecutor:
    global _executor
    with _client_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(SANDBOX_THREADS, thread_name_prefix="k2eval-sandbox")
        return _executor


async def off_loop(fn: Callable[..., T], /, *args: object, **kwargs: object) -> T:
    """Run a blocking Docker call in the sandbox thread pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor(), functools.partial(fn, *args, **kwargs))


_default_bridge: bool | None = None


def default_bridge_available() -> bool:
    """Whether containers asking for Docker's default network get one: an engine started
    with `--bridge=none` has no `bridge` network and silently gives them loopback only."""
    global _default_bridge
    if _default_bridge is None:
        client = ensure_docker()
        networks = client.networks.list(names=["bridge"])
        _default_bridge = any(net.name == "bridge" for net in networks)
    return _default_bridge
