"""Topic matching and NanoMQ's topic remapping for bridge rules: plain functions, no state.

A rule has a source filter (a forward's `local_topic`, a subscription's `remote_topic`), a
target (the forward's `remote_topic`, the subscription's `local_topic`), a prefix and a suffix.
The topic a matching message gets on the other side is, in this order:

1. target `""` (or absent): the message's own topic (NanoMQ: "leave it empty to preserve the
   original topic"). `"${topic}"` is EMQX's spelling of the same; it may also sit inside a
   template, e.g. `"site1/${topic}"`, and is replaced by the whole original topic.
2. a target without wildcards: that topic, for every matching message (NanoMQ's "topic
   reflection").
3. a target with wildcards (NanoMQ 0.23.7+ topic remapping): the source's wildcards are
   anchors; the target's n-th `+` takes the level the source's n-th `+` matched, and the
   target's `#` takes the levels the source's `#` matched. `+/nanomq/#` -> `#` maps
   `cmd/nanomq/hello/world` to `hello/world`; `+/nanomq/#` -> `site/+/#` maps it to
   `site/cmd/hello/world`. A `#` that matched no level drops out with its `/`.
4. prefix and suffix are then added as plain strings, as NanoMQ's nng_strnins/nng_strncat
   do: write the `/` yourself (`prefix = "emqx/"`).

A result that is empty is no topic name: the message is refused at run time and counted.
"""

from __future__ import annotations

from typing import Callable

TEMPLATE = "${topic}"


def capture(topic_filter: str, topic: str) -> tuple[list[str], list[str]] | None:
    """The levels matched by each `+` and by `#`, or None when the filter does not match."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return None
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    pluses: list[str] = []
    for i, level in enumerate(filter_levels):
        if level == "#":
            return pluses, topic_levels[i:]
        if i >= len(topic_levels):
            return None
        if level == "+":
            pluses.append(topic_levels[i])
        elif level != topic_levels[i]:
            return None
    if len(filter_levels) != len(topic_levels):
        return None
    return pluses, []


def matches(topic_filter: str, topic: str) -> bool:
    return capture(topic_filter, topic) is not None


def remap_problem(source: str, target: str, prefix: str, suffix: str) -> str | None:
    """Why this rule can never produce a topic, or None (checked once, at config time)."""
    for name, text in (("prefix", prefix), ("suffix", suffix)):
        if "+" in text or "#" in text or "\x00" in text:
            return f"{name} {text!r} cannot contain wildcards or NUL"
    if TEMPLATE in target:
        if "+" in target or "#" in target:
            return f"{target!r} mixes ${{topic}} with wildcards; use one or the other"
        return None
    if not target:
        return None
    levels = target.split("/")
    for position, level in enumerate(levels):
        if "#" in level and (level != "#" or position != len(levels) - 1):
            return f"'#' must be a whole last level, got {target!r}"
        if "+" in level and level != "+":
            return f"'+' must be a whole level, got {target!r}"
    source_levels = source.split("/")
    if levels.count("+") > source_levels.count("+"):
        return (f"{target!r} has more '+' than {source!r}; each '+' takes the level the "
                "matching '+' of the filter matched")
    if levels[-1] == "#" and source_levels[-1] != "#":
        return f"{target!r} ends in '#' but {source!r} has no '#' to take the levels from"
    return None


def remapper(source: str, target: str, prefix: str = "", suffix: str = "") -> Callable[[str], str | None]:
    """A function from a topic to the topic on the other side: None when the topic does not
    match `source`, "" when the rule leaves nothing of it."""
    if not target:
        def same(topic: str) -> str | None:
            return prefix + topic + suffix
        return _checked(same, source)
    if TEMPLATE in target:
        def template(topic: str) -> str | None:
            return prefix + target.replace(TEMPLATE, topic) + suffix
        return _checked(template, source)
    levels = target.split("/")
    if "+" not in levels and "#" not in levels:
        fixed = prefix + target + suffix

        def constant(topic: str) -> str | None:
            return fixed
        return _checked(constant, source)

    def wildcards(topic: str) -> str | None:
        captured = capture(source, topic)
        if captured is None:
            return None
        pluses, rest = captured
        out: list[str] = []
        next_plus = 0
        for level in levels:
            if level == "+":
                out.append(pluses[next_plus])
                next_plus += 1
            elif level == "#":
                out.extend(rest)
            else:
                out.append(level)
        return prefix + "/".join(out) + suffix
    return wildcards


def _checked(convert: Callable[[str], str | None], source: str) -> Callable[[str], str | None]:
    def remap(topic: str) -> str | None:
        if capture(source, topic) is None:
            return None
        return convert(topic)
    return remap
