#!/usr/bin/env python3
"""Local Kafka (KRaft) and Elasticsearch for development and tests, without Docker.

Standard library only, so it runs before any virtual environment exists.

    python3 deploy/local/services.py up [kafka|elasticsearch]
    python3 deploy/local/services.py down [kafka|elasticsearch]
    python3 deploy/local/services.py status | env | clean

Both come from their official artifacts on Maven Central, resolved by Maven with strict
checksums (a download whose published checksum is missing or wrong is refused) into a
cache outside the repository, so a second run downloads nothing. Data, logs and pid files
live in the git-ignored `.local/` folder. Elasticsearch refuses to run as root, so when we
are root it runs as an unprivileged system user created on first use.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

# Kafka 3.9 is the last line that keeps the older protocol versions which faust-streaming's
# aiokafka still negotiates for some requests (KIP-896 removed them in 4.0); it runs KRaft.
KAFKA_VERSION = os.environ.get("AUDIT_KAFKA_VERSION", "3.9.2")
# Elasticsearch 9.x integ-test-zips on Maven Central have no published checksums, so they
# cannot be verified: 8.19 is the newest line that can. The Python client's major matches (8).
ES_VERSION = os.environ.get("AUDIT_ES_VERSION", "8.19.21")
RELOAD4J_BINDING = "org.slf4j:slf4j-reload4j:1.7.36"

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE_USER = os.environ.get("AUDIT_SERVICE_USER", "partner-audit")
HOST = "127.0.0.1"
KAFKA_PORT = int(os.environ.get("AUDIT_LOCAL_KAFKA_PORT", "9092"))
KAFKA_CONTROLLER_PORT = int(os.environ.get("AUDIT_LOCAL_KAFKA_CONTROLLER_PORT", "9093"))
ES_PORT = int(os.environ.get("AUDIT_LOCAL_ES_PORT", "9200"))
ES_TRANSPORT_PORT = int(os.environ.get("AUDIT_LOCAL_ES_TRANSPORT_PORT", "9300"))
KAFKA_HEAP = os.environ.get("AUDIT_LOCAL_KAFKA_HEAP", "512m")
ES_HEAP = os.environ.get("AUDIT_LOCAL_ES_HEAP", "768m")
READY_TIMEOUT_S = float(os.environ.get("AUDIT_LOCAL_READY_TIMEOUT", "180"))
STOP_TIMEOUT_S = 60.0


class ServiceError(Exception):
    """A failure the user can act on; printed as one line, never as a traceback."""


# --------------------------------------------------------------------------- paths


def cache_dir() -> Path:
    """Downloads live outside the repository so every clone shares them."""
    if "AUDIT_CACHE_DIR" in os.environ:
        return Path(os.environ["AUDIT_CACHE_DIR"])
    if os.geteuid() == 0:
        # /root is private: the unprivileged Elasticsearch user must be able to read its home.
        return Path("/var/cache/partner-audit-log")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "partner-audit-log"


def state_dir() -> Path:
    return Path(os.environ.get("AUDIT_STATE_DIR", str(REPO_ROOT / ".local")))


# --------------------------------------------------------------------------- java


@dataclass(frozen=True)
class Java:
    home: Path
    major: int


def _java_major(java_bin: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(java_bin), "-version"], capture_output=True, text=True, timeout=30
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _java_candidates(preferred_env: Iterable[str]) -> list[Path]:
    homes: list[Path] = [Path(os.environ[name]) for name in preferred_env if os.environ.get(name)]
    on_path = shutil.which("java")
    if on_path:
        homes.append(Path(os.path.realpath(on_path)).parents[1])
    jvm_root = Path(os.environ.get("AUDIT_JVM_ROOT", "/usr/lib/jvm"))
    if jvm_root.is_dir():
        homes.extend(sorted(p for p in jvm_root.iterdir() if p.is_dir() and not p.is_symlink()))
    unique: list[Path] = []
    for home in homes:
        if home not in unique:
            unique.append(home)
    return unique


def find_java(purpose: str, minimum: int, maximum: int, preferred_env: Iterable[str]) -> Java:
    """The first JDK (env variables, then PATH, then /usr/lib/jvm) within [minimum, maximum]."""
    seen: list[str] = []
    for home in _java_candidates(preferred_env):
        java_bin = home / "bin" / "java"
        if not java_bin.exists():
            continue
        major = _java_major(java_bin)
        if major is None:
            continue
        seen.append(f"{home} ({major})")
        if minimum <= major <= maximum:
            return Java(home, major)
    found = ", ".join(seen) if seen else "none"
    raise ServiceError(
        f"{purpose} needs a Java between {minimum} and {maximum}; found: {found}. "
        f"Install a JDK {minimum}+ or set JAVA_HOME."
    )


# --------------------------------------------------------------------------- downloads


def _mvn() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError(
            "Maven (mvn) is needed once to fetch Kafka and Elasticsearch from Maven Central: "
            "install it (Debian: apt-get install maven) and run again."
        )
    return mvn


def _run_maven(args: list[str], log: Path, what: str) -> None:
    """Maven with strict checksums: a missing or wrong published checksum fails the download."""
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [_mvn(), "-B", "-C", "-Dmaven.repo.local=" + str(cache_dir() / "m2"), *args]
    with log.open("w") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        reason = _maven_failure_reason(log)
        raise ServiceError(f"downloading {what} failed: {reason} (full log: {log})")


def _maven_failure_reason(log: Path) -> str:
    for line in log.read_text(errors="replace").splitlines():
        if "Checksum validation failed" in line or "Could not transfer" in line:
            return re.sub(r"\x1b\[[0-9;]*m", "", line).replace("[ERROR]", "").strip()[:300]
    return "Maven could not resolve it"


def _verify_sha1_files(jars: Iterable[Path], m2: Path) -> None:
    """Re-check cached artifacts against the .sha1 files Maven stored beside them."""
    for jar in jars:
        matches = list(m2.rglob(jar.name + ".sha1"))
        if not matches:
            continue
        expected = matches[0].read_text().split()[0].strip().lower()
        actual = hashlib.sha1(jar.read_bytes(), usedforsecurity=False).hexdigest()
        if actual != expected:
            raise ServiceError(
                f"{jar} does not match its published checksum; delete {cache_dir()} and run again"
            )


KAFKA_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.partner-audit-log</groupId><artifactId>kafka-runtime</artifactId>
  <version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>{binding_group}</groupId><artifactId>{binding_artifact}</artifactId>
      <version>{binding_version}</version></dependency>
  </dependencies>
</project>
"""


