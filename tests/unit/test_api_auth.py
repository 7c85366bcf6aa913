"""Token verification and settings: what is a 401, what is a 403, what refuses to start."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from api.auth import AuthError, Caller, authenticate, bearer_token, decode_token
from api.devtoken import mint_token
from api.settings import DEV_JWT_SECRET, ConfigError, Settings

SECRET = "unit-test-secret-of-at-least-thirty-two-bytes"
SETTINGS = Settings(jwt_secret=SECRET)
CURSOR_SECRET = "unit-test-cursor-secret-thirty-two-bytes-long"


def claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "sub": "u-1",
        "name": "Jane",
        "partner_id": "p-100",
        "role": "admin",
        "org_ids": ["org-7"],
        "exp": int(time.time()) + 60,
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def status_of(token: str, settings: Settings = SETTINGS) -> int:
    with pytest.raises(AuthError) as info:
        decode_token(token, settings)
    return info.value.status


def test_valid_hs256_token_gives_the_caller() -> None:
    token = jwt.encode(claims(org_ids=["org-7", "org-8", "org-7"]), SECRET, algorithm="HS256")
    assert decode_token(token, SETTINGS) == Caller(
        sub="u-1", name="Jane", partner_id="p-100", role="admin", org_ids=("org-7", "org-8")
    )


def test_mint_token_round_trips() -> None:
    token = mint_token(SECRET, "u-9", "p-2", "support", ["org-1"], ttl=60)
    caller = decode_token(token, SETTINGS)
    assert (caller.sub, caller.partner_id, caller.role, caller.org_ids) == (
        "u-9",
        "p-2",
        "support",
        ("org-1",),
    )


def test_missing_org_ids_means_none() -> None:
    token = jwt.encode(claims(role="owner", org_ids=None), SECRET, algorithm="HS256")
    assert decode_token(token, SETTINGS).org_ids == ()


def test_expired_token_is_401() -> None:
    # Beyond the 30 s leeway for clock skew.
    assert status_of(jwt.encode(claims(exp=int(time.time()) - 35), SECRET, "HS256")) == 401


def test_token_without_exp_is_401() -> None:
    assert status_of(jwt.encode(claims(exp=None), SECRET, "HS256")) == 401


@pytest.mark.parametrize("claim", ["sub", "partner_id", "role"])
def test_token_without_identity_claims_is_401(claim: str) -> None:
    assert status_of(jwt.encode(claims(**{claim: None}), SECRET, "HS256")) == 401


@pytest.mark.parametrize("org_ids", ["org-7", [1, 2], {"a": 1}])
def test_malformed_org_ids_is_401(org_ids: Any) -> None:
    assert status_of(jwt.encode(claims(org_ids=org_ids), SECRET, "HS256")) == 401


def test_wrong_key_is_401() -> None:
    other = "another-secret-that-is-also-thirty-two-bytes!"
    assert status_of(jwt.encode(claims(), other, "HS256")) == 401


def test_alg_none_is_401() -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none")
    assert status_of(unsigned) == 401


def test_tampered_payload_is_401() -> None:
    token = jwt.encode(claims(role="support"), SECRET, "HS256")
    header, _payload, signature = token.split(".")
    forged_payload = jwt.encode(claims(role="owner"), SECRET, "HS256").split(".")[1]
    assert status_of(f"{header}.{forged_payload}.{signature}") == 401


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 5000, "..", "€.€.€"])
def test_garbage_tokens_are_401(garbage: str) -> None:
    assert status_of(garbage) == 401


@pytest.mark.parametrize("role", ["viewer", "Owner", "", "guest"])
def test_unknown_role_is_403(role: str) -> None:
    assert status_of(jwt.encode(claims(role=role), SECRET, "HS256")) == 403


def test_hs512_is_not_accepted_even_with_the_right_secret() -> None:
    long_secret = SECRET * 2  # long enough for HS512, so only the algorithm pin rejects it
    settings = Settings(jwt_secret=long_secret)
    assert status_of(jwt.encode(claims(), long_secret, "HS512"), settings) == 401


def test_rs256_with_configured_public_key(rsa_keys: tuple[bytes, str]) -> None:
    private, public = rsa_keys
    settings = Settings(
        jwt_secret=None, jwt_public_key=public, cursor_secret=CURSOR_SECRET.encode()
    )
    token = jwt.encode(claims(), private, algorithm="RS256")
    assert decode_token(token, settings).sub == "u-1"
    # Without the public key configured, RS256 is not accepted at all.
    assert status_of(token, SETTINGS) == 401


def test_hs256_signed_with_the_public_key_is_rejected(rsa_keys: tuple[bytes, str]) -> None:
    """Algorithm confusion: the public key (known to all) used as an HMAC secret."""
    _, public = rsa_keys
    settings = Settings(
        jwt_secret=None, jwt_public_key=public, cursor_secret=CURSOR_SECRET.encode()
    )
    forged = _hmac_token(claims(), public.encode())
    assert status_of(forged, settings) == 401


def _hmac_token(payload: dict[str, Any], key: bytes) -> str:
    """HS256 by hand: PyJWT itself refuses to use a PEM as an HMAC key."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(payload).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "Token x"])
