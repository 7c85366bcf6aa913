"""The composable index template that owns the audit indices' settings and mapping.

Indices are ``{prefix}-YYYY.MM`` (see ``schemas.document.index_name``), read through the alias
``{prefix}``. The mapping is ``dynamic: strict`` so a document that drifts from
``build_document`` fails loudly instead of silently growing the mapping; the free-form parts
(``audit.metadata``, the old/new values of ``audit.changes``) are held in ways that can never
add fields. Only server-core features are used (SPEC §3).
"""

from __future__ import annotations

from typing import Any

from schemas.fields import (
    AUDIT,
    SEARCH,
    SEARCH_GRAMS,
    SEARCH_PREFIXES,
    SORT_ORDER,
    TIMESTAMP,
    last_key,
)

# 2: audit.fingerprint; documents addressed by document_id(partner_id, event_id).
# 3: index sort (@timestamp, event.id) descending, the version recorded in the mapping's
#    _meta. An index's sort is fixed at creation: indices of version 2 move to version 3 by
#    copy (`audit-log indices migrate`, schemas/migration.py).
TEMPLATE_VERSION = 3
# Above the built-in templates (priority 100 and below), so ours wins for its own pattern.
TEMPLATE_PRIORITY = 200
# Keyword terms over 32766 bytes are rejected by Lucene; longer free text stays in _source.
IGNORE_ABOVE = 1024

KEYWORD: dict[str, Any] = {"type": "keyword", "ignore_above": IGNORE_ABOVE}
# Free text users may want to match word by word in Kibana as well as filter on exactly.
KEYWORD_AND_TEXT: dict[str, Any] = {**KEYWORD, "fields": {"text": {"type": "text"}}}


#: The order list queries and exports ask for (api/query.py SORT): with the index sorted the
#: same way, a top-N page or a `search_after` page stops early in every segment instead of
#: visiting every match of the window.
INDEX_SORT = {
    "field": [name for name, _ in SORT_ORDER],
    "order": [order for _, order in SORT_ORDER],
}


def read_alias(prefix: str) -> str:
    return prefix


def template_name(prefix: str) -> str:
    return prefix


def _object(**properties: Any) -> dict[str, Any]:
    return {"properties": properties}


def _search_mapping() -> dict[str, Any]:
    return _object(
        **{
            # One array element per white-space chunk; the gap keeps phrases inside one chunk.
            last_key(SEARCH_GRAMS): {
                "type": "text",
                "analyzer": "standard",
                "norms": False,  # filter-only: no scoring, so no length norms
                "index_options": "positions",
                # match_phrase has slop 0, so any gap > 0 would do; 100 is the usual default.
                "position_increment_gap": 100,
            },
            last_key(SEARCH_PREFIXES): {
                "type": "keyword",
                "doc_values": False,
                "index_options": "docs",
            },
        }
    )


def _audit_mapping() -> dict[str, Any]:
    return _object(
        schema_version={"type": "short"},
        partner_id=KEYWORD,
        category=_object(code=KEYWORD, label=KEYWORD),
        activity=_object(code=KEYWORD, label=KEYWORD),
        actor=_object(type=KEYWORD, role=KEYWORD),
        source=_object(channel=KEYWORD),
        object=_object(type=KEYWORD, id=KEYWORD, name=KEYWORD_AND_TEXT),
        description_generated={"type": "boolean"},
        # old/new can be any JSON value: kept in _source, never mapped (dynamic false).
        changes={"type": "object", "dynamic": False, "properties": {"field": KEYWORD}},
        # Scalar values under arbitrary keys: one field in the mapping however many keys.
        metadata={"type": "flattened", "ignore_above": IGNORE_ABOVE},
        # Read back from _source to tell a redelivery from a reused id; never searched.
        fingerprint={"type": "keyword", "index": False, "doc_values": False},
        **{last_key(SEARCH): _search_mapping()},
    )


def _ecs_mapping() -> dict[str, Any]:
    return {
        TIMESTAMP: {"type": "date"},
        "ecs": _object(version=KEYWORD),
        "event": _object(
            id=KEYWORD,
            kind=KEYWORD,
            action=KEYWORD,
            outcome=KEYWORD,
            reason=KEYWORD,
            ingested={"type": "date"},
            dataset=KEYWORD,
        ),
        "message": {"type": "text"},
        "user": _object(id=KEYWORD, name=KEYWORD_AND_TEXT, email=KEYWORD, roles=KEYWORD),
        "organization": _object(id=KEYWORD, name=KEYWORD_AND_TEXT),
        "source": _object(ip={"type": "ip"}),
        "user_agent": _object(original=KEYWORD_AND_TEXT),
        "service": _object(name=KEYWORD),
        "http": _object(request=_object(id=KEYWORD)),
    }


def mappings() -> dict[str, Any]:
    return {
        "dynamic": "strict",
        # The search representation is derived data: indexed, but not stored in _source
        # (it is most of the document's size and means nothing to a reader; build_document
        # recomputes it from the rest of the document).
        "_source": {"excludes": [SEARCH]},
        "properties": {**_ecs_mapping(), AUDIT: _audit_mapping()},
    }


def index_template(
    prefix: str, *, shards: int = 1, replicas: int = 0, refresh_interval: str = "1s"
) -> dict[str, Any]:
    """Body for ``PUT _index_template/{template_name(prefix)}``.

    Its keys are all keyword arguments of the Elasticsearch client's ``put_index_template``
    too (no ``_meta``), so ``put_index_template(name=..., **index_template(prefix))`` works.
    """
    return {
        "index_patterns": [f"{prefix}-*"],
        "priority": TEMPLATE_PRIORITY,
        "version": TEMPLATE_VERSION,
        "template": {
            "settings": {
                "number_of_shards": shards,
                "number_of_replicas": replicas,
                "refresh_interval": refresh_interval,
                "sort": INDEX_SORT,
            },
            # The version an index was made from, for `audit-log indices migrate`.
            "mappings": {**mappings(), "_meta": {"template_version": TEMPLATE_VERSION}},
            "aliases": {read_alias(prefix): {}},
        },
    }


# --- the digests of schemas.integrity -------------------------------------------------------

DIGEST_INDEX_VERSION = 1


def digest_index(prefix: str) -> str:
    """One index of digests per deployment, outside the logs' `{prefix}-*` pattern (so the
    log template, the read alias and retention never touch it)."""
    return f"{prefix}_digests"


def digest_index_body() -> dict[str, Any]:
    """Settings and mapping of the digest index (``indices.create(index=..., **body)``)."""
    stored_only = {"type": "keyword", "index": False, "doc_values": False}
    return {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {
            "dynamic": "strict",
            "_meta": {"version": DIGEST_INDEX_VERSION},
            "properties": {
                "v": {"type": "short"},
                "partner_id": KEYWORD,
                "seq": {"type": "long"},
                "prev": stored_only,
                "created_at": {"type": "date"},
                "count": {"type": "integer"},
                "root": stored_only,
                "key_id": KEYWORD,
                "first_ingested": {"type": "date"},
                "last_ingested": {"type": "date"},
                "first_timestamp": {"type": "date"},
                "last_timestamp": {"type": "date"},
                "signature": stored_only,
                # Which logs a digest covers, to find the digest of one log (API, export).
                "entry_ids": KEYWORD,
                "entries": {"type": "object", "enabled": False},
            },
        },
    }
