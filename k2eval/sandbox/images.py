"""Sandbox images: one build context per image under `sandboxes/<name>/`, tags versioned by content.

`k2eval/base:<hash12>` is Debian (python3, git, patch, ...), described by
`sandboxes/base/bootstrap.txt`. Without a reachable registry it is bootstrapped from Debian
packages (`debootstrap --variant=minbase`, then `docker import`), so an air-gapped host
(with a Debian mirror) builds everything. Every other image's Dockerfile starts
`ARG BASE_IMAGE` / `FROM ${BASE_IMAGE}` and is built with networking off. A context with a
`requirements.txt` gets the wheels it names in `wheels/` (fetched on the host with
`pip download`, cached under ~/.cache/k2eval/wheels), to install without an index; one with a
`source-wheels.txt` also gets wheels built on the host from source distributions (`pip wheel`,
with the `ENV NAME=VALUE` lines of that file set; the host's CPython must be the image's). A
context with a `debs.txt` gets the Debian packages it names in `debs/`, together with every
dependency the base image lacks: apt on the host resolves them against the base image's dpkg
status and downloads them (the host must run the base's Debian suite), for `dpkg -i` offline.

A tag is the first 12 hex digits of a SHA-256 over the build context (paths, exec bits,
contents), and for derived images also over the base tag: editing a context, or the base,
gives a new tag, and an unchanged one is never rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from k2eval.errors import UserError
from k2eval.sandbox.client import ensure_docker

BASE = "base"
REQUIREMENTS = "requirements.txt"
SOURCE_WHEELS = "source-wheels.txt"
DEBS = "debs.txt"
IMAGE_PYTHON = "3.11"
"""The CPython of the base image (Debian bookworm), for fetching wheels."""
IMAGE_REPO_PREFIX = "k2eval/"
LABEL_IMAGE = "org.k2eval.image"
AUTOBUILD_ENV = "K2EVAL_SANDBOX_AUTOBUILD"
MIRROR_ENV = "K2EVAL_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BUILD_TIMEOUT_S = 3600
_build_lock = threading.RLock()


def sandboxes_dir() -> Path:
    """The build contexts: shipped in the wheel, or `sandboxes/` of a source checkout."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_resources" / "sandboxes", package.parent / "sandboxes"):
        if candidate.is_dir():
            return candidate
    raise UserError(f"no sandboxes/ build contexts found beside {package}; reinstall k2eval")


def image_names() -> list[str]:
    """Shipped images, base first."""
    root = sandboxes_dir()
    names = sorted(p.name for p in root.iterdir() if (p / "Dockerfile").is_file() and p.name != BASE)
    return [BASE, *names]


def _context_dir(name: str) -> Path:
    path = sandboxes_dir() / name
    if not (path / "Dockerfile").is_file():
        known = ", ".join(image_names())
        raise UserError(f"unknown sandbox image {name!r} (known: {known})")
    return path


def _context_files(path: Path) -> Iterator[Path]:
    for file in sorted(path.rglob("*")):
        if file.is_file() and "__pycache__" not in file.parts:
            yield file


def _digest(path: Path, *extra: str) -> str:
    sha = hashlib.sha256()
    for file in _context_files(path):
        rel = file.relative_to(path).as_posix()
        executable = bool(file.stat().st_mode & 0o111)
        sha.update(f"{rel}\0{int(executable)}\0".encode())
        sha.update(hashlib.sha256(file.read_bytes()).digest())
    for item in extra:
        sha.update(item.encode())
    return sha.hexdigest()[:12]


def base_image_tag() -> str:
    """The tag of the shipped base image, e.g. `k2eval/base:3f2a...`. Build FROM this."""
    return f"{IMAGE_REPO_PREFIX}{BASE}:{_digest(_context_dir(BASE))}"


def image_tag(name: str) -> str:
    """The content-versioned tag of a shipped image, e.g. `k2eval/python:<hash12>`."""
    if name == BASE:
        return base_image_tag()
    return f"{IMAGE_REPO_PREFIX}{name}:{_digest(_context_dir(name), base_image_tag())}"


def image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_image(name: str, *, build: bool | None = None) -> str:
    """The tag of shipped image `name` (or an image reference with `:`), present locally.

    Missing images are built when `build` is true (default: env K2EVAL_SANDBOX_AUTOBUILD=1),
    otherwise `UserError` names the command that builds it.
    """
    client = ensure_docker()
    if ":" in name or "/" in name:
        if not image_exists(client, name):
            raise UserError(f"sandbox image {name} is missing: build or load it first")
        return name
    tag = image_tag(name)
    if image_exists(client, tag):
        return tag
    if build is None:
        build = os.environ.get(AUTOBUILD_ENV, "") == "1"
    if not build:
        raise UserError(f"sandbox image {tag} is missing: run `k2eval sandbox build {name}`")
    return build_image(name)


