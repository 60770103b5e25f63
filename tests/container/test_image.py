"""The image built from docker/Dockerfile, run with podman on the host network (loopback ports only).

A config directory is mounted read-only at /etc/nanomq as Kubernetes mounts the ConfigMap; MQTT
goes through paho-mqtt, webhooks reach a real HTTP server on the host, a real Prometheus scrapes.
"""

from __future__ import annotations

import base64
import json
import os
import re
import queue
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import paho.mqtt.client as mqtt
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .tooling import CHART, REPO, free_port, require, run, unavailable

pytestmark = pytest.mark.container

UID = "10001"
# Every container: host network (loopback ports only), and as docs/deploy.md's `docker run`:
# a read-only root without podman's extra tmpfs mounts, no capabilities, no privilege gain.
RUN_FLAGS = ("--network", "host", "--read-only", "--read-only-tmpfs=false", "--cap-drop", "ALL",
             "--security-opt", "no-new-privileges", "--health-interval", "disable")


@pytest.fixture(scope="module")
def podman() -> str:
    return require("podman")


@pytest.fixture(scope="module")
def image(podman) -> str:
    name = os.environ.get("APPLIANCE_IMAGE")
    if not name:
        unavailable("APPLIANCE_IMAGE is not set (bash .ci/container.sh builds the image and sets it)")
    return name


class WebhookReceiver(ThreadingHTTPServer):
    """A real HTTP server on 127.0.0.1 that queues every POST it gets as (path, headers, JSON body)."""

    def __init__(self):
        self.posts: queue.Queue = queue.Queue()
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def next_post(self, predicate, timeout: float = 15):
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                post = self.posts.get(timeout=left)
            except queue.Empty:
                break
            if predicate(post[2]):
                return post
        pytest.fail("no matching webhook POST arrived")


