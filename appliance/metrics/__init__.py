"""Metrics and the HTTP server: one prometheus-client registry, collectors, /metrics and /api/v4."""

from .http_server import HttpServer
from .registry import create_registry

__all__ = ["HttpServer", "create_registry"]