def build_image(name: str, offline_base: bool | None = None, *, force: bool = False,
                log: bool = False) -> str:
    """Build shipped image `name` (and the base it needs) unless its tag exists; the tag.

    `offline_base`: True bootstraps the base with debootstrap, False pulls
    `debian:<suite>-slim`, None decides by whether a registry answers.
    """
    client = ensure_docker()
    tag = image_tag(name)
    if image_exists(client, tag) and not force:
        return tag
    with _build_lock:  # concurrent callers in one process build once
        if image_exists(client, tag) and not force:
            return tag
        return _build(client, name, tag, offline_base, log=log)


def _build(client: docker.DockerClient, name: str, tag: str, offline_base: bool | None, *,
           log: bool) -> str:
    if name == BASE:
        _build_base(client, tag, offline_base, log=log)
        return tag
    base = build_image(BASE, offline_base, log=log)
    context = _context_dir(name)
    if not any((context / f).is_file() for f in (REQUIREMENTS, SOURCE_WHEELS, DEBS)):
        _docker_build(client, context, tag, name, {"BASE_IMAGE": base}, log=log)
        return tag
    with tempfile.TemporaryDirectory(prefix=f"k2eval-{name}-") as staging:
        staged = Path(staging) / name
        shutil.copytree(context, staged)
        if (context / REQUIREMENTS).is_file():
            shutil.copytree(_wheels_for(context / REQUIREMENTS, tag, log=log), staged / "wheels")
        if (context / SOURCE_WHEELS).is_file():
            shutil.copytree(_source_wheels_for(context / SOURCE_WHEELS, tag, log=log),
                            staged / "wheels", dirs_exist_ok=True)
        if (context / DEBS).is_file():
            shutil.copytree(_debs_for(client, context / DEBS, base, tag, log=log), staged / "debs")
        _docker_build(client, staged, tag, name, {"BASE_IMAGE": base}, log=log)
    return tag


def _cache_dir(kind: str, tag: str) -> Path:
    """The host cache of one image's build inputs of a kind (wheels, source-wheels, debs)."""
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "k2eval"
    return root / kind / tag.replace("/", "_").replace(":", "-")


def _wheels_for(requirements: Path, tag: str, *, log: bool) -> Path:
    """Wheels for an image's requirements.txt, fetched on the host (containers have no
    network) for the image's CPython and platform; cached so later builds work offline."""
    target = _cache_dir("wheels", tag)
    common = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
              "--only-binary=:all:", "--platform", f"manylinux2014_{platform.machine()}",
              "--python-version", IMAGE_PYTHON, "--implementation", "cp",
              "-r", str(requirements), "-d", str(target)]
    offline = subprocess.run([*common, "--no-index", "--find-links", str(target)],
                             capture_output=True, text=True)
    if offline.returncode == 0:
        return target
    if log:
        print(f"downloading wheels for {tag} ({requirements}) ...", flush=True)
    online = subprocess.run(common, capture_output=True, text=True)
    if online.returncode != 0:
        tail = "\n".join(online.stderr.strip().splitlines()[-5:])
        raise UserError(f"cannot fetch the Python packages of {tag} listed in {requirements} "
                        f"(needs PyPI once, or the wheels in {target}):\n{tail}")
    return target


def _listed(path: Path) -> tuple[list[str], dict[str, str]]:
    """The entries of a package list (comments and blank lines dropped) and its `ENV` lines."""
    entries: list[str] = []
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) == 2 and words[0] == "ENV" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            env[key] = value
        elif words:
            entries.extend(words)
    return entries, env


def _source_wheels_for(listing: Path, tag: str, *, log: bool) -> Path:
    """Wheels built on the host (`pip wheel --no-deps`) for packages published only as source;
    cached per image tag. The host's CPython must match the image's for the wheels to load."""
    target = _cache_dir("source-wheels", tag)
    done = target / ".complete"
    if done.is_file():
        return target
    if f"{sys.version_info[0]}.{sys.version_info[1]}" != IMAGE_PYTHON:
        raise UserError(f"building the wheels listed in {listing} needs Python {IMAGE_PYTHON} on "
                        f"the host (this is {platform.python_version()}): run `k2eval sandbox "
                        f"build` with a Python {IMAGE_PYTHON} interpreter")
    requirements, env = _listed(listing)
    if log:
        print(f"building wheels for {tag} ({', '.join(requirements)}) ...", flush=True)
    target.mkdir(parents=True, exist_ok=True)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                            "--disable-pip-version-check", "--no-binary", ":all:", "-w",
                            str(target), *requirements], capture_output=True, text=True,
                           env={**os.environ, **env})
    if built.returncode != 0:
        tail = "\n".join(built.stderr.strip().splitlines()[-8:])
        raise UserError(f"cannot build the wheels of {tag} listed in {listing} (needs PyPI once "
                        f"and a C/C++ toolchain with the headers they need; scripts/"
                        f"setup-docker.sh installs them):\n{tail}")
    done.touch()
    return target


