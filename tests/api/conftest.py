"""Fixtures for the HTTP API tests: a real HTTP client (http.client) against the broker
subprocess from tests/conftest.py, with the base config's credentials (admin / test-secret)."""

from __future__ import annotations

import base64
import http.client
import json
import time
from dataclasses import dataclass

import pytest

from tests.conftest import TIMEOUT

PASSWORD = "test-secret"  # tests/conftest.py BASE_CONFIG


def basic(username: str = "admin", password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@dataclass
class Reply:
    status: int
    headers: object
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


class Api:
    """Requests to one broker's HTTP server; authenticated unless `authorization` says otherwise."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(self, method: str, path: str, body=None, authorization: str | None = "default",
                headers: dict | None = None, raw: bytes | None = None) -> Reply:
        sent = dict(headers or {})
        if authorization == "default":
            sent["Authorization"] = basic()
        elif authorization is not None:
            sent["Authorization"] = authorization
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            connection.close()

    def get(self, path: str, **kwargs) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body=None, **kwargs) -> Reply:
        return self.request("POST", path, body, **kwargs)

    def delete(self, path: str, **kwargs) -> Reply:
        return self.request("DELETE", path, **kwargs)

    def ok(self, method: str, path: str, body=None) -> dict:
        """The JSON of a request that must succeed (200, code 0)."""
        reply = self.request(method, path, body)
        assert reply.status == 200, (reply.status, reply.body)
        document = reply.json
        assert document["code"] == 0, document
        return document


@pytest.fixture
def api(broker) -> Api:
    return Api(broker.http_port)


@pytest.fixture
def api_for():
    """`api_for(broker)`: an Api for a broker started with broker_factory."""
    return lambda broker: Api(broker.http_port)


def eventually(predicate, timeout: float = TIMEOUT) -> bool:
    """Poll `predicate` until it holds: what the API shows after a client's socket event has
    no event of its own to await (the broker handles the socket on its own schedule)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def connect(mqtt, broker):
    """`connect(client_id, username=None, will=None, **MqttClient args)`: a connected paho client."""

    def make(client_id: str, username: str | None = None, will=None, port: int | None = None, **kwargs):
        client = mqtt(port or broker.port, client_id, **kwargs)
        if username is not None:
            client.client.username_pw_set(username)
        client.connack = client.connect(will=will)
        return client

    return make
