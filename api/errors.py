"""JSON error responses for everything the API can refuse, so no client ever parses HTML.

The body has flask-smorest's shape (`code`, `status`, `message`, `errors`), with `errors`
naming the parameter for bad input: `{"query": {"cursor": ["..."]}}`.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, jsonify, request

from api.auth import AuthError
from api.cursor import CursorError
from api.integrity import IntegrityUnavailable
from api.store import SearchRejected, StoreUnavailable
from api.use_cases import DownloadNotRecorded

# The parameters a refused search is blamed on, most specific first: a cursor carries
# values the client could have kept from another deployment; then the free text.
_BLAMED_PARAMETERS = ("cursor", "q")

log = logging.getLogger(__name__)


def error_response(
    status: int, message: str, errors: dict[str, Any] | None = None
) -> tuple[Response, int]:
    body: dict[str, Any] = {"code": status, "status": HTTPStatus(status).phrase, "message": message}
    if errors:
        body["errors"] = errors
    return jsonify(body), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AuthError)
    def _auth(exc: AuthError) -> tuple[Response, int]:
        response, status = error_response(exc.status, exc.message)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="audit-logs"'
        return response, status

    @app.errorhandler(CursorError)
    def _cursor(exc: CursorError) -> tuple[Response, int]:
        return error_response(400, "invalid cursor", {"query": {"cursor": [str(exc)]}})

    @app.errorhandler(StoreUnavailable)
    def _store(exc: StoreUnavailable) -> tuple[Response, int]:
        log.warning("search backend unavailable: %s", exc)
        response, status = error_response(503, "search backend unavailable, retry shortly")
        response.headers["Retry-After"] = "5"
        return response, status

    @app.errorhandler(SearchRejected)
    def _rejected(exc: SearchRejected) -> tuple[Response, int]:
        log.warning("Elasticsearch refused a search: %s", exc)
        given = [name for name in _BLAMED_PARAMETERS if request.args.get(name)]
        blamed = given[:1] or [name for name in request.args if name != "format"] or ["query"]
        message = "the search backend refused this request; change or drop this parameter"
        return error_response(400, "invalid request", {"query": {n: [message] for n in blamed}})

    @app.errorhandler(IntegrityUnavailable)
    def _integrity(exc: IntegrityUnavailable) -> tuple[Response, int]:
        log.warning("integrity endpoint called without a public key: %s", exc)
        return error_response(503, "integrity digests cannot be checked here: no public key")

    @app.errorhandler(DownloadNotRecorded)
    def _download(exc: DownloadNotRecorded) -> tuple[Response, int]:
        log.error("export refused: download event not recorded: %s", exc.__cause__ or exc)
        return error_response(503, "the export could not be recorded in the audit log; retry")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        # HTTPExceptions (404, 405, 422, ...) are answered by flask-smorest's handler,
        # which Flask prefers as the more specific registration; this is the last resort.
        log.exception("unhandled error")
        return error_response(500, "internal error")
