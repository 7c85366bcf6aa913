"""`/docs`: the API reference as plain server-rendered HTML, generated from the same
OpenAPI document as `/openapi.json`. It needs no JavaScript and no CDN, so it works on an
offline laptop; the interactive Swagger UI (`/docs/swagger`) loads its assets from a CDN."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, render_template_string

bp = Blueprint("docs", __name__)

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ info.title }} — API reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font:13px ui-monospace,monospace;background:#f4f4f4;padding:.1rem .3rem}
pre{padding:.6rem;white-space:pre-wrap}
h2{border-top:1px solid #ddd;padding-top:1rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
.method{font-weight:bold;color:#05a}
</style></head><body>
<h1>{{ info.title }} <small>{{ info.version }}</small></h1>
<pre>{{ info.description }}</pre>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> ·
interactive: <a href="/docs/swagger">Swagger UI</a> (loads from a CDN)</p>
{% for method, path, op, parameters in operations %}
<h2><span class="method">{{ method|upper }}</span> <code>{{ path }}</code></h2>
<p>{{ op.summary or "" }}</p>
{% if op.description %}<pre>{{ op.description }}</pre>{% endif %}
<p>{% if op.security == [] %}No token needed.{% else %}Needs <code>Authorization: Bearer
&lt;JWT&gt;</code>.{% endif %}</p>
{% if parameters %}<table><tr><th>parameter</th><th>in</th><th>type</th>
<th>description</th></tr>
{% for p in parameters %}<tr><td><code>{{ p.name }}</code>{% if p.required %} *{% endif %}
</td><td>{{ p.in }}</td><td>{{ describe(p.schema) }}</td><td>{{ p.description or "" }}</td>
</tr>{% endfor %}</table>{% endif %}
<table><tr><th>status</th><th>meaning</th></tr>
{% for status, response in op["responses"].items() %}<tr><td>{{ status }}</td>
<td>{{ response.description or "" }}</td></tr>{% endfor %}</table>
{% endfor %}
</body></html>"""


def describe(schema: dict[str, Any] | None) -> str:
    """A one-line summary of a parameter's JSON schema (type, enum, bounds)."""
    if not schema:
        return ""
    if schema.get("type") == "array":
        return f"repeatable {describe(schema.get('items'))}"
    parts = [str(schema.get("format") or schema.get("type", ""))]
    if "enum" in schema:
        parts.append("one of " + ", ".join(map(str, schema["enum"])))
    for key, label in (("minimum", "≥"), ("maximum", "≤"), ("maxLength", "length ≤")):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    if "default" in schema:
        parts.append(f"default {schema['default']}")
    if "pattern" in schema:
        parts.append(f"pattern {schema['pattern']}")
    return "; ".join(part for part in parts if part)


HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], list[Any]]]:
    """(method, path, operation, parameters) in document order; path-level parameters
    (such as `log_id`) are listed with each operation of the path."""
    result = []
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method in HTTP_METHODS:
            if method in item:
                operation = item[method]
                # An operation's own parameter overrides the path's one of that name.
                merged = {(p["in"], p["name"]): p for p in shared}
                merged.update({(p["in"], p["name"]): p for p in operation.get("parameters", [])})
                result.append((method, path, operation, list(merged.values())))
    return result


@bp.get("/docs")
def reference() -> Response:
    # flask-smorest's registry of Apis, by config prefix (this app has one, unprefixed);
    # `current_api` only resolves inside flask-smorest's own blueprints.
    spec = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    html = render_template_string(
        PAGE, info=spec["info"], operations=operations(spec), describe=describe
    )
    response = Response(html, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
