"""docs/grafana-dashboard.json and docs/prometheus-rules.yaml: valid, about series the broker
really exports, and the alerts fire when hooks fail or queues grow."""

import json
import re
import subprocess
import urllib.parse
from pathlib import Path


DOCS = Path(__file__).resolve().parents[2] / "docs"
DASHBOARD = json.loads((DOCS / "grafana-dashboard.json").read_text())
SERIES_NAME = re.compile(r"\b((?:appliance|process|python)_[a-z0-9_]+)")


def dashboard_queries() -> list[str]:
    return [target["expr"] for panel in DASHBOARD["panels"] for target in panel.get("targets", [])]


def as_promql(expr: str) -> str:
    """A dashboard query as Prometheus receives it once Grafana filled in the variables."""
    return expr.replace("$__rate_interval", "1m").replace("$job", ".*").replace("$instance", ".*")


def rules_file(tmp_path: Path) -> Path:
    """The PrometheusRule's `spec`, dedented: a plain Prometheus rules file."""
    lines = (DOCS / "prometheus-rules.yaml").read_text().splitlines()
    spec = lines[lines.index("spec:") + 1:]
    assert all(not line or line.startswith("  ") for line in spec)
    path = tmp_path / "rules.yml"
    path.write_text("\n".join(line[2:] for line in spec) + "\n")
    return path


def test_dashboard_has_the_panels_the_issue_asks_for():
    queries = {panel["title"]: [target["expr"] for target in panel.get("targets", [])]
               for panel in DASHBOARD["panels"]}
    assert any("appliance_connections{" in expr for expr in queries["Connections"])
    assert any("appliance_messages_received_total" in expr for expr in queries["Message rate"])
    assert any("appliance_messages_sent_total" in expr for expr in queries["Message rate"])
    latency = " ".join(queries["Hook latency"])
    assert "histogram_quantile(0.5," in latency and "histogram_quantile(0.99," in latency
    assert all('outcome!="delivered"' in expr for expr in queries["Hook failures"])


def test_dashboard_queries_only_series_the_broker_exports(broker_factory, mqtt, hook_receiver, fetch):
    broker = broker_factory(f'webhook {{ url = "{hook_receiver.url}", events = [{{ event = "on_message_publish" }}] }}\n')
    client = mqtt(broker.port, "client")
    client.connect()
    client.publish("t", b"x", qos=1)
    assert hook_receiver.wait_for(1)
    text = fetch(f"http://127.0.0.1:{broker.http_port}/metrics").text
    # Sample names, and the declared names of labelled families still without samples.
    exported = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"}
    exported |= {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}

    used = {name for expr in dashboard_queries() for name in SERIES_NAME.findall(expr)}
    used.add("appliance_build_info")  # the template variables read it
    assert used - exported == set()


def test_dashboard_queries_are_valid_promql(broker, start_prometheus, fetch):
    prometheus_url = start_prometheus(broker.http_port)
    for expr in dashboard_queries():
        response = fetch(f"{prometheus_url}/api/v1/query?query={urllib.parse.quote(as_promql(expr))}")
        assert response.status == 200, f"{expr}: {response.text}"


def test_alert_rules_pass_promtool_check_rules(promtool, tmp_path):
    result = subprocess.run([promtool, "check", "rules", str(rules_file(tmp_path))],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def firing(alert: str, eval_time: str, **labels) -> dict:
    """A promtool expectation: `alert` fires at `eval_time` with exactly `labels`."""
    label_text = ",".join(f'{k}="{v}"' for k, v in {"alertname": alert, "alertstate": "firing", **labels}.items())
    return {"expr": f'ALERTS{{alertname="{alert}",alertstate="firing"}}', "eval_time": eval_time,
            "exp_samples": [{"labels": f"ALERTS{{{label_text}}}", "value": 1}]}


def silent(alert: str, eval_time: str) -> dict:
    """A promtool expectation: `alert` does not fire at `eval_time`."""
    return {"expr": f'ALERTS{{alertname="{alert}",alertstate="firing"}}', "eval_time": eval_time,
            "exp_samples": []}


def series(name: str, values: str, **labels) -> dict:
    label_text = ",".join(f'{k}="{v}"' for k, v in {"job": "appliance", "instance": "edge-1", **labels}.items())
    return {"series": f"{name}{{{label_text}}}", "values": values}


def test_alerts_fire_when_hooks_fail_and_queues_grow(promtool, tmp_path):
    where = {"job": "appliance", "instance": "edge-1"}
    requests = "appliance_webhook_requests_total"
    tests = [
        {   # a third of the POSTs fail: firing once it has lasted `for: 5m`, not before
            "interval": "1m",
            "input_series": [
                series(requests, "0+60x30", event="message_publish", outcome="delivered", reason=""),
                series(requests, "0+30x30", event="message_publish", outcome="failed", reason="http_5xx"),
            ],
            "promql_expr_test": [
                silent("ApplianceWebhookFailing", "3m"),
                firing("ApplianceWebhookFailing", "15m", severity="warning", **where),
            ],
        },
        {   # every POST delivered: silence
            "interval": "1m",
            "input_series": [series(requests, "0+60x30", event="message_publish", outcome="delivered", reason="")],
            "promql_expr_test": [silent("ApplianceWebhookFailing", "15m")],
        },
        {   # events dropped: at once
            "interval": "1m",
            "input_series": [series("appliance_webhook_events_dropped_total", "0 0 0 5 5 5", reason="rejected")],
            "promql_expr_test": [firing("ApplianceWebhookEventsDropped", "4m", severity="critical",
                                        reason="rejected", **where)],
        },
        {   # the webhook queue grows by 500 a minute past 1000; a steady deep queue does not page
            "interval": "1m",
            "input_series": [series("appliance_webhook_queue_depth", "0+500x40"),
                             series("appliance_webhook_queue_depth", "5000x40", instance="edge-2")],
            "promql_expr_test": [firing("ApplianceWebhookQueueGrowing", "30m", severity="warning", **where)],
        },
        {   # MQTT session queues overflow
            "interval": "1m",
            "input_series": [series("appliance_messages_dropped_total", "0+100x30", reason="queue_full"),
                             series("appliance_messages_dropped_total", "0+100x30", reason="no_subscribers")],
            "promql_expr_test": [firing("ApplianceMqttQueuesOverflowing", "15m", severity="warning",
                                        reason="queue_full", **where)],
        },
    ]
    rules = rules_file(tmp_path)
    test_file = tmp_path / "rules_test.yml"
    test_file.write_text(json.dumps({"rule_files": [rules.name], "evaluation_interval": "1m", "tests": tests}))

    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
