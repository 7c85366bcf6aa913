"""WSGI entry point for gunicorn: `gunicorn api.wsgi:app`.

Importing it builds the app from the environment (that is its purpose); the rest of the
package connects to nothing at import time.
"""

from __future__ import annotations

import sys

from api.app import create_app
from api.settings import ConfigError, Settings

WORKER_BOOT_ERROR = 3

try:
    _settings = Settings.from_env()
except ConfigError as exc:
    # One readable line instead of a traceback per worker. Exit status 3 is gunicorn's
    # "worker failed to boot": the master stops instead of respawning workers forever.
    print(f"audit-api: configuration error: {exc}", file=sys.stderr)
    raise SystemExit(WORKER_BOOT_ERROR) from None

app = create_app(_settings)
