"""Mint development tokens (HS256) for `make run`, the tests and manual calls.

python -m api.devtoken --partner p-100 --role owner
python -m api.devtoken --partner p-100 --role admin --org org-7 --org org-8
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import jwt

from api.settings import ConfigError, Settings


def mint_token(
    secret: str,
    sub: str = "dev-user",
    partner_id: str = "p-100",
    role: str = "owner",
    org_ids: Sequence[str] = (),
    ttl: int = 3600,
    name: str | None = "Dev User",
) -> str:
    """An HS256 token with the claims the API reads; `ttl` seconds (negative: expired)."""
    now = int(time.time())
    claims = {
        "sub": sub,
        "partner_id": partner_id,
        "role": role,
        "org_ids": list(org_ids),
        "iat": now,
        "exp": now + ttl,
    }
    if name is not None:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm="HS256")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sub", default="dev-user")
    parser.add_argument("--name", default="Dev User")
    parser.add_argument("--partner", default="p-100")
    parser.add_argument("--role", default="owner")
    parser.add_argument("--org", action="append", default=[], help="repeatable")
    parser.add_argument("--ttl", type=int, default=12 * 3600, help="seconds")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        parser.exit(2, f"{parser.prog}: configuration error: {error}\n")
    if not settings.jwt_secret:
        parser.error("AUDIT_JWT_SECRET is not set (RS256-only deployments mint elsewhere)")
    print(
        mint_token(
            settings.jwt_secret, args.sub, args.partner, args.role, args.org, args.ttl, args.name
        )
    )


if __name__ == "__main__":
    main()
