"""Persistence (issue 14): retained messages, persistent sessions, their QoS 1/2 state and
delayed wills in the shared durable store, so a restart or a crash loses nothing the broker
acknowledged. The broker calls its `Journal` (appliance.broker.journal) where state changes."""

from .persistence import Persistence

__all__ = ["Persistence"]
