"""deploy/docker-compose.yml and deploy/docker/Dockerfile, checked without a Docker engine:
the file parses, names every service, and passes every variable of the README's
configuration table to the processes that read it, with the README's defaults."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "docker-compose.yml"
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
SERVICES = ("kafka", "elasticsearch", "kibana", "worker", "api")
_NAME = re.compile(r"`([A-Z][A-Z0-9_]+)`")
_CODE = re.compile(r"`([^`]*)`")
_INTERPOLATION = re.compile(r"^\$\{([A-Z0-9_]+):-([^}]*)\}$")


def readme_variables() -> dict[str, dict[str, Any]]:
    """name -> {"users": {"worker", "API", ...}, "default": str | None} from README's table."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    variables: dict[str, dict[str, Any]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not _NAME.search(cells[0]):
            continue
        names = _NAME.findall(cells[0])
        # Only a cell of literal values is a default ("random per `make run`" is not).
        literal = re.fullmatch(r"(`[^`]*`\s*,?\s*)+", cells[1])
        defaults = _CODE.findall(cells[1]) if literal else []
        users = set(re.findall(r"\b(worker|API)\b", cells[2]))
        for i, name in enumerate(names):
            default = defaults[i] if len(defaults) == len(names) else None
            variables[name] = {"users": users, "default": default}
    return variables


def variables_of(user: str) -> set[str]:
    return {name for name, info in readme_variables().items() if user in info["users"]}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_the_readme_table_is_read() -> None:
    # Guards the parser: if the README's table changes shape, this fails first.
    assert {"KAFKA_BOOTSTRAP_SERVERS", "AUDIT_TOPICS", "AUDIT_WORKER_PORT"} <= variables_of(
        "worker"
    )
    assert {"AUDIT_JWT_SECRET", "AUDIT_API_PORT", "ELASTICSEARCH_CA_CERTS"} <= variables_of("API")
    assert readme_variables()["AUDIT_BATCH_WINDOW_SECONDS"]["default"] == "0.2"


def test_every_service_is_there(compose: dict[str, Any]) -> None:
    assert set(SERVICES) <= set(compose["services"])


def test_dependencies_name_services_of_the_file(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on") or {}:
            assert dependency in services, f"{name} depends on unknown {dependency}"


@pytest.mark.parametrize(("service", "user"), [("worker", "worker"), ("api", "API")])
def test_every_readme_variable_reaches_its_process(
    compose: dict[str, Any], service: str, user: str
) -> None:
    environment = compose["services"][service]["environment"]
    missing = variables_of(user) - set(environment)
    assert not missing, f"{service} lacks {sorted(missing)} (README configuration table)"


@pytest.mark.parametrize("service", ["worker", "api"])
def test_overridable_values_default_to_the_readme_defaults(
    compose: dict[str, Any], service: str
) -> None:
    readme = readme_variables()
    for name, value in compose["services"][service]["environment"].items():
        match = _INTERPOLATION.match(str(value))
        if not match or name not in readme or readme[name]["default"] is None:
            continue
        assert match.group(1) == name, f"{name} is read from ${{{match.group(1)}}}"
        assert match.group(2) == readme[name]["default"], f"{name}: README says otherwise"


def test_the_app_images_are_built_from_the_dockerfile_targets(compose: dict[str, Any]) -> None:
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", DOCKERFILE.read_text(), re.MULTILINE))
    for name in ("worker", "api"):
        build = compose["services"][name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert build["target"] in stages


def test_the_dockerfile_targets_run_unprivileged_with_a_health_check() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)
    runtime = next(s for s in stages if " AS runtime" in s.splitlines()[0])
    assert re.search(r"^USER 10001", runtime, re.MULTILINE)
    for target, script in (("worker", "audit-worker"), ("api", "audit-api")):
        stage = next(s for s in stages if s.splitlines()[0].endswith(f" AS {target}"))
        assert stage.splitlines()[0].startswith("runtime "), f"{target} must build on runtime"
        assert "HEALTHCHECK" in stage and "/healthz" in stage
        assert f'CMD ["{script}"]' in stage
    assert "slim" in text


def test_docker_compose_config_accepts_the_file() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI: the YAML checks above stand in for `docker compose config`")
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_published_port_is_on_loopback_only(compose: dict[str, Any]) -> None:
    """A laptop on a café network must not offer its audit logs (or Kafka) to the room."""
    published = [
        (name, str(port))
        for name, service in compose["services"].items()
        for port in service.get("ports") or []
    ]
    assert published, "the stack publishes no port at all?"
    for name, port in published:
        assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_the_images_run_in_production_mode_unless_told_otherwise() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    runtime = next(s for s in re.split(r"^FROM ", text, flags=re.MULTILINE) if " AS runtime" in s)
    assert re.search(r"AUDIT_ENV=production", runtime)


def test_the_api_needs_a_secret_of_its_own_in_compose(compose: dict[str, Any]) -> None:
    """In its container the API binds 0.0.0.0, where the development secret is refused: the
    compose file must ask for a secret rather than start an API nobody can call."""
    secret = str(compose["services"]["api"]["environment"]["AUDIT_JWT_SECRET"])
    assert secret.startswith("${AUDIT_JWT_SECRET:?")
