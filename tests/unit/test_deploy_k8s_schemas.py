"""deploy/k8s rendered by kustomize and validated against the Kubernetes API's JSON schemas.

kustomize is the standalone binary (`make kustomize-tool`: Go module proxy, into .venv/bin), or
`kubectl kustomize` where kubectl is installed. The schemas are those `kubernetes-validate`
(PyPI, a dev dependency) bundles for every Kubernetes minor from 1.25: no download at test
time. Strict: an unknown field (a typo such as `paht`) fails as surely as a wrong type.
Skipped with the reason without kustomize (failed under AUDIT_REQUIRE_DEPLOY_CHECKS=1, as CI).
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.integration.containers import cannot_run, load_images_module

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
# The oldest Kubernetes minor still in wide support, and the newest the package knows.
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


def kustomize_command() -> list[str]:
    search = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    kustomize = shutil.which("kustomize", path=search)
    if kustomize:
        return [kustomize, "build"]
    kubectl = shutil.which("kubectl", path=search)
    if kubectl:
        return [kubectl, "kustomize"]
    cannot_run("neither kustomize nor kubectl is installed (`make kustomize-tool` installs it)")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    result = subprocess.run(
        [*kustomize_command(), str(K8S)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(rendered: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in rendered if d["kind"] == kind and d["metadata"]["name"] == name)


def test_kustomize_renders_every_resource_in_the_namespace(
    rendered: list[dict[str, Any]],
) -> None:
    kinds = Counter(doc["kind"] for doc in rendered)
    assert kinds == {
        "Namespace": 1,
        "ConfigMap": 1,
        "Deployment": 2,
        "Service": 2,
        "PodDisruptionBudget": 2,
        "CronJob": 1,  # retention (deploy/k8s/retention.yaml)
    }
    for doc in rendered:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "partner-audit-log", doc["metadata"]["name"]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_rendered_resource_is_valid_for_kubernetes(
    rendered: list[dict[str, Any]], version: str
) -> None:
    for doc in rendered:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "template", "spec", "containers", 0, "livenessProbe", "httpGet", "paht"), "/"),
        (("spec", "replicas"), "six"),
        (("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"), "http"),
    ],
    ids=["unknown-field", "wrong-type", "port-as-name"],
)
def test_the_validation_refuses_a_broken_deployment(
    rendered: list[dict[str, Any]], path: tuple[Any, ...], value: Any
) -> None:
    """Guards the check itself: a validator that accepts anything would pass the test above."""
    broken = copy.deepcopy(by_kind(rendered, "Deployment", "audit-worker"))
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_the_deployments_run_the_images_of_this_version(rendered: list[dict[str, Any]]) -> None:
    """`make images` tags partner-audit-log/<target>:<pyproject version>; the manifests must
    ask for exactly those (kustomization.yaml's newTag), or a release runs the old code."""
    images = load_images_module()
    for deployment, target in (("audit-worker", "worker"), ("audit-api", "api")):
        pod = by_kind(rendered, "Deployment", deployment)["spec"]["template"]["spec"]
        assert pod["containers"][0]["image"] == images.image_name(target)


def test_the_configmap_reference_carries_its_content_hash(rendered: list[dict[str, Any]]) -> None:
    """kustomize renames the generated ConfigMap with a hash and rewrites the references to
    it, so a changed config.env rolls the pods: the Deployments must name the hashed one."""
    config = next(doc for doc in rendered if doc["kind"] == "ConfigMap")
    assert config["metadata"]["name"].startswith("audit-config-")
    for deployment in ("audit-worker", "audit-api"):
        pod = by_kind(rendered, "Deployment", deployment)["spec"]["template"]["spec"]
        refs = [
            s["configMapRef"]["name"]
            for s in pod["containers"][0]["envFrom"]
            if "configMapRef" in s
        ]
        assert refs == [config["metadata"]["name"]]


def mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


@pytest.mark.parametrize(
    ("deployment", "measured_peak_mib"), [("audit-worker", 206), ("audit-api", 413)]
)
def test_memory_requests_cover_the_measured_peaks(
    rendered: list[dict[str, Any]], deployment: str, measured_peak_mib: float
) -> None:
    """The peaks quoted in worker.yaml and api.yaml (tests/rss_under_load.py, benchmarks): a
    request below them lets the scheduler overcommit the node, a limit at them OOM-kills."""
    resources = by_kind(rendered, "Deployment", deployment)["spec"]["template"]["spec"][
        "containers"
    ][0]["resources"]
    request = mebibytes(resources["requests"]["memory"])
    limit = mebibytes(resources["limits"]["memory"])
    assert resources["requests"]["cpu"]
    assert measured_peak_mib <= request < limit
    assert limit >= 1.5 * measured_peak_mib
