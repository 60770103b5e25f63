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


def _one_error_line(result):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_log_dir_that_does_not_exist_is_exit_2_naming_file_line_and_key(tmp_path):
    conf = tmp_path / "log.conf"
    conf.write_text('log {\n  to = [file]\n  dir = "/nonexistent"\n}\n')
    for command in ("check-config", "start"):
        result = _run(command, "--conf", str(conf))
        assert result.returncode == 2
        assert _one_error_line(result) == (f"error: {conf}:3: log.dir: /nonexistent does not exist "
                                           "(log.to includes file)")


def test_spool_dir_that_is_a_file_is_exit_2_naming_the_key(tmp_path):
    spool = tmp_path / "spool"
    spool.write_text("not a directory")
    conf = tmp_path / "spool.conf"
    conf.write_text(f'webhook {{\n  url = "http://127.0.0.1:1/"\n  queue.spool_dir = "{spool}"\n}}\n')
    result = _run("check-config", "--conf", str(conf))
    assert result.returncode == 2
    assert _one_error_line(result) == f"error: {conf}:3: webhook.queue.spool_dir: {spool} is a file, not a directory"


def test_corrupt_spool_file_is_exit_2_in_one_line_naming_the_key(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "webhook-spool.sqlite3").write_bytes(b"this is not an sqlite database at all\n" * 100)
    conf = tmp_path / "spool.conf"
    conf.write_text(BASE_CONFIG.replace("level = info", "level = warn") +
                    f'webhook {{\n  url = "http://127.0.0.1:1/"\n  queue.spool_dir = "{spool}"\n'
                    '  events = [{event = on_client_connack}]\n}\n')
    result = _run("start", "--conf", str(conf))
    assert result.returncode == 2
    line = _one_error_line(result)
    assert f"{conf}:6: webhook.queue.spool_dir:" in line and str(spool) in line


def test_bind_address_that_is_not_an_ip_is_exit_2_before_start(tmp_path):
    conf = tmp_path / "bind.conf"
    conf.write_text('listeners.tcp {\n  bind = "999.1.1.1:1883"\n}\n')
    result = _run("start", "--conf", str(conf))
    assert result.returncode == 2
    assert _one_error_line(result) == (f"error: {conf}:2: listeners.tcp.bind: '999.1.1.1' is not an IPv4 "
                                       "address (each part 0..255)")


def test_bind_failure_is_said_once_and_exits_1(tmp_path):
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        for targets in ("[console]", "[file]"):
            conf = tmp_path / "taken.conf"
            conf.write_text(f'listeners.tcp {{ bind = "127.0.0.1:{port}" }}\n'
                            f'log {{ to = {targets}, dir = "{tmp_path}", level = warn }}\n')
            result = _run("start", "--conf", str(conf))
            assert result.returncode == 1
            assert "cannot start" in _one_error_line(result)
            assert result.stderr.count("cannot start") == 1
    finally:
        taken.close()


NANOMQ_OLD_CONF = """\
## NanoMQ Configuration 0.18.0 (nanomq_old.conf)
url=nmq-tcp://127.0.0.1:{port}
daemon=false
msq_len=64
allow_anonymous=false
tls.enable=false
tls.url=tls+nmq-tcp://0.0.0.0:8883
http_server.enable=false
log.level=info
auth.1.login = alice
auth.1.password = alicepw
web.hook.enable=true
web.hook.url=http://127.0.0.1:9/hook
web.hook.rule.message.publish.1={{"action": "on_message_publish", "topic": "a/#"}}
"""


def _free_port():
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def test_nanomq_old_key_value_format_is_read_as_the_broker_it_describes(tmp_path):
    # Parsed as HOCON, `//` in url= starts a comment: this used to start a default broker on
    # 0.0.0.0:1883 with anonymous access and no webhook.
    from appliance.config import load_config

    conf = tmp_path / "nanomq_old.conf"
    conf.write_text(NANOMQ_OLD_CONF.format(port=2883))
    loaded = load_config(str(conf), env={})
    config = loaded.config
    assert [(listener.host, listener.port) for listener in config.listeners] == [("127.0.0.1", 2883)]
    assert config.mqtt.max_mqueue_len == 64
    assert config.auth.allow_anonymous is False and config.auth.passwords == (("alice", "alicepw"),)
    assert config.webhook.url == "http://127.0.0.1:9/hook"
    assert [(rule.event, rule.topic) for rule in config.webhook.rules] == [("on_message_publish", "a/#")]
    assert config.http_server is None
    assert any("pre-0.14 key=value format" in warning for warning in loaded.warnings)
    assert f"{conf}:3: system is not implemented (ignored)" in loaded.warnings


