"""The webhook block exactly per shared/spec/webhook.md, the pre-0.18 form and the doc's invalid form."""

import pytest

from appliance.config import ConfigError, load_config
from appliance.config.model import WebhookConfig, WebhookQueue, WebhookRetry, WebhookRule, WebhookTls

URL = 'url = "http://127.0.0.1:8080/hook?x=1"'


def load(tmp_path, text, env=None):
    path = tmp_path / "nanomq.conf"
    path.write_text(text)
    return load_config(str(path), env=env or {})


def test_no_webhook_block_means_no_webhook(tmp_path):
    assert load(tmp_path, "").config.webhook is None


def test_spec_example_with_shared_options_beside_events_loads(tmp_path):
    # The "Several rules, and the shared options" example of the spec, verbatim.
    loaded = load(
        tmp_path,
        """
webhook {
    url = "http://127.0.0.1:80"
    headers.content-type = "application/json"
    body.encoding = plain
    pool_size = 32
    events = [
        {
            event = "on_message_publish"
            topic = "a/b/c"
        }
        {
            event = "on_client_connack"
        }
    ]
}
""",
    )
    assert loaded.warnings == []
    assert loaded.config.webhook == WebhookConfig(
        url="http://127.0.0.1:80",
        rules=(WebhookRule("on_message_publish", "a/b/c", 0), WebhookRule("on_client_connack", None, 1)),
        headers=(("content-type", "application/json"),),
        encoding="plain",
        pool_size=32,
    )


def test_spec_trigger_rule_example_in_dotted_form_loads(tmp_path):
    # The spec's "forward a/b/c and foo/#" example, beside the url it needs.
    config = load(
        tmp_path,
        """
webhook.url = "http://127.0.0.1:80"
webhook.events = [
    {
        event = "on_message_publish"
        topic = "a/b/c"
    }
    {
        event = "on_message_publish"
        topic = "foo/#"
    }
]
""",
    ).config
    assert config.webhook.rules == (
        WebhookRule("on_message_publish", "a/b/c", 0),
        WebhookRule("on_message_publish", "foo/#", 1),
    )


def test_every_webhook_key_is_read(tmp_path, tmp_path_factory):
    certs = tmp_path_factory.mktemp("certs")
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (certs / name).write_text("-----BEGIN-----\n")
    spool = tmp_path / "spool"
    config = load(
        tmp_path,
        f"""
webhook {{
    url = "https://hooks.example.com:8443/in"
    headers.content-type = "application/x-json"
    headers.authorization = "Bearer abc"
    body.encoding = BASE62
    pool_size = 4
    cancel_timeout = 1500
    enable = true
    ssl {{
        cacertfile = "{certs / 'ca.pem'}"
        certfile = "{certs / 'cert.pem'}"
        keyfile = "{certs / 'key.pem'}"
        key_password = "pw"
        verify_peer = false
    }}
    events = [ {{ event = On_Client_Disconnected }} ]
    retry {{ max_attempts = 3, backoff_min = 50ms, backoff_max = 2s }}
    queue {{ max_len = 10, spool_dir = "{spool}" }}
    drain_timeout = 1s
}}
""",
    ).config
    assert config.webhook == WebhookConfig(
        url="https://hooks.example.com:8443/in",
        rules=(WebhookRule("on_client_disconnected", None, 0),),
        headers=(("content-type", "application/x-json"), ("authorization", "Bearer abc")),
        encoding="base62",
        pool_size=4,
        cancel_timeout=1.5,
        tls=WebhookTls(
            cacertfile=str(certs / "ca.pem"),
            certfile=str(certs / "cert.pem"),
            keyfile=str(certs / "key.pem"),
            key_password="pw",
            verify_peer=False,
        ),
        retry=WebhookRetry(max_attempts=3, backoff_min=0.05, backoff_max=2.0),
        queue=WebhookQueue(max_len=10, spool_dir=str(spool)),
        drain_timeout=1.0,
    )


def test_tls_is_an_alias_of_ssl(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    config = load(tmp_path, f'webhook {{ url = "https://h/", tls {{ cacertfile = "{ca}" }} }}').config
    assert config.webhook.tls.cacertfile == str(ca)


def test_ssl_and_tls_together_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="webhook.tls: write either webhook.ssl or webhook.tls"):
        load(tmp_path, 'webhook { url = "https://h/", ssl { verify_peer = true }, tls { verify_peer = true } }')


