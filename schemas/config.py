"""Configuration shared by every process: environment helpers, Kafka and Elasticsearch options.

The worker (`consumer/settings.py`), the API (`api/settings.py`) and the `audit-log` tools
(`schemas/cli_settings.py`) each read the environment once, in their own settings, and build
them from what is here, so one variable means one thing with one set of rules everywhere:
the same defaults, the same checks, the same error (`ConfigError`, one line naming the
variable), and secrets kept out of reprs (and so out of logs and tracebacks).

Standard library only: `schemas/` may not import Faust, Flask or the Elasticsearch client,
and nothing here connects to anything.
"""

from __future__ import annotations

import base64
import logging
import math
import os
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeAlias, TypeVar

# The defaults, written once (README, "Configuration").
DEFAULT_KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:9092"
DEFAULT_ELASTICSEARCH_URL = "http://127.0.0.1:9200"
DEFAULT_INDEX_PREFIX = "audit-logs"
DEFAULT_EVENTS_TOPIC = "audit.events"
DEFAULT_DLQ_TOPIC = "audit.events.dlq"

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
#: What Faust (aiokafka) and librdkafka both speak with a username and password.
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
DEFAULT_SASL_MECHANISM = "PLAIN"
#: The names `logging` itself accepts (dictConfig refuses anything else with a traceback).
LOG_LEVELS = tuple(logging.getLevelNamesMapping())
#: The largest TCP port.
MAX_PORT = 65535


class ConfigError(ValueError):
    """The environment does not describe a runnable process; the message is one line that
    names the variable and says what to set."""


Source: TypeAlias = "Env | Mapping[str, str] | None"


