"""Executors: where attempts run. `local` (the default) runs them on the driver's event loop;
`ray` spreads them over the workers of a Ray cluster (`pip install 'k2eval[ray]'`).

See `base.Executor` for the contract every executor keeps."""

from __future__ import annotations

from typing import Any

from k2eval.engine.executors.base import Executor, WorkPlan
from k2eval.engine.executors.local import LocalExecutor
from k2eval.errors import UserError

EXECUTORS = ("local", "ray")

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "WorkPlan", "make_executor"]


def make_executor(name: str, **options: Any) -> Executor:
    """`make_executor("local")`, or `make_executor("ray", address=..., workers=...)`."""
    if name == "local":
        flags = [f"--ray-{k}" for k, v in sorted(options.items()) if v is not None]
        if flags:
            raise UserError(f"{', '.join(flags)} only apply with --executor ray")
        return LocalExecutor()
    if name == "ray":
        from k2eval.engine.executors.ray_cluster import RayExecutor

        return RayExecutor(**options)
    raise UserError(f"unknown executor {name!r}: use one of {', '.join(EXECUTORS)}")
