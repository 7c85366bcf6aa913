#!/usr/bin/env python3
"""Local Kafka (KRaft) and Elasticsearch for development and tests, without Docker.

Standard library only, so it runs before any virtual environment exists.

    python3 deploy/local/services.py up [kafka|elasticsearch]
    python3 deploy/local/services.py down [kafka|elasticsearch]
    python3 deploy/local/services.py status | env | clean

Both come from their official artifacts on Maven Central, resolved by Maven with strict
checksums (a download whose published checksum is missing or wrong is refused) into a
cache outside the repository, so a second run downloads nothing. Data, logs and pid files
live in a state folder outside the checkout, one per checkout (see `state_dir`).
Elasticsearch refuses to run as root, so when we are root it runs as an unprivileged system
user created on first use; root never trusts a file that user can write (see `_Service`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if not __package__:  # run by path (python3 deploy/local/services.py): find the package
    sys.path.insert(0, str(REPO_ROOT))

from deploy.local.processes import stop_group, tree_rss_mib  # noqa: E402

# Kafka 3.9 is the last line that keeps the older protocol versions which faust-streaming's
# aiokafka still negotiates for some requests (KIP-896 removed them in 4.0); it runs KRaft.
KAFKA_VERSION = "3.9.2"
# Elasticsearch 9.x integ-test-zips on Maven Central have no published checksums, so they
# cannot be verified: 8.19 is the newest line that can. The Python client's major matches (8).
ES_VERSION = "8.19.21"
RELOAD4J_BINDING = "org.slf4j:slf4j-reload4j:1.7.36"

HOST = "127.0.0.1"
STOP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Config:
    """What the environment chooses (`from_env`, read by `main` or by the caller); paths are
    read where they are used (`cache_dir`, `state_dir`)."""

    kafka_version: str = KAFKA_VERSION
    es_version: str = ES_VERSION
    service_user: str = "partner-audit"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    es_port: int = 9200
    es_transport_port: int = 9300
    kafka_heap: str = "512m"
    es_heap: str = "768m"
    ready_timeout_s: float = 180.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        default = cls()
        return cls(
            kafka_version=env.get("AUDIT_KAFKA_VERSION", default.kafka_version),
            es_version=env.get("AUDIT_ES_VERSION", default.es_version),
            service_user=env.get("AUDIT_SERVICE_USER", default.service_user),
            kafka_port=int(env.get("AUDIT_LOCAL_KAFKA_PORT", default.kafka_port)),
            kafka_controller_port=int(
                env.get("AUDIT_LOCAL_KAFKA_CONTROLLER_PORT", default.kafka_controller_port)
            ),
            es_port=int(env.get("AUDIT_LOCAL_ES_PORT", default.es_port)),
            es_transport_port=int(
                env.get("AUDIT_LOCAL_ES_TRANSPORT_PORT", default.es_transport_port)
            ),
            kafka_heap=env.get("AUDIT_LOCAL_KAFKA_HEAP", default.kafka_heap),
            es_heap=env.get("AUDIT_LOCAL_ES_HEAP", default.es_heap),
            ready_timeout_s=float(env.get("AUDIT_LOCAL_READY_TIMEOUT", default.ready_timeout_s)),
        )


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
    """Outside the checkout: a clone in a private folder (root's 0700 home, say) would be out
    of the Elasticsearch user's reach. One folder per checkout, named after its path, so two
    clones never share data. `AUDIT_STATE_DIR` overrides."""
    if os.environ.get("AUDIT_STATE_DIR"):
        return Path(os.environ["AUDIT_STATE_DIR"])
    if os.geteuid() == 0:
        return Path("/var/lib/partner-audit-log") / _checkout_id()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "partner-audit-log" / _checkout_id()


def _checkout_id() -> str:
    digest = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:12]
    return f"{REPO_ROOT.name}-{digest}"


def legacy_state_dir() -> Path | None:
    """Where state lived before (`.local/` in the checkout): services started from there are
    still found, reused and stopped, so an upgrade never orphans a running service."""
    if os.environ.get("AUDIT_STATE_DIR"):
        return None
    legacy = REPO_ROOT / ".local"
    return None if legacy == state_dir() else legacy


def _mkdirs(path: Path) -> None:
    """`mkdir -p` with mode 0755 whatever the umask: the Elasticsearch user walks through."""
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir()
            folder.chmod(0o755)


def _own_folder(path: Path) -> None:
    """A folder only we can write, for the files we read back or open for writing (pid files,
    the launcher's log). Taken back if an earlier version handed it to the service user."""
    _mkdirs(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        raise _not_a_folder(path) from error
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            os.fchown(fd, os.geteuid(), os.getegid())
        os.fchmod(fd, 0o755)
    finally:
        os.close(fd)


def _not_a_folder(path: Path) -> ServiceError:
    return ServiceError(f"{path} must be a folder, not a link: remove it and run again")


def _write_own_file(path: Path, text: str) -> None:
    """Replace `path` (in a folder of ours) by a file of ours, never writing through a link."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(temporary, path)


def _open_own_log(path: Path) -> int:
    """An append descriptor on `path` (in a folder of ours); a link or someone else's file
    there is removed first, so we never write where another user points us."""
    with contextlib.suppress(FileNotFoundError):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
            path.unlink()
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)


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


def kafka_libs(kafka_version: str) -> Path:
    """Kafka's broker jars and their runtime dependencies, resolved once into the cache."""
    target = cache_dir() / f"kafka-{kafka_version}"
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
            kafka=kafka_version,
            binding_group=group,
            binding_artifact=artifact,
            binding_version=version,
        )
    )
    print(f"services: fetching Kafka {kafka_version} and its dependencies (first run only)")
    _run_maven(
        [
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ],
        target / "maven.log",
        f"Kafka {kafka_version}",
    )
    _verify_sha1_files(libs.glob("*.jar"), cache_dir() / "m2")
    marker.write_text(json.dumps(sorted(p.name for p in libs.glob("*.jar"))))
    return libs


def elasticsearch_home(version: str) -> Path:
    """The integ-test-zip distribution, fetched once and unpacked into the cache."""
    target = cache_dir() / f"elasticsearch-{version}"
    home = target / f"elasticsearch-{version}"
    marker = target / ".complete"
    if marker.exists():
        return home
    shutil.rmtree(target, ignore_errors=True)
    _mkdirs(target)
    print(f"services: fetching Elasticsearch {version} (first run only)")
    _run_maven(
        [
            "dependency:copy",
            f"-Dartifact=org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip",
            f"-DoutputDirectory={target}",
        ],
        target / "maven.log",
        f"Elasticsearch {version}",
    )
    archive = target / f"elasticsearch-{version}.zip"
    _verify_sha1_files([archive], cache_dir() / "m2")
    _unzip_keeping_modes(archive, target)
    archive.unlink()
    marker.write_text(version)
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


def _read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 1 else None


@dataclass(frozen=True)
class Expected:
    """What a service's process looks like: its user, a word of its command line (the program)
    and its state folder, which its command line names (config, pid or log4j file)."""

    uid: int
    program: str
    folder: Path


def why_not_ours(pid: int, expected: Expected) -> str | None:
    """None when `pid` is the expected service leading its process group; otherwise why not.
    A pid file is only a hint: it may be stale (pid reused) or written by someone else."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        group = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, ValueError, IndexError):
        return "not running"
    uids = next(line.split()[1:3] for line in status.splitlines() if line.startswith("Uid:"))
    command = " ".join(arg.decode(errors="replace") for arg in argv if arg)
    if {int(uid) for uid in uids} != {expected.uid}:
        return f"it runs as uid {uids[0]}, not {expected.uid}"
    if expected.program not in command or f"{expected.folder}/" not in command:
        return f"its command line is not {expected.program} of {expected.folder}: {command[:120]}"
    if group != pid:
        return "it does not lead its process group"
    return None


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
    if not stop_group(pid, STOP_TIMEOUT_S, reap=lambda: _reap(pid)):
        print(f"services: {name} did not stop in {STOP_TIMEOUT_S:.0f}s; killed it")


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------- services


class _Service:
    """What both services share: a pid file naming a process-group leader, and its ports.

    The pid file and the launcher's log live in the service's folder, which only we can write
    (Elasticsearch gets data, logs and config folders of its own inside it). A pid is signalled
    only once its owner and command line show it is this service (`why_not_ours`)."""

    name = ""
    program = ""  # a word of the service's command line
    pid_name = ""
    root: Path
    config: Config

    @property
    def pid_file(self) -> Path:
        return self.root / self.pid_name

    def expected_uid(self) -> int | None:
        return os.geteuid()

    def _candidates(self) -> list[tuple[Path, Expected]]:
        """Our pid file, then the one an earlier version left in the checkout's `.local/`."""
        uid = self.expected_uid()
        if uid is None:
            return []
        folders = [self.root]
        legacy = legacy_state_dir()
        if legacy is not None:
            folders.append(legacy / self.root.name)
        return [(folder / self.pid_name, Expected(uid, self.program, folder)) for folder in folders]

    def running(self) -> tuple[int, Path] | None:
        """The pid of this service and the state folder it runs from, when it runs."""
        for pid_file, expected in self._candidates():
            pid = _read_pid(pid_file)
            if pid is not None and why_not_ours(pid, expected) is None:
                return pid, expected.folder
        return None

    def running_pid(self) -> int | None:
        found = self.running()
        return found[0] if found else None

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
        out = _open_own_log(log)
        try:
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
        finally:
            os.close(out)
        _write_own_file(self.pid_file, str(process.pid))
        return process

    def down(self) -> str:
        for pid_file, expected in self._candidates():
            pid = _read_pid(pid_file)
            if pid is None:
                continue
            why = why_not_ours(pid, expected)
            if why is None:
                _stop_pid(pid, self.name)
                pid_file.unlink(missing_ok=True)
                return f"{self.name} stopped"
            if why != "not running":
                print(
                    f"services: {pid_file} names pid {pid}, which is not this {self.name} "
                    f"({why}); left it alone",
                    flush=True,
                )
            pid_file.unlink(missing_ok=True)
        return f"{self.name} not running"


# --------------------------------------------------------------------------- kafka


class Kafka(_Service):
    name = "kafka"
    program = "kafka.Kafka"
    pid_name = "kafka.pid"

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config.from_env()
        self.root = state_dir() / "kafka"
        self.log_file = self.root / "logs" / "server.out"

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.config.kafka_port}"

    def up(self) -> str:
        if self.running_pid() and _port_open(self.config.kafka_port):
            return f"kafka already running at {self.endpoint}"
        self._refuse_taken_ports(
            (self.config.kafka_port, self.config.kafka_controller_port),
            "AUDIT_LOCAL_KAFKA_PORT / KAFKA_BOOTSTRAP_SERVERS",
        )
        java = find_java("Kafka", 11, 99, ["KAFKA_JAVA_HOME", "JAVA_HOME"])
        libs = kafka_libs(self.config.kafka_version)
        _own_folder(self.root)
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
                    f"controller.quorum.voters=1@{HOST}:{self.config.kafka_controller_port}",
                    f"listeners=PLAINTEXT://{HOST}:{self.config.kafka_port},"
                    f"CONTROLLER://{HOST}:{self.config.kafka_controller_port}",
                    f"advertised.listeners=PLAINTEXT://{HOST}:{self.config.kafka_port}",
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
            f"-Xms{self.config.kafka_heap}",
            f"-Xmx{self.config.kafka_heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            "kafka.Kafka",
            str(config),
        )
        process = self._launch(command, self.log_file)
        kafka_log = self.root / "logs" / "kafka.log"

        def started() -> bool:
            return _port_open(self.config.kafka_port) and "Kafka Server started" in _read(kafka_log)

        timeout_s = self.config.ready_timeout_s
        if not _wait_for(started, timeout_s, lambda: process.poll() is not None):
            _stop_pid(process.pid, self.name)
            raise ServiceError(
                f"Kafka did not become ready in {timeout_s:.0f}s; see {kafka_log} "
                f"and {self.log_file} ({_tail(self.log_file, 2)})"
            )


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# --------------------------------------------------------------------------- elasticsearch