def _debs_for(client: docker.DockerClient, listing: Path, base: str, tag: str, *,
              log: bool) -> Path:
    """The .deb files of the packages in `listing` and of each dependency `base` lacks: apt on
    the host resolves them against the base image's dpkg status (so nothing the image already
    has is fetched) and downloads them; cached per image tag."""
    target = _cache_dir("debs", tag)
    if (target / ".complete").is_file():
        return target
    if not shutil.which("apt-get"):
        raise UserError(f"the Debian packages in {listing} are fetched with apt-get on the host; "
                        "build this image on a Debian host of the base image's suite")
    packages, _ = _listed(listing)
    status = client.containers.run(base, ["cat", "/var/lib/dpkg/status"], remove=True,
                                   network_mode="none", entrypoint=[])
    with tempfile.TemporaryDirectory(prefix="k2eval-apt-") as scratch:
        state = Path(scratch)
        (state / "status").write_bytes(status)
        archives = state / "archives"
        (archives / "partial").mkdir(parents=True)
        if log:
            print(f"downloading Debian packages for {tag} ({', '.join(packages)}) ...", flush=True)
        fetched = subprocess.run(
            _privileged(["apt-get", "install", "--download-only", "--yes", "--quiet",
                         "--no-install-recommends", "-o", f"Dir::State::status={state}/status",
                         "-o", f"Dir::Cache::archives={archives}", *packages]),
            capture_output=True, text=True)
        if fetched.returncode != 0:
            tail = "\n".join((fetched.stdout + fetched.stderr).strip().splitlines()[-8:])
            raise UserError(f"cannot download the Debian packages of {tag} listed in {listing} "
                            f"(run `apt-get update`, or set apt's mirror):\n{tail}")
        debs = sorted(archives.glob("*.deb"))
        if not debs:
            raise UserError(f"apt downloaded nothing for {listing}: are the packages known "
                            "to apt on this host (`apt-get update`)?")
        target.mkdir(parents=True, exist_ok=True)
        for deb in debs:
            shutil.copy2(deb, target / deb.name)
    (target / ".complete").touch()
    return target


@dataclass(frozen=True)
class BaseRecipe:
    suite: str
    packages: tuple[str, ...]

    @classmethod
    def load(cls) -> BaseRecipe:
        path = _context_dir(BASE) / "bootstrap.txt"
        fields: dict[str, list[str]] = {}
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] not in ("suite", "packages") or len(words) < 2:
                raise UserError(f"{path}:{lineno}: expected `suite NAME` or `packages P...`")
            fields[words[0]] = words[1:]
        if "suite" not in fields or "packages" not in fields:
            raise UserError(f"{path}: needs a `suite` and a `packages` line")
        return cls(suite=fields["suite"][0], packages=tuple(fields["packages"]))


def _build_base(client: docker.DockerClient, tag: str, offline: bool | None, *, log: bool) -> None:
    recipe = BaseRecipe.load()
    slim = f"debian:{recipe.suite}-slim"
    if offline is None:
        offline = not _registry_has(client, slim)
    if offline:
        _bootstrap_base(client, tag, recipe, log=log)
    else:
        _docker_build(client, _context_dir(BASE), tag, BASE,
                      {"SUITE": recipe.suite, "PACKAGES": " ".join(recipe.packages)},
                      log=log, network=True)


def _registry_has(client: docker.DockerClient, ref: str) -> bool:
    if image_exists(client, ref):
        return True
    try:
        probe = docker.from_env(timeout=30)
        try:
            probe.images.pull(ref)
        finally:
            probe.close()
    except (docker.errors.DockerException, OSError):
        return False
    return True


