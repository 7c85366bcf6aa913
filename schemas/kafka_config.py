"""Kafka settings for SDK users (docs/events.md), and a quiet logger for librdkafka.

The variables and their rules are `schemas.config.KafkaOptions`', the same as the worker's
and the API's: a publisher configured by these functions connects as they do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from schemas.config import KafkaOptions


def bootstrap_servers_from_env(env: Mapping[str, str] | None = None) -> str:
    """``KAFKA_BOOTSTRAP_SERVERS`` or the default; raises `ConfigError` for a bad variable."""
    return KafkaOptions.from_env(env).bootstrap_servers


def kafka_config_from_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Security settings from ``KAFKA_*`` variables (not ``bootstrap.servers``), ready to
    pass as ``AuditPublisher(bootstrap_servers, **kafka_config_from_env())``."""
    return KafkaOptions.from_env(env).security_config()


def quiet_logger(name: str) -> logging.Logger:
    """A logger for librdkafka's own lines that goes nowhere: a CLI reports in its own words."""
    logger = logging.getLogger(name)
    if not logger.handlers:  # one handler, however many clients share the name
        logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger
