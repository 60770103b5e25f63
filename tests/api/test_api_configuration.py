"""GET /api/v4/configuration[/{section}]: the running configuration in NanoMQ's sections,
with no password, key password, token or credential header in the answer."""

from tests.security.security_helpers import auth_block
from tests.security.tls_pki import Pki

SECRETS = ("test-secret", "alice-pw-1", "bob-pw-2", "k3y-pass", "hook-token-123", "hookpass", "svcpass",
           "c3ZjOnN2Y3Bhc3M=", "static-token-xyz", "cookie-value-9", "webhook-key-pass")


def secret_config(tmp_path) -> str:
    pki = Pki(tmp_path, key_password=b"k3y-pass")
    auth = auth_block(
        tmp_path, passwords='"alice": "alice-pw-1"\n"bob": "bob-pw-2"\n',
        acl='rules = [{permit = allow, username = "alice", action = publish, topics = ["a/#"]}]\n',
        options=('http_auth {\n auth_req {\n  url = "http://svc:svcpass@127.0.0.1:9/auth"\n'
                 '  headers.authorization = "Basic c3ZjOnN2Y3Bhc3M="\n  headers.content-type = "application/json"\n'
                 '  params = {clientid = "%c", password = "%P", token = "static-token-xyz"}\n }\n}\n'))
    return (f'listeners.ssl {{\n bind = "127.0.0.1:0"\n certfile = "{pki.server_cert}"\n'
            f' keyfile = "{pki.server_key}"\n key_password = "k3y-pass"\n}}\n' + auth
            + 'webhook {\n url = "http://hook:hookpass@127.0.0.1:9/hook"\n'
              ' headers.authorization = "Bearer hook-token-123"\n headers.cookie = "cookie-value-9"\n'
              ' headers.x-site = "plant-4"\n events = [{event = "on_client_connack"}]\n'
              ' ssl { key_password = "webhook-key-pass" }\n}\n')


def test_configuration_hides_every_secret(broker_factory, api_for, tmp_path):
    broker = broker_factory(secret_config(tmp_path), listeners=2)
    reply = api_for(broker).get("/api/v4/configuration")
    assert reply.status == 200
    for secret in SECRETS:
        assert secret not in reply.body.decode(), secret
    data = reply.json["data"]
    assert data["http_server"]["password"] == "******" and data["http_server"]["username"] == "admin"
    assert data["auth"] == [{"login": "alice", "password": "******"}, {"login": "bob", "password": "******"}]
    assert data["tls"]["enable"] is True and data["tls"]["key_password"] == "******"
    request = data["auth_http"]["auth_req"]
    assert request["url"] == "http://svc:******@127.0.0.1:9/auth"
    assert request["headers"] == {"authorization": "******", "content-type": "application/json"}
    assert request["params"] == ["clientid", "password", "token"]
    hook = data["webhook"]
    assert hook["url"] == "http://hook:******@127.0.0.1:9/hook"
    assert hook["headers"]["authorization"] == hook["headers"]["cookie"] == "******"
    assert hook["headers"]["x-site"] == "plant-4"
    assert hook["tls"]["key_password"] == "******"


def test_configuration_shows_what_is_in_force(broker_factory, api_for, tmp_path):
    broker = broker_factory("mqtt { max_packet_size = 64KB, max_mqueue_len = 77, retry_interval = 3s }\n"
                            "limits { max_subscriptions = 5 }\n")
    data = api_for(broker).ok("GET", "/api/v4/configuration")["data"]
    assert data["basic"]["max_packet_size"] == 64
    assert data["basic"]["msq_len"] == 77
    assert data["basic"]["qos_duration"] == 3
    assert data["basic"]["url"].startswith("nmq-tcp://127.0.0.1:")
    assert data["limits"]["max_subscriptions"] == 5
    assert data["tls"]["enable"] is False
    assert data["webhook"] == {"enable": False}
    assert [listener["name"] for listener in data["listeners"]] == ["tcp"]


def test_one_section_and_an_unknown_one(api):
    document = api.ok("GET", "/api/v4/configuration/http_server")
    assert list(document["data"]) == ["http_server"]
    assert document["data"]["http_server"]["password"] == "******"
    unknown = api.get("/api/v4/configuration/nope")
    assert (unknown.status, unknown.json["code"]) == (404, 101)
