#!/usr/bin/env python3
"""Bring deploy/docker-compose.yml up with podman-compose, send the demo stream through it,
and tear it down with nothing left behind (make deploy-check).

    python3 deploy/docker/compose_check.py            # or: make deploy-check

What runs is real: the worker and API images (`make images`), podman-compose (PyPI, pinned in
pyproject's `deploy` extra) reading the compose file as it is. Where the upstream images
cannot be pulled (no registry answers), Kafka and Elasticsearch are stand-ins built here from
the Maven Central artifacts the local service manager fetches and verifies
(deploy/standins/, deploy/local/services.py); Kibana has no stand-in, so its two services are
left out. The run says which is which. Stages, each with a deadline: Kafka and Elasticsearch
healthy, topics created by `kafka-init`, worker and API healthy, `audit-log demo` from
inside the worker container, every event in Elasticsearch and the API serving them, then
`down --volumes`, and a check that no container, network or volume of the project remains.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

import images  # noqa: E402

from deploy.local import services  # noqa: E402

COMPOSE_FILE = HERE.parent / "docker-compose.yml"
STANDINS = HERE.parent / "standins"
JRE_BASE = "localhost/partner-audit-log/jre-base:17-bookworm"
JRE_PACKAGES = ("default-jre-headless", "ca-certificates", "curl", "passwd", "bash")
VERSIONS = services.Config.from_env()  # AUDIT_KAFKA_VERSION and AUDIT_ES_VERSION, if set
KAFKA_STANDIN = f"localhost/partner-audit-log/standin-kafka:{VERSIONS.kafka_version}"
ES_STANDIN = f"localhost/partner-audit-log/standin-elasticsearch:{VERSIONS.es_version}"
UPSTREAM = {
    "kafka": f"docker.io/apache/kafka:{VERSIONS.kafka_version}",
    "elasticsearch": f"docker.elastic.co/elasticsearch/elasticsearch:{VERSIONS.es_version}",
}
DEMO_EVENTS = 300
DEMO_PARTNER = "p-001"


class CheckFailed(Exception):
    """A stage did not complete; the message says which and where to look."""


def say(message: str) -> None:
    print(f"deploy-check: {message}", flush=True)


# --------------------------------------------------------------------------- images


def pullable(engine: str, image: str) -> bool:
    if images.image_exists(engine, image):
        return True
    return images._run([engine, "pull", image], timeout=images.PULL_TIMEOUT_S).returncode == 0


def kafka_tools_jar() -> Path:
    """kafka-tools (TopicCommand, for kafka-topics.sh): the local services need no CLI, so
    it is fetched here, the same way and into the same verified cache as their jars."""
    version = VERSIONS.kafka_version
    target = services.cache_dir() / f"kafka-tools-{version}"
    jar = target / f"kafka-tools-{version}.jar"
    if not jar.exists():
        services._run_maven(
            [
                "dependency:copy",
                f"-Dartifact=org.apache.kafka:kafka-tools:{version}",
                f"-DoutputDirectory={target}",
            ],
            target / "maven.log",
            f"kafka-tools {version}",
        )
    services._verify_sha1_files([jar], services.cache_dir() / "m2")
    return jar


def build_standin(engine: str, tag: str, folder: str, fill: Callable[[Path], None]) -> None:
    """Build deploy/standins/<folder> on the JRE base, `fill` adding the artifacts."""
    base = images.debian_image(engine, JRE_BASE, JRE_PACKAGES)
    with tempfile.TemporaryDirectory(prefix="audit-standin-") as context:
        root = Path(context)
        shutil.copytree(STANDINS / folder, root, dirs_exist_ok=True)
        fill(root)
        command = [engine, "build", "--format", "docker", "--network", "host"]
        command += ["--build-arg", f"BASE={base}", "-t", tag, "-f", str(root / "Containerfile")]
        result = images._run([*command, str(root)], timeout=1800)
    if result.returncode != 0:
        raise CheckFailed(f"building {tag} failed: {images._last_line(result)}")


def kafka_context(root: Path) -> None:
    shutil.copytree(services.kafka_libs(VERSIONS.kafka_version), root / "libs")
    shutil.copy2(kafka_tools_jar(), root / "libs")


def elasticsearch_context(root: Path) -> None:
    shutil.copytree(
        services.elasticsearch_home(VERSIONS.es_version), root / "elasticsearch", symlinks=True
    )


def upstream_or_standins(engine: str) -> dict[str, str]:
    """service -> image for Kafka and Elasticsearch: upstream when it can be had."""
    chosen = {}
    for service, upstream in UPSTREAM.items():
        if pullable(engine, upstream):
            say(f"{service}: upstream image {upstream} (real)")
            chosen[service] = upstream
            continue
        standin, folder, fill = {
            "kafka": (KAFKA_STANDIN, "kafka", kafka_context),
            "elasticsearch": (ES_STANDIN, "elasticsearch", elasticsearch_context),
        }[service]
        say(f"{service}: {upstream} cannot be pulled; STAND-IN {standin} (deploy/standins/)")
        build_standin(engine, standin, folder, fill)
        chosen[service] = standin
    return chosen


# --------------------------------------------------------------------------- compose


def override(chosen: dict[str, str]) -> dict[str, object]:
    """The compose file's images replaced by what we have, and ulimits within the host's hard
    limits (a container may not raise them without CAP_SYS_RESOURCE). All three are given:
    podman sets any limit a container leaves out to its own maximum, not to the host's."""
    nofile = min(65535, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    # runc refuses an nproc above the kernel's pid_max (EPERM), whatever the hard limit.
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    nproc = min(pid_max, resource.getrlimit(resource.RLIMIT_NPROC)[1])
    memlock = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    memlock_value = -1 if memlock == resource.RLIM_INFINITY else memlock
    return {
        "services": {
            "kafka": {"image": chosen["kafka"]},
            "kafka-init": {"image": chosen["kafka"]},
            "elasticsearch": {
                "image": chosen["elasticsearch"],
                "ulimits": {
                    "nofile": {"soft": nofile, "hard": nofile},
                    "nproc": {"soft": nproc, "hard": nproc},
                    "memlock": {"soft": memlock_value, "hard": memlock_value},
                },
            },
        }
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    """One podman-compose project, named uniquely so it never touches a stack of the user's."""

    def __init__(self, compose: str, engine: str, override_file: Path) -> None:
        self.engine = engine
        self.project = f"audit-check-{uuid.uuid4().hex[:8]}"
        self.base = [compose, "-p", self.project, "-f", str(COMPOSE_FILE)]
        self.base += ["-f", str(override_file)]
        self.ports = {name: free_port() for name in ("KAFKA", "ES", "AUDIT_API")}
        self.env = {
            **os.environ,
            "AUDIT_JWT_SECRET": secrets.token_urlsafe(32),
            **signing_keys(),
            **{f"{name}_HOST_PORT": str(port) for name, port in self.ports.items()},
        }

    def compose(self, *args: str, timeout: float = 600) -> str:
        result = subprocess.run(
            [*self.base, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise CheckFailed(f"podman-compose {args[0]} failed: {' | '.join(detail)}")
        return result.stdout

    def up(self, *services_: str) -> None:
        self.compose("up", "--detach", "--no-deps", *services_)

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def engine_out(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.engine, *args], capture_output=True, text=True, timeout=120, check=False
        )

    def healthy(self, service: str) -> bool:
        """The service's HEALTHCHECK, run now (podman needs systemd timers to run it by
        itself, and podman-compose only waits on health with podman 4.6+)."""
        name = self.container(service)
        state = self.engine_out("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        if state in {"exited", "stopped"}:
            raise CheckFailed(f"{service} exited: {self.tail(service)}")
        return self.engine_out("healthcheck", "run", name).returncode == 0

    def exited_ok(self, service: str) -> bool:
        name = self.container(service)
        state = self.engine_out(
            "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name
        ).stdout.split()
        if state and state[0] == "exited" and state[1:] != ["0"]:
            raise CheckFailed(f"{service} failed (exit {state[1]}): {self.tail(service)}")
        return state[:2] == ["exited", "0"]

    def tail(self, service: str) -> str:
        result = self.engine_out("logs", "--tail", "5", self.container(service))
        return " | ".join((result.stdout + result.stderr).strip().splitlines()[-5:])

    def leftovers(self) -> list[tuple[str, str]]:
        """(kind, name) of every container, network and volume of the project still there."""
        label = f"label=io.podman.compose.project={self.project}"
        found = []
        for kind, listing in (
            ("container", ["ps", "--all", "--filter", label, "--format", "{{.Names}}"]),
            ("network", ["network", "ls", "--filter", label, "--format", "{{.Name}}"]),
            ("volume", ["volume", "ls", "--filter", label, "--format", "{{.Name}}"]),
        ):
            found += [(kind, name) for name in self.engine_out(*listing).stdout.split()]
        return found

    def remove(self, kind: str, name: str) -> None:
        self.engine_out(*(["rm"] if kind == "container" else [kind, "rm"]), "--force", name)


def signing_keys() -> dict[str, str]:
    """A fresh Ed25519 pair for the worker's integrity digests (the compose file asks for
    one), PEM text: this stack's data is thrown away with it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {"AUDIT_SIGNING_KEY": private.decode(), "AUDIT_SIGNING_PUBLIC_KEY": public.decode()}


def wait(what: str, probe: Callable[[], bool], timeout_s: float) -> None:
    started = time.monotonic()
    while not probe():
        if time.monotonic() - started > timeout_s:
            raise CheckFailed(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(2)
    say(f"{what}: ok after {time.monotonic() - started:.0f}s")


def http_json(url: str, token: str | None = None) -> object | None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:  # noqa: S310
            return json.load(r)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def run_stages(stack: Stack) -> None:
    stack.up("kafka", "elasticsearch")
    wait("kafka healthy", lambda: stack.healthy("kafka"), 300)
    wait("elasticsearch healthy", lambda: stack.healthy("elasticsearch"), 300)
    stack.up("kafka-init")
    wait("kafka-init created the topics", lambda: stack.exited_ok("kafka-init"), 180)
    stack.up("worker", "api")
    wait("worker healthy", lambda: stack.healthy("worker"), 180)
    wait("api healthy", lambda: stack.healthy("api"), 180)
    demo_through_the_stack(stack)


def demo_through_the_stack(stack: Stack) -> None:
    """`audit-log demo` inside the worker container (Kafka is kafka:9092 there), then every
    event counted in Elasticsearch, and the API's total for one partner equal to its count."""
    stack.compose(
        *("exec", "-T", "worker", "audit-log", "demo"),
        *("--count", str(DEMO_EVENTS), "--rate", "0", "--days", "1"),
    )
    es = f"http://127.0.0.1:{stack.ports['ES']}/audit-logs-*/_count"

    def count(query: str = "") -> int:
        found = http_json(es + query)
        return int(found["count"]) if isinstance(found, dict) else -1

    wait(f"{DEMO_EVENTS} demo events in Elasticsearch", lambda: count() == DEMO_EVENTS, 180)
    expected = count(f"?q=audit.partner_id:{DEMO_PARTNER}")
    url = f"http://127.0.0.1:{stack.ports['AUDIT_API']}/api/v1/audit-logs?limit=1"
    token = stack.compose(
        *("exec", "-T", "api", "python", "-m", "api.devtoken", "--partner", DEMO_PARTNER)
    ).strip()

    def served() -> bool:
        page = http_json(url, token)
        return isinstance(page, dict) and page.get("total", {}).get("value") == expected

    if expected <= 0:
        raise CheckFailed(f"no demo event of {DEMO_PARTNER} was indexed")
    wait(f"the API to serve {DEMO_PARTNER}'s {expected} events", served, 60)


def tear_down(stack: Stack) -> None:
    """`down --volumes`, then nothing of the project may remain (removed and reported)."""
    try:
        stack.compose("down", "--volumes", timeout=300)
    finally:
        left = stack.leftovers()
        for kind, name in left:
            stack.remove(kind, name)
    if left:
        raise CheckFailed("left behind after down: " + ", ".join(f"{k} {n}" for k, n in left))
    say(f"torn down: no container, network or volume of {stack.project} remains")


def find_compose() -> str:
    search = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    compose = shutil.which("podman-compose", path=search)
    if compose is None:
        raise CheckFailed("podman-compose is not installed (make deploy-check installs it)")
    return compose


def check() -> None:
    engine = images.find_engine()
    if not images.is_podman(engine):
        raise CheckFailed(
            "this check drives podman-compose, which needs podman; with docker run "
            "`docker compose -f deploy/docker-compose.yml up` instead"
        )
    compose = find_compose()
    say(f"real: the worker and API images, {compose} and deploy/docker-compose.yml as it is")
    images.build(engine, images.choose_base(engine))
    chosen = upstream_or_standins(engine)
    say("kibana, kibana-import: LEFT OUT (no Kibana image can be had here; no stand-in)")
    with tempfile.TemporaryDirectory(prefix="audit-compose-") as folder:
        override_file = Path(folder) / "override.yml"
        override_file.write_text(json.dumps(override(chosen), indent=2))  # JSON is YAML
        stack = Stack(compose, engine, override_file)
        try:
            run_stages(stack)
        finally:
            tear_down(stack)


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    started = time.monotonic()
    try:
        check()
    except (CheckFailed, images.ImageError, services.ServiceError) as error:
        print(f"deploy-check: FAILED: {error}", file=sys.stderr)
        return 1
    say(f"passed in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
