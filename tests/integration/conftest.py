"""Fixtures shared by the worker's integration tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.worker_harness import Setup, worker_setup


@pytest.fixture
def setup(
    kafka_bootstrap: str,
    es_url: str,
    es: Any,  # requested so that unique_name deletes the test's indices afterwards
    unique_name: Callable[[str], str],
    create_topic: Callable[..., str],
    tmp_path: Path,
) -> Setup:
    """A factory of worker configurations on a fresh topic, index prefix and group."""
    return worker_setup(kafka_bootstrap, es_url, unique_name, create_topic, tmp_path)
