"""Keys never collide for different inputs; values round-trip compactly."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from nomosx.cache.codec import (
    decode_json,
    decode_model,
    decode_vector,
    encode_json,
    encode_model,
    encode_vector,
)
from nomosx.cache.keys import canonical_json, make_key
from nomosx.llm.cache import cache_key
from nomosx.llm.types import LLMRequest, LLMResponse, Message, ResponseFormat, TokenUsage

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(json_values, json_values)
def test_different_payloads_never_share_a_key(a: object, b: object) -> None:
    if canonical_json(a) != canonical_json(b):
        assert make_key(a) != make_key(b)
    else:
        assert make_key(a) == make_key(b)


def test_key_shape_and_schema_version() -> None:
    key = make_key({"b": 1, "a": [1, 2]})
    assert key == make_key({"a": [1, 2], "b": 1})  # order of keys does not matter
    assert key.startswith("v1:") and len(key) == 3 + 64
    assert make_key({"a": 1}, schema=2) != make_key({"a": 1})
    assert make_key(1) != make_key(1.5)
    assert make_key("1") != make_key(1)


requests = st.builds(
    LLMRequest,
    messages=st.lists(
        st.builds(
            Message,
            role=st.sampled_from(["system", "user", "assistant"]),
            content=st.text(max_size=30),
        ),
        min_size=1,
        max_size=3,
    ),
    temperature=st.sampled_from([0.0, 0.3, 1.0]),
    max_tokens=st.none() | st.integers(min_value=1, max_value=4096),
    response_format=st.none()
    | st.builds(ResponseFormat, type=st.sampled_from(["text", "json_object", "json_schema"])),
)


@given(
    requests,
    requests,
    st.sampled_from(["openai:a", "anthropic:b"]),
    st.sampled_from(["openai:a", "anthropic:b"]),
)
def test_llm_cache_keys_differ_when_any_parameter_differs(
    a: LLMRequest, b: LLMRequest, target_a: str, target_b: str
) -> None:
    same = (
        target_a == target_b
        and [(m.role, m.content) for m in a.messages] == [(m.role, m.content) for m in b.messages]
        and a.temperature == b.temperature
        and a.max_tokens == b.max_tokens
        and a.response_format == b.response_format
    )
    assert (cache_key(a, target_a) == cache_key(b, target_b)) == same


@given(st.lists(st.floats(width=32, allow_nan=False), max_size=400))
def test_vectors_round_trip_as_packed_float32(values: list[float]) -> None:
    blob = encode_vector(values)
    assert len(blob) == 4 * len(values)
    assert np.array_equal(decode_vector(blob), np.asarray(values, dtype=np.float32))


def test_an_embedding_is_far_smaller_packed_than_as_json() -> None:
    import json

    vector = np.random.default_rng(1).standard_normal(384).astype(np.float32)
    assert len(encode_vector(vector)) == 1536
    assert len(json.dumps(vector.tolist())) > 4 * 1536


def test_models_round_trip_and_large_json_is_compressed() -> None:
    response = LLMResponse(
        content="word " * 2000,
        provider="openai",
        model="m",
        usage=TokenUsage(input_tokens=5),
        cost_usd=0.25,
    )
    blob = encode_model(response)
    assert blob[:1] == b"z" and len(blob) < 1000
    assert decode_model(blob, LLMResponse) == response
    small = encode_json(b'{"a":1}')
    assert small == b'j{"a":1}' and decode_json(small) == b'{"a":1}'
    assert math.isclose(decode_model(encode_model(response), LLMResponse).cost_usd or 0, 0.25)
