"""The Ray executor: attempts run on async Ray actors across a cluster; the driver journals.

Placement
- Tasks without sandboxes: `workers` actors (default: one per alive node), pinned round-robin
  to the nodes. The driver keeps at most `--concurrency` attempts in flight across all of
  them; an attempt makes one model call at a time, so the cluster never has more than
  `--concurrency` calls in flight per endpoint, as with the local executor. Grading runs on
  the driver (it needs no sandbox; a judge model, where one grades, is the driver's).
- Sandboxed tasks: one actor per `sandbox_slots` unit of each node (the Ray custom resource a
  node declares with `ray start --resources '{"sandbox_slots": N}'`), each holding one slot
  and at most one container at a time, so no node ever holds more containers than its slots.
  Solving and grading both run there, on the node's Docker engine; an attempt is graded on the
  node that solved it when that node still has a worker. A cluster without any slot is refused
  before any model call. The driver needs no Docker engine of its own: the run's conditions
  (the network SWE-bench containers get, the Tau2 texts found, ...) are those the nodes
  report, which must agree (`agreed_conditions`), or the run stops before any attempt.

Faults
- A worker process or node that dies mid-attempt loses only that call: the driver sends the
  attempt again to a live worker (at most `max_tries` times in all, then the attempt is
  journaled as an infrastructure error, which `resume` retries). Only the driver writes the
  journal, one line per attempt it received, so a retried attempt is never journaled twice.
  Ray restarts a dead actor in place (a worker whose node is gone is given up after
  `revive_timeout_s`); workers that do not come up at the start are left to do so on their
  own while the others work. A restarted sandboxed worker first removes the containers its
  dead predecessor left on the node (so the node stays within its slots); the rest of this
  run's containers left by dead workers are removed from each node when the run ends.

Secrets
- API keys (the environment variables the run's model specs name, and HF_TOKEN) reach the
  workers only through the job's runtime environment (`env_vars`), never through task
  arguments or the object store. Ray's runtime-env agent logs the job's environment at INFO
  level: start nodes with `RAY_LOGGER_LEVEL=warning` (the line that
  `python -m k2eval.engine.executors.slots` prints does) so that keys never reach the
  session logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from k2eval.engine.executors.attempts import AttemptRunner
from k2eval.engine.executors.base import Executor, WorkPlan
from k2eval.engine.progress import node_label
from k2eval.errors import ConfigError, InfraError, RunFatalError, UserError
from k2eval.records import Attempt, Item, Score
from k2eval.spec import RunConfig

SLOT_RESOURCE = "sandbox_slots"
SECRET_ENVS = ("HF_TOKEN",)
PREPARE_MARGIN = 2
"""An attempt goes to a node that must first prepare its image (pull it) only when every
node holding the image has at least this many more attempts outstanding per worker."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'k2eval[ray]'") from None
    return ray


def resolve_address(address: str | None) -> str:
    """`--ray-address`, else $RAY_ADDRESS, else "auto" (the cluster `ray start` started here)."""
    return address or os.environ.get("RAY_ADDRESS") or "auto"


def _auto_address() -> str | None:
    """The cluster `ray start` recorded on this machine (Ray's own lookup), or None."""
    try:
        from ray._private.services import find_bootstrap_address
    except ImportError:  # another Ray layout: let ray.init look it up
        return None
    found = find_bootstrap_address(None)
    return str(found) if found else None


def probe_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail in one line when the cluster address does not answer (for `auto`: the address
    `ray start` recorded on this machine, which may be stale)."""
    named = address
    if address == "auto":
        found = _auto_address()
        if found is None:
            raise UserError("no Ray cluster was started on this machine (--ray-address auto): "
                            "start one with `ray start --head`, or pass --ray-address / "
                            "RAY_ADDRESS")
        address, named = found, f"{found} (auto: the cluster `ray start` last started here)"
    hostport = address.split("://", 1)[-1].rsplit("@", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(f"--ray-address {address}: expected HOST:PORT (or 'auto')")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise UserError(f"cannot reach the Ray cluster at {named} ({exc.strerror or exc}): "
                        "start it with `ray start --head` or fix --ray-address / RAY_ADDRESS") from None


def secret_env(configs: Iterable[RunConfig]) -> dict[str, str]:
    """The secrets the runs' workers need: the API key variables their model specs name, and
    HF_TOKEN, from this process's environment."""
    names = set(SECRET_ENVS)
    for config in configs:
        names |= {s.api_key_env for s in (config.model, config.user_model, config.judge_model)
                  if s is not None}
    return {n: os.environ[n] for n in sorted(names) if os.environ.get(n)}


