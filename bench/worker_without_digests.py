"""B1's comparison worker: `audit-worker` with its integrity digests switched off.

Benchmark only. The product has no setting that turns digests off (the worker refuses to start
without a signing key, and an audit log without tamper evidence is not one), so B1 measures
their cost by starting the same worker with the digest log left out: the batch path then
commits offsets as soon as a batch is indexed, as it did before digests existed.
"""

from __future__ import annotations

from typing import Any

import consumer.app
from consumer import main as worker_main


def _no_digests(*_args: Any, **_kwargs: Any) -> None:
    return None


def main() -> None:
    if not hasattr(consumer.app, "_digest_log"):  # the worker's wiring moved: follow it here
        raise SystemExit("bench.worker_without_digests: consumer.app._digest_log is gone")
    consumer.app._digest_log = _no_digests  # type: ignore[assignment]
    worker_main.main()


if __name__ == "__main__":
    main()
