"""The partner's Audit Log page: `/` and its assets, read from the package data in
`api/static/`.

The page itself is public HTML (it holds no data); every data call it makes goes to
`/api/v1/...` with the caller's bearer token, so authentication stays in one place.
Assets are served from an explicit list, never from a user-supplied path.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from flask import Blueprint, Response, abort, request

bp = Blueprint("viewer", __name__)

ASSETS = {
    "viewer.css": "text/css; charset=utf-8",
    "viewer.js": "text/javascript; charset=utf-8",
}

# The page loads nothing but its own assets and talks only to its own origin. No
# `frame-ancestors`: the partner portal may embed the page in an iframe (docs/viewer.md);
# an embedding page can hand the viewer its own token, never read the viewer's.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
    )
)


@cache
def _read(name: str) -> bytes:
    # Package data, so the page works from a wheel or an image as well as from a checkout.
    return resources.files("api").joinpath("static", name).read_bytes()


def _serve(name: str, content_type: str, max_age: int) -> Response:
    response = Response(_read(name), content_type=content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    # Short caching plus an ETag: a new release is picked up within minutes, and a reload
    # in between costs a 304.
    response.cache_control.public = True
    response.cache_control.max_age = max_age
    response.add_etag()
    response.make_conditional(request)  # 304 for a matching If-None-Match; works in place
    return response


@bp.get("/")
def index() -> Response:
    response = _serve("index.html", "text/html; charset=utf-8", max_age=0)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@bp.get("/assets/<name>")
def asset(name: str) -> Response:
    content_type = ASSETS.get(name)
    if content_type is None:
        abort(404)
    return _serve(name, content_type, max_age=300)
