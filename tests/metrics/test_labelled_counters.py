"""Labelled counters exist at 0 for every known label value from the first scrape, so
`increase()` and the shipped alerts see the first burst of events too."""

from prometheus_client.parser import text_string_to_metric_families

from appliance.broker.client import rc_name
from appliance.broker.stats import ACL_ACTIONS, LIMITS, REFUSAL_REASONS
from appliance.config.model import LimitsConfig
from appliance.mqtt.reason_codes import CONNACK_CODES, SUCCESS

EXPECTED = {
    "appliance_connections_refused_total": ("reason", REFUSAL_REASONS),
    "appliance_acl_denied_total": ("action", ACL_ACTIONS),
    "appliance_limits_hit_total": ("limit", LIMITS),
}


def scrape(broker) -> dict[str, dict[str, float]]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{broker.http_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in EXPECTED:
                label = EXPECTED[sample.name][0]
                found.setdefault(sample.name, {})[sample.labels[label]] = sample.value
    return found


def test_a_fresh_broker_exports_every_known_label_at_zero(broker):
    found = scrape(broker)
    for name, (_, values) in EXPECTED.items():
        assert found.get(name) == dict.fromkeys(values, 0.0), name


def test_the_first_refusal_raises_a_series_that_was_already_there(broker):
    from tests.broker.raw import RawClient
    from appliance.mqtt.packets import Connect

    before = scrape(broker)["appliance_connections_refused_total"]["client_id_invalid"]
    raw = RawClient(broker.port, "", connect=False)
    raw.send(Connect("", 4, clean_start=False))  # v3.1.1: an empty id needs a clean session
    assert raw.expect("ConnAck").reason_code == 2
    assert (before, scrape(broker)["appliance_connections_refused_total"]["client_id_invalid"]) == (0, 1)


def test_the_known_label_values_are_those_the_broker_counts_under():
    # Every CONNACK refusal the broker can name, and every limits key, has its series.
    named = {rc_name(code) for code in CONNACK_CODES - {SUCCESS}} - {f"0x{c:02x}" for c in CONNACK_CODES}
    assert named <= set(REFUSAL_REASONS)
    assert {field for field in LimitsConfig.__dataclass_fields__} <= set(LIMITS)
