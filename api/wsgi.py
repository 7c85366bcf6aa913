"""WSGI entry point for gunicorn: `gunicorn api.wsgi:app`.

Importing it builds the app from the environment (that is its purpose); the rest of the
package connects to nothing at import time.
"""

from __future__ import annotations

from api.app import create_app

app = create_app()
