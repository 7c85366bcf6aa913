"""What every `/api/` blueprint shares: bearer authentication before anything else runs,
and the documented error responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request
from flask_smorest import Blueprint

from api.auth import Caller, authenticate
from api.collaborators import services
from api.models import Error

F = TypeVar("F", bound=Callable[..., Any])


def protect(blueprint: Blueprint) -> None:
    """Authenticate every request of `blueprint` before its arguments are even parsed, so
    an anonymous caller learns nothing (not even which parameters are wrong)."""

    @blueprint.before_request
    def _authenticate() -> None:
        g.caller = authenticate(
            request.headers.get("Authorization"), services().settings, request.remote_addr
        )


def current_caller() -> Caller:
    caller: Caller = g.caller
    return caller


def auth_responses(blueprint: Blueprint) -> Callable[[F], F]:
    """Document the 401 and 403 every protected operation can answer."""

    def decorate(view: F) -> F:
        view = blueprint.alt_response(401, schema=Error, description="No, bad or expired token")(
            view
        )
        result: F = blueprint.alt_response(403, schema=Error, description="Role not allowed")(view)
        return result

    return decorate
