"""The `audit-api` entry point: refuses a bad configuration with one line, binds loopback."""

from __future__ import annotations

import pytest

from api.main import gunicorn_options, main
from api.settings import Settings


def test_production_without_a_key_exits_with_one_readable_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUDIT_ENV", "production")
    monkeypatch.delenv("AUDIT_JWT_SECRET", raising=False)
    monkeypatch.delenv("AUDIT_JWT_PUBLIC_KEY", raising=False)
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "AUDIT_JWT_SECRET" in err and "Traceback" not in err


def test_binds_loopback_on_the_configured_port() -> None:
    options = gunicorn_options(Settings.from_env({"AUDIT_API_PORT": "9123"}))
    assert options["bind"] == "127.0.0.1:9123"
    assert options["worker_class"] == "gthread"


def test_bind_and_workers_can_be_overridden() -> None:
    options = gunicorn_options(
        Settings.from_env(
            {"AUDIT_API_BIND": "0.0.0.0:80", "AUDIT_API_WORKERS": "4", "AUDIT_JWT_SECRET": "s" * 32}
        )
    )
    assert (options["bind"], options["workers"]) == ("0.0.0.0:80", 4)
