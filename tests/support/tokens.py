"""The secrets and keys of the processes tests start (`api.devtoken.mint_token` mints tokens)."""

from __future__ import annotations

TEST_JWT_SECRET = "process-test-secret-0123456789abcdef0123"


def _test_signing_key() -> tuple[str, str]:
    """A fixed Ed25519 key for the workers tests start (private PEM, public PEM)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from schemas.integrity import private_pem, public_pem

    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    return private_pem(key), public_pem(key.public_key())


TEST_SIGNING_KEY, TEST_SIGNING_PUBLIC_KEY = _test_signing_key()
