"""NanoMQ's HTTP API v4: clients, subscriptions, the topic tree, publish, configuration, reload.

`broker_view` is the only module that touches the broker core; `v4` is the WSGI app the
HTTP server hands `/api/v4` requests to once they are authenticated.
"""

from .broker_view import BrokerView
from .publish import PublishLimits
from .v4 import ApiV4

__all__ = ["ApiV4", "BrokerView", "PublishLimits"]
