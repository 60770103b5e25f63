"""docs/grafana-dashboard.json and docs/prometheus-rules.yaml: valid, about series the broker
really exports, and the alerts fire when hooks fail or queues grow."""

import json
import re
import subprocess
import urllib.parse
from pathlib import Path


DOCS = Path(__file__).resolve().parents[2] / "docs"
RULES = DOCS / "prometheus-rules.yaml"
DASHBOARD = json.loads((DOCS / "grafana-dashboard.json").read_text())
SERIES_NAME = re.compile(r"\b((?:appliance|process|python)_[a-z0-9_]+)")
# Names CONTRACTS.md reserves for the bridge and the durable store, built in parallel: the
# dashboard and the alerts use them before this broker exports them.
RESERVED = {
    "appliance_bridge_up", "appliance_bridge_messages_forwarded_total", "appliance_bridge_messages_received_total",
    "appliance_bridge_messages_dropped_total", "appliance_bridge_queue_depth", "appliance_bridge_reconnects_total",
    "appliance_bridge_ack_rtt_seconds_bucket",
    "appliance_store_commits_total", "appliance_store_commit_seconds_bucket", "appliance_store_rows_per_commit_sum",
    "appliance_store_rows_per_commit_count", "appliance_store_size_bytes",
}
# Grafana's own units for per-second rates (cps: counts/s); the axis label names what is counted.
RATE_UNITS = {"cps", "reqps", "Bps", "percentunit"}


def dashboard_queries() -> list[str]:
    return [target["expr"] for panel in DASHBOARD["panels"] for target in panel.get("targets", [])]


def as_promql(expr: str) -> str:
    """A dashboard query as Prometheus receives it once Grafana filled in the variables."""
    return expr.replace("$__rate_interval", "1m").replace("$job", ".*").replace("$instance", ".*")


def rules_file(tmp_path: Path) -> Path:
    """The shipped rules file, as it is, next to the promtool test file."""
    path = tmp_path / "rules.yml"
    path.write_bytes(RULES.read_bytes())
    return path


def panels_of_row(title: str) -> list[dict]:
    """The panels below the row `title`, up to the next row."""
    panels, inside = [], False
    for panel in DASHBOARD["panels"]:
        if panel["type"] == "row":
            inside = panel["title"] == title
        elif inside:
            panels.append(panel)
    return panels


def kept_labels(expr: str) -> set[str] | None:
    """Labels the outermost aggregation keeps (None: not aggregated, every label is kept)."""
    outer = re.match(r"\s*(?:histogram_quantile\([0-9.]+,\s*)?(sum|max|min|avg|count)\s*(?:by\s*\(([^)]*)\))?\s*\(",
                     expr)
    if outer is None:
        return None
    return {label.strip() for label in (outer.group(2) or "").split(",") if label.strip()} - {"le"}


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
    assert used - exported - RESERVED == set()
    alerted = set(SERIES_NAME.findall(RULES.read_text()))
    assert alerted - exported - RESERVED == set()


def test_dashboard_has_a_bridge_row_and_a_store_row_on_the_reserved_names():
    bridge = " ".join(target["expr"] for panel in panels_of_row("Bridges") for target in panel["targets"])
    store = " ".join(target["expr"] for panel in panels_of_row("Store") for target in panel["targets"])
    assert {name for name in RESERVED if name.startswith("appliance_bridge_")} <= set(SERIES_NAME.findall(bridge))
    assert {name for name in RESERVED if name.startswith("appliance_store_")} <= set(SERIES_NAME.findall(store))
    latency = next(panel for panel in panels_of_row("Store") if panel["title"] == "Store commit latency")
    assert latency["fieldConfig"]["defaults"]["unit"] == "s"


def test_every_legend_names_only_labels_its_query_keeps():
    # A stat panel over sum(...) with legend {{instance}} shows an empty name: the sum has no instance.
    for panel in DASHBOARD["panels"]:
        for target in panel.get("targets", []):
            legend = target.get("legendFormat", "")
            assert legend.strip(), f"{panel['title']}: empty legend"
            kept = kept_labels(target["expr"])
            if kept is not None:
                assert set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend)) <= kept, f"{panel['title']}: {legend}"