def test_missing_or_malformed_header_is_401(header: str | None) -> None:
    with pytest.raises(AuthError) as info:
        authenticate(header, SETTINGS, "127.0.0.1")
    assert info.value.status == 401


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token("bearer abc.def.ghi") == "abc.def.ghi"


# --- settings -----------------------------------------------------------------------------


def test_development_defaults_to_the_dev_secret() -> None:
    settings = Settings.from_env({})
    assert settings.env == "development"
    assert settings.jwt_secret == DEV_JWT_SECRET
    assert settings.jwt_algorithms == ("HS256",)
    assert len(settings.cursor_secret) == 32


def test_production_without_a_key_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="AUDIT_JWT_SECRET"):
        Settings.from_env({"AUDIT_ENV": "production"})


def test_production_refuses_the_dev_secret() -> None:
    with pytest.raises(ConfigError, match="development JWT secret"):
        Settings.from_env({"AUDIT_ENV": "production", "AUDIT_JWT_SECRET": DEV_JWT_SECRET})


PRODUCTION = {
    "AUDIT_ENV": "production",
    "AUDIT_CURSOR_SECRET": CURSOR_SECRET,
    "AUDIT_JWT_AUDIENCE": "audit-log",
    "AUDIT_JWT_ISSUER": "https://idp.example",
}


def test_production_with_only_a_public_key(rsa_keys: tuple[bytes, str]) -> None:
    settings = Settings.from_env({**PRODUCTION, "AUDIT_JWT_PUBLIC_KEY": rsa_keys[1]})
    assert settings.jwt_algorithms == ("RS256",)
    assert settings.jwt_secret is None


def test_public_key_may_be_a_path(tmp_path: Any, rsa_keys: tuple[bytes, str]) -> None:
    path = tmp_path / "key.pem"
    path.write_text(rsa_keys[1])
    settings = Settings.from_env(
        {"AUDIT_JWT_PUBLIC_KEY": str(path), "AUDIT_CURSOR_SECRET": CURSOR_SECRET}
    )
    assert settings.jwt_algorithms == ("RS256",)  # a key is configured: no dev secret


def test_short_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        Settings.from_env({"AUDIT_JWT_SECRET": "short"})


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(ConfigError, match="AUDIT_ENV"):
        Settings.from_env({"AUDIT_ENV": "staging"})


def test_environment_is_read() -> None:
    settings = Settings.from_env(
        {
            "AUDIT_JWT_SECRET": SECRET,
            "AUDIT_CURSOR_SECRET": CURSOR_SECRET,
            "ELASTICSEARCH_URL": "https://es:9200",
            "ELASTICSEARCH_USERNAME": "elastic",
            "ELASTICSEARCH_PASSWORD": "pw",
            "ELASTICSEARCH_CA_CERTS": "/ca.pem",
            "AUDIT_INDEX_PREFIX": "x",
            "KAFKA_BOOTSTRAP_SERVERS": "k:9092",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            # Since issue 15 the API applies the worker's Kafka rules: SASL needs both.
            "KAFKA_SASL_USERNAME": "svc",
            "KAFKA_SASL_PASSWORD": "pw",
            "AUDIT_EVENTS_TOPIC": "t",
            "AUDIT_API_PORT": "9000",
        }
    )
    assert settings.cursor_secret == CURSOR_SECRET.encode()
    assert settings.elasticsearch_kwargs() == {
        "hosts": ["https://es:9200"],
        "basic_auth": ("elastic", "pw"),
        "ca_certs": "/ca.pem",
    }
    assert settings.kafka_config == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",  # the default the rules name, never librdkafka's GSSAPI
        "sasl.username": "svc",
        "sasl.password": "pw",
    }
    assert (settings.index_prefix, settings.events_topic, settings.api_port) == ("x", "t", 9000)


