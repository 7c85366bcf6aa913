"""Capped exponential backoff with jitter (tenacity), shared by the Elasticsearch and DLQ adapters.

Nothing here gives up: an audit event is never dropped because a dependency was down. The
retry loops end when the dependency answers, or when the task is cancelled (SIGTERM), in
which case the batch is abandoned uncommitted and redelivered later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_never,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """Part of the work is not done yet for a reason that should pass (outage, 429, 5xx)."""


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.2
    maximum: float = 10.0

    def _wait(self) -> wait_exponential_jitter:
        # min(initial * 2**n + uniform(0, initial), maximum): jitter spreads the workers out.
        return wait_exponential_jitter(
            multiplier=self.initial, max=self.maximum, jitter=self.initial
        )

    def delay(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based), jitter included."""
        wait = self._wait()
        state = RetryCallState(retry_object=AsyncRetrying(), fn=None, args=(), kwargs={})
        state.attempt_number = attempt
        return float(wait(state))

    def retrying(
        self,
        what: str,
        on_retry: Callable[[], None] | None = None,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = RetryLater,
    ) -> AsyncRetrying:
        """An `AsyncRetrying` that retries `retry_on` for ever, logging sparingly."""

        def before_sleep(state: RetryCallState) -> None:
            if on_retry is not None:
                on_retry()
            _log_retry(what, state)

        return AsyncRetrying(
            wait=self._wait(),
            retry=retry_if_exception_type(retry_on),
            stop=stop_never,
            reraise=True,
            before_sleep=before_sleep,
        )

    def retrying_sync(self, what: str) -> Retrying:
        """The blocking twin of `retrying`, for start-up checks before the event loop runs."""
        return Retrying(
            wait=self._wait(),
            retry=retry_if_exception_type(RetryLater),
            stop=stop_never,
            reraise=True,
            before_sleep=lambda state: _log_retry(what, state),
        )


def _log_retry(what: str, state: RetryCallState) -> None:
    attempt = state.attempt_number
    # One line when the trouble starts, then rarely (1, 2, 4, 8, ... and every 32nd),
    # so an outage of minutes does not flood the log.
    if attempt & (attempt - 1) and attempt % 32:
        return
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    sleep = state.next_action.sleep if state.next_action else 0.0
    log.warning(
        "%s: %s; retrying in %.1fs (attempt %d)",
        what,
        error,
        sleep,
        attempt,
        extra={"attempt": attempt, "retry_in_s": round(sleep, 2)},
    )
