"""The store decodes Elasticsearch's JSON replies with msgspec: the same values as the
standard library's decoder (integers beyond 64 bits included), its fallback for the rest."""

from __future__ import annotations

import json
import math

from elasticsearch import Elasticsearch
from elasticsearch.serializer import JsonSerializer

from api.store import ElasticsearchStore, _FastReplies

REPLY = (
    b'{"hits":{"hits":[{"_source":{"audit":{"metadata":{"big":123456789012345678901234567890,'
    b'"neg":-18446744073709551617,"f":1.5e16,"t":"Chlo\\u00e9 \\u2014 x","n":null,"b":true}}},'
    b'"sort":[1764633600000,"e-1"]}]}}'
)


def test_replies_decode_to_what_the_standard_decoder_gives() -> None:
    assert _FastReplies().loads(REPLY) == json.loads(REPLY)
    big = _FastReplies().loads(REPLY)["hits"]["hits"][0]["_source"]["audit"]["metadata"]["big"]
    assert big == 123456789012345678901234567890
    assert isinstance(big, int)


def test_what_the_fast_decoder_refuses_goes_to_the_standard_one() -> None:
    assert math.isnan(_FastReplies().loads(b"[NaN]")[0])
    assert _FastReplies().loads(b'"\\ud800"') == "\ud800"


def test_the_store_gives_its_client_the_fast_decoder_for_both_json_types() -> None:
    client = Elasticsearch("http://127.0.0.1:1")
    ElasticsearchStore(client, "logs")
    table = client.transport.serializers.serializers
    assert isinstance(table["application/json"], _FastReplies)
    assert isinstance(table["application/vnd.elasticsearch+json"], _FastReplies)
    assert table["application/vnd.elasticsearch+json"].mimetype == (
        "application/vnd.elasticsearch+json"
    )


def test_a_serializer_the_caller_chose_is_kept() -> None:
    class Mine(JsonSerializer):
        pass

    client = Elasticsearch("http://127.0.0.1:1", serializer=Mine())
    ElasticsearchStore(client, "logs")
    assert type(client.transport.serializers.serializers["application/json"]) is Mine
