#!/usr/bin/env python3
"""Build the worker and API images with whichever container engine answers.

    python3 deploy/docker/images.py            # or: make images
    python3 deploy/docker/images.py engine     # which engine would build, or why none can
    python3 deploy/docker/images.py base       # only the base image (see below)

Standard library only, like deploy/local/services.py. Both targets of deploy/docker/Dockerfile
are tagged with the project's version (pyproject.toml), e.g. `partner-audit-log/api:0.1.0`.

The base is the Dockerfile's build argument PYTHON_IMAGE: the environment's PYTHON_IMAGE when
set, else the official `python:3.11-slim-bookworm` when it is present or can be pulled. Where
no registry answers, a local stand-in is made once: Debian bookworm's python3 (3.11, the
version the tests run on) unpacked by `mmdebstrap` and imported into the engine, carrying this
machine's CA bundle so that pip inside the build trusts the same certificates as the host.
`AUDIT_ENGINE` picks an engine (podman or docker) instead of the first that answers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "deploy" / "docker" / "Dockerfile"
IGNOREFILE = REPO_ROOT / "deploy" / "docker" / "Dockerfile.dockerignore"
ENGINES = ("podman", "docker")
TARGETS = ("worker", "api")
OFFICIAL_BASE = "docker.io/library/python:3.11-slim-bookworm"
LOCAL_BASE = "localhost/partner-audit-log/python-base:3.11-bookworm"
# What the official slim image offers the Dockerfile: `python`, venv, pip, CA certificates,
# useradd; tzdata and netbase for the time zones and service names Python may look up.
PYTHON_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates", "passwd")
COMMON_PACKAGES = ("netbase", "tzdata")
DEBIAN_SOURCES = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PULL_TIMEOUT_S = 120.0


class ImageError(Exception):
    """A failure the user can act on; printed as one line, never as a traceback."""


class BaseUnavailable(ImageError):
    """No base image can be had here (no registry, no way to make one): nothing to build on."""


def project_version() -> str:
    with (REPO_ROOT / "pyproject.toml").open("rb") as source:
        return str(tomllib.load(source)["project"]["version"])


def image_name(target: str, version: str | None = None) -> str:
    return f"partner-audit-log/{target}:{version or project_version()}"


def _run(
    command: Sequence[str], timeout: float | None = None, quiet: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command; its output is captured when `quiet` (and streamed otherwise)."""
    try:
        return subprocess.run(
            list(command),
            capture_output=quiet,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise ImageError(f"`{' '.join(command[:3])}` did not finish in {timeout:.0f}s") from error
    except OSError as error:
        raise ImageError(f"cannot run {command[0]}: {error.strerror}") from error


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stderr or result.stdout or "").strip().splitlines()
    return lines[-1].strip()[:300] if lines else f"exit status {result.returncode}"


def why_no_engine() -> str | None:
    """None when an engine answers; otherwise what each candidate said."""
    try:
        find_engine()
    except ImageError as error:
        return str(error)
    return None


def find_engine() -> str:
    """The first engine (AUDIT_ENGINE, else podman then docker) whose `info` succeeds."""
    wanted = os.environ.get("AUDIT_ENGINE")
    candidates = (wanted,) if wanted else ENGINES
    reasons = []
    for name in candidates:
        path = shutil.which(name)
        if path is None:
            reasons.append(f"{name}: not installed")
            continue
        result = _run([path, "info"], timeout=60)
        if result.returncode == 0:
            return path
        reasons.append(f"{name}: {_last_line(result)}")
    raise ImageError("no container engine answers (" + "; ".join(reasons) + ")")


def is_podman(engine: str) -> bool:
    return Path(engine).name == "podman"


def image_exists(engine: str, name: str) -> bool:
    return _run([engine, "image", "inspect", name], timeout=60).returncode == 0


def choose_base(engine: str) -> str:
    """PYTHON_IMAGE if set; the official image if present or pullable; else the local one."""
    if os.environ.get("PYTHON_IMAGE"):
        return os.environ["PYTHON_IMAGE"]
    if image_exists(engine, OFFICIAL_BASE):
        return OFFICIAL_BASE
    pulled = _run([engine, "pull", OFFICIAL_BASE], timeout=PULL_TIMEOUT_S)
    if pulled.returncode == 0:
        return OFFICIAL_BASE
    print(f"images: {OFFICIAL_BASE} cannot be pulled ({_last_line(pulled)})", flush=True)
    return debian_image(engine, LOCAL_BASE, PYTHON_PACKAGES)