def test_ssl_for_an_http_url_warns_that_it_is_unused(tmp_path):
    loaded = load(tmp_path, f"webhook {{\n {URL}\n ssl {{ cacertfile = /nonexistent }}\n}}")
    assert loaded.warnings == [f"{tmp_path / 'nanomq.conf'}:3: webhook.ssl is only used for https URLs (ignored)"]


def test_missing_certificate_file_for_https_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r":3: webhook.ssl.cacertfile: file not found: /nonexistent/ca.pem"):
        load(tmp_path, 'webhook {\n url = "https://h/"\n ssl.cacertfile = "/nonexistent/ca.pem"\n}')


def test_event_names_are_case_insensitive_and_stored_lower_case(tmp_path):
    config = load(tmp_path, f'webhook {{ {URL}, events = [ {{ event = "ON_Message_Publish", topic = "x/+" }} ] }}').config
    assert config.webhook.rules == (WebhookRule("on_message_publish", "x/+", 0),)


def test_publish_rule_without_topic_matches_all_topics(tmp_path):
    config = load(tmp_path, f"webhook {{ {URL}, events = [ {{ event = on_message_publish }} ] }}").config
    assert config.webhook.rules == (WebhookRule("on_message_publish", None, 0),)


def test_enable_false_means_no_webhook(tmp_path):
    loaded = load(tmp_path, "webhook { enable = false, events = [ { event = on_nothing } ] }")
    assert loaded.config.webhook is None
    assert loaded.warnings == []


def test_emqx_events_nanomq_never_fires_are_kept_without_a_warning(tmp_path):
    loaded = load(
        tmp_path,
        f"webhook {{\n {URL}\n events = [\n  {{ event = on_client_connack }}\n  {{ event = on_session_terminated }}\n"
        f"  {{ event = On_Message_Delivered, topic = \"a/#\" }}\n ]\n}}",
    )
    assert loaded.config.webhook.rules == (WebhookRule("on_client_connack", None, 0),
                                           WebhookRule("on_session_terminated", None, 1),
                                           WebhookRule("on_message_delivered", "a/#", 2))
    assert loaded.warnings == []


def test_topic_on_a_non_publish_rule_warns(tmp_path):
    loaded = load(tmp_path, f'webhook {{\n {URL}\n events = [ {{ event = on_client_connack, topic = "a" }} ]\n}}')
    assert loaded.config.webhook.rules == (WebhookRule("on_client_connack", None, 0),)
    assert loaded.warnings == [
        f"{tmp_path / 'nanomq.conf'}:3: webhook.events[0]: topic does not apply to on_client_connack (ignored); it applies to "
        "on_message_publish, on_client_subscribe, on_client_unsubscribe, on_session_subscribed, "
        "on_session_unsubscribed, on_message_delivered, on_message_acked, on_message_dropped"
    ]


def test_unknown_webhook_key_warns_with_its_path(tmp_path):
    loaded = load(tmp_path, f"webhook {{\n {URL}\n  retries = 3\n}}")
    assert loaded.warnings == [f"{tmp_path / 'nanomq.conf'}:3: unknown key webhook.retries (ignored)"]


@pytest.mark.parametrize(
    "body, line, path, problem",
    [
        ("pool_size = 32", 1, "webhook", "url is required"),
        ('url = "ftp://127.0.0.1/"', 2, "webhook.url", "expected an http:// or https:// URL"),
        ('url = "127.0.0.1:80"', 2, "webhook.url", "expected an http:// or https:// URL"),
        ('url = "http://h:99999/"', 2, "webhook.url", "bad port"),
        (f"{URL}\n body.encoding = base32", 3, "webhook.body.encoding", "expected one of plain, base64, base62, got 'base32'"),
        (f"{URL}\n pool_size = 0", 3, "webhook.pool_size", "must be 1 or more"),
        (f"{URL}\n cancel_timeout = 0", 3, "webhook.cancel_timeout", "must be greater than 0"),
        (f"{URL}\n events = [ {{ event = on_client_kaboom }} ]", 3, "webhook.events[0].event", "unknown event 'on_client_kaboom'"),
        (f"{URL}\n events = [ {{ topic = a }} ]", 3, "webhook.events[0]", "a rule needs event ="),
        (f'{URL}\n events = [ {{ event = on_message_publish, topic = "a/#/b" }} ]', 3, "webhook.events[0].topic", "'#' must be a whole last level"),
        (f'{URL}\n events = [ {{ event = on_message_publish, topic = "a/b+" }} ]', 3, "webhook.events[0].topic", "'+' must be a whole level"),
        (f"{URL}\n events = {{ event = on_client_connack }}", 3, "webhook.events", "expected a list"),
        (f'{URL}\n headers.x-bad = "a\\r\\nInjected: 1"', 3, "webhook.headers.x-bad", "line break"),
        (f"{URL}\n retry {{ backoff_min = 2s, backoff_max = 1s }}", 3, "webhook.retry.backoff_max", "must be at least backoff_min"),
        (f"{URL}\n queue.max_len = 0", 3, "webhook.queue.max_len", "must be 1 or more"),
    ],
)
def test_bad_webhook_values_are_errors_with_file_line_and_path(tmp_path, body, line, path, problem):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, f"webhook {{\n {body}\n}}\n")
    assert str(error.value).startswith(f"{tmp_path / 'nanomq.conf'}:{line}: {path}: ")
    assert problem in str(error.value)


