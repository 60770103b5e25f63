"""The appliance's one metrics registry: broker numbers, the process, the runtime, the build."""

from __future__ import annotations

import platform

import gevent
from prometheus_client import CollectorRegistry, GCCollector, Info, PlatformCollector, ProcessCollector

from .. import __version__
from .broker_collector import BrokerCollector


def create_registry(broker) -> CollectorRegistry:
    """A fresh registry (never prometheus-client's global one) that other stages add to."""
    registry = CollectorRegistry()
    registry.register(BrokerCollector(broker))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    build = Info("appliance_build", "Version of the appliance and of its runtime; the value is always 1.",
                 registry=registry)
    build.info({"version": __version__, "python": platform.python_version(), "gevent": gevent.__version__})
    return registry
