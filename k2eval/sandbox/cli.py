"""`k2eval sandbox build|doctor|gc`."""

from __future__ import annotations

import argparse

import docker.errors

from k2eval.errors import EXIT_INFRA
from k2eval.sandbox.client import ensure_docker


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sandbox", help="build, check and clean up Docker sandboxes")
    commands = parser.add_subparsers(dest="sandbox_command", required=True)

    build = commands.add_parser("build", help="build sandbox images (all by default)")
    build.add_argument("names", nargs="*", metavar="NAME", help="image names (sandboxes/<NAME>)")
    build.add_argument("--offline-base", action="store_true", default=None,
                       help="bootstrap the base with debootstrap instead of pulling debian")
    build.add_argument("--force", action="store_true", help="rebuild even when the tag exists")
    build.set_defaults(func=_build)

    doctor = commands.add_parser("doctor", help="check the daemon, images and a round trip")
    doctor.set_defaults(func=_doctor)

    gc = commands.add_parser("gc", help="remove sandbox containers left by dead runs")
    gc.add_argument("--all", action="store_true", help="remove every k2eval container")
    gc.add_argument("--run-id", help="remove the containers of this run")
    gc.add_argument("--images", action="store_true",
                    help="also remove shipped images whose build context has changed")
    gc.set_defaults(func=_gc)


def _build(args: argparse.Namespace) -> int:
    from k2eval.sandbox.images import build_image, image_names

    names = args.names or image_names()
    for name in names:
        tag = build_image(name, args.offline_base, force=args.force, log=True)
        print(f"{name}: {tag}", flush=True)
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from k2eval.sandbox.doctor import run_checks

    checks = run_checks()
    for check in checks:
        print(check.line())
    return 0 if all(check.ok for check in checks) else EXIT_INFRA


def _gc(args: argparse.Namespace) -> int:
    from k2eval.sandbox.cleanup import gc_containers
    from k2eval.sandbox.images import stale_images

    client = ensure_docker()
    result = gc_containers(client, everything=args.all, run_id=args.run_id)
    print(f"removed {len(result.removed)} container(s), kept {len(result.kept)} of live runs")
    for name in result.removed:
        print(f"  removed {name}")
    if args.images:
        for tag in stale_images(client):
            try:
                client.images.remove(tag)
            except docker.errors.APIError as exc:
                print(f"  kept image {tag}: {exc.explanation or exc}")
                continue
            print(f"  removed image {tag}")
    return 0