def test_documented_invalid_form_with_options_inside_the_array_is_explained(tmp_path):
    # As printed in NanoMQ's web-hook-0.18 documentation: not valid HOCON.
    with pytest.raises(ConfigError) as error:
        load(
            tmp_path,
            """## Example
webhook.events = [
	url = "http://127.0.0.1:80"
	headers.content-type = "application/json"
	body.encoding = plain
	pool_size = 32

	{
		event = "on_message_publish"
		topic = "a/b/c"
	}
	{
		event = "on_client_connack"
	}
]
""",
        )
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'nanomq.conf'}:3: webhook.events: ")
    assert "inside the events array" in message
    assert 'webhook { url = "http://127.0.0.1:80"' in message and "events = [ {" in message
    assert "\n" not in message


def test_options_written_inside_a_rule_object_are_explained_too(tmp_path):
    with pytest.raises(ConfigError) as error:
        load(
            tmp_path,
            'webhook {\n  events = [\n    {\n      url = "http://127.0.0.1:80"\n      event = on_client_connack\n    }\n  ]\n}\n',
        )
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'nanomq.conf'}:4: webhook.events[0].url: ")
    assert "Put them beside events" in message


def test_pre_018_rule_form_loads_with_a_deprecation_warning(tmp_path):
    loaded = load(
        tmp_path,
        f"""webhook {{
    {URL}
    rule.client.connack = [{{action = "on_client_connack"}}]
    rule.client.disconnected = [{{action = "on_client_disconnected"}}]
    rule.message.publish = [{{action = "on_message_publish", topic = "a/#"}}]
}}
""",
    )
    assert loaded.config.webhook.rules == (
        WebhookRule("on_client_connack", None, 0),
        WebhookRule("on_client_disconnected", None, 1),
        WebhookRule("on_message_publish", "a/#", 2),
    )
    assert len(loaded.warnings) == 1
    assert loaded.warnings[0].startswith(f"{tmp_path / 'nanomq.conf'}:3: webhook.rule is NanoMQ's pre-0.18 form (deprecated)")
    assert "webhook.events = [" in loaded.warnings[0]


def test_pre_018_rules_follow_the_events_rules(tmp_path):
    config = load(
        tmp_path,
        f'webhook {{ {URL}, events = [ {{ event = on_client_connack }} ] }}\n'
        'webhook.rule.message.publish = {"action": "on_message_publish", "topic": "t/1"}\n',
    ).config
    assert config.webhook.rules == (
        WebhookRule("on_client_connack", None, 0),
        WebhookRule("on_message_publish", "t/1", 1),
    )


def test_pre_018_rule_takes_its_event_from_the_key_path_like_nanomq(tmp_path):
    loaded = load(tmp_path, f'webhook {{ {URL}\n rule.client.connack = [{{action = "on_message_publish"}}] }}')
    assert loaded.config.webhook.rules == (WebhookRule("on_client_connack", None, 0),)
    assert any("differs from the key path" in warning for warning in loaded.warnings)


def test_rules_on_one_line_without_comma_are_an_error_not_a_silent_merge(tmp_path):
    # HOCON (and pyhocon) merge `{...} {...}` on one line into ONE object: a lost rule.
    with pytest.raises(ConfigError) as error:
        load(tmp_path, f"webhook {{\n {URL}\n events = [ {{ event = on_client_connack }} {{ event = on_message_publish }} ]\n}}")
    assert ":3: webhook.events[0]: rules written on one line without a comma" in str(error.value)


def test_rules_on_one_line_with_a_comma_are_two_rules(tmp_path):
    config = load(tmp_path, f"webhook {{ {URL}, events = [ {{ event = on_client_connack }}, {{ event = on_message_publish }} ] }}").config
    assert [rule.event for rule in config.webhook.rules] == ["on_client_connack", "on_message_publish"]
