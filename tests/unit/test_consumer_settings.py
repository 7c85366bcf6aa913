"""Worker settings: defaults, every variable, and readable errors."""

from __future__ import annotations

import dataclasses

import pytest

from consumer.settings import Settings, SettingsError, load_settings


def test_defaults_match_the_architecture_table() -> None:
    settings = load_settings({})

    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.elasticsearch_url == "http://127.0.0.1:9200"
    assert settings.index_prefix == "audit-logs"
    assert settings.topics == ("audit.events",)
    assert settings.dlq_topic == "audit.events.dlq"
    assert settings.group_id == "audit-worker"
    assert (settings.batch_size, settings.batch_window_seconds) == (1000, 0.2)
    assert settings.worker_port == 9108


def test_every_variable_is_read() -> None:
    settings = load_settings(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "k1:9093, k2:9093",
            "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "KAFKA_SASL_MECHANISM": "scram-sha-512",
            "KAFKA_SASL_USERNAME": "worker",
            "KAFKA_SASL_PASSWORD": "secret",
            "KAFKA_SSL_CA_LOCATION": "/etc/ca.pem",
            "ELASTICSEARCH_URL": "https://es:9200/",
            "ELASTICSEARCH_API_KEY": "key",
            "ELASTICSEARCH_CA_CERTS": "/etc/es-ca.pem",
            "AUDIT_INDEX_PREFIX": "p",
            "AUDIT_TOPICS": "a, b,a",
            "AUDIT_DLQ_TOPIC": "dead",
            "AUDIT_GROUP_ID": "g",
            "AUDIT_BATCH_SIZE": "50",
            "AUDIT_BATCH_WINDOW_SECONDS": "0.25",
            "AUDIT_WORKER_PORT": "9999",
        }
    )

    assert settings.bootstrap_list == ["k1:9093", "k2:9093"]
    assert settings.topics == ("a", "b")
    assert settings.elasticsearch_url == "https://es:9200"
    assert (settings.batch_size, settings.batch_window_seconds, settings.worker_port) == (
        50,
        0.25,
        9999,
    )
    assert settings.kafka_client_config() == {
        "bootstrap.servers": "k1:9093, k2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "worker",
        "sasl.password": "secret",
        "ssl.ca.location": "/etc/ca.pem",
    }
    options = settings.elasticsearch_client_options()
    assert options == {"hosts": ["https://es:9200"], "api_key": "key", "ca_certs": "/etc/es-ca.pem"}


def test_basic_auth_for_elasticsearch() -> None:
    settings = load_settings({"ELASTICSEARCH_USERNAME": "u", "ELASTICSEARCH_PASSWORD": "p"})

    assert settings.elasticsearch_client_options()["basic_auth"] == ("u", "p")


def test_settings_are_frozen_and_secrets_are_not_in_repr() -> None:
    settings = load_settings({"KAFKA_SASL_PASSWORD": "hunter2", "ELASTICSEARCH_API_KEY": "k3y"})

    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.group_id = "other"  # type: ignore[misc]
    assert "hunter2" not in repr(settings) and "k3y" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"AUDIT_BATCH_SIZE": "many"}, "AUDIT_BATCH_SIZE"),
        ({"AUDIT_BATCH_SIZE": "0"}, "AUDIT_BATCH_SIZE"),
        ({"AUDIT_BATCH_WINDOW_SECONDS": "-1"}, "AUDIT_BATCH_WINDOW_SECONDS"),
        ({"AUDIT_WORKER_PORT": "http"}, "AUDIT_WORKER_PORT"),
        ({"AUDIT_TOPICS": " , "}, "AUDIT_TOPICS"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_USERNAME"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "GSSAPI",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": "p",
            },
            "KAFKA_SASL_MECHANISM",
        ),
        ({"ELASTICSEARCH_USERNAME": "u"}, "ELASTICSEARCH_PASSWORD"),
        ({"ELASTICSEARCH_URL": "es:9200"}, "ELASTICSEARCH_URL"),
        ({"AUDIT_DLQ_TOPIC": "audit.events"}, "AUDIT_DLQ_TOPIC"),
    ],
)
def test_mistakes_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        load_settings(env)


def test_blank_values_mean_default() -> None:
    assert load_settings({"AUDIT_GROUP_ID": "  ", "AUDIT_BATCH_SIZE": ""}) == Settings()


def test_new_batch_bounds_bind_state_and_topic_creation_are_read() -> None:
    settings = load_settings(
        {
            "AUDIT_BATCH_MAX_BYTES": "1048576",
            "AUDIT_PREFETCH_RECORDS": "50",
            "AUDIT_WORKER_BIND": "0.0.0.0",
            "AUDIT_WORKER_STATE_DIR": "/var/lib/w",
            "AUDIT_CREATE_TOPICS": "true",
        }
    )

    assert (settings.batch_max_bytes, settings.prefetch_records) == (1_048_576, 50)
    assert (settings.worker_bind, settings.state_dir, settings.create_topics) == (
        "0.0.0.0",
        "/var/lib/w",
        True,
    )
    defaults = load_settings({})
    assert (defaults.worker_bind, defaults.state_dir, defaults.create_topics) == (
        "127.0.0.1",
        None,
        False,
    )


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"AUDIT_CREATE_TOPICS": "maybe"}, "AUDIT_CREATE_TOPICS"),
        ({"AUDIT_BATCH_MAX_BYTES": "10"}, "AUDIT_BATCH_MAX_BYTES"),
        ({"AUDIT_PREFETCH_RECORDS": "0"}, "AUDIT_PREFETCH_RECORDS"),
    ],
)
def test_bad_new_values_name_the_variable(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        load_settings(env)


def test_secrets_never_appear_in_repr_or_str() -> None:
    settings = load_settings(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_USERNAME": "worker",
            "KAFKA_SASL_PASSWORD": "kafka-pass-123",
            "ELASTICSEARCH_API_KEY": "es-api-key-456",
            "ELASTICSEARCH_USERNAME": "elastic",
            "ELASTICSEARCH_PASSWORD": "es-pass-789",
        }
    )

    for text in (repr(settings), str(settings)):
        for secret in ("kafka-pass-123", "es-api-key-456", "es-pass-789"):
            assert secret not in text


def test_no_repr_shows_a_secret() -> None:
    secrets = {
        "KAFKA_SASL_PASSWORD": "kafka-password-value",
        "ELASTICSEARCH_API_KEY": "es-api-key-value",
        "ELASTICSEARCH_PASSWORD": "es-password-value",
    }
    settings = load_settings(
        {
            **secrets,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_USERNAME": "svc",
            "ELASTICSEARCH_USERNAME": "elastic",
        }
    )
    for name, value in secrets.items():
        assert value not in repr(settings), name