def debian_image(engine: str, name: str, packages: Sequence[str], refresh: bool = False) -> str:
    """A Debian bookworm image with `packages`, made by mmdebstrap once and then reused."""
    if not refresh and image_exists(engine, name):
        return name
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise BaseUnavailable(
            f"no registry answers and mmdebstrap is missing, so no local base image {name} "
            "can be made: install mmdebstrap (Debian: apt-get install mmdebstrap) or set "
            "PYTHON_IMAGE to an image you have"
        )
    print(f"images: making {name} from Debian bookworm packages (first run only)", flush=True)
    with tempfile.TemporaryDirectory(prefix="audit-base-") as folder:
        rootfs = Path(folder) / "rootfs.tar"
        _debootstrap(mmdebstrap, rootfs, [*packages, *COMMON_PACKAGES])
        imported = _run(
            [
                engine,
                "import",
                "--change",
                "ENV LANG=C.UTF-8",
                "--change",
                'CMD ["bash"]',
                str(rootfs),
                name,
            ],
            timeout=600,
        )
    if imported.returncode != 0:
        raise ImageError(f"importing {name} failed: {_last_line(imported)}")
    return name


def _debootstrap(mmdebstrap: str, rootfs: Path, packages: Sequence[str]) -> None:
    hooks = []
    if HOST_CA_BUNDLE.is_file():
        # The host's bundle includes any CA its network requires (a TLS-inspecting proxy,
        # say); Debian's pip reads this file, so `pip install` in the build trusts it too.
        hooks += ["--customize-hook", f"copy-in {HOST_CA_BUNDLE} /etc/ssl/certs/"]
    hooks += ["--customize-hook", 'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin']
    result = _run(
        [
            mmdebstrap,
            "--variant=minbase",
            "--include=" + ",".join(packages),
            *hooks,
            "bookworm",
            str(rootfs),
            *DEBIAN_SOURCES,
        ],
        timeout=1200,
    )
    if result.returncode != 0:
        raise ImageError(f"mmdebstrap failed: {_last_line(result)}")


def build_command(engine: str, target: str, base: str, tag: str) -> list[str]:
    command = [engine, "build", "-f", str(DOCKERFILE), "--target", target, "-t", tag]
    command += ["--build-arg", f"PYTHON_IMAGE={base}"]
    if is_podman(engine):
        # OCI images have no HEALTHCHECK: the docker format keeps it. podman reads no
        # <Dockerfile>.dockerignore by itself (BuildKit does), so name it. The host's network
        # reaches the package registries whatever the engine's bridge can do.
        command += ["--format", "docker", "--ignorefile", str(IGNOREFILE), "--network", "host"]
    return [*command, str(REPO_ROOT)]


def build(engine: str, base: str, quiet: bool = False) -> dict[str, str]:
    """Both targets, tagged `partner-audit-log/<target>:<version>`; target -> tag. `quiet`
    keeps the engine's output and puts its last line in the error instead."""
    tags = {}
    for target in TARGETS:
        tag = image_name(target)
        print(f"images: building {tag} (base {base})", flush=True)
        result = _run(build_command(engine, target, base, tag), timeout=1800, quiet=quiet)
        if result.returncode != 0:
            detail = _last_line(result) if quiet else "output above"
            raise ImageError(f"building {tag} failed (exit {result.returncode}: {detail})")
        tags[target] = tag
    return tags


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="build", choices=["build", "engine", "base"])
    parser.add_argument("--refresh-base", action="store_true", help="remake the local base")
    args = parser.parse_args(argv)
    try:
        engine = find_engine()
        if args.command == "engine":
            print(engine)
        elif args.command == "base" or args.refresh_base:
            print(debian_image(engine, LOCAL_BASE, PYTHON_PACKAGES, refresh=args.refresh_base))
        if args.command == "build":
            for tag in build(engine, choose_base(engine)).values():
                print(f"images: built {tag}")
    except ImageError as error:
        print(f"images: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
