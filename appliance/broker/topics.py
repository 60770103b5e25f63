"""Topic names, topic filters and the subscription tree that matches one against the other.

MQTT semantics (3.1.1 and 5.0, section 4.7): `+` matches one level, `#` the rest including
the parent level (`a/#` matches `a`), and a filter starting with a wildcard never matches a
topic starting with `$`. Shared subscriptions (`$share/<group>/<filter>`) live in the same
tree, one entry per group.
"""

from __future__ import annotations

SHARE_PREFIX = "$share/"


def valid_topic_name(topic: str) -> bool:
    """A PUBLISH topic: non-empty, no wildcards."""
    return bool(topic) and "+" not in topic and "#" not in topic


def valid_topic_filter(topic_filter: str) -> bool:
    """A SUBSCRIBE filter: `#` only as a whole last level, `+` only as a whole level."""
    if not topic_filter:
        return False
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def parse_shared(topic_filter: str) -> tuple[str | None, str]:
    """Split `$share/group/filter` into (group, filter); (None, filter) if not shared.
    Raises ValueError for a malformed shared filter."""
    if not topic_filter.startswith(SHARE_PREFIX):
        return None, topic_filter
    group, sep, rest = topic_filter[len(SHARE_PREFIX):].partition("/")
    if not sep or not group or "+" in group or "#" in group or not valid_topic_filter(rest):
        raise ValueError(topic_filter)
    return group, rest


def matches(topic_filter: str, topic: str) -> bool:
    """Whether one filter matches one topic (used where there is no tree, e.g. webhook rules
    and retained messages)."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for i, level in enumerate(filter_levels):
        if level == "#":
            return True
        if i >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[i]:
            return False
    return len(filter_levels) == len(topic_levels)


class ShareGroup(dict):
    """Members of one share group on one filter: client id -> options, plus the
    round-robin position of the next delivery."""

    __slots__ = ("cursor",)

    def __init__(self) -> None:
        super().__init__()
        self.cursor = 0


class _Node:
    __slots__ = ("children", "subscribers", "groups")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.subscribers: dict[str, object] = {}  # client id -> subscription options
        self.groups: dict[str, ShareGroup] = {}

    def empty(self) -> bool:
        return not (self.children or self.subscribers or self.groups)


class TopicTree:
    """Subscriptions by filter; `match(topic)` finds every subscriber of a topic.

    Matching results are cached per topic until the next subscribe or unsubscribe: on an
    edge broker the set of subscriptions changes rarely and the same topics repeat.
    """

    _CACHE_LIMIT = 10_000

    def __init__(self) -> None:
        self._root = _Node()
        self._cache: dict[str, tuple[list, list]] = {}
        self.count = 0  # subscriptions held, shared members included
        self._filters = 0  # nodes with at least one subscriber or share group

    def add(self, topic_filter: str, client_id: str, options: object, group: str | None = None) -> bool:
        """Add or replace a subscription; returns True if it is new."""
        node = self._root
        for level in topic_filter.split("/"):
            child = node.children.get(level)
            if child is None:
                child = node.children[level] = _Node()
            node = child
        if not (node.subscribers or node.groups):
            self._filters += 1
        holder = node.subscribers if group is None else node.groups.setdefault(group, ShareGroup())
        new = client_id not in holder
        holder[client_id] = options
        self.count += new
        self._cache.clear()
        return new

    def remove(self, topic_filter: str, client_id: str, group: str | None = None) -> bool:
        """Remove a subscription; returns True if it existed."""
        path = [self._root]
        for level in topic_filter.split("/"):
            node = path[-1].children.get(level)
            if node is None:
                return False
            path.append(node)
        node = path[-1]
        holder = node.subscribers if group is None else node.groups.get(group)
        if holder is None or client_id not in holder:
            return False
        del holder[client_id]
        if group is not None and not holder:
            del node.groups[group]
        if not (node.subscribers or node.groups):
            self._filters -= 1
        self.count -= 1
        self._cache.clear()
        levels = topic_filter.split("/")
        for depth in range(len(levels), 0, -1):  # prune empty branches
            if not path[depth].empty():
                break
            del path[depth - 1].children[levels[depth - 1]]
        return True

    def match(self, topic: str) -> tuple[list, list]:
        """Return (subscribers, groups): `subscribers` is a list of (client id, options) and
        `groups` a list of `ShareGroup`s, one per matching share group and filter.

        The walk keeps its own stack rather than recursing: a topic may have as many levels
        as limits.max_topic_levels allows, far deeper than Python's recursion limit."""
        cached = self._cache.get(topic)
        if cached is not None:
            return cached
        subscribers: list = []
        groups: list = []
        levels = topic.split("/")
        last = len(levels)
        dollar = topic.startswith("$")
        collect = self._collect
        stack = [(self._root, 0)]
        while stack:
            node, depth = stack.pop()
            children = node.children
            wildcards_allowed = not (dollar and depth == 0)
            if wildcards_allowed:
                hash_node = children.get("#")
                if hash_node is not None:
                    collect(hash_node, subscribers, groups)
            if depth == last:
                collect(node, subscribers, groups)
                continue
            if wildcards_allowed:
                plus = children.get("+")
                if plus is not None:
                    stack.append((plus, depth + 1))
            child = children.get(levels[depth])
            if child is not None:
                stack.append((child, depth + 1))  # popped first: exact levels before `+`
        if len(self._cache) >= self._CACHE_LIMIT:
            self._cache.clear()
        result = self._cache[topic] = (subscribers, groups)
        return result

    @staticmethod
    def _collect(node: _Node, subscribers: list, groups: list) -> None:
        if node.subscribers:
            subscribers.extend(node.subscribers.items())
        if node.groups:
            groups.extend(node.groups.values())

    def topic_count(self) -> int:
        """Distinct filters with at least one subscriber (NanoMQ's `topics_count`), kept as
        subscriptions come and go so a scrape never walks the tree."""
        return self._filters
