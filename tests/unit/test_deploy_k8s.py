"""deploy/k8s: the manifests parse, fit together (kustomization, labels, ports, probes),
and carry every variable of the README's configuration table."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.test_deploy_compose import COMPOSE, variables_of

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc)
    return docs


def env_file_keys(path: Path) -> set[str]:
    keys = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keys.add(line.split("=", 1)[0])
    return keys


def find(kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}"
    return matches[0]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def test_every_manifest_parses_and_names_itself() -> None:
    docs = documents()
    assert docs
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), doc


def test_the_kustomization_lists_existing_files() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    for generator in kustomization["configMapGenerator"]:
        for env_file in generator["envs"]:
            assert (K8S / env_file).is_file(), env_file
    assert {image["name"] for image in kustomization["images"]} == {
        container(find("Deployment", "audit-worker"))["image"],
        container(find("Deployment", "audit-api"))["image"],
    }


@pytest.mark.parametrize(
    ("deployment", "user", "secrets"),
    [
        ("audit-worker", "worker", ["backend-credentials.env.example"]),
        ("audit-api", "API", ["backend-credentials.env.example", "api-keys.env.example"]),
    ],
)
def test_every_readme_variable_is_configured(
    deployment: str, user: str, secrets: list[str]
) -> None:
    keys = env_file_keys(K8S / "config.env")
    for name in secrets:
        keys |= env_file_keys(K8S / name)
    missing = variables_of(user) - keys
    assert not missing, f"{deployment} lacks {sorted(missing)}"
    sources = container(find("Deployment", deployment))["envFrom"]
    names = {s.get("configMapRef", s.get("secretRef", {})).get("name") for s in sources}
    assert "audit-config" in names


def test_the_api_secret_is_not_given_to_the_worker() -> None:
    sources = container(find("Deployment", "audit-worker"))["envFrom"]
    assert all(s.get("secretRef", {}).get("name") != "audit-api-keys" for s in sources)


def test_worker_replicas_match_the_event_topic_partitions() -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    partitions = compose["services"]["kafka-init"]["environment"]["PARTITIONS"]
    default = int(str(partitions).split(":-", 1)[1].rstrip("}"))
    assert find("Deployment", "audit-worker")["spec"]["replicas"] == default


def test_the_api_service_reaches_the_api_pods_and_probes_are_set() -> None:
    deployment = find("Deployment", "audit-api")
    service = find("Service", "audit-api")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    api = container(deployment)
    port_names = {port["name"] for port in api["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    worker = container(find("Deployment", "audit-worker"))
    assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"


@pytest.mark.parametrize("name", ["audit-worker", "audit-api"])
def test_pods_run_unprivileged(name: str) -> None:
    deployment = find("Deployment", name)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    security = container(deployment)["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]


def test_kubectl_kustomize_builds_it() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc]
    assert {"Namespace", "ConfigMap", "Deployment", "Service"} <= set(kinds)