class Env:
    """Variables by name from one snapshot of the environment (or of a given mapping). A
    blank value means unset; every refusal is a `ConfigError` naming the variable."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        # The one read of os.environ: a copy, so a process's settings come from one moment.
        self._values = dict(os.environ if environ is None else environ)

    @classmethod
    def of(cls, source: Source) -> Env:
        """`source` itself when it is an `Env`, else a snapshot of it (None: the process's)."""
        return source if isinstance(source, Env) else cls(source)

    def optional(self, name: str) -> str | None:
        return self._values.get(name, "").strip() or None

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def integer(self, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number") from None
        return _within(name, raw, value, minimum, maximum)

    def number(
        self, name: str, default: float, minimum: float, maximum: float | None = None
    ) -> float:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number") from None
        if not math.isfinite(value):  # "nan" would pass every bound
            raise ConfigError(f"{name}={raw!r} is not a finite number")
        return _within(name, raw, value, minimum, maximum)

    def flag(self, name: str, default: bool = False) -> bool:
        raw = (self.optional(name) or "").lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes"):
            return True
        if raw in ("0", "false", "no"):
            return False
        raise ConfigError(f"{name}={raw!r}; use true or false")

    def names(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """A comma-separated list, blanks and repeats dropped, in its order."""
        raw = self.optional(name)
        if raw is None:
            return default
        items = tuple(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))
        if not items:
            raise ConfigError(f"{name}={raw!r} names nothing; give at least one, comma-separated")
        return items

    def choice(self, name: str, choices: Iterable[str], default: str) -> str:
        """One of `choices`, matched without regard to case and returned as spelled there."""
        raw = self.optional(name)
        if raw is None:
            return default
        spelled = {choice.upper(): choice for choice in choices}
        if raw.upper() not in spelled:
            raise _not_one_of(name, raw, spelled.values())
        return spelled[raw.upper()]


Number = TypeVar("Number", int, float)


def _within(name: str, raw: str, value: Number, minimum: Number, maximum: Number | None) -> Number:
    if maximum is not None and not minimum <= value <= maximum:
        raise ConfigError(f"{name}={raw!r} must be between {minimum} and {maximum}")
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _not_one_of(name: str, raw: str, choices: Iterable[str]) -> ConfigError:
    return ConfigError(f"{name}={raw!r}; choose one of {', '.join(choices)}")


def _context(ca_file: str | None, name: str) -> ssl.SSLContext:
    """A verifying TLS context: the system's CAs, or only the file `name` points at."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        reason = getattr(error, "strerror", None) or error
        raise ConfigError(f"{name}={ca_file!r}: {reason}") from None


# --------------------------------------------------------------------------- Kafka


@dataclass(frozen=True)
class KafkaOptions:
    """Where Kafka is and how to authenticate (the `KAFKA_*` variables), checked when made."""

    bootstrap_servers: str = DEFAULT_KAFKA_BOOTSTRAP_SERVERS
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_ca_location: str | None = None

    def __post_init__(self) -> None:
        if not self.bootstrap_list:
            raise ConfigError(f"KAFKA_BOOTSTRAP_SERVERS={self.bootstrap_servers!r} names no broker")
        protocol = self.security_protocol
        if protocol is not None and protocol not in SECURITY_PROTOCOLS:
            raise _not_one_of("KAFKA_SECURITY_PROTOCOL", protocol, SECURITY_PROTOCOLS)
        if not self.uses_sasl:
            return  # the SASL variables are not used: librdkafka and Faust ignore them
        if self.mechanism not in SASL_MECHANISMS:
            raise _not_one_of("KAFKA_SASL_MECHANISM", self.mechanism, SASL_MECHANISMS)
        if not self.sasl_username or self.sasl_password is None:
            raise ConfigError(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and "
                "KAFKA_SASL_PASSWORD"
            )

    @classmethod
    def from_env(cls, environ: Source = None) -> KafkaOptions:
        env = Env.of(environ)
        return cls(
            bootstrap_servers=env.text("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA_BOOTSTRAP_SERVERS),
            security_protocol=_upper(env.optional("KAFKA_SECURITY_PROTOCOL")),
            sasl_mechanism=_upper(env.optional("KAFKA_SASL_MECHANISM")),
            sasl_username=env.optional("KAFKA_SASL_USERNAME"),
            sasl_password=env.optional("KAFKA_SASL_PASSWORD"),
            ssl_ca_location=env.optional("KAFKA_SSL_CA_LOCATION"),
        )

    @property
    def bootstrap_list(self) -> list[str]:
        return [host.strip() for host in self.bootstrap_servers.split(",") if host.strip()]

    @property
    def uses_sasl(self) -> bool:
        return (self.security_protocol or "").startswith("SASL")

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def mechanism(self) -> str:
        """The SASL mechanism in use: PLAIN unless told (librdkafka's own default, GSSAPI,
        takes no password and is not one Faust speaks)."""
        return self.sasl_mechanism or DEFAULT_SASL_MECHANISM

    def security_config(self) -> dict[str, str]:
        """librdkafka properties besides `bootstrap.servers`, ready for
        `AuditPublisher(servers, **options.security_config())`; unset ones left out."""
        properties = {
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.mechanism if self.uses_sasl else self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password,
            "ssl.ca.location": self.ssl_ca_location,
        }
        return {key: value for key, value in properties.items() if value}

    def client_config(self) -> dict[str, Any]:
        """librdkafka (confluent-kafka) settings for a producer, consumer or admin client."""
        return {"bootstrap.servers": self.bootstrap_servers, **self.security_config()}

    def ssl_context(self) -> ssl.SSLContext | None:
        """For aiokafka (Faust's `SSLCredentials`/`SASLCredentials`): None without TLS."""
        if not self.uses_ssl:
            return None
        return _context(self.ssl_ca_location, "KAFKA_SSL_CA_LOCATION")


def _upper(value: str | None) -> str | None:
    return value.upper() if value else None


# --------------------------------------------------------------------------- Elasticsearch


@dataclass(frozen=True)
class ElasticsearchOptions:
    """Where Elasticsearch is and how to authenticate (the `ELASTICSEARCH_*` variables),
    checked when made: for the client library (worker, API) and plain HTTP (`es_rest`)."""

    url: str = DEFAULT_ELASTICSEARCH_URL
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_certs: str | None = None

    def __post_init__(self) -> None:
        # A scheme-less URL would reach the client library and fail there, per request.
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"ELASTICSEARCH_URL={self.url!r} must start with http:// or https://")
        object.__setattr__(self, "url", self.url.rstrip("/"))  # paths are appended to it
        if self.username and self.password is None:
            raise ConfigError("ELASTICSEARCH_USERNAME is set but ELASTICSEARCH_PASSWORD is not")

    @classmethod
    def from_env(cls, environ: Source = None) -> ElasticsearchOptions:
        env = Env.of(environ)
        return cls(
            url=env.text("ELASTICSEARCH_URL", DEFAULT_ELASTICSEARCH_URL),
            api_key=env.optional("ELASTICSEARCH_API_KEY"),
            username=env.optional("ELASTICSEARCH_USERNAME"),
            password=env.optional("ELASTICSEARCH_PASSWORD"),
            ca_certs=env.optional("ELASTICSEARCH_CA_CERTS"),
        )

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `Elasticsearch(...)` / `AsyncElasticsearch(...)`."""
        kwargs: dict[str, Any] = {"hosts": [self.url]}
        if self.api_key:
            kwargs["api_key"] = self.api_key
        elif self.username:
            kwargs["basic_auth"] = (self.username, self.password or "")
        if self.ca_certs:
            kwargs["ca_certs"] = self.ca_certs
        return kwargs

    def headers(self, content_type: str = "application/json") -> dict[str, str]:
        """HTTP headers for a plain request (the API key wins over a username, as above)."""
        headers = {"Content-Type": content_type}
        if self.api_key:
            headers["Authorization"] = f"ApiKey {self.api_key}"
        elif self.username:
            token = f"{self.username}:{self.password or ''}".encode()
            headers["Authorization"] = f"Basic {base64.b64encode(token).decode()}"
        return headers

    def ssl_context(self) -> ssl.SSLContext:
        """For urllib: the system's CAs, or only `ELASTICSEARCH_CA_CERTS` when set."""
        return _context(self.ca_certs, "ELASTICSEARCH_CA_CERTS")


# --------------------------------------------------------------------------- flat fields


# The worker's and the API's settings have always carried these options as flat fields
# (`Settings(elasticsearch_url=...)` in tests, `settings.kafka_sasl_username` in the worker):
# the mixins below declare them once, with the same defaults and secrecy as the options.


@dataclass(frozen=True)
class KafkaFields:
    """`KafkaOptions` as `kafka_*` fields of a process's frozen settings."""

    kafka_bootstrap_servers: str = DEFAULT_KAFKA_BOOTSTRAP_SERVERS
    kafka_security_protocol: str | None = None
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = field(default=None, repr=False)
    kafka_ssl_ca_location: str | None = None

    @property
    def kafka(self) -> KafkaOptions:
        return KafkaOptions(**_unprefixed(self, "kafka_", KafkaOptions))

    @property
    def bootstrap_list(self) -> list[str]:
        return self.kafka.bootstrap_list

    def kafka_client_config(self) -> dict[str, Any]:
        """librdkafka (confluent-kafka) settings for the DLQ producer and admin probes."""
        return self.kafka.client_config()


@dataclass(frozen=True)
class ElasticsearchFields:
    """`ElasticsearchOptions` as `elasticsearch_*` fields of a process's frozen settings."""

    elasticsearch_url: str = DEFAULT_ELASTICSEARCH_URL
    elasticsearch_api_key: str | None = field(default=None, repr=False)
    elasticsearch_username: str | None = None
    elasticsearch_password: str | None = field(default=None, repr=False)
    elasticsearch_ca_certs: str | None = None

    @property
    def elasticsearch(self) -> ElasticsearchOptions:
        return ElasticsearchOptions(**_unprefixed(self, "elasticsearch_", ElasticsearchOptions))

    def elasticsearch_client_options(self) -> dict[str, Any]:
        """Keyword arguments for `Elasticsearch(...)` / `AsyncElasticsearch(...)`."""
        return self.elasticsearch.client_kwargs()


def kafka_fields(env: Env) -> dict[str, Any]:
    """`KafkaFields`' values from the environment, checked."""
    return _prefixed(KafkaOptions.from_env(env), "kafka_")


def elasticsearch_fields(env: Env) -> dict[str, Any]:
    """`ElasticsearchFields`' values from the environment, checked."""
    return _prefixed(ElasticsearchOptions.from_env(env), "elasticsearch_")


def _prefixed(options: Any, prefix: str) -> dict[str, Any]:
    return {prefix + item.name: getattr(options, item.name) for item in fields(options)}


def _unprefixed(settings: object, prefix: str, options: Any) -> dict[str, Any]:
    return {item.name: getattr(settings, prefix + item.name) for item in fields(options)}