def kafka_libs() -> Path:
    """Kafka's broker jars and their runtime dependencies, resolved once into the cache."""
    target = cache_dir() / f"kafka-{KAFKA_VERSION}"
    libs = target / "libs"
    marker = target / ".complete"
    if marker.exists():
        return libs
    shutil.rmtree(target, ignore_errors=True)
    libs.mkdir(parents=True)
    group, artifact, version = RELOAD4J_BINDING.split(":")
    pom = target / "pom.xml"
    pom.write_text(
        KAFKA_POM.format(
            kafka=KAFKA_VERSION,
            binding_group=group,
            binding_artifact=artifact,
            binding_version=version,
        )
    )
    print(f"services: fetching Kafka {KAFKA_VERSION} and its dependencies (first run only)")
    _run_maven(
        [
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ],
        target / "maven.log",
        f"Kafka {KAFKA_VERSION}",
    )
    _verify_sha1_files(libs.glob("*.jar"), cache_dir() / "m2")
    marker.write_text(json.dumps(sorted(p.name for p in libs.glob("*.jar"))))
    return libs


def elasticsearch_home() -> Path:
    """The integ-test-zip distribution, fetched once and unpacked into the cache."""
    target = cache_dir() / f"elasticsearch-{ES_VERSION}"
    home = target / f"elasticsearch-{ES_VERSION}"
    marker = target / ".complete"
    if marker.exists():
        return home
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    print(f"services: fetching Elasticsearch {ES_VERSION} (first run only)")
    _run_maven(
        [
            "dependency:copy",
            f"-Dartifact=org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ES_VERSION}:zip",
            f"-DoutputDirectory={target}",
        ],
        target / "maven.log",
        f"Elasticsearch {ES_VERSION}",
    )
    archive = target / f"elasticsearch-{ES_VERSION}.zip"
    _verify_sha1_files([archive], cache_dir() / "m2")
    _unzip_keeping_modes(archive, target)
    archive.unlink()
    marker.write_text(ES_VERSION)
    return home


