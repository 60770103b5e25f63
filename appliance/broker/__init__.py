"""The routing core: sessions, subscriptions, retained messages, wills and QoS state."""

from .broker import Broker

__all__ = ["Broker"]
