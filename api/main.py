"""`audit-api`: serve the read API with gunicorn on 127.0.0.1:$AUDIT_API_PORT."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from api.settings import ConfigError, Settings


def gunicorn_options(settings: Settings, environ: dict[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    return {
        "bind": env.get("AUDIT_API_BIND", f"127.0.0.1:{settings.api_port}"),
        "workers": int(env.get("AUDIT_API_WORKERS", "2")),
        # Threads let one worker keep serving small list calls while another streams an
        # export; a thread blocked on Elasticsearch costs no CPU.
        "worker_class": "gthread",
        "threads": int(env.get("AUDIT_API_THREADS", "8")),
        # Exports stream for as long as they need; the timeout is for stuck workers.
        "timeout": int(env.get("AUDIT_API_TIMEOUT", "120")),
        "accesslog": "-",
        "errorlog": "-",
    }


def main(argv: Sequence[str] | None = None) -> None:
    # Validate the configuration before forking workers, so a production deployment
    # without a key stops with one readable line instead of a traceback per worker.
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"audit-api: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

    from gunicorn.app.base import BaseApplication

    from api.app import create_app

    class _Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in gunicorn_options(settings).items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app(settings)

    _Server().run()


if __name__ == "__main__":
    main()