# --- hardening (issue 11): audience, issuer, leeway, lifetime, claim types ------------------


def test_a_token_within_the_leeway_is_accepted() -> None:
    token = jwt.encode(claims(exp=int(time.time()) - 10), SECRET, "HS256")
    assert decode_token(token, SETTINGS).sub == "u-1"


def test_not_before_in_the_future_beyond_the_leeway_is_401() -> None:
    now = int(time.time())
    assert status_of(jwt.encode(claims(nbf=now + 120), SECRET, "HS256")) == 401
    assert decode_token(jwt.encode(claims(nbf=now + 10), SECRET, "HS256"), SETTINGS)


def test_the_leeway_is_configurable() -> None:
    strict = Settings(jwt_secret=SECRET, jwt_leeway_s=0)
    assert status_of(jwt.encode(claims(exp=int(time.time()) - 2), SECRET, "HS256"), strict) == 401


AUDIENCE_ISSUER = Settings(jwt_secret=SECRET, jwt_audience="audit-log", jwt_issuer="idp-a")


def test_audience_and_issuer_are_checked_when_configured() -> None:
    good = jwt.encode(claims(aud="audit-log", iss="idp-a"), SECRET, "HS256")
    assert decode_token(good, AUDIENCE_ISSUER).sub == "u-1"


@pytest.mark.parametrize(
    "extra",
    [
        {"aud": "billing", "iss": "idp-a"},  # a token the identity provider made for another app
        {"aud": "audit-log", "iss": "idp-b"},  # another identity provider sharing the key
        {"iss": "idp-a"},  # no audience at all
        {"aud": "audit-log"},  # no issuer at all
        {"aud": ["audit-log-x"], "iss": "idp-a"},
    ],
)
def test_a_token_for_another_audience_or_issuer_is_401(extra: dict[str, Any]) -> None:
    assert status_of(jwt.encode(claims(**extra), SECRET, "HS256"), AUDIENCE_ISSUER) == 401


def test_a_token_living_longer_than_the_maximum_is_401() -> None:
    now = int(time.time())
    long_lived = claims(iat=now, exp=now + 25 * 3600)
    assert status_of(jwt.encode(long_lived, SECRET, "HS256")) == 401
    # No `iat`: the lifetime counts from now.
    assert status_of(jwt.encode(claims(exp=now + 30 * 24 * 3600), SECRET, "HS256")) == 401
    day = claims(iat=now, exp=now + 24 * 3600)
    assert decode_token(jwt.encode(day, SECRET, "HS256"), SETTINGS).sub == "u-1"


@pytest.mark.parametrize(
    "overrides",
    [
        {"role": ["owner"]},
        {"role": {"name": "owner"}},
        {"role": 1},
        {"role": True},
        {"org_ids": "org-7"},
        {"org_ids": [["org-7"]]},
        {"org_ids": None, "role": ["admin"]},
        {"partner_id": ["p-100"]},
        {"partner_id": 100},
        {"sub": ["u-1"]},
        {"exp": "9999999999"},
        {"exp": True},
        {"iat": "yesterday"},
        {"nbf": "later"},
        {"aud": 5},
    ],
)
def test_claims_of_the_wrong_type_are_4xx_never_500(overrides: dict[str, Any]) -> None:
    settings = Settings(jwt_secret=SECRET, jwt_audience="audit-log")
    payload = {**claims(aud="audit-log"), **overrides}
    assert status_of(jwt.encode(payload, SECRET, "HS256"), settings) in (401, 403)


def test_the_dev_secret_opens_the_api_to_loopback_clients_only() -> None:
    settings = Settings()  # development, the repository's secret
    token = mint_token(settings.jwt_secret or "", partner_id="p-100", role="owner")
    assert decode_token(token, settings, "127.0.0.1").partner_id == "p-100"
    assert decode_token(token, settings, "::1").partner_id == "p-100"
    for peer in ("203.0.113.9", "10.0.0.2", None, ""):
        with pytest.raises(AuthError) as info:
            decode_token(token, settings, peer)
        assert info.value.status == 401


# --- settings (issue 11): secure by default ----------------------------------------------


