"""`auth.http_auth` against a real HTTP service: allowed, refused, superuser, ACL requests,
a slow service that must not stall other clients, and a service that is down."""

import socket
import threading

import pytest

from auth_server import AuthServer
from security_helpers import connack, connected


@pytest.fixture
def service():
    server = AuthServer()
    yield server
    server.close()


def http_auth(url, *, acl=False, extra="", method="post", json_body=False):
    content_type = "application/json" if json_body else "application/x-www-form-urlencoded"
    block = (f'auth {{\n allow_anonymous = false\n no_match = deny\n http_auth {{\n'
             f'  auth_req {{ url = "{url}/auth", method = {method}, headers.content-type = "{content_type}",'
             f' params = {{clientid = "%c", username = "%u", password = "%P", ipaddr = "%a", port = "%p"}} }}\n')
    if acl:
        block += (f'  super_req {{ url = "{url}/super", params = {{username = "%u"}} }}\n'
                  f'  acl_req {{ url = "{url}/acl", params = {{username = "%u", access = "%A", topic = "%t"}} }}\n')
    return block + extra + "\n }\n}\n"


@pytest.mark.parametrize("method, json_body", [("post", False), ("post", True), ("get", False)])
def test_service_decides_who_connects_with_nanomq_placeholders(broker_factory, service, method, json_body):
    broker = broker_factory(http_auth(service.url, method=method, json_body=json_body))
    connected(broker.port, "dev-1", "alice", b"good")
    code, _ = connack(broker.port, "dev-2", "alice", b"bad-password-123")
    assert code == 0x86
    path, params = service.requests[0]
    assert path == "/auth"
    assert params["clientid"] == "dev-1" and params["username"] == "alice" and params["password"] == "good"
    assert params["ipaddr"] == "127.0.0.1" and params["port"] == str(broker.port)
    assert "bad-password-123" not in broker.logs()


def test_answers_are_cached(broker_factory, service):
    broker = broker_factory(http_auth(service.url))
    connected(broker.port, "c", "alice", b"good").sock.close()
    connected(broker.port, "c", "alice", b"good")
    assert service.paths().count("/auth") == 1


def test_superuser_skips_acl_and_acl_req_decides_for_others(broker_factory, service):
    broker = broker_factory(http_auth(service.url, acl=True))
    root = connected(broker.port, "root-c", "root", b"good")
    assert root.subscribe("closed/x", 1) == [1]
    user = connected(broker.port, "user-c", "alice", b"good")
    assert user.subscribe("open/x", 1) == [1]
    assert user.subscribe("closed/x", 1) == [0x87]
    user.publish("closed/y", b"x", qos=1, packet_id=3)
    assert user.expect("PubAck").reason_code == 0x87
    acl_params = [params for path, params in service.requests if path == "/acl"]
    assert {p["access"] for p in acl_params} == {"1", "2"}  # 1 subscribe, 2 publish
    assert {p["topic"] for p in acl_params} >= {"open/x", "closed/x", "closed/y"}


def test_slow_service_delays_only_the_client_it_is_asked_about(broker_factory, service):
    broker = broker_factory(http_auth(service.url, extra="timeout = 20s"))
    result = {}
    slow = threading.Thread(target=lambda: result.update(code=connack(broker.port, "s", "slow", b"good")[0]))
    slow.start()
    assert service.slow_arrived.wait(10)
    connected(broker.port, "fast", "alice", b"good")  # served while the slow answer is pending
    assert "code" not in result
    service.release.set()
    slow.join(10)
    assert result["code"] == 0


@pytest.mark.parametrize("on_error, expected", [("deny", 0x88), ("allow", 0)])
def test_service_too_slow_is_an_error_answered_per_on_error(broker_factory, service, on_error, expected):
    broker = broker_factory(http_auth(service.url, extra=f"timeout = 1s\non_error = {on_error}"))
    code, _ = connack(broker.port, "s", "slow", b"good")
    assert code == expected
    connected(broker.port, "fast", "alice", b"good")


@pytest.mark.parametrize("version, expected", [(5, 0x88), (4, 3)])
def test_service_down_refuses_as_server_unavailable(broker_factory, version, expected):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    broker = broker_factory(http_auth(url))
    code, _ = connack(broker.port, "c", "alice", b"s3cret-pw", version=version)
    assert code == expected
    broker.wait_for_log("http_auth: http://127.0.0.1:\\d+/auth failed")
    assert "s3cret-pw" not in broker.logs()


def test_service_5xx_is_an_error_and_ignore_passes_the_question_on(broker_factory, service):
    broker = broker_factory(f'auth {{ allow_anonymous = false\n http_auth {{ auth_req {{ url = "{service.url}/error" }} }} }}\n')
    assert connack(broker.port, "c", "alice", b"good")[0] == 0x88
    broker = broker_factory(f'auth {{ allow_anonymous = false\n http_auth {{ auth_req {{ url = "{service.url}/ignore" }} }} }}\n')
    assert connack(broker.port, "c", "alice", b"good")[0] == 0x86  # nobody vouched for alice
