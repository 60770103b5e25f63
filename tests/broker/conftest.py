import pytest

from tests.broker.inproc import Hub


@pytest.fixture
def hub_factory():
    """Brokers in-process (see inproc.py); `hub_factory(mqtt=MqttConfig(...), ...)`."""
    return Hub


@pytest.fixture
def hub() -> Hub:
    return Hub()
