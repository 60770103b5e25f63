"""The Helm chart: lint, schema validity over a values matrix, and what the rendered manifests promise."""

from __future__ import annotations

import base64
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
                                      "--set", "persistence.existingClaim=nanomq-data"],
    "secrets-tls-websocket-watch": ["--set", "secret.existingSecret=nanomq-files", "--set", "tls.enabled=true",
                                    "--set", "tls.existingSecret=nanomq-tls", "--set", "tls.caKey=ca.crt",
                                    "--set", "tls.verifyPeer=true", "--set", "tls.keyPasswordKey=key-password",
                                    "--set", "websocket.enabled=true", "--set", "configReload.mode=watch",
                                    "--set", "service.type=NodePort", "--set", "service.nodePorts.ws=30083"],
    "statefulset-extras": ["--set", "persistence.enabled=true", "--set", "persistence.storageClass=local-path",
                           "--set", "persistence.annotations.backup=daily", "--set", "replicaCount=2",
                           "--set", "extraVolumes[0].name=upstream-ca",
                           "--set", "extraVolumes[0].secret.secretName=upstream-ca",
                           "--set", "extraVolumeMounts[0].name=upstream-ca",
                           "--set", "extraVolumeMounts[0].mountPath=/etc/nanomq-upstream",
                           "--set", "extraVolumeMounts[0].readOnly=true",
                           "--set", "extraEnv[0].name=NANOMQ_LOG_LEVEL", "--set", "extraEnv[0].value=info",
                           "--set", "priorityClassName=edge-critical", "--set", "podAnnotations.team=iot",
                           "--set", "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                                    ".nodeSelectorTerms[0].matchExpressions[0].key=edge",
                           "--set", "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                                    ".nodeSelectorTerms[0].matchExpressions[0].operator=Exists"],
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
    return rendered.workload["spec"]["template"]["metadata"].get("annotations") or {}


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
    bare = render("--set", "existingConfigMap=site-nanomq", "--set", "metrics.enabled=false",
                  "--set", "secret.existingSecret=site-files")
    assert "annotations" not in bare.workload["spec"]["template"]["metadata"]


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
    rendered = render("--set", "tls.enabled=true", "--set", "tls.existingSecret=t", "--set", "websocket.enabled=true")
    exposed = re.search(r"^EXPOSE (.+)$", DOCKERFILE.read_text(), re.M).group(1).split()
    assert sorted(str(p["containerPort"]) for p in rendered.broker["ports"]) == sorted(exposed)
    assert {"1883", "8081", "8083", "8883"} == set(exposed)


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
    assert writable == {"/tmp": "tmp", "/var/lib/nanomq": "data"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["tmp"] and "emptyDir" in volumes["data"]
    assert volumes["secret"]["secret"]["defaultMode"] == 0o440


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
    assert "job" not in down["expr"]
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    result = run(promtool, "check", "rules", str(rules_file))
    count = sum(len(group["rules"]) for group in rule["spec"]["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_chart_alerts_are_the_documented_ones(render):
    shipped = (REPO / "docs" / "prometheus-rules.yaml").read_bytes()
    assert (CHART / "files" / "prometheus-rules.yaml").read_bytes() == shipped
    documented = yaml.safe_load(shipped)["groups"]
    groups = render("--set", "metrics.prometheusRule.enabled=true").one("PrometheusRule")["spec"]["groups"]
    # The release-scoped availability group replaces the file's generic one; the rest as shipped.
    assert documented[0]["name"] == "appliance-availability"
    assert groups[0]["name"] == "nq-nanomq-appliance-availability"
    assert groups[1:] == documented[1:]
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
                                 "image.pullPolicy=Sometimes", "configReload.mode=sighup", "spool.existingClaim=x",
                                 "persistence.accessModes[0]=ReadWrite", "websocket.path=mqtt",
                                 "tls.enabled=yes", "secret.files.a/b=x"])
def test_schema_rejects_wrong_values(helm, bad):
    result = run(helm, "template", "nq", str(CHART), "--set", bad, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr


def test_default_config_passes_the_brokers_check_config(render, tmp_path):
    # The rendered ConfigMap, with the rendered Secret's files where the pod mounts them.
    rendered = render()
    secret_dir = tmp_path / "nanomq-secret"
    secret_dir.mkdir()
    for key, value in rendered.one("Secret")["data"].items():
        (secret_dir / key).write_bytes(base64.b64decode(value))
    conf = tmp_path / "nanomq.conf"
    conf.write_text(rendered.configmap_text.replace("/etc/nanomq-secret/", f"{secret_dir}/"))
    result = subprocess.run([sys.executable, "-m", "appliance", "check-config", "--conf", str(conf)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warn" not in (result.stdout + result.stderr).lower()


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
    assert "default password" not in default  # the chart generates one
    assert "kubectl get secret -n edge nq-nanomq-appliance -o jsonpath='{.data.http_server\\.conf}'" in default
    assert "an emptyDir" in default
    assert "default password" in notes("--set", "secret.create=false", "--set-string",
                                       "config=http_server { password = public }")
    assert "ws://nq-nanomq-appliance.edge.svc:8083/mqtt" in notes("--set", "websocket.enabled=true")
    assert "statefulset/nq-nanomq-appliance" in notes("--set", "existingConfigMap=c", "--set", "persistence.enabled=true")
    assert "WARNING: replicaCount is 3" in notes("--set", "replicaCount=3")
    assert "port 1883 of the node" in notes("--set", "hostNetwork=true")
    assert "default password" not in notes("--set", "httpAuth.existingSecret=api")


def test_values_schema_is_valid_json_and_covers_every_top_level_value():
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert schema["additionalProperties"] is False
    assert set(values) <= set(schema["properties"])


# -- Secrets: files from a Secret, never in a ConfigMap -------------------------------------------

SENTINELS = ("s3cret-api-password", "Bearer tok-3f9a", "alice-pw-77", "BEGIN PRIVATE KEY")
SECRET_FILES_CONFIG = """\
http_server {
    port = 8081
    include required("/etc/nanomq-secret/http_server.conf")
}
webhook {
    url = "https://hooks.example.com/mqtt"
    headers { include required("/etc/nanomq-secret/webhook_headers.conf") }
    events = [{ event = "on_message_publish", topic = "#" }]
}
auth {
    allow_anonymous = false
    password = {include required("/etc/nanomq-secret/nanomq_pwd.conf")}
    acl = {include required("/etc/nanomq-secret/nanomq_acl.conf")}
}
"""


def test_secrets_in_existing_secrets_render_nothing_secret_and_mount_as_files(render, tmp_path):
    rendered = render("--set", "secret.existingSecret=site-files", "--set", "tls.enabled=true",
                      "--set", "tls.existingSecret=site-tls", "--set", "tls.caKey=ca.crt",
                      "--set", "tls.keyPasswordKey=key-password", "--set", "httpAuth.existingSecret=site-api",
                      config=SECRET_FILES_CONFIG)
    assert rendered.all("Secret") == []  # the chart makes none: the values hold no secret
    assert not any(sentinel in rendered.text for sentinel in SENTINELS)
    # Passwords only as includes of the mounted files.
    assert not re.search(r"^\s*(password|key_password)\s*[=:](?!\s*\{include required)", rendered.configmap_text,
                         re.M)
    mounts = {m["mountPath"]: m for m in rendered.broker["volumeMounts"]}
    volumes = {v["name"]: v for v in rendered.pod_spec["volumes"]}
    assert mounts["/etc/nanomq-secret"]["readOnly"] is True and "subPath" not in mounts["/etc/nanomq-secret"]
    assert volumes[mounts["/etc/nanomq-secret"]["name"]]["secret"]["secretName"] == "site-files"
    assert volumes[mounts["/etc/nanomq-tls"]["name"]]["secret"]["secretName"] == "site-tls"
    env = {e["name"]: e for e in rendered.broker["env"]}
    assert env["NANOMQ_TLS_CERT_PATH"]["value"] == "/etc/nanomq-tls/tls.crt"
    assert env["NANOMQ_TLS_KEY_PATH"]["value"] == "/etc/nanomq-tls/tls.key"
    assert env["NANOMQ_TLS_CA_CERT_PATH"]["value"] == "/etc/nanomq-tls/ca.crt"
    assert env["NANOMQ_TLS_KEY_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "site-tls", "key": "key-password"}
    assert "checksum/secret" not in deployment_annotations(rendered)

    # The broker reads every secret through those paths: the files a Secret would hold, mounted.
    files = tmp_path / "nanomq-secret"
    files.mkdir()
    (files / "http_server.conf").write_text('username = "ops"\npassword = "s3cret-api-password"\n')
    (files / "webhook_headers.conf").write_text('authorization = "Bearer tok-3f9a"\n')
    (files / "nanomq_pwd.conf").write_text('"alice": "alice-pw-77"\n')
    (files / "nanomq_acl.conf").write_text('rules = [{permit = allow, username = "#", action = pubsub, topics = ["#"]}]\n')
    conf = tmp_path / "nanomq.conf"
    conf.write_text(rendered.configmap_text.replace("/etc/nanomq-secret/", f"{files}/"))
    probe = ("import sys; from appliance.config import load_config; c = load_config(sys.argv[1], env={}).config;"
             "print(c.http_server.username, c.http_server.password, dict(c.webhook.headers)['authorization'],"
             " dict(c.auth.passwords)['alice'], len(c.auth.acl))")
    result = subprocess.run([sys.executable, "-c", probe, str(conf)], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.split() == ["ops", "s3cret-api-password", "Bearer", "tok-3f9a", "alice-pw-77", "1"], \
        result.stderr


def test_default_release_keeps_its_password_out_of_configmap_and_values(render):
    values_text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(values_text)
    assert not re.search(r"^\s*password\s*[=:]", values["config"], re.M)
    first, second = render(), render()
    secret = first.one("Secret")
    conf = base64.b64decode(secret["data"]["http_server.conf"]).decode()
    username, password = re.fullmatch(r'username = "(\w+)"\npassword = "(\w{32})"\n', conf).groups()
    assert username == "admin"
    assert password not in first.configmap_text and password not in values_text
    # Random per installation (`helm template` has no cluster to reuse the existing Secret from).
    assert base64.b64decode(second.one("Secret")["data"]["http_server.conf"]).decode() != conf
    volume = next(v for v in first.pod_spec["volumes"] if v["name"] == "secret")
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]


def test_secret_files_from_values_go_into_the_chart_made_secret_and_roll_the_pods(render):
    rendered = render("--set-string", "secret.files.nanomq_pwd\\.conf=\"alice\": \"alice-pw-77\"")
    data = rendered.one("Secret")["data"]
    assert base64.b64decode(data["nanomq_pwd.conf"]).decode() == '"alice": "alice-pw-77"'
    assert "alice-pw-77" not in rendered.configmap_text
    changed = render("--set-string", "secret.files.nanomq_pwd\\.conf=\"alice\": \"other\"")
    assert deployment_annotations(rendered)["checksum/secret"] != deployment_annotations(changed)["checksum/secret"]
    without = render("--set", "secret.create=false", config="http_server { port = 8081, auth_type = no_auth }\n")
    assert without.all("Secret") == []
    assert "secret" not in [v["name"] for v in without.pod_spec["volumes"]]


@pytest.mark.parametrize("args, message", [
    (["--set", "tls.enabled=true"], "tls.enabled needs tls.existingSecret"),
    (["--set", "tls.enabled=true", "--set", "tls.existingSecret=t", "--set", "tls.verifyPeer=true"],
     "tls.verifyPeer needs tls.caKey"),
    (["--set", "persistence.existingClaim=data", "--set", "replicaCount=2"], "replicaCount must be 1"),
    (["--set", "secret.create=false"], "config includes files from /etc/nanomq-secret/ but no Secret is mounted"),
])
def test_contradicting_values_fail_with_a_message(helm, args, message):
    result = run(helm, "template", "nq", str(CHART), *args, check=False)
    assert result.returncode != 0 and message in result.stderr


# -- Listeners: TLS and WebSocket behind switches ----------------------------------------------------

def test_tls_and_websocket_ports_are_off_by_default_and_reach_pod_service_and_broker_when_on(render):
    default = render()
    assert [p["name"] for p in default.broker["ports"]] == ["mqtt", "http"]
    assert [p["name"] for p in default.one("Service")["spec"]["ports"]] == ["mqtt", "http"]
    assert not any(e["name"].startswith(("NANOMQ_TLS", "NANOMQ_WEBSOCKET")) for e in default.broker["env"])

    rendered = render("--set", "tls.enabled=true", "--set", "tls.existingSecret=t", "--set", "websocket.enabled=true",
                      "--set", "containerPorts.ws=18083", "--set", "websocket.path=/ws",
                      "--set", "service.ports.mqtts=8884", "--set", "service.type=NodePort",
                      "--set", "service.nodePorts.mqtts=30883")
    assert {p["name"]: p["containerPort"] for p in rendered.broker["ports"]} == \
        {"mqtt": 1883, "http": 8081, "mqtts": 8883, "ws": 18083}
    service = {p["name"]: p for p in rendered.one("Service")["spec"]["ports"]}
    assert (service["mqtts"]["port"], service["mqtts"]["targetPort"], service["mqtts"]["nodePort"]) == \
        (8884, "mqtts", 30883)
    assert (service["ws"]["port"], service["ws"]["targetPort"]) == (8083, "ws") and "nodePort" not in service["ws"]
    env = {e["name"]: e.get("value") for e in rendered.broker["env"]}
    assert env["NANOMQ_TLS_ENABLE"] == "true" and env["NANOMQ_TLS_URL"] == "tls+nmq-tcp://0.0.0.0:8883"
    assert env["NANOMQ_WEBSOCKET_ENABLE"] == "true"
    assert env["NANOMQ_WEBSOCKET_URL"] == "nmq-ws://0.0.0.0:18083/ws"  # NanoMQ's URL form


def test_tls_environment_is_what_the_broker_reads(render, tmp_path):
    # The chart's NANOMQ_TLS_* variables through the broker's own config loader.
    env = {e["name"]: e["value"] for e in render("--set", "tls.enabled=true", "--set", "tls.existingSecret=t",
                                                 "--set", "tls.caKey=ca.crt", "--set", "tls.verifyPeer=true",
                                                 "--set", "tls.failIfNoPeerCert=true").broker["env"]
           if "value" in e}
    probe = ("import json, sys; from appliance.config import load_config_text;"
             "l = load_config_text('', env=json.loads(sys.argv[1])); t = [x for x in l.config.listeners if x.tls][0];"
             "print(t.port, t.tls.certfile, t.tls.keyfile, t.tls.cacertfile, t.tls.verify_peer,"
             " t.tls.fail_if_no_peer_cert, len(l.warnings))")
    result = subprocess.run([sys.executable, "-c", probe, json.dumps(env)], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.split() == ["8883", "/etc/nanomq-tls/tls.crt", "/etc/nanomq-tls/tls.key",
                                     "/etc/nanomq-tls/ca.crt", "True", "True", "0"], result.stderr


# -- Persistence: one data directory, emptyDir, existing claim or a claim per replica -----------------

def test_persistence_gives_each_replica_its_own_claim_in_a_statefulset(render):
    rendered = render("--set", "persistence.enabled=true", "--set", "persistence.size=5Gi",
                      "--set", "persistence.storageClass=local-path", "--set", "replicaCount=2")
    assert rendered.all("Deployment") == []
    sts = rendered.one("StatefulSet")
    assert sts["spec"]["replicas"] == 2 and sts["spec"]["podManagementPolicy"] == "Parallel"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                             "resources": {"requests": {"storage": "5Gi"}}}
    assert "data" not in [v["name"] for v in rendered.pod_spec["volumes"]]  # the claim template provides it
    mount = next(m for m in rendered.broker["volumeMounts"] if m["name"] == "data")
    assert mount["mountPath"] == "/var/lib/nanomq"
    headless = next(s for s in rendered.all("Service") if s["metadata"]["name"] == sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]


def test_existing_claim_keeps_a_deployment_and_mounts_the_claim(render):
    rendered = render("--set", "persistence.existingClaim=edge-data")
    volume = next(v for v in rendered.pod_spec["volumes"] if v["name"] == "data")
    assert volume == {"name": "data", "persistentVolumeClaim": {"claimName": "edge-data"}}
    assert rendered.one("Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert len(rendered.all("Service")) == 1


def test_extra_volumes_env_and_scheduling_reach_the_pod(render):
    rendered = render(*VALUES_MATRIX["statefulset-extras"])
    pod = rendered.pod_spec
    assert {"name": "upstream-ca", "secret": {"secretName": "upstream-ca"}} in pod["volumes"]
    assert {"name": "upstream-ca", "mountPath": "/etc/nanomq-upstream", "readOnly": True} in \
        rendered.broker["volumeMounts"]
    assert {"name": "NANOMQ_LOG_LEVEL", "value": "info"} == rendered.broker["env"][-1]  # after the chart's
    assert pod["priorityClassName"] == "edge-critical"
    assert pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert deployment_annotations(rendered)["team"] == "iot"


# -- Config reload ----------------------------------------------------------------------------------

def test_watch_mode_runs_the_watcher_from_the_same_image_instead_of_rolling(render):
    rolled = render()
    assert "config-watcher" not in [c["name"] for c in rolled.pod_spec["containers"]]
    assert {"checksum/config", "checksum/secret"} <= set(deployment_annotations(rolled))
    rendered = render("--set", "configReload.mode=watch", "--set", "configReload.interval=3")
    annotations = deployment_annotations(rendered)
    assert "checksum/config" not in annotations and "checksum/secret" not in annotations
    watcher = next(c for c in rendered.pod_spec["containers"] if c["name"] == "config-watcher")
    assert watcher["image"] == rendered.broker["image"]
    assert watcher["command"] == ["python", "-c", (CHART / "files" / "config_watcher.py").read_text()]
    assert {"name": "WATCH_INTERVAL", "value": "3"} in watcher["env"]
    assert all(m["readOnly"] for m in watcher["volumeMounts"])
    assert {m["mountPath"] for m in watcher["volumeMounts"]} == {"/etc/nanomq", "/etc/nanomq-secret"}
    assert watcher["securityContext"] == rendered.broker["securityContext"]


# -- Alerts: ApplianceDown by namespace and pod, not by job ----------------------------------------

def test_appliance_down_fires_whatever_the_job_is_called(render, tmp_path):
    promtool = require("promtool")
    rule = render("--set", "metrics.prometheusRule.enabled=true").one("PrometheusRule")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"][:1]}))

    def up(job: str, pod: str, namespace: str = "edge", values: str = "1 1 0 0 0 0 0 0 0 0") -> dict:
        return {"series": f'up{{job="{job}", namespace="{namespace}", pod="{pod}", instance="{pod}:8081"}}',
                "values": values}

    def alerts(eval_time: str, *pods: str) -> dict:
        return {"expr": 'ALERTS{alertname="ApplianceDown", alertstate="firing"}', "eval_time": eval_time,
                "exp_samples": [{"labels": f'ALERTS{{alertname="ApplianceDown", alertstate="firing", '
                                           f'severity="critical", job="{job}", namespace="edge", pod="{pod}", '
                                           f'instance="{pod}:8081"}}', "value": 1} for job, pod in pods]}

    tests = [
        {   # a pod-annotation job and a ServiceMonitor job; others' pods in the namespace do not count
            "interval": "1m",
            "input_series": [up("kubernetes-pods", "nq-nanomq-appliance-7d9f8b6c4-x2k9q"),
                             up("mqtt", "nq-nanomq-appliance-0"),
                             up("kubernetes-pods", "nq-nanomq-appliance-test-mqtt"),
                             up("other", "nq-nanomq-appliance-other-0"),
                             up("kubernetes-pods", "nq-nanomq-appliance-7d9f8b6c4-x2k9q", namespace="prod")],
            "promql_expr_test": [
                alerts("4m"),
                alerts("8m", ("kubernetes-pods", "nq-nanomq-appliance-7d9f8b6c4-x2k9q"),
                       ("mqtt", "nq-nanomq-appliance-0")),
            ],
        },
        {   # no target of the release at all
            "interval": "1m",
            "input_series": [up("kubernetes-pods", "something-else-0", values="1x10")],
            "promql_expr_test": [{"expr": 'ALERTS{alertname="ApplianceDown", alertstate="firing"}',
                                  "eval_time": "6m",
                                  "exp_samples": [{"labels": 'ALERTS{alertname="ApplianceDown", alertstate="firing",'
                                                             ' severity="critical", namespace="edge"}',
                                                   "value": 1}]}],
        },
    ]
    test_file = tmp_path / "test.yaml"
    test_file.write_text(json.dumps({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}))
    result = run(promtool, "test", "rules", str(test_file), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_values_schema_describes_every_nested_value():
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = []

    def walk(value, node, path):
        if not isinstance(value, dict) or "properties" not in node:
            return
        for key, child in value.items():
            if key in node["properties"]:
                walk(child, node["properties"][key], f"{path}.{key}")
            elif node.get("additionalProperties", True) is False:
                missing.append(f"{path}.{key}")

    walk(values, schema, "")
    assert missing == []
    for section in ("secret", "tls", "websocket", "persistence", "configReload"):
        assert schema["properties"][section]["additionalProperties"] is False
    for name in ("extraVolumes", "extraVolumeMounts", "extraEnv", "podAnnotations", "nodeSelector", "tolerations",
                 "affinity", "priorityClassName"):
        assert name in schema["properties"]
