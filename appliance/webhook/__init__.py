"""NanoMQ-compatible WebHook stage: rules choose broker events, which are POSTed as JSON."""

from .rules import check_rules
from .stage import WebhookStage

__all__ = ["WebhookStage", "check_rules"]
