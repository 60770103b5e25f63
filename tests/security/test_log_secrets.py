"""What the log says whatever its level: never a secret (a client's password, a token, a key
password, an Authorization value), and always where the broker listens."""

import urllib.parse
import urllib.request

import pytest

from auth_server import AuthServer
from security_helpers import connack
from tests.conftest import BASE_CONFIG

CLIENT_PASSWORD = "hunter2 is/secret"  # quoted differently in a query, a form and JSON
TOKEN = "Bearer tok-0123456789"


@pytest.fixture
def service():
    server = AuthServer()
    yield server
    server.close()


def forms(secret: str) -> list[str]:
    return [secret, urllib.parse.quote_plus(secret), urllib.parse.quote(secret, safe="")]


@pytest.mark.parametrize("method", ["get", "post"])
def test_debug_log_shows_the_auth_request_but_no_password_or_token(broker_factory, service, method):
    broker = broker_factory(
        "log { level = debug }\n"
        f'auth {{\n allow_anonymous = false\n http_auth {{\n'
        f'  auth_req {{ url = "{service.url}/auth", method = {method}, headers.authorization = "{TOKEN}",'
        f' params = {{username = "%u", password = "%P", pw = "%P"}} }}\n }}\n}}\n')
    code, _ = connack(broker.port, "dev-1", "alice", CLIENT_PASSWORD.encode())
    assert code == 0x86  # asked, and refused: the request was made with the password
    assert service.requests[0][1]["pw"] == CLIENT_PASSWORD
    request = urllib.request.Request(f"http://127.0.0.1:{broker.http_port}/api/v4/metrics",
                                     headers={"Authorization": "Basic YWRtaW46dGVzdC1zZWNyZXQ="})
    urllib.request.urlopen(request, timeout=10).read()
    broker.stop()
    logs = broker.logs()
    assert f'"{method.upper()} /auth' in logs  # urllib3's debug line is there, cleaned
    for secret in forms(CLIENT_PASSWORD) + forms(TOKEN) + ["tok-0123456789", "test-secret",
                                                           "YWRtaW46dGVzdC1zZWNyZXQ="]:
        assert secret not in logs, f"{secret!r} in the log:\n{logs}"


@pytest.mark.parametrize("level", [None, "warn", "error", "fatal"])
def test_where_it_listens_is_logged_at_every_level(broker_factory, level):
    log_block = "log { to = [console]" + (f", level = {level}" if level else "") + " }\n"
    base = BASE_CONFIG.replace("log { to = [console], level = info }\n", log_block)
    assert "level = info" not in base
    broker = broker_factory('listeners.tcp.second { bind = "127.0.0.1:0" }\n', base=base, listeners=2)
    # broker_factory found both MQTT listeners and the HTTP server in these lines.
    assert set(broker.mqtt_ports) == {"tcp", "tcp.second"} and broker.http_port
    assert broker.logs().count(" listening on 127.0.0.1:") == 3


@pytest.mark.parametrize("line", [
    'http://h:80 "GET /auth?u=a&password=p4ss%21word&pin=p4ss%21word HTTP/1.1" 403 0',
    "request headers {'Authorization': 'Bearer p4ss!word', 'Content-Type': 'text/plain'}",
    "Authorization: Basic p4ss!word",
    '{"clientid": "c", "token": "p4ss!word"}',
    "POST https://hook:p4ss!word@example.test/events failed",
    "cannot open keyfile with key_password my-k3y-pass",
])
def test_every_shape_of_secret_is_hidden_from_a_log_record(line):
    import logging

    from appliance.logs import SecretFilter

    secrets = SecretFilter(values=["my-k3y-pass"], names=["pin"])
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "%s", (line,), None)
    assert secrets.filter(record)
    text = record.getMessage()
    assert "p4ss" not in text and "my-k3y-pass" not in text and "***" in text
