"""`audit-log indices`: an operator's mistakes and an unreachable Elasticsearch are one
readable line and exit code 2, never a traceback (no cluster needed)."""

from __future__ import annotations

import socket

import pytest

from schemas.cli import main
from schemas.es_rest import StoreAddress


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str, **env: str
) -> tuple[int, str]:
    """`audit-log *argv` with Elasticsearch at a closed port unless `env` says otherwise."""
    env = {"ELASTICSEARCH_URL": f"http://127.0.0.1:{closed_port()}", **env}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["indices", "status"],
        ["indices", "retention", "--dry-run"],
        ["indices", "migrate"],
        ["indices", "hold", "list"],
        ["indices", "hold", "add", "p-1", "--reason", "case"],
    ],
)
def test_unreachable_elasticsearch_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    code, err = run(capsys, monkeypatch, *argv)
    assert code == 2
    assert err.startswith("audit-log: cannot reach Elasticsearch at http://127.0.0.1:")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("env", "argv", "says"),
    [
        ({"AUDIT_RETENTION_DAYS": "forever"}, ["retention"], "AUDIT_RETENTION_DAYS='forever'"),
        ({"AUDIT_RETENTION_DAYS": "0"}, ["retention"], "must be at least 1"),
        ({"ELASTICSEARCH_URL": "es:9200"}, ["status"], "must start with http://"),
        ({}, ["retention", "--every", "weekly"], "not a duration"),
        ({}, ["retention", "--days", "0"], "must be at least 1"),
        ({}, ["migrate", "--page-size", "x"], "not a whole number"),
        ({}, ["hold", "add", "p-1"], "--reason"),
        ({}, ["hold", "add", "p" * 65, "--reason", "r"], "1 to 64 characters"),
    ],
)
def test_bad_settings_are_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    argv: list[str],
    says: str,
) -> None:
    code, err = run(capsys, monkeypatch, "indices", *argv, **env)
    assert code == 2, err
    assert says in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_credentials_from_the_environment() -> None:
    api_key = StoreAddress.from_env({"ELASTICSEARCH_API_KEY": "k"})
    assert api_key.headers()["Authorization"] == "ApiKey k"
    basic = StoreAddress.from_env({"ELASTICSEARCH_USERNAME": "u", "ELASTICSEARCH_PASSWORD": "p"})
    assert basic.headers()["Authorization"] == "Basic dTpw"
    assert "Authorization" not in StoreAddress.from_env({}).headers()
    assert StoreAddress.from_env({"ELASTICSEARCH_URL": "https://es:9200/"}).url == "https://es:9200"