def _unzip_keeping_modes(archive: Path, target: Path) -> None:
    """zipfile drops Unix permissions; the launch scripts must stay executable."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                extracted = Path(zipped.extract(info, target))
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    extracted.chmod(mode)
    except zipfile.BadZipFile as error:
        raise ServiceError(f"{archive} is corrupt ({error}); delete it and run again") from error


# --------------------------------------------------------------------------- processes


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _pid_alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _wait_for(condition: Callable[[], bool], timeout_s: float, failed: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        if failed():
            return False
        time.sleep(0.5)
    return condition()


def _stop_pid(pid: int, name: str) -> None:
    """Stop the process group `pid` leads (every service is started in a session of its own)."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        _reap(pid)
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.3)
    print(f"services: {name} did not stop in {STOP_TIMEOUT_S:.0f}s; killing it")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _rss_mib(pid: int) -> float | None:
    total_kib = 0
    for proc in _process_tree(pid):
        try:
            for line in Path(f"/proc/{proc}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024 if total_kib else None


def _process_tree(pid: int) -> list[int]:
    tree = [pid]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) in tree:
            tree.append(int(entry.name))
    return tree


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------- services


class _Service:
    """What both services share: a pid file naming a process-group leader, and its ports."""

    name = ""
    root: Path
    pid_file: Path

    def running_pid(self) -> int | None:
        return _pid_alive(self.pid_file)

    def _refuse_taken_ports(self, ports: tuple[int, ...], settings: str) -> None:
        for port in ports:
            if _port_open(port):
                raise ServiceError(
                    f"port {port} is already taken by another program; stop it or set {settings}"
                )

    def _launch(
        self,
        command: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        user: tuple[int, int] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `command` as leader of a new process group and record it in the pid file."""
        with log.open("ab") as out:
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.root,
                start_new_session=True,
                user=user[0] if user else None,
                group=user[1] if user else None,
                extra_groups=[] if user else None,
            )
        self.pid_file.write_text(str(process.pid))
        return process

    def down(self) -> str:
        pid = self.running_pid()
        if pid is None:
            return f"{self.name} not running"
        _stop_pid(pid, self.name)
        self.pid_file.unlink(missing_ok=True)
        return f"{self.name} stopped"


# --------------------------------------------------------------------------- kafka


class Kafka(_Service):
    name = "kafka"

    def __init__(self) -> None:
        self.root = state_dir() / "kafka"
        self.pid_file = self.root / "kafka.pid"
        self.log_file = self.root / "logs" / "server.out"

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{KAFKA_PORT}"

    def up(self) -> str:
        if self.running_pid() and _port_open(KAFKA_PORT):
            return f"kafka already running at {self.endpoint}"
        self._refuse_taken_ports(
            (KAFKA_PORT, KAFKA_CONTROLLER_PORT), "AUDIT_LOCAL_KAFKA_PORT / KAFKA_BOOTSTRAP_SERVERS"
        )
        java = find_java("Kafka", 11, 99, ["KAFKA_JAVA_HOME", "JAVA_HOME"])
        libs = kafka_libs()
        config = self._write_config()
        self._format_storage(java, libs, config)
        self._start(java, libs, config)
        return f"kafka ready at {self.endpoint}"

    def _write_config(self) -> Path:
        for sub in ("data", "logs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        config = self.root / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@{HOST}:{KAFKA_CONTROLLER_PORT}",
                    f"listeners=PLAINTEXT://{HOST}:{KAFKA_PORT},"
                    f"CONTROLLER://{HOST}:{KAFKA_CONTROLLER_PORT}",
                    f"advertised.listeners=PLAINTEXT://{HOST}:{KAFKA_PORT}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.root / 'data'}",
                    "num.partitions=1",
                    "auto.create.topics.enable=true",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )
        log4j = self.root / "log4j.properties"
        log4j.write_text(
            "log4j.rootLogger=INFO, file\n"
            "log4j.appender.file=org.apache.log4j.FileAppender\n"
            f"log4j.appender.file.File={self.root / 'logs' / 'kafka.log'}\n"
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka=INFO\nlog4j.logger.org.apache.kafka=INFO\n"
        )
        return config

    def _java_command(self, java: Java, libs: Path, *args: str) -> list[str]:
        return [
            str(java.home / "bin" / "java"),
            f"-Dlog4j.configuration=file:{self.root / 'log4j.properties'}",
            "-cp",
            f"{libs}/*",
            *args,
        ]

    def _format_storage(self, java: Java, libs: Path, config: Path) -> None:
        if (self.root / "data" / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        command = self._java_command(
            java, libs, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)
        )
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:]
            raise ServiceError(f"formatting Kafka's storage failed: {' '.join(detail)}")

    def _start(self, java: Java, libs: Path, config: Path) -> None:
        command = self._java_command(
            java,
            libs,
            f"-Xms{KAFKA_HEAP}",
            f"-Xmx{KAFKA_HEAP}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            "kafka.Kafka",
            str(config),
        )
        process = self._launch(command, self.log_file)
        kafka_log = self.root / "logs" / "kafka.log"

        def started() -> bool:
            return _port_open(KAFKA_PORT) and "Kafka Server started" in _read(kafka_log)

        if not _wait_for(started, READY_TIMEOUT_S, lambda: process.poll() is not None):
            _stop_pid(process.pid, self.name)
            raise ServiceError(
                f"Kafka did not become ready in {READY_TIMEOUT_S:.0f}s; see {kafka_log} "
                f"and {self.log_file} ({_tail(self.log_file, 2)})"
            )


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# --------------------------------------------------------------------------- elasticsearch


class Elasticsearch(_Service):
    name = "elasticsearch"

    def __init__(self) -> None:
        self.root = state_dir() / "elasticsearch"
        # Our pid file names the launcher, leader of the process group we stop;
        # the server JVM writes its own pid to server.pid.
        self.pid_file = self.root / "launcher.pid"
        self.server_pid_file = self.root / "server.pid"
        self.log_dir = self.root / "logs"
        self.out_file = self.log_dir / "console.out"

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{ES_PORT}"

    def answers(self) -> bool:
        try:
            url = self.endpoint + "/_cluster/health"  # always http on loopback
            with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310
                health = json.load(reply)
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return health.get("status") in {"green", "yellow"}

    def up(self) -> str:
        if self.running_pid() and self.answers():
            return f"elasticsearch already running at {self.endpoint}"
        self._refuse_taken_ports(
            (ES_PORT, ES_TRANSPORT_PORT), "AUDIT_LOCAL_ES_PORT / ELASTICSEARCH_URL"
        )
        # Elasticsearch 8.19 runs on Java 17 to 24 (25 dropped the Security Manager it needs).
        java = find_java("Elasticsearch", 17, 24, ["ES_JAVA_HOME", "JAVA_HOME"])
        home = elasticsearch_home()
        user = _service_user()
        config = self._write_config(home, user)
        self._start(java, home, config, user)
        return f"elasticsearch ready at {self.endpoint}"

    def _write_config(self, home: Path, user: tuple[int, int] | None) -> Path:
        config = self.root / "config"
        if config.exists():
            shutil.rmtree(config)
        shutil.copytree(home / "config", config)
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (config / "elasticsearch.yml").write_text(
            "\n".join(
                [
                    "cluster.name: partner-audit-log-local",
                    "node.name: local-1",
                    f"path.data: {self.root / 'data'}",
                    f"path.logs: {self.log_dir}",
                    f"network.host: {HOST}",
                    f"http.port: {ES_PORT}",
                    f"transport.port: {ES_TRANSPORT_PORT}",
                    "discovery.type: single-node",
                    "xpack.security.enabled: false",
                    "cluster.routing.allocation.disk.threshold_enabled: false",
                    "action.destructive_requires_name: false",
                    "",
                ]
            )
        )
        (config / "jvm.options.d").mkdir(exist_ok=True)
        (config / "jvm.options.d" / "heap.options").write_text(f"-Xms{ES_HEAP}\n-Xmx{ES_HEAP}\n")
        if user is not None:
            _ensure_reachable(self.root, user)
            for path in [self.root, *self.root.rglob("*")]:
                os.chown(path, *user)
        return config

    def _start(self, java: Java, home: Path, config: Path, user: tuple[int, int] | None) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ES_JAVA_HOME": str(java.home),
            "ES_PATH_CONF": str(config),
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
        }
        command = [str(home / "bin" / "elasticsearch"), "-p", str(self.server_pid_file)]
        process = self._launch(command, self.out_file, env=env, user=user)
        if not _wait_for(self.answers, READY_TIMEOUT_S, lambda: process.poll() is not None):
            _stop_pid(process.pid, self.name)
            raise ServiceError(
                f"Elasticsearch did not become ready in {READY_TIMEOUT_S:.0f}s; see "
                f"{self.log_dir / 'partner-audit-log-local.log'} and {self.out_file} "
                f"({_tail(self.out_file, 2)})"
            )


def _service_user() -> tuple[int, int] | None:
    """Elasticsearch refuses to run as root: use (and create) an unprivileged system user."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        result = subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(
                f"could not create the user {SERVICE_USER} to run Elasticsearch as: "
                f"{result.stderr.strip()}"
            ) from None
        entry = pwd.getpwnam(SERVICE_USER)
    return entry.pw_uid, entry.pw_gid