class _ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.put((self.path, dict(self.headers), json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@dataclass
class Container:
    name: str
    mqtt_port: int
    http_port: int


def start(podman: str, image: str, *args: str, http_port: int, mqtt_port: int) -> Container:
    """podman run -d on the host network, then wait until /readyz answers (or the container dies)."""
    name = f"appliance-test-{uuid.uuid4().hex[:8]}"
    run(podman, "run", "-d", "--name", name, *RUN_FLAGS, *args, image)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=1) as response:
                if response.status == 200:
                    return Container(name, mqtt_port, http_port)
        except OSError:
            state = run(podman, "inspect", "--format", "{{.State.Status}}", name).stdout.strip()
            if state != "running":
                logs = run(podman, "logs", name, check=False)
                pytest.fail(f"container {state}:\n{logs.stdout}{logs.stderr}")
            time.sleep(0.1)
    pytest.fail(f"/readyz on port {http_port} never answered 200")


def config_directory(directory, text: str):
    """`directory` holding nanomq.conf = `text`, readable by the image's user when mounted."""
    (directory / "nanomq.conf").write_text(text)
    (directory / "nanomq.conf").chmod(0o644)
    directory.chmod(0o755)
    return directory


def remove(podman: str, container: Container) -> None:
    subprocess.run([podman, "rm", "-f", "-t", "0", container.name], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def receiver():
    server = WebhookReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def broker(podman, image, receiver, tmp_path_factory):
    """The image with a mounted config: loopback listener, webhook to the receiver; the HTTP port
    comes from NANOMQ_HTTP_SERVER_PORT, overriding the file as the Helm chart does."""
    mqtt_port, http_port = free_port(), free_port()
    etc = config_directory(
        tmp_path_factory.mktemp("etc-nanomq"),
        f'listeners.tcp {{ bind = "127.0.0.1:{mqtt_port}" }}\n'
        'http_server { port = 8081, bind = "127.0.0.1" }\n'
        "log.level = info\n"
        "webhook {\n"
        f'    url = "http://127.0.0.1:{receiver.port}/hook?site=edge-1"\n'
        '    events = [{ event = "on_message_publish", topic = "container-test/hook/#" }]\n'
        "}\n")
    container = start(podman, image, "-v", f"{etc}:/etc/nanomq:ro", "-e", f"NANOMQ_HTTP_SERVER_PORT={http_port}",
                      http_port=http_port, mqtt_port=mqtt_port)
    yield container
    remove(podman, container)


def connected_client(port: int, client_id: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    assert connected.wait(10), "no CONNACK"
    return client


def publish(port: int, topic: str, payloads: list[bytes], qos: int = 1) -> None:
    client = connected_client(port, f"pub-{uuid.uuid4().hex[:6]}")
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=qos).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_image_metadata_names_user_ports_healthcheck_and_labels(podman, image):
    (info,) = json.loads(run(podman, "image", "inspect", image).stdout)
    config = info["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert set(config["ExposedPorts"]) == {"1883/tcp", "8081/tcp", "8083/tcp", "8883/tcp"}
    assert config["Entrypoint"] == ["python", "-m", "appliance"]
    assert info["Healthcheck"]["Test"] == ["CMD", "python", "/app/healthcheck.py"]  # needs --format docker
    assert "NANOMQ_CONF_PATH=/etc/nanomq/nanomq.conf" in config["Env"]
    assert config["Labels"]["org.opencontainers.image.title"] == "nanomq-appliance"
    assert "MQTT 3.1, 3.1.1 and 5.0" in config["Labels"]["org.opencontainers.image.description"]
    assert config["StopSignal"] == "SIGTERM"


def test_shipped_default_config_passes_check_config(podman, image):
    result = run(podman, "run", "--rm", *RUN_FLAGS, image, "check-config")
    assert result.stdout.strip() == "/etc/nanomq/nanomq.conf: OK"


def test_a_broken_mounted_config_stops_start_up_with_a_clear_error(podman, image, tmp_path):
    etc = config_directory(tmp_path, 'listeners.tcp {\n    bind = "nowhere"\n}\n')
    result = run(podman, "run", "--rm", *RUN_FLAGS, "-v", f"{etc}:/etc/nanomq:ro", image, check=False)
    assert result.returncode != 0
    assert "/etc/nanomq/nanomq.conf:2" in result.stderr and "listeners.tcp.bind" in result.stderr
    assert "Traceback" not in result.stderr


def test_broker_runs_as_the_non_root_user(podman, broker):
    assert run(podman, "exec", broker.name, "id", "-u").stdout.strip() == UID


def test_data_directory_is_owned_by_the_broker_user(podman, image):
    # A fresh named volume copies the image directory's owner: the non-root broker can write it.
    listing = run(podman, "run", "--rm", *RUN_FLAGS, "--entrypoint", '["stat", "-c", "%u:%g %a %n"]', image,
                  "/var/lib/nanomq", "/var/lib/nanomq/spool").stdout.split("\n")
    assert [line.split()[0] for line in listing if line] == [f"{UID}:{UID}", f"{UID}:{UID}"]


def test_mqtt_publish_subscribe_round_trip_through_the_container(broker):
    received: queue.Queue = queue.Queue()
    subscriber = connected_client(broker.mqtt_port, "container-sub")
    subscribed = threading.Event()
    subscriber.on_subscribe = lambda *args: subscribed.set()
    subscriber.on_message = lambda client, userdata, message: received.put((message.topic, message.payload))
    subscriber.subscribe("container-test/round-trip/+", qos=1)
    assert subscribed.wait(10)
    try:
        publish(broker.mqtt_port, "container-test/round-trip/a", [b"hello from the host"])
        assert received.get(timeout=10) == ("container-test/round-trip/a", b"hello from the host")
    finally:
        subscriber.disconnect()
        subscriber.loop_stop()


def test_webhook_reaches_a_receiver_on_the_host(broker, receiver):
    token = uuid.uuid4().hex
    publish(broker.mqtt_port, "container-test/hook/t1", [token.encode()])
    path, headers, body = receiver.next_post(lambda body: body.get("payload") == token)
    assert path == "/hook?site=edge-1"
    assert headers["Content-Type"] == "application/json"
    assert body["action"] == "message_publish"
    assert body["topic"] == "container-test/hook/t1"
    assert body["qos"] == 1 and body["retain"] is False


def test_metrics_endpoint_serves_prometheus_text(broker):
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.http_port}/metrics", timeout=5) as response:
        content_type = response.headers["Content-Type"]
        families = {family.name for family in text_string_to_metric_families(response.read().decode())}
    assert content_type.startswith("text/plain; version=0.0.4")
    assert {"appliance_connections", "appliance_messages_received", "appliance_webhook_events"} <= families


def test_real_prometheus_scrapes_the_container(broker, tmp_path):
    prometheus = require("prometheus")
    web_port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - {{job_name: appliance, static_configs: [{{targets: ['127.0.0.1:{broker.http_port}']}}]}}\n")
    process = subprocess.Popen(
        [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{web_port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        publish(broker.mqtt_port, "container-test/scrape", [b"1", b"2", b"3"])

        def query(expr: str) -> float | None:
            url = f"http://127.0.0.1:{web_port}/api/v1/query?query={urllib.parse.quote(expr)}"
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    result = json.load(response)["data"]["result"]
            except OSError:
                return None
            return float(result[0]["value"][1]) if result else None

        # Prometheus applies new targets on a ~5 s tick: wait for the samples, bounded.
        deadline = time.monotonic() + 45
        received = None
        while time.monotonic() < deadline and process.poll() is None:
            received = query('sum(appliance_messages_received_total{job="appliance"})')
            if received is not None and received >= 3:
                break
            time.sleep(0.5)
        assert process.poll() is None, process.stderr.read()
        assert received is not None and received >= 3, f"Prometheus saw {received} messages received"
        assert query('up{job="appliance"}') == 1.0
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_healthcheck_reports_healthy(podman, broker):
    result = run(podman, "healthcheck", "run", broker.name, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    health = json.loads(run(podman, "inspect", "--format", "{{json .State.Health}}", broker.name).stdout)
    assert health["Status"] == "healthy"
    assert f":{broker.http_port}/healthz answered 200" in health["Log"][-1]["Output"]


def test_helm_test_round_trip_passes_against_the_image(podman, image, broker):
    # The exact command of the chart's test pod, in the same image, pointed at this broker.
    command = ["python", "-c", (CHART / "files" / "mqtt_roundtrip.py").read_text()]
    result = run(podman, "run", "--rm", *RUN_FLAGS, "-e", "MQTT_HOST=127.0.0.1", "-e", f"MQTT_PORT={broker.mqtt_port}",
                 "--entrypoint", json.dumps(command), image, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: MQTT round trip")


def test_sigterm_stops_the_default_config_container_gracefully_before_the_kill_timeout(podman, image):
    mqtt_port, http_port = free_port(), free_port()
    container = start(podman, image, "-e", f"NANOMQ_BROKER_URL=nmq-tcp://127.0.0.1:{mqtt_port}",
                      "-e", f"NANOMQ_HTTP_SERVER_PORT={http_port}", "-e", "NANOMQ_HTTP_SERVER_URL=127.0.0.1",
                      http_port=http_port, mqtt_port=mqtt_port)
    client = connected_client(mqtt_port, "connected-at-shutdown")
    try:
        started = time.monotonic()
        run(podman, "stop", "-t", "10", container.name)
        elapsed = time.monotonic() - started
        exit_code = run(podman, "inspect", "--format", "{{.State.ExitCode}}", container.name).stdout.strip()
        # 137 would be the SIGKILL that podman sends after the 10 s timeout.
        assert exit_code == "0", run(podman, "logs", container.name, check=False).stderr
        assert elapsed < 10, f"podman stop took {elapsed:.1f} s"
    finally:
        client.loop_stop()
        remove(podman, container)


def test_chart_deployment_runs_under_podman_kube_play(podman, image, render, tmp_path):
    # The rendered Deployment, ConfigMap and Secret as they are, so the chart's securityContext,
    # config and secret mounts and emptyDirs are what the broker runs with. Test-only changes:
    # hostPorts on loopback, and the Secret's files through a hostPath: podman 4.3.1's kube play
    # panics on secret volumes (nil pointer in VolumeFromSecret). With configReload.mode watch,
    # so the config-watcher sidecar runs next to the broker as in a cluster.
    repository, tag = image.rsplit(":", 1)
    rendered = render("--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
                      "--set", "image.pullPolicy=Never", "--set", "configReload.mode=watch",
                      "--set", "configReload.interval=1", release="kp")
    deployment = rendered.one("Deployment")
    mqtt_port, http_port = free_port(), free_port()
    for port, host_port in zip(rendered.broker["ports"], (mqtt_port, http_port)):
        port.update(hostPort=host_port, hostIP="127.0.0.1")
    secret = rendered.one("Secret")
    files = tmp_path / "secret"
    files.mkdir(mode=0o755)
    for key, value in secret["data"].items():
        (files / key).write_bytes(base64.b64decode(value))
        (files / key).chmod(0o644)
    (volume,) = [v for v in rendered.pod_spec["volumes"] if v["name"] == "secret"]
    assert volume.pop("secret")["secretName"] == secret["metadata"]["name"]
    volume["hostPath"] = {"path": str(files), "type": "Directory"}
    credentials = dict(re.findall(r'(\w+) = "([^"]*)"', (files / "http_server.conf").read_text()))
    (tmp_path / "deployment.yaml").write_text(yaml.safe_dump(deployment))
    # A ConfigMap passed with --configmap is readable by the non-root user (one inside the
    # played file is not, in podman 4.3).
    (tmp_path / "configmap.yaml").write_text(yaml.safe_dump(rendered.one("ConfigMap")))
    run(podman, "kube", "play", "--network", "slirp4netns", "--configmap", str(tmp_path / "configmap.yaml"),
        str(tmp_path / "deployment.yaml"))
    try:
        names = run(podman, "ps", "--format", "{{.Names}}").stdout.split()
        (broker,) = [name for name in names if name.startswith("kp-nanomq-appliance-") and name.endswith("-broker")]
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=1) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, run(podman, "logs", broker, check=False).stderr
                time.sleep(0.1)
        assert run(podman, "exec", broker, "id", "-u").stdout.strip() == UID
        config = run(podman, "exec", broker, "cat", "/etc/nanomq/nanomq.conf").stdout
        assert config == rendered.one("ConfigMap")["data"]["nanomq.conf"]
        assert credentials["password"] not in config
        assert run(podman, "exec", broker, "touch", "/var/lib/nanomq/spool-probe", "/tmp/probe").returncode == 0
        assert run(podman, "exec", broker, "touch", "/etc/probe", check=False).returncode != 0  # read-only root
        # /api/v4 takes the generated credentials from the Secret's file, and nothing else.
        api = f"http://127.0.0.1:{http_port}/api/v4/metrics"

        def api_status(username: str, password: str) -> int:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            request = urllib.request.Request(api, headers={"Authorization": f"Basic {token}"})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code

        assert api_status(credentials["username"], credentials["password"]) == 200
        assert api_status("admin", "public") == 401
        received = threading.Event()
        subscriber = connected_client(mqtt_port, "kube-play-sub")
        subscriber.on_message = lambda *args: received.set()
        subscribed = threading.Event()
        subscriber.on_subscribe = lambda *args: subscribed.set()
        subscriber.subscribe("kube-play/#", qos=1)
        assert subscribed.wait(10)
        publish(mqtt_port, "kube-play/x", [b"through the chart's pod"])
        assert received.wait(10)
        subscriber.disconnect()
        subscriber.loop_stop()

        # The watcher sees the Secret's directory change and asks the broker in the pod to reload.
        (watcher,) = [name for name in names if name.startswith("kp-nanomq-appliance-")
                      and name.endswith("-config-watcher")]
        (files / "extra.conf").write_text("# a new key of the Secret\n")
        (files / "extra.conf").chmod(0o644)
        outcomes = ("the broker reloaded them (200)", "this broker has no /api/v4/reload; restart the pod")
        deadline = time.monotonic() + 20
        while not any(outcome in (logs := run(podman, "logs", watcher).stdout) for outcome in outcomes):
            assert time.monotonic() < deadline, logs
            time.sleep(0.2)
        assert "watching /etc/nanomq, /etc/nanomq-secret every 1 s" in logs
    finally:
        run(podman, "kube", "down", str(tmp_path / "deployment.yaml"), check=False)
        run(podman, "volume", "rm", "-f", rendered.one("ConfigMap")["metadata"]["name"], check=False)


def test_compose_webhook_example_receives_the_brokers_events(podman, image, tmp_path):
    # docker/compose.yaml's webhook profile, on loopback: its receiver script and broker config,
    # with only the receiver's address changed (compose resolves "webhook-receiver" for it).
    receiver_port, mqtt_port, http_port = free_port(), free_port(), free_port()
    receiver = f"appliance-test-receiver-{uuid.uuid4().hex[:6]}"
    script = REPO / "docker" / "webhook_receiver.py"
    run(podman, "run", "-d", "--name", receiver, *RUN_FLAGS, "-v", f"{script}:/srv/webhook_receiver.py:ro",
        "-e", "WEBHOOK_RECEIVER_BIND=127.0.0.1", "-e", f"WEBHOOK_RECEIVER_PORT={receiver_port}",
        "--entrypoint", '["python", "/srv/webhook_receiver.py"]', image)
    config = (REPO / "docker" / "config-webhook" / "nanomq.conf").read_text()
    etc = config_directory(tmp_path, config.replace("webhook-receiver:8080", f"127.0.0.1:{receiver_port}"))
    # A fresh named volume over /var/lib/nanomq, as compose's "spool" volume: it takes the
    # image directory's owner, so the non-root broker can create the spool in it.
    broker = start(podman, image, "-v", f"{etc}:/etc/nanomq:ro", "-v", f"{receiver}-spool:/var/lib/nanomq",
                   "-e", f"NANOMQ_BROKER_URL=nmq-tcp://127.0.0.1:{mqtt_port}",
                   "-e", f"NANOMQ_HTTP_SERVER_PORT={http_port}", "-e", "NANOMQ_HTTP_SERVER_URL=127.0.0.1",
                   http_port=http_port, mqtt_port=mqtt_port)
    try:
        token = uuid.uuid4().hex
        publish(mqtt_port, "compose/example", [token.encode()])
        deadline = time.monotonic() + 15
        while token not in (printed := run(podman, "logs", receiver).stdout):
            assert time.monotonic() < deadline, f"the receiver printed:\n{printed}"
            time.sleep(0.2)
        event = json.loads(next(line for line in printed.splitlines() if token in line))
        assert event["action"] == "message_publish" and event["topic"] == "compose/example"
        assert '"action":"client_connack"' in printed
    finally:
        remove(podman, broker)
        subprocess.run([podman, "rm", "-f", "-t", "0", receiver], capture_output=True, timeout=60)
        subprocess.run([podman, "volume", "rm", "-f", f"{receiver}-spool"], capture_output=True, timeout=60)
