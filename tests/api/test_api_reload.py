"""POST /api/v4/reload hands over to the `reload` callable the appliance passes in (hot
reload is built by its own module): its summary is answered, its refusal is a 400 with the
reason, and NanoMQ's body of values to set is refused. The server runs in-process on this
thread's hub; requests come from gevent's native worker threads over a real socket."""

import http.client
import json

import gevent
import pytest

from appliance.api import ApiV4, BrokerView
from appliance.reload import ReloadFailed
from appliance.broker import Broker
from appliance.broker.stats import BrokerStats
from appliance.broker.timers import Timers
from appliance.config.model import Config, HttpServerConfig, LimitsConfig, MqttConfig
from appliance.metrics import HttpServer, create_registry
from tests.api.conftest import basic


class Ready:
    def healthy(self) -> bool:
        return True

    def ready(self) -> bool:
        return True


@pytest.fixture
def serve():
    servers = []

    def start(reload):
        broker = Broker(MqttConfig(), LimitsConfig(), BrokerStats(), Timers())
        config = Config(http_server=HttpServerConfig(bind="127.0.0.1", port=0, password="pw"))
        api = ApiV4(BrokerView(broker), lambda: config, reload=reload)
        server = HttpServer(config.http_server, create_registry(broker), broker, Ready(), api)
        server.start()
        servers.append(server)
        return server.address[1]

    yield start
    for server in servers:
        server.stop()


def post(port: int, body: bytes | None = None) -> tuple[int, dict]:
    def blocking():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("POST", "/api/v4/reload", body=body,
                           headers={"Authorization": basic("admin", "pw"), "Content-Type": "application/json"})
        response = connection.getresponse()
        result = response.status, json.loads(response.read())
        connection.close()
        return result

    return gevent.get_hub().threadpool.apply(blocking)


def test_reload_runs_the_reloader_and_answers_its_summary(serve):
    calls = []

    def reload():
        calls.append("reload")
        return {"changed": ["auth.acl"], "not_applied": []}

    port = serve(reload)
    assert post(port) == (200, {"code": 0, "data": {"changed": ["auth.acl"], "not_applied": []}})
    assert post(port, b'{"data": {}}') == (200, {"code": 0, "data": {"changed": ["auth.acl"], "not_applied": []}})
    assert calls == ["reload", "reload"]


def test_a_refused_reload_is_400_with_the_reason(serve):
    def reload():
        raise ReloadFailed("etc/nanomq.conf:3: auth.no_match: expected allow or deny")

    status, document = post(serve(reload))
    assert (status, document["code"]) == (400, 117)
    assert document["message"] == "etc/nanomq.conf:3: auth.no_match: expected allow or deny"


def test_nanomq_values_in_the_body_are_refused_and_nothing_reloads(serve):
    calls = []
    port = serve(lambda: calls.append("reload"))
    status, document = post(port, b'{"data": {"property_size": 64}}')
    assert (status, document["code"]) == (400, 108)
    assert calls == []
