"""Bearer-token authentication: a JWT in, a `Caller` (or a 401/403) out."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Any

import jwt

from api.settings import Settings
from schemas.event import ACTOR_ROLES

# The partner roles of SPEC §2/§4 (the same list the event contract allows for actors).
KNOWN_ROLES = frozenset(ACTOR_ROLES)

# Claims without which a token says nothing usable about the caller.
REQUIRED_CLAIMS = ("exp", "sub", "partner_id", "role")


class AuthError(Exception):
    """Authentication or authorization failed; `status` is 401 or 403."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Caller:
    sub: str
    name: str | None
    partner_id: str
    role: str
    org_ids: tuple[str, ...] = ()


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or a 401."""
    if not authorization:
        raise AuthError(401, "missing Authorization: Bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "Authorization header must be 'Bearer <token>'")
    return token.strip()


def decode_token(token: str, settings: Settings, peer: str | None = None) -> Caller:
    """Verify `token` and return its caller.

    The key is chosen from the algorithms this deployment configured, never from the
    token: the header's `alg` only selects among them, so `none` or an HS256 token
    signed with the RS256 public key as an HMAC secret are rejected. `peer` is the
    client's address: the development secret (it is in the repository) only opens the
    API to loopback clients, whatever the bind.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AuthError(401, "malformed token") from None
    algorithm = header.get("alg")
    if algorithm not in settings.jwt_algorithms:
        raise AuthError(401, "token algorithm not accepted")
    if algorithm == "HS256" and settings.uses_dev_secret and not _is_loopback(peer):
        raise AuthError(401, "the development token secret is accepted from loopback only")
    key = (settings.jwt_secret if algorithm == "HS256" else settings.jwt_public_key) or ""
    claims = _verified_claims(token, key, algorithm, settings)
    _check_lifetime(claims, settings)
    return _caller_from_claims(claims)


def _verified_claims(token: str, key: str, algorithm: str, settings: Settings) -> dict[str, Any]:
    required = [*REQUIRED_CLAIMS]
    if settings.jwt_audience:
        required.append("aud")
    if settings.jwt_issuer:
        required.append("iss")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_s,
            options={"require": required, "verify_aud": bool(settings.jwt_audience)},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError(401, "token expired") from None
    except jwt.ImmatureSignatureError:
        raise AuthError(401, "token not valid yet") from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(401, f"token lacks the {exc.claim!r} claim") from None
    except jwt.InvalidAudienceError:
        raise AuthError(401, "token issued for another audience") from None
    except jwt.InvalidIssuerError:
        raise AuthError(401, "token from another issuer") from None
    except jwt.PyJWTError:
        raise AuthError(401, "invalid token") from None
    return claims


def _check_lifetime(claims: dict[str, Any], settings: Settings) -> None:
    """Refuse a token valid for longer than `jwt_max_lifetime_s`: a leaked long-lived
    token would open the audit log for as long as it says."""
    expires = _numeric_claim(claims, "exp")
    issued = _numeric_claim(claims, "iat") if "iat" in claims else time.time()
    if expires - issued > settings.jwt_max_lifetime_s + settings.jwt_leeway_s:
        raise AuthError(
            401, f"token lifetime exceeds the allowed {settings.jwt_max_lifetime_s} seconds"
        )


def _numeric_claim(claims: dict[str, Any], name: str) -> float:
    # PyJWT accepts "123" and true (it calls int()); a NumericDate is a JSON number.
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthError(401, f"token claim {name!r} must be a number")
    return float(value)


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def _caller_from_claims(claims: dict[str, Any]) -> Caller:
    sub, partner_id, role = claims.get("sub"), claims.get("partner_id"), claims.get("role")
    if not isinstance(sub, str) or not sub:
        raise AuthError(401, "token claim 'sub' must be a non-empty string")
    if not isinstance(partner_id, str) or not partner_id:
        raise AuthError(401, "token claim 'partner_id' must be a non-empty string")
    if not isinstance(role, str):
        raise AuthError(401, "token claim 'role' must be a string")
    org_ids = claims.get("org_ids", [])
    if not isinstance(org_ids, list) or not all(isinstance(o, str) for o in org_ids):
        raise AuthError(401, "token claim 'org_ids' must be a list of strings")
    name = claims.get("name")
    # A valid token for a role this product does not know is an authorization failure,
    # not an authentication one: the caller is who they say, they just may not look.
    if role not in KNOWN_ROLES:
        raise AuthError(403, "role not allowed to read audit logs")
    return Caller(
        sub=sub,
        name=name if isinstance(name, str) else None,
        partner_id=partner_id,
        role=role,
        org_ids=tuple(dict.fromkeys(org_ids)),
    )


def authenticate(authorization: str | None, settings: Settings, peer: str | None) -> Caller:
    """Header value (and the client's address) -> Caller; raises `AuthError` with the
    status to answer."""
    return decode_token(bearer_token(authorization), settings, peer)