class Elasticsearch(_Service):
    """Our folder holds the launcher's pid file and console log; `config`, `data` and `logs`
    inside it belong to the service user, who writes them (its keystore goes to `config`)."""

    name = "elasticsearch"
    program = "elasticsearch"
    # Our pid file names the launcher, leader of the process group we stop.
    pid_name = "launcher.pid"

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config.from_env()
        self.root = state_dir() / "elasticsearch"
        self.config_dir = self.root / "config"
        self.data_dir = self.root / "data"
        self.log_dir = self.root / "logs"
        # The server JVM writes its own pid: into a folder of the service user's, never ours.
        self.server_pid_file = self.log_dir / "server.pid"
        self.out_file = self.root / "console.out"

    def expected_uid(self) -> int | None:
        """The service user's uid when we are root (None: no such user, so nothing to find)."""
        if os.geteuid() != 0:
            return os.geteuid()
        import pwd

        try:
            return pwd.getpwnam(self.config.service_user).pw_uid
        except KeyError:
            return None

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.config.es_port}"

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
            (self.config.es_port, self.config.es_transport_port),
            "AUDIT_LOCAL_ES_PORT / ELASTICSEARCH_URL",
        )
        # Elasticsearch 8.19 runs on Java 17 to 24 (25 dropped the Security Manager it needs).
        java = find_java("Elasticsearch", 17, 24, ["ES_JAVA_HOME", "JAVA_HOME"])
        home = elasticsearch_home(self.config.es_version)
        user = _service_user(self.config.service_user)
        _mkdirs(state_dir())
        _own_folder(self.root)
        if user is not None:
            self._check_reach(home, user)
        config = self._write_config(home)
        if user is not None:
            for folder in (config, self.data_dir, self.log_dir):
                _hand_over(folder, user)
        self._start(java, home, config, user)
        return f"elasticsearch ready at {self.endpoint}"

    def _check_reach(self, home: Path, user: tuple[int, int]) -> None:
        # Unpacked under a strict umask, the distribution may be root's only: open it up.
        _make_readable(home.parent)
        name = self.config.service_user
        if not _user_can(user, "-x", self.root):
            raise ServiceError(
                f"Elasticsearch runs as user {name}, who cannot reach {self.root}; set "
                "AUDIT_STATE_DIR to a folder every user can traverse, or unset it"
            )
        if not _user_can(user, "-r", home / "bin" / "elasticsearch"):
            raise ServiceError(
                f"Elasticsearch runs as user {name}, who cannot read {home}; set "
                "AUDIT_CACHE_DIR to a folder every user can traverse, or unset it"
            )

    def _write_config(self, home: Path) -> Path:
        """A fresh copy of the distribution's config, rewritten on every start."""
        config = self.config_dir
        _remove(config)
        shutil.copytree(home / "config", config)
        self.data_dir.mkdir(exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        (config / "elasticsearch.yml").write_text(
            "\n".join(
                [
                    "cluster.name: partner-audit-log-local",
                    "node.name: local-1",
                    f"path.data: {self.data_dir}",
                    f"path.logs: {self.log_dir}",
                    f"network.host: {HOST}",
                    f"http.port: {self.config.es_port}",
                    f"transport.port: {self.config.es_transport_port}",
                    "discovery.type: single-node",
                    "xpack.security.enabled: false",
                    "cluster.routing.allocation.disk.threshold_enabled: false",
                    "action.destructive_requires_name: false",
                    "",
                ]
            )
        )
        (config / "jvm.options.d").mkdir(exist_ok=True)
        heap = self.config.es_heap
        (config / "jvm.options.d" / "heap.options").write_text(f"-Xms{heap}\n-Xmx{heap}\n")
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
        timeout_s = self.config.ready_timeout_s
        if not _wait_for(self.answers, timeout_s, lambda: process.poll() is not None):
            _stop_pid(process.pid, self.name)
            raise ServiceError(
                f"Elasticsearch did not become ready in {timeout_s:.0f}s; see "
                f"{self.log_dir / 'partner-audit-log-local.log'} and {self.out_file} "
                f"({_tail(self.out_file, 2)})"
            )


def _service_user(name: str) -> tuple[int, int] | None:
    """Elasticsearch refuses to run as root: use (and create) an unprivileged system user."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(name)
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
                name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(
                f"could not create the user {name} to run Elasticsearch as: {result.stderr.strip()}"
            ) from None
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def _user_can(user: tuple[int, int], test: str, path: Path) -> bool:
    """`test <test> <path>` as the service user: can it walk to or read what it needs?"""
    probe = subprocess.run(
        [
            "setpriv",
            f"--reuid={user[0]}",
            f"--regid={user[1]}",
            "--clear-groups",
            "test",
            test,
            str(path),
        ],
        check=False,
    )
    return probe.returncode == 0


def _remove(path: Path) -> None:
    """Delete a file, link or folder tree; shutil.rmtree works on descriptors and never
    follows a link the service user may have planted inside."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _hand_over(folder: Path, user: tuple[int, int]) -> None:
    """Give `folder` and what is in it to the service user without ever following a link:
    lchown relative to folder descriptors, os.fwalk not descending into links. A file with
    several hard links may be a file from elsewhere, so it keeps its owner."""
    if folder.is_symlink() or not folder.is_dir():
        raise _not_a_folder(folder)
    os.chown(folder, *user, follow_symlinks=False)
    for _, folders, files, folder_fd in os.fwalk(folder, follow_symlinks=False):
        for name in folders + files:
            with contextlib.suppress(FileNotFoundError):
                info = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
                if info.st_uid == user[0] or stat.S_ISLNK(info.st_mode):
                    continue
                if not stat.S_ISDIR(info.st_mode) and info.st_nlink > 1:
                    continue
                os.chown(name, *user, dir_fd=folder_fd, follow_symlinks=False)


def _make_readable(tree: Path) -> None:
    """Folders 0755 and files readable by all (executables runnable by all), links untouched:
    the service user runs the distribution that root unpacked."""
    for _, _, files, folder_fd in os.fwalk(tree, follow_symlinks=False):
        os.fchmod(folder_fd, os.fstat(folder_fd).st_mode | 0o755)
        for name in files:
            info = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
            if stat.S_ISREG(info.st_mode):
                wanted = info.st_mode | 0o444 | (0o111 if info.st_mode & 0o100 else 0)
                if wanted != info.st_mode:
                    os.chmod(name, wanted, dir_fd=folder_fd)


# --------------------------------------------------------------------------- commands

SERVICES: dict[str, Callable[[Config | None], Kafka | Elasticsearch]] = {
    "kafka": Kafka,
    "elasticsearch": Elasticsearch,
}


def _selected(names: list[str], config: Config | None) -> list[Kafka | Elasticsearch]:
    unknown = [name for name in names if name not in SERVICES]
    if unknown:
        raise ServiceError(f"unknown service {unknown[0]!r}; choose from {', '.join(SERVICES)}")
    config = config or Config.from_env()
    return [SERVICES[name](config) for name in (names or list(SERVICES))]


def up(names: list[str] | None = None, config: Config | None = None) -> None:
    for service in _selected(names or [], config):
        print(f"services: {service.up()}", flush=True)


def down(names: list[str] | None = None, config: Config | None = None) -> None:
    for service in reversed(_selected(names or [], config)):
        print(f"services: {service.down()}", flush=True)


def status(config: Config | None = None) -> None:
    for service in _selected([], config):
        found = service.running()
        if found is None:
            print(f"{service.name}: stopped")
            continue
        pid, folder = found
        rss = tree_rss_mib(pid)
        memory = f", {rss:.0f} MiB resident" if rss else ""
        legacy = "" if folder == service.root else f"; from the old {folder.parent}: down, then up"
        print(f"{service.name}: running at {service.endpoint} (pid {pid}{memory}{legacy})")
    print(f"state folder: {state_dir()}")


def print_env(config: Config | None = None) -> None:
    print(f"KAFKA_BOOTSTRAP_SERVERS={Kafka(config).endpoint}")
    print(f"ELASTICSEARCH_URL={Elasticsearch(config).endpoint}")


def clean(config: Config | None = None) -> None:
    down(config=config)
    legacy = legacy_state_dir()
    for base in [state_dir(), *([legacy] if legacy else [])]:
        for name in SERVICES:
            _remove(base / name)
        with contextlib.suppress(OSError):
            base.rmdir()  # only when nothing else (`make run`'s logs) is left in it
    print(f"services: removed data and logs under {state_dir()}")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(__doc__)
        return 0
    command, names = args[0], args[1:]
    config = Config.from_env()
    actions: dict[str, Callable[[], None]] = {
        "up": lambda: up(names, config),
        "down": lambda: down(names, config),
        "status": lambda: status(config),
        "env": lambda: print_env(config),
        "clean": lambda: clean(config),
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
