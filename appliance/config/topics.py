"""Why a topic or topic filter written in the configuration (WebHook rules, bridges) is not
one MQTT allows: one short reason, for the one-line error naming file, line and key."""

from __future__ import annotations


def topic_filter_problem(topic: str) -> str | None:
    """Why `topic` is not a valid MQTT topic filter, or None."""
    if not topic:
        return "a topic filter cannot be empty"
    if "\x00" in topic:
        return "a topic filter cannot contain NUL"
    levels = topic.split("/")
    for position, level in enumerate(levels):
        if "#" in level and (level != "#" or position != len(levels) - 1):
            return f"'#' must be a whole last level, got {topic!r}"
        if "+" in level and level != "+":
            return f"'+' must be a whole level, got {topic!r}"
    return None


def topic_name_problem(topic: str) -> str | None:
    """Why `topic` is not a valid topic name (to publish to), or None."""
    if not topic:
        return "a topic cannot be empty"
    if "+" in topic or "#" in topic:
        return f"a topic to publish to cannot contain wildcards, got {topic!r}"
    if "\x00" in topic:
        return "a topic cannot contain NUL"
    return None
