"""Per-app collaborators (settings, store, publisher), reachable from views.

They live on `app.extensions` rather than in module globals so that several apps (one per
test, say) can coexist in one process and nothing is built at import time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app

from api.integrity import TrustedKeys
from api.settings import Settings
from api.store import Store
from api.use_cases import Publisher

EXTENSION_KEY = "audit_api"


@dataclass
class Services:
    settings: Settings
    store: Store
    publisher_factory: Callable[[], Publisher]
    #: The public keys of the worker's digests (AUDIT_SIGNING_PUBLIC_KEY).
    integrity_keys: TrustedKeys = field(default_factory=lambda: TrustedKeys({}))
    _publisher: Publisher | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def publisher(self) -> Publisher:
        """Built on first export, after gunicorn forked: a Kafka producer does not survive
        a fork, and most API processes never export anything."""
        with self._lock:
            if self._publisher is None:
                self._publisher = self.publisher_factory()
            return self._publisher


def services() -> Services:
    result: Services = current_app.extensions[EXTENSION_KEY]
    return result
