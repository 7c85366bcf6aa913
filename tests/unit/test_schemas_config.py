"""One configuration (issue 15): the environment helpers, the Kafka and Elasticsearch options,
and the worker, the API and `audit-log` refusing the same bad values with one line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from api.main import _share_metrics_between_workers
from api.main import main as api_main
from api.metrics import exposition
from api.settings import ConfigError as ApiConfigError
from api.settings import Settings as ApiSettings
from consumer.settings import SettingsError, load_settings
from schemas.cli import main as cli_main
from schemas.cli_settings import CliSettings
from schemas.config import (
    ConfigError,
    ElasticsearchFields,
    ElasticsearchOptions,
    Env,
    KafkaFields,
    KafkaOptions,
)

SASL = {
    "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
    "KAFKA_SASL_USERNAME": "svc",
    "KAFKA_SASL_PASSWORD": "kafka-password-value",
}


# --------------------------------------------------------------------------- helpers


def test_blank_is_unset_and_values_are_trimmed() -> None:
    env = Env({"A": "  ", "B": " x "})
    assert env.optional("A") is None and env.text("A", "d") == "d"
    assert env.optional("B") == "x"


@pytest.mark.parametrize(
    ("read", "raw", "says"),
    [
        (lambda env: env.integer("N", 1, minimum=1), "many", "N='many' is not a whole number"),
        (lambda env: env.integer("N", 1, minimum=1), "0", "N='0' must be at least 1"),
        (lambda env: env.integer("N", 1, 1, 64), "65", "N='65' must be between 1 and 64"),
        (lambda env: env.number("N", 1.0, minimum=0.5), "0.1", "N='0.1' must be at least 0.5"),
        (lambda env: env.number("N", 1.0, minimum=0.5), "nan", "N='nan' is not a finite number"),
        (lambda env: env.number("N", 1.0, minimum=0.5), "soon", "N='soon' is not a number"),
        (lambda env: env.flag("N"), "maybe", "N='maybe'; use true or false"),
        (lambda env: env.names("N", ("a",)), " , ", "N=',' names nothing"),
        (lambda env: env.choice("N", ("x", "y"), "x"), "z", "N='z'; choose one of x, y"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    read: Callable[[Env], Any], raw: str, says: str
) -> None:
    with pytest.raises(ConfigError) as info:
        read(Env({"N": raw}))
    assert says in str(info.value) and "\n" not in str(info.value)


def test_the_helpers_read_what_they_are_given() -> None:
    env = Env({"I": "7", "F": "0.25", "T": "yes", "L": "a, b,a,", "C": "Production"})
    assert (env.integer("I", 1, minimum=0), env.number("F", 1.0, minimum=0)) == (7, 0.25)
    assert env.flag("T") and not env.flag("unset")
    assert env.names("L", ()) == ("a", "b")
    assert env.choice("C", ("development", "production"), "development") == "production"


def test_one_snapshot_of_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_SNAPSHOT_PROBE", "before")
    env = Env()
    monkeypatch.setenv("AUDIT_SNAPSHOT_PROBE", "after")
    assert env.optional("AUDIT_SNAPSHOT_PROBE") == "before"
    assert Env.of(env) is env


# --------------------------------------------------------------------------- Kafka


def test_kafka_defaults_and_security_properties() -> None:
    assert KafkaOptions.from_env({}).client_config() == {"bootstrap.servers": "127.0.0.1:9092"}
    options = KafkaOptions.from_env({**SASL, "KAFKA_BOOTSTRAP_SERVERS": "k1:9093, k2:9093"})
    assert options.bootstrap_list == ["k1:9093", "k2:9093"]
    assert options.security_config() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",  # what Faust uses too; librdkafka alone would try GSSAPI
        "sasl.username": "svc",
        "sasl.password": "kafka-password-value",
    }
    assert "kafka-password-value" not in repr(options)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "BOGUS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "KAFKA_SASL_USERNAME"),
        ({**SASL, "KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_BOOTSTRAP_SERVERS": " , "}, "KAFKA_BOOTSTRAP_SERVERS"),
    ],
)
def test_kafka_mistakes_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        KafkaOptions.from_env(env)


def test_kafka_tls_context(tmp_path: Path) -> None:
    assert KafkaOptions().ssl_context() is None
    assert KafkaOptions(security_protocol="SSL").ssl_context() is not None
    missing = KafkaOptions(security_protocol="SSL", ssl_ca_location=str(tmp_path / "none.pem"))
    with pytest.raises(ConfigError, match="KAFKA_SSL_CA_LOCATION"):
        missing.ssl_context()


# --------------------------------------------------------------------------- Elasticsearch


def test_elasticsearch_options_for_the_client_and_for_plain_http() -> None:
    options = ElasticsearchOptions.from_env(
        {
            "ELASTICSEARCH_URL": "https://es:9200/",
            "ELASTICSEARCH_USERNAME": "elastic",
            "ELASTICSEARCH_PASSWORD": "es-password-value",
            "ELASTICSEARCH_CA_CERTS": "/ca.pem",
        }
    )
    assert options.client_kwargs() == {
        "hosts": ["https://es:9200"],
        "basic_auth": ("elastic", "es-password-value"),
        "ca_certs": "/ca.pem",
    }
    assert options.headers()["Authorization"].startswith("Basic ")
    assert "es-password-value" not in repr(options)
    assert ElasticsearchOptions(api_key="k").headers()["Authorization"] == "ApiKey k"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"ELASTICSEARCH_URL": "es:9200"}, "ELASTICSEARCH_URL"),
        ({"ELASTICSEARCH_USERNAME": "u"}, "ELASTICSEARCH_PASSWORD"),
    ],
)
def test_elasticsearch_mistakes_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        ElasticsearchOptions.from_env(env)


def test_an_unreadable_ca_file_names_its_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ELASTICSEARCH_CA_CERTS"):
        ElasticsearchOptions(ca_certs=str(tmp_path / "none.pem")).ssl_context()


# --------------------------------------------------------------------------- one set of rules


def test_one_error_type_under_each_name() -> None:
    assert SettingsError is ConfigError and ApiConfigError is ConfigError
    assert issubclass(ConfigError, ValueError)


READERS: dict[str, Callable[[dict[str, str]], object]] = {
    "worker": load_settings,
    "api": ApiSettings.from_env,
    "audit-log": CliSettings.from_env,
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "BOGUS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_USERNAME"),
        ({"ELASTICSEARCH_URL": "es:9200"}, "ELASTICSEARCH_URL"),
        ({"ELASTICSEARCH_USERNAME": "u"}, "ELASTICSEARCH_PASSWORD"),
    ],
)
def test_every_process_refuses_the_same_values(
    reader: str, env: dict[str, str], names: str
) -> None:
    with pytest.raises(ConfigError, match=names):
        READERS[reader](env)


def test_every_process_reads_the_same_options() -> None:
    env = {**SASL, "ELASTICSEARCH_URL": "https://es:9200/", "ELASTICSEARCH_API_KEY": "k"}
    worker, api, cli = load_settings(env), ApiSettings.from_env(env), CliSettings.from_env(env)
    assert worker.kafka == cli.kafka
    assert api.kafka_config == worker.kafka.security_config()
    assert worker.elasticsearch == api.elasticsearch == cli.elasticsearch
    assert api.elasticsearch_kwargs() == worker.elasticsearch_client_options()


def test_the_worker_refuses_a_log_level_logging_does_not_know() -> None:
    assert load_settings({"AUDIT_LOG_LEVEL": "debug"}).log_level == "DEBUG"
    with pytest.raises(ConfigError, match="AUDIT_LOG_LEVEL"):
        load_settings({"AUDIT_LOG_LEVEL": "chatty"})


# --------------------------------------------------------------------------- entry points


def test_audit_api_with_a_bad_worker_count_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUDIT_API_WORKERS", "many")
    with pytest.raises(SystemExit) as info:
        api_main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == "audit-api: configuration error: AUDIT_API_WORKERS='many' is not a whole number\n"


@pytest.mark.parametrize(
    ("env", "argv"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "BOGUS"}, ["dlq", "list"]),
        ({"ELASTICSEARCH_URL": "es:9200"}, ["verify", "--partner", "p-1"]),
    ],
)
def test_audit_log_with_a_bad_variable_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    argv: list[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("audit-log: configuration error: ") and next(iter(env)) in err
    assert err.count("\n") == 1


def test_metrics_are_shared_through_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    given = ApiSettings(metrics_dir=str(tmp_path))
    assert _share_metrics_between_workers(given) == (given, None)
    # audit-api writes prometheus-client's switch to the environment: undone after the test.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    settings, made = _share_metrics_between_workers(ApiSettings())
    try:
        assert made is not None and settings.metrics_dir == made
        assert Env().optional("PROMETHEUS_MULTIPROC_DIR") == made
    finally:
        Path(made or "").rmdir()
    assert b"audit_api_requests" in exposition(None)
    assert exposition(str(tmp_path)) == b""  # no worker has written yet


def test_the_flat_fields_mirror_the_options() -> None:
    """The worker's and the API's `kafka_*`/`elasticsearch_*` fields are the options' own,
    field for field, with the same defaults (a renamed field fails here, not in production)."""
    assert KafkaFields().kafka == KafkaOptions()
    assert ElasticsearchFields().elasticsearch == ElasticsearchOptions()
    assert [f.name for f in fields(KafkaFields)] == [
        f"kafka_{f.name}" for f in fields(KafkaOptions)
    ]
    assert [f.name for f in fields(ElasticsearchFields)] == [
        f"elasticsearch_{f.name}" for f in fields(ElasticsearchOptions)
    ]
