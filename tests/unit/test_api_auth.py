"""Token verification and settings: what is a 401, what is a 403, what refuses to start."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from api.auth import AuthError, Caller, authenticate, bearer_token, decode_token
from api.devtoken import mint_token
from api.settings import DEV_JWT_SECRET, ConfigError, Settings

SECRET = "unit-test-secret-of-at-least-thirty-two-bytes"
SETTINGS = Settings(jwt_secret=SECRET)


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


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


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
    assert status_of(jwt.encode(claims(exp=int(time.time()) - 5), SECRET, "HS256")) == 401


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
    settings = Settings(jwt_secret=None, jwt_public_key=public)
    token = jwt.encode(claims(), private, algorithm="RS256")
    assert decode_token(token, settings).sub == "u-1"
    # Without the public key configured, RS256 is not accepted at all.
    assert status_of(token, SETTINGS) == 401


def test_hs256_signed_with_the_public_key_is_rejected(rsa_keys: tuple[bytes, str]) -> None:
    """Algorithm confusion: the public key (known to all) used as an HMAC secret."""
    _, public = rsa_keys
    settings = Settings(jwt_secret=None, jwt_public_key=public)
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
        authenticate(header, SETTINGS)
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


def test_production_with_only_a_public_key(rsa_keys: tuple[bytes, str]) -> None:
    settings = Settings.from_env({"AUDIT_ENV": "production", "AUDIT_JWT_PUBLIC_KEY": rsa_keys[1]})
    assert settings.jwt_algorithms == ("RS256",)
    assert settings.jwt_secret is None


def test_public_key_may_be_a_path(tmp_path: Any, rsa_keys: tuple[bytes, str]) -> None:
    path = tmp_path / "key.pem"
    path.write_text(rsa_keys[1])
    settings = Settings.from_env({"AUDIT_JWT_PUBLIC_KEY": str(path)})
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
            "AUDIT_CURSOR_SECRET": "cursor",
            "ELASTICSEARCH_URL": "https://es:9200",
            "ELASTICSEARCH_USERNAME": "elastic",
            "ELASTICSEARCH_PASSWORD": "pw",
            "ELASTICSEARCH_CA_CERTS": "/ca.pem",
            "AUDIT_INDEX_PREFIX": "x",
            "KAFKA_BOOTSTRAP_SERVERS": "k:9092",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "AUDIT_EVENTS_TOPIC": "t",
            "AUDIT_API_PORT": "9000",
        }
    )
    assert settings.cursor_secret == b"cursor"
    assert settings.elasticsearch_kwargs() == {
        "hosts": ["https://es:9200"],
        "basic_auth": ("elastic", "pw"),
        "ca_certs": "/ca.pem",
    }
    assert settings.kafka_config == {"security.protocol": "SASL_SSL"}
    assert (settings.index_prefix, settings.events_topic, settings.api_port) == ("x", "t", 9000)
