"""How many sandboxes a node can hold, and the `ray start` line that declares it.

    python -m k2eval.engine.executors.slots --head          # on the head node
    python -m k2eval.engine.executors.slots --address HEAD:6379   # on every other node

N = min(0.75 per core, what memory allows at `--memory-mb` per sandbox after keeping 4 GiB
for the system), at least 1. 0.75 containers per core is SWE-bench's guidance for its
harness; 8192 MiB is the memory limit of a SWE-bench instance container here, the largest
of the shipped tasks (a LiveCodeBench grader needs 2048).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex

PER_CORE = 0.75
RESERVED_MB = 4096
DEFAULT_SLOT_MB = 8192


def sandbox_slots(cores: int, memory_mb: int, slot_memory_mb: int = DEFAULT_SLOT_MB) -> int:
    """Sandboxes a node with `cores` CPUs and `memory_mb` of RAM can run at once."""
    by_cpu = int(cores * PER_CORE)
    by_memory = (memory_mb - RESERVED_MB) // max(1, slot_memory_mb)
    return max(1, min(by_cpu, by_memory))


def _memory_mb() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise RuntimeError("cannot read MemTotal from /proc/meminfo")


def ray_start_line(slots: int, *, head: bool, address: str | None) -> str:
    where = "--head --port 6379" if head else f"--address {shlex.quote(address or 'HEAD:6379')}"
    resources = shlex.quote(json.dumps({"sandbox_slots": slots}))
    return f"RAY_LOGGER_LEVEL=warning ray start {where} --resources {resources}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m k2eval.engine.executors.slots",
        description="Print the `ray start` line that joins this node to a k2eval cluster with "
                    "as many sandbox slots as its cores and memory allow.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--head", action="store_true", help="this node starts the cluster")
    g.add_argument("--address", metavar="HEAD:PORT", help="the head node to join")
    p.add_argument("--memory-mb", type=int, default=DEFAULT_SLOT_MB,
                   help=f"memory per sandbox (default {DEFAULT_SLOT_MB}, SWE-bench's limit)")
    args = p.parse_args(argv)
    cores = os.cpu_count() or 1
    memory = _memory_mb()
    slots = sandbox_slots(cores, memory, args.memory_mb)
    print(f"# {cores} cores, {memory // 1024} GiB -> {slots} sandbox slots "
          f"({PER_CORE} per core, {args.memory_mb} MiB each, {RESERVED_MB} MiB kept)")
    print(ray_start_line(slots, head=args.head, address=args.address))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
