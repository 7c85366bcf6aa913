"""Retention runs on a schedule wherever the product runs: a Kubernetes CronJob and a compose
service, with the README's AUDIT_RETENTION_DAYS (`make run`'s is checked by
tests/integration/test_local_run.py)."""

from __future__ import annotations

from typing import Any

import yaml

from tests.integration.containers import load_images_module
from tests.unit.test_deploy_compose import COMPOSE, readme_variables
from tests.unit.test_deploy_k8s import K8S, env_file_keys
from tests.unit.test_deploy_k8s_schemas import by_kind, rendered  # noqa: F401 (fixture)

COMMAND = ["audit-log", "indices", "retention"]


def test_the_readme_documents_the_variable() -> None:
    assert readme_variables()["AUDIT_RETENTION_DAYS"]["default"] == "400"


def test_kubernetes_runs_it_daily_one_at_a_time(rendered: list[dict[str, Any]]) -> None:  # noqa: F811
    cron = by_kind(rendered, "CronJob", "audit-retention")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["schedule"].split()[2:] == ["*", "*", "*"]  # every day
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == COMMAND
    assert container["image"] == load_images_module().image_name("worker")
    config = next(doc for doc in rendered if doc["kind"] == "ConfigMap")
    sources = {
        s.get("configMapRef", s.get("secretRef", {})).get("name") for s in container["envFrom"]
    }
    assert sources == {config["metadata"]["name"], "audit-backend-credentials"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert "AUDIT_RETENTION_DAYS" in env_file_keys(K8S / "config.env")


def test_compose_runs_it_every_day() -> None:
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    retention = services["retention"]
    assert retention["command"] == [*COMMAND, "--every", "24h"]
    assert retention["image"] == services["worker"]["image"]
    assert retention["environment"]["AUDIT_RETENTION_DAYS"] == "${AUDIT_RETENTION_DAYS:-400}"
    assert retention["healthcheck"] == {"disable": True}
