"""Payload encodings: the spec's table, vector by vector, and plain text's UTF-8 handling."""

import json

import pytest

from appliance.webhook.encoding import PlainEncoder, encode_base62, encode_base64, payload_encoder

# (payload, plain, base64, base62) from the spec's table; None = see the plain tests below.
VECTORS = [
    (b"hello", "hello", "aGVsbG8=", "7tQLFHz"),
    (b"Hello World!", "Hello World!", "SGVsbG8gV29ybGQh", "T8dgcjRGkZ3aysdN"),
    (b"bin\0\xff\xfe\x01end", None, "YmluAP/+AWVuZA==", "2K2xsznink1qxI"),
    (b"ab\xff\xfe", None, "YWL//g==", "1mZaJC"),
    (b"", "", "", ""),
]


class Counts:
    utf8_replacements = 0


@pytest.mark.parametrize("payload, plain, b64, b62", VECTORS)
def test_base64_matches_the_spec_table(payload, plain, b64, b62):
    assert encode_base64(payload) == b64


@pytest.mark.parametrize("payload, plain, b64, b62", VECTORS)
def test_base62_matches_the_spec_table(payload, plain, b64, b62):
    assert encode_base62(payload) == b62


@pytest.mark.parametrize("payload, plain, b64, b62", [v for v in VECTORS if v[1] is not None])
def test_plain_utf8_payload_is_the_text_itself(payload, plain, b64, b62):
    assert PlainEncoder(Counts())(payload) == plain


def test_base62_keeps_each_leading_zero_byte_as_a_zero_digit():
    assert encode_base62(b"\0\0") == "00"
    assert encode_base62(b"\0\x01") == "01"
    assert encode_base62(b"\x01") == "1"


def test_plain_keeps_nul_and_replaces_each_invalid_sequence_counting_it():
    counts = Counts()
    encode = PlainEncoder(counts)
    text = encode(b"bin\0\xff\xfe\x01end")
    assert text == "bin\0\ufffd\ufffd\x01end"
    assert counts.utf8_replacements == 2
    assert encode(b"ab\xff\xfe") == "ab\ufffd\ufffd"
    assert counts.utf8_replacements == 4
    # the body stays valid JSON, NUL escaped
    assert json.dumps(text, ensure_ascii=False) == '"bin\\u0000\ufffd\ufffd\\u0001end"'


def test_encoding_names_are_case_insensitive_and_unknown_ones_refused():
    assert payload_encoder("BASE64", Counts())(b"hello") == "aGVsbG8="
    assert payload_encoder("Base62", Counts())(b"hello") == "7tQLFHz"
    with pytest.raises(ValueError, match="body.encoding"):
        payload_encoder("hex", Counts())