def test_old_format_values_are_checked_with_the_old_file_line(tmp_path):
    conf = tmp_path / "nanomq_old.conf"
    conf.write_text("url=nmq-tcp://0.0.0.0:1883\nmsq_len=0\n")
    result = _run("check-config", "--old_conf", str(conf))
    assert result.returncode == 2
    assert _one_error_line(result) == (f"error: {conf}:2: mqtt.max_mqueue_len (written msq_len=): "
                                       "must be 1 or more, got 0")


def test_old_conf_flag_as_nanomq_spells_it_starts_that_broker(tmp_path, mqtt):
    import signal

    port = _free_port()
    conf = tmp_path / "old.conf"
    conf.write_text(NANOMQ_OLD_CONF.format(port=port).replace("web.hook.enable=true", "web.hook.enable=false"))
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "start", "--old_conf", str(conf)], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for line in proc.stderr:
            if "listening on" in line:
                assert f"127.0.0.1:{port}" in line
                break
        assert mqtt(port, "anonymous").connect()[1] != 0  # allow_anonymous=false is honoured
        alice = mqtt(port, "alice")
        alice.client.username_pw_set("alice", "alicepw")
        assert alice.connect()[1] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def test_http_server_ip_addr_is_where_the_http_server_binds(broker_factory):
    base = 'listeners.tcp { bind = "127.0.0.1:0" }\nlog { to = [console], level = info }\n'
    broker = broker_factory('http_server { ip_addr = "127.0.0.1", port = 0 }\n', base=base)
    line = broker.wait_for_log("HTTP server listening on")
    assert "listening on 127.0.0.1:" in line


def test_no_http_server_block_starts_no_http_server(broker_factory):
    base = 'listeners.tcp { bind = "127.0.0.1:0" }\nlog { to = [console], level = info }\n'
    broker = broker_factory(base=base, http=False)
    broker.stop()
    assert "HTTP server" not in broker.logs()


def test_known_nanomq_keys_we_do_not_implement_say_not_implemented(tmp_path):
    conf = tmp_path / "nanomq.conf"
    conf.write_text('mqtt {\n  batch_resend = true\n}\nhttp_server {\n  max_body = 65535\n}\n')
    result = _run("check-config", "--conf", str(conf))
    assert result.returncode == 0
    assert f"{conf}:2: mqtt.batch_resend is not implemented (ignored)" in result.stderr
    assert f"{conf}:5: http_server.max_body is not implemented (ignored)" in result.stderr
    assert "unknown" not in result.stderr


def test_check_config_show_prints_each_value_and_where_it_came_from_never_a_secret(tmp_path):
    conf = tmp_path / "show.conf"
    conf.write_text('mqtt {\n  max_packet_size = 2MB\n}\nhttp_server {\n  password = "s3cret-value"\n}\n')
    result = _run("check-config", "--show", "--conf", str(conf), env={"NANOMQ_LOG_LEVEL": "debug"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"mqtt.max_packet_size = 2MB  # {conf}:2" in lines
    assert "mqtt.max_mqueue_len = 2048  # default" in lines
    assert "log.level = debug  # environment NANOMQ_LOG_LEVEL" in lines
    assert f"http_server.password = (set)  # {conf}:5" in lines
    assert "webhook: off  # no webhook block" in lines
    assert "s3cret-value" not in result.stdout + result.stderr


def test_log_dir_with_a_trailing_slash_is_created_as_nanomq_does(broker_factory, tmp_path):
    log_dir = tmp_path / "new" / "logs"
    broker = broker_factory(f'log {{ to = [console, file], dir = "{log_dir}/", file = "b.log", level = info }}\n')
    broker.stop()
    assert "listening on" in (log_dir / "b.log").read_text()