def _ensure_reachable(path: Path, user: tuple[int, int]) -> None:
    """The service user must be able to walk down to its data folder."""
    probe = subprocess.run(
        [
            "setpriv",
            f"--reuid={user[0]}",
            f"--regid={user[1]}",
            "--clear-groups",
            "test",
            "-x",
            str(path.parent),
        ],
        check=False,
    )
    if probe.returncode != 0:
        raise ServiceError(
            f"Elasticsearch runs as user {SERVICE_USER}, who cannot reach {path.parent}; set "
            "AUDIT_STATE_DIR to a folder every user can traverse (e.g. /var/tmp/partner-audit-log)"
        )


# --------------------------------------------------------------------------- commands

SERVICES: dict[str, Callable[[], Kafka | Elasticsearch]] = {
    "kafka": Kafka,
    "elasticsearch": Elasticsearch,
}


def _selected(names: list[str]) -> list[Kafka | Elasticsearch]:
    unknown = [name for name in names if name not in SERVICES]
    if unknown:
        raise ServiceError(f"unknown service {unknown[0]!r}; choose from {', '.join(SERVICES)}")
    return [SERVICES[name]() for name in (names or list(SERVICES))]


def up(names: list[str] | None = None) -> None:
    for service in _selected(names or []):
        print(f"services: {service.up()}", flush=True)