@pytest.mark.parametrize(
    "missing", ["AUDIT_CURSOR_SECRET", "AUDIT_JWT_AUDIENCE", "AUDIT_JWT_ISSUER"]
)
def test_production_requires_cursor_secret_audience_and_issuer(
    missing: str, rsa_keys: tuple[bytes, str]
) -> None:
    env = {**PRODUCTION, "AUDIT_JWT_PUBLIC_KEY": rsa_keys[1]}
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        Settings.from_env(env)


def test_a_public_key_alone_never_keys_the_cursors(rsa_keys: tuple[bytes, str]) -> None:
    """The old fallback derived the cursor key from the public key: anyone could sign."""
    with pytest.raises(ConfigError, match="AUDIT_CURSOR_SECRET"):
        Settings.from_env({"AUDIT_JWT_PUBLIC_KEY": rsa_keys[1]})
    with pytest.raises(ConfigError, match="AUDIT_CURSOR_SECRET"):
        Settings(jwt_secret=None, jwt_public_key=rsa_keys[1])


def test_the_cursor_secret_must_be_long_and_not_the_jwt_secret() -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        Settings.from_env({"AUDIT_JWT_SECRET": SECRET, "AUDIT_CURSOR_SECRET": "short"})
    same = {**PRODUCTION, "AUDIT_JWT_SECRET": SECRET, "AUDIT_CURSOR_SECRET": SECRET}
    with pytest.raises(ConfigError, match="differ"):
        Settings.from_env(same)


@pytest.mark.parametrize("bind", ["0.0.0.0:8080", "[::]:8080", "10.1.2.3:80", "api.example:80"])
def test_the_dev_secret_is_refused_beyond_loopback(bind: str) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        Settings.from_env({"AUDIT_API_BIND": bind})
    with pytest.raises(ConfigError, match="loopback"):
        Settings.from_env({"AUDIT_API_BIND": bind, "AUDIT_JWT_SECRET": DEV_JWT_SECRET})
    # With a real secret, any bind is fine.
    assert Settings.from_env({"AUDIT_API_BIND": bind, "AUDIT_JWT_SECRET": SECRET}).bind == bind


@pytest.mark.parametrize("bind", ["127.0.0.1:8080", "[::1]:8080", "localhost:9000", "127.0.0.2:1"])
def test_the_dev_secret_is_accepted_on_loopback(bind: str) -> None:
    assert Settings.from_env({"AUDIT_API_BIND": bind}).uses_dev_secret


def test_no_repr_shows_a_secret(rsa_keys: tuple[bytes, str]) -> None:
    secrets = {
        "AUDIT_JWT_SECRET": "jwt-secret-value-0123456789abcdef0123",
        "AUDIT_CURSOR_SECRET": "cursor-secret-value-0123456789abcdef",
        "ELASTICSEARCH_API_KEY": "es-api-key-value",
        "ELASTICSEARCH_PASSWORD": "es-password-value",
        "KAFKA_SASL_PASSWORD": "kafka-password-value",
    }
    env = {
        **PRODUCTION,
        **secrets,
        "ELASTICSEARCH_USERNAME": "elastic",
        "KAFKA_SASL_USERNAME": "svc",
    }
    settings = Settings.from_env(env)
    for text in (repr(settings), str(settings), f"{settings!r}"):
        for name, value in secrets.items():
            assert value not in text, f"{name} appears in the settings' repr"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AUDIT_API_WORKERS", "many"),
        ("AUDIT_API_WORKERS", "0"),
        ("AUDIT_API_THREADS", "-1"),
        ("AUDIT_API_TIMEOUT", "1.5"),
        ("AUDIT_JWT_LEEWAY_SECONDS", "soon"),
        ("AUDIT_JWT_MAX_LIFETIME_SECONDS", "0"),
        ("AUDIT_CURSOR_TTL_SECONDS", "x"),
        ("AUDIT_API_PORT", "70000"),
        ("AUDIT_VIEWER_EMBED_ORIGINS", "https://portal.example/path"),
        ("AUDIT_VIEWER_EMBED_ORIGINS", "*"),
    ],
)
def test_a_bad_number_or_origin_is_a_config_error_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_embed_origins_are_read() -> None:
    settings = Settings.from_env(
        {"AUDIT_VIEWER_EMBED_ORIGINS": "https://portal.example, http://localhost:3000/"}
    )
    assert settings.viewer_embed_origins == ("https://portal.example", "http://localhost:3000")
