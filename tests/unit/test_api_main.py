"""The `audit-api` entry point: refuses a bad configuration with one line, binds loopback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from gunicorn.app.base import BaseApplication

from api.main import GIL_SWITCH_INTERVAL_S, gunicorn_options, main
from api.settings import METRICS_DIR_ENV, Settings


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


def test_each_worker_shortens_the_gil_switch_interval(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """B4: the export's prefetch thread must not wait 5 ms for the GIL at each reply piece."""
    hooks: dict[str, object] = {}

    def run(server: BaseApplication) -> None:  # in place of forking workers
        hooks["post_worker_init"] = server.cfg.post_worker_init

    monkeypatch.setattr(BaseApplication, "run", run)
    monkeypatch.setenv("AUDIT_ENV", "development")
    monkeypatch.setenv(METRICS_DIR_ENV, str(tmp_path))  # else main() sets it for good
    main()
    interval = sys.getswitchinterval()
    try:
        hook = hooks["post_worker_init"]
        assert callable(hook)
        hook(object())  # gunicorn passes the worker
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL_S)
        assert GIL_SWITCH_INTERVAL_S < 0.005  # shorter than CPython's default
    finally:
        sys.setswitchinterval(interval)
