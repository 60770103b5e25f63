"""The Helm chart: lint, schema validity over a values matrix, and what the rendered manifests promise."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from .tooling import CHART, DOCKERFILE, REPO, require, run

pytestmark = pytest.mark.static

KUBERNETES_VERSIONS = ("1.25.0", "1.33.0")

VALUES_MATRIX = {
    "defaults": [],
    "custom-config": ["--set-string", "config=listeners.tcp { bind = \"0.0.0.0:1883\" }\n"],
    "metrics-off": ["--set", "metrics.enabled=false", "--set", "metrics.serviceMonitor.enabled=true"],
    "servicemonitor-and-rules": ["--set", "metrics.serviceMonitor.enabled=true",
                                 "--set", "metrics.prometheusRule.enabled=true"],
    "host-network": ["--set", "hostNetwork=true", "--set", "service.type=NodePort",
                     "--set", "service.nodePorts.mqtt=31883"],
    "existing-configmap-secret-pdb": ["--set", "existingConfigMap=site-nanomq", "--set", "metrics.enabled=false",
                                      "--set", "httpAuth.existingSecret=nanomq-api",
                                      "--set", "podDisruptionBudget.enabled=true",
                                      "--set", "spool.existingClaim=nanomq-spool",
                                      "--set", "replicaCount=2"],
}

# Configs whose bytes a careless template would change: no final newline, tabs, trailing
# blanks, blank lines, CRLF, non-ASCII, HOCON substitutions and Go-template-like braces.
TRICKY_CONFIGS = {
    "no-final-newline": 'listeners.tcp { bind = "0.0.0.0:1883" }',
    "tabs-trailing-blanks": 'mqtt {\n\tmax_packet_size = 1MB   \n\n\n}\nlog.level = warn\n\n',
    "crlf": 'listeners.tcp {\r\n  bind = "0.0.0.0:1883"\r\n}\r\n',
    "unicode-and-substitution": '# Größe – ΔT\nhttp_server.password = ${?NANOMQ_API_PASSWORD}\n',
    "template-braces": 'webhook.url = "http://h:1/{{ .Values.x }}"\n# ---\n"key: value" = 1\n',
    "leading-blank-and-indent": '\n    indented = true\n',
}


def deployment_annotations(rendered) -> dict:
    return rendered.one("Deployment")["spec"]["template"]["metadata"].get("annotations") or {}


def test_helm_lint_strict_passes(helm):
    result = run(helm, "lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in result.stdout


@pytest.fixture(scope="module")
def matrix_manifests(render, tmp_path_factory):
    """The chart rendered for every VALUES_MATRIX case: {case: (file, number of core resources)}."""
    directory = tmp_path_factory.mktemp("matrix")
    manifests = {}
    for case, args in VALUES_MATRIX.items():
        rendered = render(*args)
        path = directory / f"{case}.yaml"
        path.write_text(rendered.text)
        core = [doc for doc in rendered.documents if not doc["apiVersion"].startswith("monitoring.coreos.com")]
        manifests[case] = (path, len(core))
    return manifests


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_values_matrix_validates_strictly(matrix_manifests, version):
    validator = require("kubernetes-validate")
    files = [str(path) for path, _ in matrix_manifests.values()]
    result = run(validator, "--strict", "-k", version, *files, check=False)
    assert result.returncode == 0, f"Kubernetes {version}:\n{result.stdout}{result.stderr}"
    for case, (path, core) in matrix_manifests.items():
        assert result.stdout.count(f"{path} passed for resource") == core, f"{case}:\n{result.stdout}"


@pytest.mark.parametrize("name", sorted(TRICKY_CONFIGS))
def test_configmap_carries_the_config_byte_for_byte(render, name):
    config = TRICKY_CONFIGS[name]
    rendered = render(config=config)
    assert rendered.one("ConfigMap")["data"] == {"nanomq.conf": config}


def test_default_config_is_the_values_text(render):
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert render().one("ConfigMap")["data"]["nanomq.conf"] == values["config"]


def test_config_is_mounted_as_a_directory_where_the_image_reads_it(render):
    rendered = render()
    configmap = rendered.one("ConfigMap")
    mount = next(m for m in rendered.broker["volumeMounts"] if m["name"] == "config")
    volume = next(v for v in rendered.pod_spec["volumes"] if v["name"] == "config")
    assert mount == {"name": "config", "mountPath": "/etc/nanomq", "readOnly": True}  # no subPath
    assert volume["configMap"] == {"name": configmap["metadata"]["name"]}
    assert rendered.broker["args"] == ["start", "--conf", "/etc/nanomq/nanomq.conf"]
    assert "NANOMQ_CONF_PATH=/etc/nanomq/nanomq.conf" in DOCKERFILE.read_text()


def test_existing_configmap_is_mounted_and_none_is_created(render):
    rendered = render("--set", "existingConfigMap=site-nanomq")
    assert rendered.all("ConfigMap") == []
    volume = next(v for v in rendered.pod_spec["volumes"] if v["name"] == "config")
    assert volume["configMap"] == {"name": "site-nanomq"}
    assert "checksum/config" not in deployment_annotations(rendered)
    bare = render("--set", "existingConfigMap=site-nanomq", "--set", "metrics.enabled=false")
    assert "annotations" not in bare.one("Deployment")["spec"]["template"]["metadata"]


def test_checksum_annotation_changes_exactly_when_the_config_changes(render):
    first = deployment_annotations(render(config="log.level = warn\n"))["checksum/config"]
    again = deployment_annotations(render(config="log.level = warn\n", release="other"))["checksum/config"]
    changed = deployment_annotations(render(config="log.level = info\n"))["checksum/config"]
    assert first == again
    assert first != changed


def test_ports_reach_the_broker_the_pod_and_the_service(render):
    rendered = render("--set", "containerPorts.mqtt=11883", "--set", "containerPorts.http=18081",
                      "--set", "service.ports.mqtt=1884")
    env = {e["name"]: e.get("value") for e in rendered.broker["env"]}
    assert env["NANOMQ_BROKER_URL"] == "nmq-tcp://0.0.0.0:11883"
    assert env["NANOMQ_HTTP_SERVER_PORT"] == "18081"
    assert {p["name"]: p["containerPort"] for p in rendered.broker["ports"]} == {"mqtt": 11883, "http": 18081}
    service_ports = {p["name"]: (p["port"], p["targetPort"]) for p in rendered.one("Service")["spec"]["ports"]}
    assert service_ports == {"mqtt": (1884, "mqtt"), "http": (8081, "http")}
    assert deployment_annotations(rendered)["prometheus.io/port"] == "18081"


def test_default_ports_are_the_ones_the_image_exposes(render):
    rendered = render()
    exposed = re.search(r"^EXPOSE (.+)$", DOCKERFILE.read_text(), re.M).group(1).split()
    assert sorted(str(p["containerPort"]) for p in rendered.broker["ports"]) == sorted(exposed)


def test_probes_use_the_health_endpoints_on_the_http_port(render):
    broker = render().broker
    assert broker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert broker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert broker["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_pod_runs_non_root_read_only_without_privileges(render):
    rendered = render()
    pod, container = rendered.pod_spec, rendered.broker
    user = re.search(r"^USER (\d+):(\d+)$", DOCKERFILE.read_text(), re.M)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(user.group(1))
    assert pod["securityContext"]["fsGroup"] == int(user.group(2))
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    writable = {m["mountPath"]: m["name"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp": "tmp", "/var/lib/nanomq": "spool"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["tmp"] and "emptyDir" in volumes["spool"]


def test_resources_fit_an_edge_box(render):
    resources = render().broker["resources"]
    assert resources["requests"] == {"cpu": "50m", "memory": "64Mi"}
    assert resources["limits"] == {"memory": "256Mi"}


def test_single_replica_recreated_by_default(render):
    spec = render().one("Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_metrics_off_removes_scrape_annotations_and_monitors(render):
    rendered = render(*VALUES_MATRIX["metrics-off"], "--set", "metrics.prometheusRule.enabled=true")
    assert not any(key.startswith("prometheus.io/") for key in deployment_annotations(rendered))
    assert rendered.all("ServiceMonitor") == [] and rendered.all("PrometheusRule") == []


def test_service_monitor_scrapes_the_http_port_of_this_release(render):
    rendered = render("--set", "metrics.serviceMonitor.enabled=true",
                      "--set", "metrics.serviceMonitor.labels.release=kube-prometheus")
    monitor, service = rendered.one("ServiceMonitor"), rendered.one("Service")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["edge"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    assert "http" in [p["name"] for p in service["spec"]["ports"]]


def test_prometheus_rules_pass_promtool(render, tmp_path):
    promtool = require("promtool")
    rule = render("--set", "metrics.prometheusRule.enabled=true").one("PrometheusRule")
    (down,) = rule["spec"]["groups"][0]["rules"]
    assert down["alert"] == "ApplianceDown"
    assert 'up{namespace="edge", job="nq-nanomq-appliance"} == 0' in down["expr"]
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    result = run(promtool, "check", "rules", str(rules_file))
    count = sum(len(group["rules"]) for group in rule["spec"]["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_chart_alerts_are_the_documented_ones(render):
    documented = yaml.safe_load((REPO / "docs" / "prometheus-rules.yaml").read_text())["spec"]["groups"]
    groups = render("--set", "metrics.prometheusRule.enabled=true").one("PrometheusRule")["spec"]["groups"]
    assert groups[1:] == documented
    without = render("--set", "metrics.prometheusRule.enabled=true",
                     "--set", "metrics.prometheusRule.defaultRules=false").one("PrometheusRule")
    assert [group["name"] for group in without["spec"]["groups"]] == ["nq-nanomq-appliance-availability"]


def test_host_network_uses_cluster_dns_from_the_host(render):
    pod = render("--set", "hostNetwork=true").pod_spec
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert render().pod_spec["dnsPolicy"] == "ClusterFirst"


def test_api_credentials_can_come_from_a_secret(render):
    env = {e["name"]: e for e in render("--set", "httpAuth.existingSecret=nanomq-api").broker["env"]}
    assert env["NANOMQ_HTTP_SERVER_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "nanomq-api", "key": "password"}
    assert env["NANOMQ_HTTP_SERVER_USERNAME"]["valueFrom"]["secretKeyRef"] == {"name": "nanomq-api", "key": "username"}


def test_pod_disruption_budget_is_optional(render):
    assert render().all("PodDisruptionBudget") == []
    pdb = render("--set", "podDisruptionBudget.enabled=true").one("PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    pdb = render("--set", "podDisruptionBudget.enabled=true", "--set", "podDisruptionBudget.minAvailable=1")
    assert pdb.one("PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_scheduling_values_reach_the_pod(render):
    pod = render("--set", "nodeSelector.kubernetes\\.io/arch=arm64",
                 "--set", "tolerations[0].key=edge", "--set", "tolerations[0].operator=Exists").pod_spec
    assert pod["nodeSelector"] == {"kubernetes.io/arch": "arm64"}
    assert pod["tolerations"] == [{"key": "edge", "operator": "Exists"}]


def test_helm_test_hook_runs_the_mqtt_round_trip_from_the_appliance_image(render):
    rendered = render()
    (pod,) = [doc for doc in rendered.all("Pod") if doc["metadata"]["annotations"].get("helm.sh/hook") == "test"]
    (container,) = pod["spec"]["containers"]
    assert container["image"] == rendered.broker["image"]
    assert container["command"] == ["python", "-c", (CHART / "files" / "mqtt_roundtrip.py").read_text()]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"MQTT_HOST": "nq-nanomq-appliance.edge.svc", "MQTT_PORT": "1883"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # The Service must not route MQTT clients to the test pod itself.
    selector = rendered.one("Service")["spec"]["selector"]
    assert not selector.items() <= pod["metadata"]["labels"].items()


@pytest.mark.parametrize("bad", ["replicaCont=2", "service.type=Bogus", "containerPorts.mqtt=70000",
                                 "image.pullPolicy=Sometimes"])
def test_schema_rejects_wrong_values(helm, bad):
    result = run(helm, "template", "nq", str(CHART), "--set", bad, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr


def test_default_config_passes_the_brokers_check_config(tmp_path):
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    conf = tmp_path / "nanomq.conf"
    conf.write_text(values["config"])
    result = subprocess.run([sys.executable, "-m", "appliance", "check-config", "--conf", str(conf)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_notes_tell_how_to_connect_and_warn_about_replicas(helm, tmp_path):
    # `helm template` leaves NOTES.txt out and `helm install --dry-run` needs a cluster: render it
    # through tpl in a scratch copy of the chart.
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "files" / "NOTES.txt")
    (chart / "templates" / "notes-probe.yaml").write_text(
        'notes: {{ tpl (.Files.Get "files/NOTES.txt") . | toJson }}\n')

    def notes(*args: str) -> str:
        out = run(helm, "template", "nq", str(chart), "--namespace", "edge",
                  "--show-only", "templates/notes-probe.yaml", *args).stdout
        return yaml.safe_load(out)["notes"]

    default = notes()
    assert "nq-nanomq-appliance.edge.svc:1883" in default
    assert "kubectl port-forward -n edge svc/nq-nanomq-appliance 1883:1883" in default
    assert "helm test -n edge nq" in default
    assert "WARNING: replicaCount" not in default
    assert "default password" in default
    assert "WARNING: replicaCount is 3" in notes("--set", "replicaCount=3")
    assert "port 1883 of the node" in notes("--set", "hostNetwork=true")
    assert "default password" not in notes("--set", "httpAuth.existingSecret=api")


def test_values_schema_is_valid_json_and_covers_every_top_level_value():
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert schema["additionalProperties"] is False
    assert set(values) <= set(schema["properties"])