def down(names: list[str] | None = None) -> None:
    for service in reversed(_selected(names or [])):
        print(f"services: {service.down()}", flush=True)


def status() -> None:
    for service in _selected([]):
        pid = service.running_pid()
        if pid is None:
            print(f"{service.name}: stopped")
            continue
        rss = _rss_mib(pid)
        memory = f", {rss:.0f} MiB resident" if rss else ""
        print(f"{service.name}: running at {service.endpoint} (pid {pid}{memory})")


def print_env() -> None:
    print(f"KAFKA_BOOTSTRAP_SERVERS={Kafka().endpoint}")
    print(f"ELASTICSEARCH_URL={Elasticsearch().endpoint}")


def clean() -> None:
    down()
    shutil.rmtree(state_dir() / "kafka", ignore_errors=True)
    shutil.rmtree(state_dir() / "elasticsearch", ignore_errors=True)
    print(f"services: removed data and logs under {state_dir()}")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(__doc__)
        return 0
    command, names = args[0], args[1:]
    actions: dict[str, Callable[[], None]] = {
        "up": lambda: up(names),
        "down": lambda: down(names),
        "status": status,
        "env": print_env,
        "clean": clean,
    }
    if command not in actions:
        print(f"services: unknown command {command!r}; try: {', '.join(actions)}", file=sys.stderr)
        return 2
    try:
        actions[command]()
    except ServiceError as error:
        print(f"services: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
