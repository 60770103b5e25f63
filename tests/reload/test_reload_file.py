"""A reload of a bad file changes nothing and says why (log line, API 400/117); a change
that cannot be applied live is reported and the rest still applies; metrics count each
result from 0."""

from tests.conftest import BASE_CONFIG
from tests.reload.reload_helpers import post_reload, rewrite, sighup
from tests.security.security_helpers import metric


def test_reload_metric_exists_at_zero_for_every_result(broker):
    for result in ("success", "partial", "failed"):
        assert metric(broker, "appliance_config_reloads_total", result=result) == 0.0
    families = __import__("urllib.request").request.urlopen(
        f"http://127.0.0.1:{broker.http_port}/metrics", timeout=10).read().decode()
    assert 'appliance_config_reloads_total{result="failed"} 0.0' in families


def test_a_bad_file_changes_nothing_and_says_why(broker_factory, mqtt):
    broker = broker_factory("limits { max_subscriptions = 1 }\n")
    client = mqtt(broker.port, "c")
    client.connect()
    rewrite(broker, "limits { max_subscriptions = lots }\n")
    line = sighup(broker)
    assert "reload failed" in line and "limits.max_subscriptions" in line and ":" in line
    status, answer = post_reload(broker)
    assert (status, answer["code"]) == (400, 117)
    assert "limits.max_subscriptions" in answer["message"] and "\n" not in answer["message"]
    # The running limits stay: a second subscription of a new client is still refused.
    other = mqtt(broker.port, "d")
    other.connect()
    assert other.subscribe("a", qos=1) == [1]
    assert other.subscribe("b", qos=1) == [0x80]
    assert client.disconnects.empty()
    assert metric(broker, "appliance_config_reloads_total", result="failed") == 2.0
    assert metric(broker, "appliance_config_reloads_total", result="success") == 0.0


def test_a_listener_change_is_reported_and_the_rest_applies(broker_factory, mqtt):
    broker = broker_factory("limits { max_subscriptions = 1 }\n")
    port = broker.port
    kept = mqtt(port, "kept")
    kept.connect()
    moved = BASE_CONFIG.replace('bind = "127.0.0.1:0"', 'bind = "127.0.0.1:1"')
    rewrite(broker, "limits { max_subscriptions = 3 }\n", base=moved)
    status, answer = post_reload(broker)
    assert status == 200 and answer["data"]["result"] == "partial"
    assert answer["data"]["not_applied"] == ["listeners.tcp"]
    assert "limits.max_subscriptions" in answer["data"]["changed"]
    line = [entry for entry in broker.logs().splitlines() if "appliance.reload" in entry][-1]
    assert "needs a restart" in line and "listeners.tcp" in line
    # Still listening where it was, and the new limit holds for a new connection.
    fresh = mqtt(port, "fresh")
    fresh.connect()
    assert [fresh.subscribe(topic, qos=1)[0] for topic in ("a", "b", "c", "d")] == [1, 1, 1, 0x80]
    assert kept.disconnects.empty()
    assert metric(broker, "appliance_config_reloads_total", result="partial") == 1.0


def test_nothing_changed_is_a_success_and_says_so(broker):
    line = sighup(broker)
    assert "nothing changed" in line
    assert metric(broker, "appliance_config_reloads_total", result="success") == 1.0


def test_log_level_is_applied(broker_factory, mqtt):
    broker = broker_factory(base=BASE_CONFIG.replace("level = info", "level = warn"))
    mqtt(broker.port, "quiet").connect()
    rewrite(broker, "", base=BASE_CONFIG.replace("level = info", "level = debug"))
    assert "changed log.level" in sighup(broker)
    mqtt(broker.port, "chatty").connect()
    broker.wait_for_log(r"chatty@127\.0\.0\.1:\d+ connected")
    assert "quiet@" not in broker.logs()


def test_new_http_server_credentials_apply_to_the_next_request(broker_factory):
    broker = broker_factory()
    rewrite(broker, "", base=BASE_CONFIG.replace('password = "test-secret"', 'password = "rotated-secret"'))
    status, answer = post_reload(broker)
    assert status == 200 and answer["data"]["changed"] == ["http_server.password"]
    assert "rotated-secret" not in broker.logs()
    assert post_reload(broker, password="test-secret")[0] == 401
    assert post_reload(broker, password="rotated-secret")[0] == 200
