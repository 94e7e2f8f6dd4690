"""The Ray actor that runs attempts on a cluster node.

Each actor is one process with its own asyncio loop (Ray runs the `async` methods of an
actor on it), its own adapter instance, model clients and sandbox provider. It returns every
result to the driver and writes nothing to the run directory. API keys come from the
process environment, which Ray fills from the job's runtime environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import socket
import time
from typing import Any

from k2eval.adapters.base import get_adapter
from k2eval.engine.executors.attempts import AttemptRunner, RunModels
from k2eval.errors import InfraError, UserError
from k2eval.records import Attempt, Item, Score
from k2eval.spec import RunConfig


class AttemptWorker:
    """Solves and grades attempts for one run (made a Ray actor by `ray_cluster`).

    `sandbox_limit` is the number of the node's `sandbox_slots` this actor holds (1 for
    sandboxed tasks, None otherwise); without `with_models` (regrading without a judge) the
    worker builds no model client and needs no API key."""

    def __init__(self, config: RunConfig, run_id: str, sandbox_limit: int | None,
                 with_models: bool = True) -> None:
        import ray

        node_id = ray.get_runtime_context().get_node_id()
        self.where_info = {"node_id": node_id, "hostname": socket.gethostname(),
                           "pid": os.getpid()}
        self.config = config
        self.run_id = run_id
        self.sandbox_limit = sandbox_limit
        self.with_models = with_models
        self._runner: AttemptRunner | None = None
        self._lock = asyncio.Lock()
        self._prepared: set[str] = set()

    async def _ready(self) -> AttemptRunner:
        """The runner, built on first use inside the actor's event loop (model clients bind to
        it). A sandboxed worker first removes this run's containers on its node whose owner
        died (its own previous incarnation, when Ray restarted it), so that the node never
        holds more containers than its slots."""
        async with self._lock:
            if self._runner is None:
                if self.sandbox_limit:
                    with contextlib.suppress(Exception):  # no Docker: sandboxes fail later, named
                        await asyncio.to_thread(remove_orphan_containers, self.run_id)
                adapter = get_adapter(self.config.task.adapter)
                adapter.images_on_nodes = True  # prepared attempt by attempt (`_prepare`)
                node = str(self.where_info["node_id"])[:8]
                self._runner = AttemptRunner(self.config, adapter, run_id=self.run_id,
                                             models=RunModels(self.config, adapter)
                                             if self.with_models else None,
                                             sandbox_limit=self.sandbox_limit,
                                             worker=self.where_info,
                                             sandbox_purpose=f"{self.config.task.name}.{node}")
        return self._runner

    async def where(self) -> dict[str, Any]:
        """Where this actor runs; also a readiness check (builds the models, no call)."""
        await self._ready()
        return self.where_info

    async def setup(self) -> list[str]:
        """The adapter's `setup` on this node: what it checks (a source tree, ...) is this
        node's to have. Images are prepared attempt by attempt (`_prepare`), not here.
        Returns the lines it wrote to stderr (warnings), which Ray does not forward."""
        runner = await self._ready()
        said = io.StringIO()
        with contextlib.redirect_stderr(said):
            await runner.adapter.setup(self.config)
        return [line for line in said.getvalue().splitlines() if line.strip()]

    async def conditions(self) -> dict[str, Any]:
        """The adapter's conditions on this node (the Docker network it can give containers,
        the texts it finds, ...), which the driver compares across nodes."""
        runner = await self._ready()
        return await asyncio.to_thread(runner.adapter.conditions, self.config)

    async def holds(self, images: list[str]) -> list[str]:
        """Which of `images` this node's Docker engine holds (`docker image inspect`)."""
        return await asyncio.to_thread(node_images, images, str(self.where_info["node_id"]))

    async def _prepare(self, runner: AttemptRunner, item: Item) -> None:
        """Make the image the attempt needs present on this node (the adapter's way, e.g.
        pulling a SWE-bench instance image) when the node does not hold it yet."""
        image = runner.adapter.item_image(item, self.config.task)
        if image and image not in self._prepared:
            try:
                held = await self.holds([image])
            except Exception as exc:  # no Docker engine here, ...
                raise InfraError(f"cannot look up image {image}: {type(exc).__name__}: {exc}") from None
            if not held:
                await runner.adapter.prepare_image(image, self.config.task)
            self._prepared.add(image)

    # The driver checked everything that does not depend on the node before the first model
    # call; what a worker still refuses (a sandbox image this node cannot get, no Docker
    # engine) is its node's environment: an infrastructure error of that attempt, naming the
    # node, never a wrong answer and never the end of the whole run.
    def _node_named(self, message: str) -> str:
        return f"{message} [on node {self.where_info['hostname']} {self.where_info['node_id']}]"

    async def solve(self, item: Item, index: int) -> Attempt:
        started = time.time()
        try:
            runner = await self._ready()
            await self._prepare(runner, item)
            attempt = await runner.solve(item, index)
        except (UserError, InfraError) as exc:
            attempt = Attempt(item_id=item.id, index=index, status="error", started=started,
                              ended=time.time(), worker=self.where_info,
                              error={"type": "InfraError", "message": str(exc)})
        if attempt.error and attempt.error.get("type") == "InfraError":
            attempt.error["message"] = self._node_named(str(attempt.error.get("message")))
        return attempt

    async def score(self, item: Item, attempt: Attempt) -> Score:
        try:
            runner = await self._ready()
            await self._prepare(runner, item)
            score = await runner.score(item, attempt)
        except (UserError, InfraError) as exc:
            score = Score(item_id=item.id, index=attempt.index, value=0.0, status="error",
                          reason=f"grader failed: {exc}")
        if score.status != "ok":
            score.reason = self._node_named(score.reason)
        return score

    async def close(self, prune: bool = False) -> list[str]:
        """Close models and sandboxes; with `prune`, also remove this run's containers on this
        node left by dead workers."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.aclose()
            if runner.models is not None:
                await runner.models.aclose()
        if not prune:
            return []
        return await asyncio.to_thread(remove_orphan_containers, self.run_id)


FAKE_INVENTORY_ENV = "K2EVAL_TEST_NODE_IMAGES"
"""For tests only: a JSON file {node_id: [image, ...]} of images a node's inventory reports
absent although its Docker engine holds them (the test cluster's nodes share one engine)."""


def node_images(images: list[str], node_id: str) -> list[str]:
    """The `images` this machine's Docker engine holds."""
    import docker
    import docker.errors

    hidden: set[str] = set()
    fake = os.environ.get(FAKE_INVENTORY_ENV)
    if fake and os.path.exists(fake):
        with open(fake, encoding="utf-8") as fh:
            hidden = set(json.load(fh).get(node_id, []))
    client = docker.from_env(timeout=60)
    held = []
    for image in images:
        if image in hidden:
            continue
        try:
            client.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            continue
        held.append(image)
    return held


def remove_orphan_containers(run_id: str) -> list[str]:
    """Remove this run's containers on this node whose owning worker process is gone (a
    worker killed mid-attempt cannot close its own); returns their names."""
    import docker

    from k2eval.sandbox.cleanup import (
        LABEL_OWNER,
        LABEL_RUN_ID,
        container_name,
        managed_containers,
        owner_alive,
    )

    client = docker.from_env(timeout=60)
    removed = []
    for entry in managed_containers(client):
        labels = entry.get("Labels") or {}
        if labels.get(LABEL_RUN_ID) == run_id and not owner_alive(labels.get(LABEL_OWNER, "")):
            client.api.remove_container(entry["Id"], force=True)
            removed.append(container_name(entry))
    return removed
