"""Retained messages: the last retained message per topic, replayed to new subscribers.

They are kept in a tree of topic levels, so a filter is answered by walking the branches
it can match, not by testing every retained topic: `zz/+/7` against 100,000 retained
topics looks at the children of `zz` that have children of their own, and nothing else.
Every walk keeps its own stack (topics may be deeper than Python's recursion limit).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from .message import Message


PAUSE_EVERY = 10_000  # levels a lookup visits between calls of its `pause`


class _Level:
    __slots__ = ("children", "branches", "message")

    def __init__(self) -> None:
        self.children: dict[str, _Level] = {}
        # The children that have children: a `+` with more levels after it can only match
        # below those, so a wide level of leaves (`sensors/<100,000 ids>`) is skipped whole.
        self.branches: dict[str, _Level] = {}
        self.message: Message | None = None


class RetainedStore:
    """`store`, `matching` (or `iter_matching`, which a caller may pause between messages)
    and `len`; expired messages are dropped when a lookup meets them."""

    def __init__(self) -> None:
        self._root = _Level()
        self._count = 0
        self.visited = 0  # levels looked at by lookups, ever: the work a filter cost (bench, tests)

    def __len__(self) -> int:
        return self._count

    def store(self, message: Message) -> None:
        """Keep `message` for its topic; an empty payload clears the topic instead."""
        if not message.payload:
            self._clear(message.topic)
            return
        parent, parent_level, node = None, "", self._root
        for level in message.topic.split("/"):
            child = node.children.get(level)
            if child is None:
                if not node.children and parent is not None:
                    parent.branches[parent_level] = node  # its first child
                child = node.children[level] = _Level()
            parent, parent_level, node = node, level, child
        if node.message is None:
            self._count += 1
        node.message = message

    def matching(self, topic_filter: str) -> list[Message]:
        """Retained messages whose topic matches `topic_filter`, expired ones removed."""
        return list(self.iter_matching(topic_filter))

    def iter_matching(self, topic_filter: str, pause: Callable[[], None] | None = None) -> Iterator[Message]:
        """The messages `matching` returns, one at a time, so that a caller with many to
        send can let other clients run between them; `pause`, if given, is called every
        PAUSE_EVERY levels visited, so that even a walk that finds nothing can give way
        (e.g. `gevent.sleep(0)`). The store may change meanwhile: a message stored or
        cleared during the walk is seen or not, never an error."""
        levels = topic_filter.split("/")
        last = len(levels)
        now = time.monotonic()
        expired: list[Message] = []
        # (level, depth in the filter); depth -1: below a `#`, where everything matches.
        stack: list[tuple[_Level, int]] = [(self._root, 0)]
        visited = 0
        next_pause = PAUSE_EVERY
        try:
            while stack:
                node, depth = stack.pop()
                visited += 1
                if pause is not None and visited >= next_pause:
                    pause()
                    next_pause = visited + PAUSE_EVERY
                level = levels[depth] if 0 <= depth < last else None
                # `a/#` matches `a` itself (MQTT 4.7.1.2), and no topic is the empty root.
                if depth < 0 or depth == last or (level == "#" and depth):
                    found = node.message
                    if found is not None:
                        if found.expires_at is not None and found.expires_at <= now:
                            expired.append(found)
                        else:
                            yield found
                if level is None:
                    if depth < 0 and node.children:
                        stack.extend((child, -1) for child in node.children.values())
                elif level == "#":
                    stack.extend((child, -1) for name, child in node.children.items()
                                 if depth or name[:1] != "$")  # MQTT 4.7.2
                elif level == "+":
                    visited += self._plus(node, levels, depth, stack)
                else:
                    child = node.children.get(level)
                    if child is not None:
                        stack.append((child, depth + 1))
        finally:
            self.visited += visited
            for message in expired:
                self._clear(message.topic, message)

    @staticmethod
    def _plus(node: _Level, levels: list[str], depth: int, stack: list) -> int:
        """Push what `+` at `depth` can match below `node`; returns the levels looked at
        here. Without more levels after the `+` (or only `#`, which matches the parent
        too) leaves match; otherwise only branches can, and a plain next level is looked
        up at once rather than pushing every branch."""
        last = len(levels)
        root = depth == 0  # a wildcard first level matches no `$` topic (MQTT 4.7.2)
        if depth + 1 == last or (depth + 2 == last and levels[-1] == "#"):
            stack.extend((child, depth + 1) for name, child in node.children.items()
                         if not root or name[:1] != "$")
            return 0
        following = levels[depth + 1]
        if following in ("+", "#"):
            stack.extend((child, depth + 1) for name, child in node.branches.items()
                         if not root or name[:1] != "$")
            return 0
        for name, child in node.branches.items():
            grandchild = child.children.get(following)
            if grandchild is not None and (not root or name[:1] != "$"):
                stack.append((grandchild, depth + 2))
        return len(node.branches)

    def _clear(self, topic: str, only: Message | None = None) -> None:
        """Forget the topic's message (only if it is still `only`, when given: an expired
        message may have been replaced while a lookup was paused)."""
        levels = topic.split("/")
        path = [self._root]
        for level in levels:
            node = path[-1].children.get(level)
            if node is None:
                return
            path.append(node)
        if path[-1].message is None or (only is not None and path[-1].message is not only):
            return
        path[-1].message = None
        self._count -= 1
        for depth in range(len(levels), 0, -1):  # prune the levels left empty
            node, parent = path[depth], path[depth - 1]
            if node.children or node.message is not None:
                break
            del parent.children[levels[depth - 1]]
            if not parent.children and depth >= 2:
                path[depth - 2].branches.pop(levels[depth - 2], None)
