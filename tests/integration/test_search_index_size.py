"""The index-size cost of the search representation, measured on demo documents.

Measured with the ``_disk_usage`` API (per field, after merging to one segment), which is
exact for the fields involved and unaffected by the transient ``_recovery_source`` copy that
``_source.excludes`` keeps until retention leases move on. Last measured (5000 demo docs,
Elasticsearch 8.19): grams ~257 B/doc + prefixes ~23 B/doc, i.e. ~280 B/doc on top of a
~611 B/doc steady-state document (~+46%); keeping the grams in ``_source`` as well would
have cost ~770 B/doc.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.demo import generate_events
from schemas.document import build_document
from schemas.event import validate_event
from schemas.index_template import index_template

DOCS = 2000
# A guard against accidental blow-ups (4-grams, storing grams, keeping whitespace grams).
MAX_SEARCH_BYTES_PER_DOC = 450


@pytest.mark.filterwarnings("ignore:This API is in technical preview")
def test_search_representation_cost_per_document(
    es: Any, unique_name: Callable[[str], str]
) -> None:
    index = unique_name("search-size")
    body = index_template("unused")["template"]
    es.indices.create(index=index, settings=body["settings"], mappings=body["mappings"])
    now = datetime.now(UTC)
    operations: list[dict[str, Any]] = []
    for event in generate_events(DOCS, seed=1, now=now):
        document = build_document(validate_event(event), now)
        operations += [{"create": {"_index": index, "_id": event["event_id"]}}, document]
    assert not es.bulk(operations=operations, refresh=True)["errors"]
    es.indices.forcemerge(index=index, max_num_segments=1)

    usage = es.indices.disk_usage(index=index, run_expensive_tasks=True)[index]
    fields = usage["fields"]
    search = sum(fields[f]["total_in_bytes"] for f in fields if f.startswith("audit.search."))
    source = fields["_source"]["total_in_bytes"]
    per_doc = search / DOCS
    print(f"\nsearch representation: {per_doc:.0f} B/doc; _source: {source / DOCS:.0f} B/doc")
    assert 0 < per_doc < MAX_SEARCH_BYTES_PER_DOC
    # The grams are indexed, not stored: _source must not carry them.
    hit = es.search(index=index, size=1)["hits"]["hits"][0]["_source"]
    assert "search" not in hit["audit"]
