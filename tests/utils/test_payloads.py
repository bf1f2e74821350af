from __future__ import annotations

import pytest

from airflow_provider.exceptions import InvalidInputError
from airflow_provider.utils.payloads import JsonShapeCheck, StreamingBody


def _check(*chunks: bytes) -> None:
    c = JsonShapeCheck("input x")
    for chunk in chunks:
        c.feed(chunk)
    c.finish()


@pytest.mark.parametrize(
    "chunks", [(b'{"a": 1}',), (b"  \n[1,", b"2]\n  "), (b"\xef\xbb\xbf{", b"}"), (b"{", b"", b"}")]
)
def test_plausible_json(chunks):
    _check(*chunks)


@pytest.mark.parametrize(
    ("chunks", "match"),
    [
        ((b"a,b,c\n1,2,3\n",), "starts with"),
        ((b'{"a": [1, 2',), "truncated"),
        ((b"   ",), "empty"),
        ((b"",), "empty"),
    ],
)
def test_obviously_wrong_json(chunks, match):
    with pytest.raises(InvalidInputError, match=match):
        _check(*chunks)


def test_streaming_body_has_length_and_detects_size_changes():
    body = StreamingBody(iter([b"ab", b"cd"]), 4, "x")
    assert len(body) == 4 and b"".join(body) == b"abcd"
    with pytest.raises(InvalidInputError, match="shrank"):
        b"".join(StreamingBody(iter([b"ab"]), 4, "x"))
    with pytest.raises(InvalidInputError, match="grew"):
        b"".join(StreamingBody(iter([b"abcdef"]), 4, "x"))
