"""The API's gunicorn workers collect garbage as the worker does: what start-up made is
frozen, young collections every 50,000 allocations (B4: decoding export pages)."""

from __future__ import annotations

import gc

from api.main import tune_garbage_collector


def test_the_collector_is_tuned_and_start_up_frozen() -> None:
    threshold = gc.get_threshold()
    try:
        tune_garbage_collector(object())  # gunicorn passes the worker
        assert gc.get_threshold() == (50_000, 20, 10)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