def test_rate_panels_use_per_second_units():
    for panel in DASHBOARD["panels"]:
        exprs = [target["expr"] for target in panel.get("targets", [])]
        # Quantiles and ratios of two rates are not per second.
        if exprs and all("rate(" in expr and "histogram_quantile" not in expr and " / " not in expr for expr in exprs):
            unit = panel["fieldConfig"]["defaults"]["unit"]
            assert unit in RATE_UNITS, f"{panel['title']}: {unit}"
            if unit == "cps":  # counts of what
                assert panel["fieldConfig"]["defaults"]["custom"]["axisLabel"].endswith("/s"), panel["title"]


def test_dashboard_queries_are_valid_promql(broker, start_prometheus, fetch):
    prometheus_url = start_prometheus(broker.http_port)
    for expr in dashboard_queries():
        response = fetch(f"{prometheus_url}/api/v1/query?query={urllib.parse.quote(as_promql(expr))}")
        assert response.status == 200, f"{expr}: {response.text}"


def test_alert_rules_pass_promtool_check_rules(promtool, tmp_path):
    result = subprocess.run([promtool, "check", "rules", str(rules_file(tmp_path))],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 13 rules found" in result.stdout


def test_shipped_rules_file_passes_promtool_as_it_is(promtool):
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "job=" not in RULES.read_text()  # no rule depends on what the scrape config calls the job


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
        {   # an appliance target stops answering (any job name); a non-appliance target does not count
            "interval": "1m",
            "input_series": [series("up", "1 1 0 0 0 0 0 0 0 0", job="kubernetes-pods"),
                             series("appliance_build_info", "1 1 _ _ _ _ _ _ _ _", job="kubernetes-pods",
                                    version="0.1.0"),
                             series("up", "0x10", job="node", instance="node-1")],
            "promql_expr_test": [
                silent("ApplianceDown", "5m"),
                {"expr": 'ALERTS{alertname="ApplianceDown",alertstate="firing"}', "eval_time": "8m",
                 "exp_samples": [{"labels": 'ALERTS{alertname="ApplianceDown",alertstate="firing",severity="critical",'
                                            'job="kubernetes-pods",instance="edge-1"}', "value": 1}]},
            ],
        },
        {   # a bridge down for 5 minutes; one that flaps back up in time does not page
            "interval": "1m",
            "input_series": [series("appliance_bridge_up", "1 0 0 0 0 0 0 0 0 0", bridge="cloud"),
                             series("appliance_bridge_up", "1 0 0 1 1 1 1 1 1 1", bridge="backup")],
            "promql_expr_test": [silent("ApplianceBridgeDown", "4m"),
                                 firing("ApplianceBridgeDown", "8m", severity="critical", bridge="cloud", **where)],
        },
        {   # the bridge queue fills while the upstream is away; drops on overflow page at once
            "interval": "1m",
            "input_series": [series("appliance_bridge_queue_depth", "0+300x30", bridge="cloud"),
                             series("appliance_bridge_messages_dropped_total", "0 0 0 40 80 80", bridge="cloud",
                                    reason="queue_full")],
            "promql_expr_test": [
                firing("ApplianceBridgeQueueFilling", "25m", severity="warning", bridge="cloud", **where),
                firing("ApplianceBridgeMessagesDropped", "4m", severity="warning", bridge="cloud",
                       reason="queue_full", **where),
            ],
        },
        {   # store commits slow: p99 above 250 ms for 10 minutes
            "interval": "1m",
            "input_series": [series("appliance_store_commit_seconds_bucket", "0+10x30", store="main", le="0.1"),
                             series("appliance_store_commit_seconds_bucket", "0+10x30", store="main", le="0.5"),
                             series("appliance_store_commit_seconds_bucket", "0+100x30", store="main", le="1"),
                             series("appliance_store_commit_seconds_bucket", "0+100x30", store="main", le="+Inf")],
            "promql_expr_test": [firing("ApplianceStoreCommitSlow", "20m", severity="warning", store="main", **where)],
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


def test_dashboard_panels_have_unique_ids_and_do_not_overlap():
    cells: dict[tuple[int, int], str] = {}
    for panel in DASHBOARD["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
