"""Kafka client settings from the shared environment variables (docs/architecture.md)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from schemas.dead_letter import DEFAULT_DLQ_TOPIC

DEFAULT_BOOTSTRAP_SERVERS = "127.0.0.1:9092"

# Environment variable -> librdkafka property; unset variables are simply left out.
_ENV_TO_KAFKA = {
    "KAFKA_SECURITY_PROTOCOL": "security.protocol",
    "KAFKA_SASL_MECHANISM": "sasl.mechanism",
    "KAFKA_SASL_USERNAME": "sasl.username",
    "KAFKA_SASL_PASSWORD": "sasl.password",
    "KAFKA_SSL_CA_LOCATION": "ssl.ca.location",
}


def bootstrap_servers_from_env(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP_SERVERS


def kafka_config_from_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Security settings from ``KAFKA_*`` variables (not ``bootstrap.servers``), ready to
    pass as ``AuditPublisher(bootstrap_servers, **kafka_config_from_env())``."""
    env = os.environ if env is None else env
    return {prop: env[var] for var, prop in _ENV_TO_KAFKA.items() if env.get(var)}


def dlq_topic_from_env(env: Mapping[str, str] | None = None) -> str:
    """The dead-letter topic: ``AUDIT_DLQ_TOPIC`` (the worker's setting) or the default."""
    env = os.environ if env is None else env
    return env.get("AUDIT_DLQ_TOPIC") or DEFAULT_DLQ_TOPIC


def quiet_logger(name: str) -> logging.Logger:
    """A logger for librdkafka's own lines that goes nowhere: a CLI reports in its own words."""
    logger = logging.getLogger(name)
    if not logger.handlers:  # one handler, however many clients share the name
        logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger
