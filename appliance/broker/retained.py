"""Retained messages: the last retained message per topic, replayed to new subscribers."""

from __future__ import annotations

import time

from .message import Message
from .topics import matches


class RetainedStore:
    def __init__(self) -> None:
        self._messages: dict[str, Message] = {}

    def __len__(self) -> int:
        return len(self._messages)

    def store(self, message: Message) -> None:
        """Keep `message` for its topic; an empty payload clears the topic instead."""
        if message.payload:
            self._messages[message.topic] = message
        else:
            self._messages.pop(message.topic, None)

    def matching(self, topic_filter: str) -> list[Message]:
        """Retained messages whose topic matches `topic_filter`, expired ones removed."""
        if "+" not in topic_filter and "#" not in topic_filter:
            found = [self._messages[topic_filter]] if topic_filter in self._messages else []
        else:
            found = [m for topic, m in self._messages.items() if matches(topic_filter, topic)]
        now = time.monotonic()
        live = []
        for message in found:
            if message.expires_at is not None and message.expires_at <= now:
                del self._messages[message.topic]
            else:
                live.append(message)
        return live