def debian_mirror(sources: list[Path] | None = None) -> str:
    """The Debian mirror: env K2EVAL_DEBIAN_MIRROR, else apt's configured one."""
    if os.environ.get(MIRROR_ENV):
        return os.environ[MIRROR_ENV]
    if sources is None:
        sources = [Path("/etc/apt/sources.list"),
                   *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                match = (re.match(r"\s*URIs:\s*(\S+)", line)
                         or re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)", line))
                if match and re.search(r"/debian/?$", match.group(1)):
                    return match.group(1)
    return DEFAULT_MIRROR


def _privileged(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return cmd
    if shutil.which("sudo"):
        return ["sudo", "-n", *cmd]
    raise UserError(f"`{cmd[0]}` needs root: run `k2eval sandbox build` as root")


def _bootstrap_base(client: docker.DockerClient, tag: str, recipe: BaseRecipe, *,
                    log: bool) -> None:
    if not shutil.which("debootstrap"):
        raise UserError("building the offline base needs debootstrap: "
                        "`sudo apt-get install debootstrap` (or run scripts/setup-docker.sh)")
    mirror = debian_mirror()
    workdir = Path(tempfile.mkdtemp(prefix="k2eval-base-"))
    rootfs = workdir / "rootfs"
    try:
        cmd = _privileged(["debootstrap", "--variant=minbase",
                           f"--include={','.join(recipe.packages)}", recipe.suite, str(rootfs),
                           mirror])
        if log:
            print(f"bootstrapping {tag} from {mirror} ({recipe.suite}) ...", flush=True)
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise UserError(f"debootstrap of the base image failed (exit {done.returncode}) "
                            f"from {mirror}; set {MIRROR_ENV} to a reachable mirror:\n{tail}")
        subprocess.run(_privileged(["sh", "-c", "rm -rf \"$1\"/var/cache/apt/archives/*.deb "
                                    "\"$1\"/var/lib/apt/lists/* \"$1\"/var/log/* ", "clean",
                                    str(rootfs)]), check=True)
        tar = subprocess.Popen(_privileged(["tar", "-C", str(rootfs), "--numeric-owner", "-c",
                                            "."]), stdout=subprocess.PIPE)
        assert tar.stdout is not None
        chunks = iter(lambda: tar.stdout.read(1 << 20), b"")  # type: ignore[union-attr]
        repository, _, version = tag.partition(":")
        changes = ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   "ENV LANG=C.UTF-8", f"LABEL {LABEL_IMAGE}={BASE}", 'CMD ["/bin/bash"]']
        with contextlib.closing(_slow_client()) as importer:
            importer.api.import_image(src=chunks, repository=repository, tag=version,
                                      stream_src=True, changes=changes)
        if tar.wait() != 0:
            raise UserError(f"packing the bootstrapped base failed (tar exit {tar.returncode})")
        if not image_exists(client, tag):
            raise UserError(f"docker import of {tag} produced no image")
    finally:
        subprocess.run(_privileged(["rm", "-rf", str(workdir)]), check=False)


def _slow_client() -> docker.DockerClient:
    """A client whose reads wait as long as a quiet build step or a large import takes."""
    ensure_docker()
    return docker.from_env(timeout=BUILD_TIMEOUT_S)


def _docker_build(client: docker.DockerClient, context: Path, tag: str, name: str,
                  buildargs: dict[str, str], *, log: bool, network: bool = False) -> None:
    """`docker build` with networking off; a failure shows the failing step and its output."""
    step = ""
    lines: list[str] = []
    with contextlib.closing(_slow_client()) as builder:
        try:
            for chunk in builder.api.build(path=str(context), tag=tag, buildargs=buildargs,
                                           rm=True, forcerm=True, decode=True,
                                           labels={LABEL_IMAGE: name},
                                           network_mode=None if network else "none"):
                text = chunk.get("stream", "")
                if text:
                    if text.startswith("Step "):
                        step = text.strip()
                    lines.extend(text.rstrip("\n").splitlines())
                    if log:
                        print(text, end="", flush=True)
                if "error" in chunk:
                    detail = "\n".join(lines[-15:])
                    raise UserError(f"building {tag} failed at {step or 'the first step'}: "
                                    f"{chunk['error'].strip()}\n{detail}")
        except docker.errors.APIError as exc:
            raise UserError(f"building {tag} failed: {exc.explanation or exc}") from None
    if not image_exists(client, tag):
        raise UserError(f"building {tag} produced no image:\n" + "\n".join(lines[-15:]))


def stale_images(client: docker.DockerClient) -> list[str]:
    """Tags of shipped images that no longer match their build context."""
    current = {image_tag(name) for name in image_names()}
    stale: list[str] = []
    for image in client.images.list(filters={"label": LABEL_IMAGE}):
        stale.extend(t for t in image.tags
                     if t.startswith(IMAGE_REPO_PREFIX) and t not in current
                     and t.split(":")[0].removeprefix(IMAGE_REPO_PREFIX) in image_names())
    return sorted(stale)