def connect(address: str, env_vars: dict[str, str]) -> None:
    """`ray.init` to the cluster at `address` (already resolved), the secrets in the job's
    runtime environment; one-line errors for a cluster that does not answer."""
    ray = import_ray()
    probe_address(address)
    try:
        ray.init(address=address, runtime_env={"env_vars": env_vars}, log_to_driver=False,
                 logging_level="warning", configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot connect to the Ray cluster at {address}: {first}") from None


@contextlib.contextmanager
def shared_connection(address: str | None, configs: Iterable[RunConfig]) -> Iterator[None]:
    """One connection for several runs of this process (a nightly suite's runs, concurrent):
    its runtime environment carries the secrets of all of them, and each run's `RayExecutor`
    uses it as it is. Disconnects at the end (unless the process was connected already)."""
    ray = import_ray()
    if ray.is_initialized():
        yield
        return
    connect(resolve_address(address), secret_env(configs))
    try:
        yield
    finally:
        ray.shutdown()


def agreed_conditions(by_node: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The conditions every node reports (`Adapter.conditions`: the network its containers
    get, the texts the model is sent, ...), which must be the same on all: attempts run under
    different conditions on different nodes would add up to no one score. `ConfigError`
    names the first differences and the nodes."""
    (first_node, first), *others = by_node.items()
    for node, seen in others:
        differ = sorted(key for key in {*first, *seen} if first.get(key) != seen.get(key))
        if differ:
            shown = "; ".join(f"{key}: {first.get(key)!r} on {first_node}, {seen.get(key)!r} "
                              f"on {node}" for key in differ[:3])
            raise ConfigError(f"the Ray nodes would run this task under different conditions "
                              f"({shown}): give every node the same setup (Docker network, "
                              "data and source trees) or leave the odd one out of the cluster")
    return first


def _is_worker_loss(exc: BaseException, ray: Any) -> bool:
    lost = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
            ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError,
            ray.exceptions.OwnerDiedError)
    return isinstance(exc, lost)


class RayExecutor(Executor):
    """Runs attempts on a Ray cluster (see the module docstring).

    Connects with `ray.init(address)` and disconnects when the run ends; when the calling
    process has already called `ray.init` itself, that connection (and its runtime
    environment, which must then carry the API keys) is used as it is."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None,
                 max_tries: int = 3, ready_timeout_s: float = 600.0,
                 revive_timeout_s: float = 300.0, grace_s: float = 60.0) -> None:
        if workers is not None and workers < 1:
            raise UserError(f"--ray-workers must be >= 1 (got {workers})")
        import_ray()  # fail at once, before anything is loaded or called
        self.address = resolve_address(address)
        self.workers = workers
        self.max_tries = max(1, max_tries)
        self.ready_timeout_s = ready_timeout_s
        self.revive_timeout_s = revive_timeout_s
        self.grace_s = grace_s
        self._ray: Any = None
        self._owns_ray = False
        self._plan: WorkPlan | None = None
        self._actors: list[Any] = []
        self._where: dict[int, dict[str, Any]] = {}
        self._load: Counter[int] = Counter()
        self._dead: set[int] = set()
        self._suspect: set[int] = set()
        self._revivals: list[asyncio.Task[None]] = []
        self._driver_scorer: AttemptRunner | None = None
        self._slots = 0
        self._nodes: list[str] = []
        self._n_workers = 0
        self._start_s = 0.0
        self.rescheduled = 0
        self._image_nodes: dict[str, asyncio.Future[set[str]]] = {}
        self._backlog: Counter[str] = Counter()
        """Per node: attempts solved there, not yet graded (sandboxed tasks)."""
        self._workers_on: Counter[str] = Counter()
        """Per node: the workers placed there."""
        self.image_placement: Counter[str] = Counter()
        """Attempts that named an image: placed on a node that held it, or not."""

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, plan: WorkPlan) -> None:
        t0 = time.monotonic()
        self._plan = plan
        ray = self._ray = import_ray()
        if not ray.is_initialized():
            connect(self.address, secret_env([plan.config]))
            self._owns_ray = True
        sandboxed = plan.adapter.needs_sandbox
        plan.adapter.images_on_nodes = True
        if not sandboxed:
            self._driver_scorer = AttemptRunner(plan.config, plan.adapter, run_id=plan.run_id,
                                                models=plan.models, sandbox_limit=None)
        if plan.n_solve or (sandboxed and plan.n_score):
            await self._start_actors(self._placements(sandboxed), sandboxed)
        self._start_s = round(time.monotonic() - t0, 3)

    def _alive_nodes(self) -> list[dict[str, Any]]:
        return [n for n in self._ray.nodes() if n.get("Alive")]

    def _placements(self, sandboxed: bool) -> list[str]:
        """The node id of each actor to start."""
        nodes = self._alive_nodes()
        if not nodes:
            raise UserError(f"the Ray cluster at {self.address} has no alive node")
        if sandboxed:
            assert self._plan is not None
            slots = [(n["NodeID"], int(n.get("Resources", {}).get(SLOT_RESOURCE, 0))) for n in nodes]
            self._slots = sum(count for _, count in slots)
            if not self._slots:
                raise ConfigError(
                    f"task {self._plan.config.task.name} runs code in sandboxes, but no node of "
                    f"the Ray cluster at {self.address} declares {SLOT_RESOURCE}: start nodes "
                    f"with `ray start --resources '{{\"{SLOT_RESOURCE}\": N}}'` "
                    "(`python -m k2eval.engine.executors.slots` prints the line for a node)")
            return [node for node, count in slots for _ in range(count)]
        ids = [n["NodeID"] for n in nodes]
        return [ids[i % len(ids)] for i in range(self.workers or len(ids))]

    async def _start_actors(self, placements: list[str], sandboxed: bool) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from k2eval.engine.executors.ray_worker import AttemptWorker

        assert self._plan is not None
        ray, plan = self._ray, self._plan
        remote = ray.remote(AttemptWorker)
        per_actor = plan.config.concurrency + 8
        config = plan.adapter.node_config(plan.config)
        for node in placements:
            options: dict[str, Any] = dict(
                num_cpus=0, max_restarts=-1, max_task_retries=0, max_concurrency=per_actor,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
            if sandboxed:
                options["resources"] = {SLOT_RESOURCE: 1}
            self._actors.append(remote.options(**options).remote(
                config, plan.run_id, 1 if sandboxed else None, plan.models is not None))
        self._n_workers = len(self._actors)
        self._workers_on = Counter(placements)
        waits = {asyncio.ensure_future(self._where_of(i)): i for i in range(len(self._actors))}
        # The first worker may take as long as `ready_timeout_s` (slots held by other runs);
        # once one is up, the others get `grace_s` before they are left to revive on their own
        # (a node that died just now, a node still busy).
        done, pending = await asyncio.wait(waits, timeout=self.ready_timeout_s,
                                           return_when=asyncio.FIRST_COMPLETED)
        if not done:
            for fut in pending:
                fut.cancel()
            raise UserError(f"Ray workers did not start within {self.ready_timeout_s:.0f} s on "
                            f"the cluster at {self.address} (are its {SLOT_RESOURCE} held by "
                            "other runs?)")
        if pending:
            more, pending = await asyncio.wait(pending, timeout=self.grace_s)
            done |= more
        for fut in done:
            exc = fut.exception()
            if isinstance(exc, ray.exceptions.RayTaskError):
                raise self._cause(exc) from None
            if exc is not None:
                self._lost(waits[fut], exc)
        for fut in pending:
            fut.cancel()
            self._lost(waits[fut], TimeoutError())
        self._nodes = sorted({str(w["node_id"]) for w in self._where.values()})

    async def _where_of(self, i: int) -> None:
        self._where[i] = await self._actors[i].where.remote()

    async def setup(self) -> None:
        """Where workers run the attempts: the adapter's `setup` on every node (one worker
        each), not here; a node that refuses stops the run, named. Else the driver's."""
        if not self._actors:
            await super().setup()
            return
        said: dict[str, list[str]] = {}
        for node, lines in (await self._ask_each_node("setup")).items():
            for line in lines:
                said.setdefault(line, []).append(node)
        for line, nodes in said.items():  # the nodes' warnings, once each
            where = "every node" if len(nodes) == len(self._nodes) else ", ".join(nodes)
            print(f"{line} (on {where})", file=sys.stderr)

    async def conditions(self) -> dict[str, Any]:
        """Where workers run the attempts: the conditions on their nodes, asked of one worker
        per node, which must agree (`agreed_conditions`); the driver needs no Docker engine of
        its own. When this pass started no worker (nothing to solve or grade): the driver's."""
        if not self._actors:
            return await super().conditions()
        return agreed_conditions(await self._ask_each_node("conditions"))

    async def _ask_each_node(self, method: str) -> dict[str, Any]:
        """`method`'s answer from one live worker on each node, by node name. A node's
        `UserError` stops the run naming the node; a node that does not answer is left out,
        unless none answers."""
        ask = self._one_worker_per_node()
        answers = await asyncio.gather(*(getattr(self._actors[i], method).remote()
                                         for i in ask.values()), return_exceptions=True)
        by_node: dict[str, Any] = {}
        for i, answer in zip(ask.values(), answers, strict=True):
            node = f"{self._where[i]['hostname']} ({node_label(self._where[i])})"
            cause = self._cause(answer) if isinstance(answer, BaseException) else None
            if isinstance(cause, UserError):  # e.g. a source tree the node's setup refused
                raise UserError(f"Ray node {node}: {cause}") from None
            if not isinstance(answer, BaseException):
                by_node[node] = answer
        if not by_node:
            first = next(iter(answers), None)
            reason = str(self._cause(first)).strip().splitlines()[0] if first else "no live worker"
            raise InfraError(f"no node of the Ray cluster at {self.address} answered "
                             f"({method}): {reason}")
        return by_node

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "workers": self._n_workers,
                "nodes": self._nodes, "sandbox_slots": self._slots or None,
                "rescheduled": self.rescheduled, "start_s": self._start_s,
                "image_placement": dict(self.image_placement) or None}

    async def aclose(self) -> None:
        ray = self._ray
        if ray is None:
            return
        for task in self._revivals:
            task.cancel()
        try:
            if self._actors:
                pruned: set[str] = set()
                calls = []
                for i, actor in enumerate(self._actors):
                    node = str(self._where.get(i, {}).get("node_id"))
                    prune = bool(self._slots) and node not in pruned
                    pruned.add(node)
                    calls.append(actor.close.remote(prune))
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 120)
                for actor in self._actors:
                    with contextlib.suppress(Exception):
                        ray.kill(actor)
            if self._driver_scorer is not None:
                await self._driver_scorer.aclose()
        finally:
            self._actors = []
            if self._owns_ray:
                ray.shutdown()
                self._owns_ray = False

    # --- dispatch --------------------------------------------------------------------------

    @property
    def sandbox_slots(self) -> int:
        return self._slots

    @property
    def score_slots(self) -> int:
        """Sandboxed tasks: as many grading calls in flight as the run's concurrency (at least
        the slots). An attempt is graded on the node that solved it, so with only one call
        per slot in flight two could wait for the same node while another node sits idle;
        with more, each node has its own attempts queued at its workers, whose slots still
        bound the containers. Other tasks are graded here, as the base class says."""
        assert self._plan is not None, "executor used before start()"
        if self._plan.adapter.needs_sandbox:
            return max(self._slots, self._plan.config.concurrency)
        return super().score_slots

    def _node_of(self, i: int) -> str | None:
        return self._where.get(i, {}).get("node_id")

    def _outstanding(self, i: int, prefer: set[str] | None) -> float:
        """What worker `i` has yet to do: its calls in flight, plus its share of the attempts
        its node solved and has still to grade (those go nowhere else); a node that would
        have to prepare the attempt's image first counts `PREPARE_MARGIN` attempts more."""
        node = self._node_of(i)
        margin = PREPARE_MARGIN if prefer is not None and node not in prefer else 0
        return self._load[i] + self._backlog[str(node)] / (self._workers_on[str(node)] or 1) + margin

    async def _pick(self, node: str | None, prefer: set[str] | None = None) -> int:
        """The healthy worker with the least outstanding work (on `node` when it has one);
        waits while every worker is restarting."""
        deadline = time.monotonic() + self.revive_timeout_s
        while True:
            live = [i for i in range(len(self._actors)) if i not in self._dead]
            if not live:
                raise InfraError(f"every Ray worker of this run is dead (cluster {self.address})")
            healthy = [i for i in live if i not in self._suspect]
            if healthy:
                local = [i for i in healthy if self._node_of(i) == node]
                return min(local or healthy, key=lambda i: (self._outstanding(i, prefer), i))
            if time.monotonic() > deadline:
                raise InfraError(f"no Ray worker came back within {self.revive_timeout_s:.0f} s")
            await asyncio.sleep(0.5)

    def _lost(self, i: int, exc: BaseException) -> None:
        """Worker `i` died under a call: skip it until Ray has restarted it (or for good)."""
        if isinstance(exc, self._ray.exceptions.ActorDiedError):
            self._dead.add(i)
        elif i not in self._suspect and i not in self._dead:
            self._suspect.add(i)
            self._revivals.append(asyncio.create_task(self._revive(i)))

    async def _revive(self, i: int) -> None:
        ray, deadline = self._ray, time.monotonic() + self.revive_timeout_s
        while time.monotonic() < deadline:
            try:
                self._where[i] = await asyncio.wait_for(self._actors[i].where.remote(), 60)
            except ray.exceptions.ActorDiedError:
                break
            except Exception:
                await asyncio.sleep(1.0)
                continue
            self._suspect.discard(i)
            return
        self._dead.add(i)
        self._suspect.discard(i)

    @staticmethod
    def _cause(exc: Any) -> BaseException:
        cause = getattr(exc, "cause", None)
        return cause if isinstance(cause, BaseException) else exc

    async def _call(self, method: str, *args: Any, node: str | None = None,
                    prefer: set[str] | None = None) -> Any:
        """Call an actor method, moving to another worker when the one running it dies."""
        ray = self._ray
        last: BaseException | None = None
        for _ in range(self.max_tries):
            i = await self._pick(node, prefer)
            self._load[i] += 1
            try:
                return await getattr(self._actors[i], method).remote(*args)
            except ray.exceptions.RayTaskError as exc:
                cause = self._cause(exc)
                if isinstance(cause, UserError | RunFatalError):
                    raise cause from None
                raise InfraError(f"{type(cause).__name__}: {cause}") from None
            except Exception as exc:
                if not _is_worker_loss(exc, ray):
                    raise
                last = exc
                self.rescheduled += 1
                self._lost(i, exc)
            finally:
                self._load[i] -= 1
        first = str(last).strip().splitlines()[0] if last is not None else ""
        raise InfraError(f"Ray worker lost {self.max_tries} times under this attempt: {first}")

    async def _holders(self, image: str) -> set[str]:
        """The nodes whose Docker engine holds `image` (asked once per image, of one live
        worker per node; nodes that prepare it later are added as their attempts return)."""
        asked = self._image_nodes.get(image)
        if asked is None:
            asked = self._image_nodes[image] = asyncio.ensure_future(self._ask_holders(image))
        return await asyncio.shield(asked)

    def _one_worker_per_node(self) -> dict[str, int]:
        """node id -> a healthy worker there."""
        ask: dict[str, int] = {}
        for i in range(len(self._actors)):
            node = self._node_of(i)
            if node and i not in self._dead and i not in self._suspect:
                ask.setdefault(node, i)
        return ask

    async def _ask_holders(self, image: str) -> set[str]:
        ask = self._one_worker_per_node()
        answers = await asyncio.gather(*(self._actors[i].holds.remote([image])
                                         for i in ask.values()), return_exceptions=True)
        return {node for node, held in zip(ask, answers, strict=True)
                if isinstance(held, list) and image in held}

    async def solve(self, item: Item, index: int) -> Attempt:
        started = time.time()
        assert self._plan is not None
        image = self._plan.adapter.item_image(item, self._plan.config.task)
        try:
            if image is None:
                attempt: Attempt = await self._call("solve", item, index)
            else:
                holders = await self._holders(image)
                attempt = await self._call("solve", item, index, prefer=holders)
                node = (attempt.worker or {}).get("node_id")
                self.image_placement["held" if node in holders else "not_held"] += 1
                if node and not (attempt.error and attempt.error.get("type") == "InfraError"):
                    holders.add(node)  # it holds the image now
            if attempt.status == "ok" and self._driver_scorer is None and attempt.worker:
                self._backlog[str(attempt.worker.get("node_id"))] += 1  # graded there
            return attempt
        except InfraError as exc:
            return Attempt(item_id=item.id, index=index, status="error", started=started,
                           ended=time.time(), error={"type": "InfraError", "message": str(exc)})

    async def score(self, item: Item, attempt: Attempt) -> Score:
        if self._driver_scorer is not None:
            return await self._driver_scorer.score(item, attempt)
        node = (attempt.worker or {}).get("node_id")
        try:
            result: Score = await self._call("score", item, attempt, node=node)
            return result
        except InfraError as exc:
            return Score(item_id=item.id, index=attempt.index, value=0.0, status="error",
                         reason=f"grader failed: {exc}")
        finally:
            if self._backlog[str(node)] > 0:
                self._backlog[str(node)] -= 1
