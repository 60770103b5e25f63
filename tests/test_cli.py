"""The command line: start, check-config, --conf and NANOMQ_CONF_PATH, exit codes."""

import os
import subprocess
import sys

from tests.conftest import BASE_CONFIG, ROOT


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "appliance", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=30, env={**os.environ, **(env or {})})


def test_check_config_accepts_the_shipped_file():
    result = _run("check-config", "--conf", "etc/nanomq.conf")
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr


def test_check_config_reports_a_syntax_error_in_one_line_with_exit_2(tmp_path):
    conf = tmp_path / "broken.conf"
    conf.write_text('listeners.tcp {\n  bind = "0.0.0.0:1883"\n')
    result = _run("check-config", "--conf", str(conf))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(conf) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_wrong_value_names_the_key_and_line_and_start_refuses_it(tmp_path):
    conf = tmp_path / "wrong.conf"
    conf.write_text('mqtt {\n  max_packet_size = lots\n}\n')
    result = _run("start", "--conf", str(conf))
    assert result.returncode == 2
    assert "mqtt.max_packet_size" in result.stderr and ":2" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_key_is_a_warning_naming_its_path(tmp_path):
    conf = tmp_path / "unknown.conf"
    conf.write_text(BASE_CONFIG + "mqtt { frobnicate = 1 }\n")
    result = _run("check-config", "--conf", str(conf))
    assert result.returncode == 0
    assert "mqtt.frobnicate" in result.stderr


def test_nanomq_conf_path_selects_the_file(tmp_path):
    conf = tmp_path / "env.conf"
    conf.write_text("mqtt { max_packet_size = nope }\n")
    result = _run("check-config", env={"NANOMQ_CONF_PATH": str(conf)})
    assert result.returncode == 2 and str(conf) in result.stderr


def test_start_spelling_runs_the_broker(broker_factory, mqtt):
    broker = broker_factory(command=("start",))  # NanoMQ's `nanomq start --conf FILE`
    client = mqtt(broker.port, "cli")
    assert client.connect()[1] == 0


def test_named_listeners_all_serve(broker_factory, mqtt):
    broker = broker_factory('listeners.tcp.second { bind = "127.0.0.1:0" }\n', listeners=2)
    assert set(broker.mqtt_ports) == {"tcp", "tcp.second"}
    for name, port in broker.mqtt_ports.items():
        assert mqtt(port, f"via-{name}").connect()[1] == 0


def test_broker_url_environment_override_moves_the_listener(broker_factory, mqtt):
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    broker = broker_factory(env={"NANOMQ_BROKER_URL": f"nmq-tcp://127.0.0.1:{port}"})
    assert broker.port == port
    assert mqtt(port, "env").connect()[1] == 0


def test_log_to_file_writes_where_the_log_block_says(broker_factory, tmp_path):
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    broker = broker_factory(f'log {{ to = [console, file], dir = "{log_dir}", file = "broker.log" }}\n')
    broker.stop()
    assert "listening on" in (log_dir / "broker.log").read_text()
