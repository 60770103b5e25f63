"""The upgrade decision in memory (sans-I/O `Handshake`): bytes in, Accepted or Refused out."""

import base64

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

from appliance.listeners.websocket import Accepted, Handshake, Refused


def client_request(**kwargs) -> tuple[WSConnection, bytes]:
    client = WSConnection(ConnectionType.CLIENT)
    return client, client.send(Request(host="broker.local", target=kwargs.pop("target", "/mqtt"), **kwargs))


def test_a_request_fed_byte_by_byte_is_accepted_and_the_client_agrees():
    client, request = client_request(subprotocols=["mqtt"])
    handshake = Handshake("/mqtt")
    results = [handshake.feed(request[i:i + 1]) for i in range(len(request))]
    assert results[:-1] == [None] * (len(request) - 1)
    accepted = results[-1]
    assert isinstance(accepted, Accepted) and accepted.subprotocol == "mqtt" and accepted.trailing == b""
    client.receive_data(accepted.response)
    event = next(client.events())
    assert isinstance(event, AcceptConnection) and event.subprotocol == "mqtt"


def test_bytes_sent_after_the_request_are_kept_for_the_websocket():
    _, request = client_request(subprotocols=["mqtt"])
    accepted = Handshake("/mqtt").feed(request + b"\x82\x80frame")
    assert accepted.trailing == b"\x82\x80frame"


def test_query_string_is_not_part_of_the_path():
    _, request = client_request(target="/mqtt?token=abc")
    assert isinstance(Handshake("/mqtt").feed(request), Accepted)


@pytest.mark.parametrize("kwargs, status, reason", [
    ({"target": "/other"}, 404, "path"),
    ({"subprotocols": ["wamp"]}, 400, "subprotocol"),
    ({"extra_headers": [(b"Origin", b"https://evil.example")]}, 403, "origin"),
])
def test_refusals_say_why(kwargs, status, reason):
    _, request = client_request(**kwargs)
    with pytest.raises(Refused) as refused:
        Handshake("/mqtt", allowed_origins=("https://dash.example",)).feed(request)
    assert (refused.value.status, refused.value.reason) == (status, reason)
    head = refused.value.response().split(b"\r\n", 1)[0]
    assert head.startswith(b"HTTP/1.1 %d " % status)


def test_an_allowed_origin_matches_without_case_or_trailing_slash():
    _, request = client_request(extra_headers=[(b"Origin", b"HTTPS://Dash.Example/")])
    assert isinstance(Handshake("/mqtt", ("https://dash.example",)).feed(request), Accepted)


def test_a_key_that_is_not_16_bytes_is_refused():
    key = base64.b64encode(b"short").decode()
    request = (f"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    with pytest.raises(Refused) as refused:
        Handshake("/mqtt").feed(request)
    assert refused.value.status == 400


def test_eof_before_the_request_ends_is_refused():
    with pytest.raises(Refused) as refused:
        Handshake("/mqtt").feed(b"")
    assert refused.value.reason == "incomplete"
