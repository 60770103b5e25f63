"""Retained messages: the last retained message per topic, replayed to new subscribers.

They are kept in a tree of topic levels, so a filter is answered by walking the branches
it can match, not by testing every retained topic. Two indexes make the common wildcard
cheap: each level's `branches` (the children that have children), and, for a wide level
once a `+/<name>` lookup has passed through it, its `grandchildren` by name. So `zz/+/7`
against 100,000 retained topics goes straight to the `zz/<any>/7` levels, however many
children `zz` has. Every walk keeps its own stack (topics may be deeper than Python's
recursion limit), and a long one can pause for other clients.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from .message import Message

PAUSE_EVERY = 10_000  # levels a lookup visits between calls of its `pause`
# Branches a `+/<name>` lookup scans before it indexes the level's grandchildren instead
# (an index costs memory: a dict entry per grandchild, kept up to date from then on).
WIDE = 64


class _Level:
    """One topic level. The dicts are made on first use: most levels are leaves, and an
    empty dict for each would cost more than the level itself."""

    __slots__ = ("children", "branches", "grandchildren", "message")

    def __init__(self) -> None:
        self.children: dict[str, _Level] | None = None
        # The children that have children: a `+` followed by more levels can only match
        # below those, so a wide level of leaves (`sensors/<100,000 ids>`) is skipped whole.
        self.branches: dict[str, _Level] | None = None
        # grandchild name -> {child name: grandchild}: what `+/<name>` matches below here;
        # None until a lookup finds this level wide (more than WIDE branches).
        self.grandchildren: dict[str, dict[str, _Level]] | None = None
        self.message: Message | None = None


class RetainedStore:
    """`store`, `matching` (or `iter_matching`, which a caller may pause) and `len`;
    expired messages are dropped when a lookup meets them."""

    def __init__(self) -> None:
        self._root = _Level()
        self._count = 0
        self._changes = 0  # bumped by every store and clear: an index built while paused checks it
        self.visited = 0  # levels looked at by lookups, ever: the work filters cost (bench, tests)

    def __len__(self) -> int:
        return self._count

    def store(self, message: Message) -> None:
        """Keep `message` for its topic; an empty payload clears the topic instead."""
        if not message.payload:
            self._clear(message.topic)
            return
        parent, parent_level, node = None, "", self._root
        for level in message.topic.split("/"):
            children = node.children
            child = children.get(level) if children is not None else None
            if child is None:
                if children is None:
                    children = node.children = {}
                    if parent is not None:  # `node` has become a branch of its parent
                        if parent.branches is None:
                            parent.branches = {}
                        parent.branches[parent_level] = node
                child = children[level] = _Level()
                if parent is not None and parent.grandchildren is not None:
                    parent.grandchildren.setdefault(level, {})[parent_level] = child
            parent, parent_level, node = node, level, child
        if node.message is None:
            self._count += 1
        node.message = message
        self._changes += 1

    def matching(self, topic_filter: str) -> list[Message]:
        """Retained messages whose topic matches `topic_filter`, expired ones removed."""
        return list(self.iter_matching(topic_filter))

    def iter_matching(self, topic_filter: str, pause: Callable[[], None] | None = None) -> Iterator[Message]:
        """The messages `matching` returns, one at a time, so that a caller with many to
        send can let other clients run between them; `pause`, if given, is called every
        PAUSE_EVERY levels looked at, so that even a walk that finds nothing gives way
        (e.g. `gevent.sleep`). The store may change meanwhile: a message stored or
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
                # `a/#` matches `a` itself (MQTT 4.7.1.2); the root is no topic.
                if depth < 0 or depth == last or (level == "#" and depth):
                    found = node.message
                    if found is not None:
                        if found.expires_at is not None and found.expires_at <= now:
                            expired.append(found)
                        else:
                            yield found
                children = node.children
                if children is None:
                    continue
                if level is None:
                    if depth < 0:
                        stack.extend((child, -1) for child in children.values())
                elif level == "#":
                    stack.extend((child, -1) for name, child in children.items()
                                 if depth or name[:1] != "$")  # MQTT 4.7.2
                elif level == "+":
                    visited += self._plus(node, levels, depth, stack, pause)
                else:
                    child = children.get(level)
                    if child is not None:
                        stack.append((child, depth + 1))
        finally:
            self.visited += visited
            for message in expired:
                self._clear(message.topic, message)

    def _plus(self, node: _Level, levels: list[str], depth: int, stack: list,
              pause: Callable[[], None] | None) -> int:
        """Push what `+` at `depth` can match below `node`; returns the levels looked at
        besides those pushed. With no more levels after the `+` (or only `#`, which
        matches the parent level too) every child can match; before a plain level, only
        the grandchildren of that name; before another `+`, only branches."""
        last = len(levels)
        root = depth == 0  # a wildcard first level matches no `$` topic (MQTT 4.7.2)
        looked_at = 0
        if depth + 1 == last or (depth + 2 == last and levels[-1] == "#"):
            candidates, below = node.children, depth + 1
        elif levels[depth + 1] == "+":
            candidates, below = node.branches, depth + 1
        else:
            following, below = levels[depth + 1], depth + 2
            branches = node.branches or {}
            if node.grandchildren is None and len(branches) <= WIDE:
                candidates = {name: grandchild for name, child in branches.items()
                              if (grandchild := child.children.get(following)) is not None}
                looked_at = len(branches)
            else:
                if node.grandchildren is None:  # a wide level: index it, once
                    index, looked_at = self._index(branches, pause)
                    node.grandchildren = index
                candidates = node.grandchildren.get(following)
        if candidates:
            stack.extend((child, below) for name, child in candidates.items() if not root or name[:1] != "$")
        return looked_at

    def _index(self, branches: dict[str, _Level], pause: Callable[[], None] | None) -> tuple[dict, int]:
        """grandchild name -> {child name: grandchild} over `branches`, and how many
        grandchildren that was. A big level pauses every PAUSE_EVERY grandchildren; if the
        store changed meanwhile, the index is made again without pausing (it must be exact
        from the moment it is set: `store` and `_clear` keep it up to date from then on)."""
        changes = self._changes
        index: dict[str, dict[str, _Level]] = {}
        looked_at = 0
        next_pause = PAUSE_EVERY
        # Names only, not items(): 100,000 (name, child) tuples kept alive at once would
        # set off a full garbage collection (about 0.2 s with a big store).
        for name in list(branches):
            child = branches.get(name)
            children = child.children if child is not None else None
            if not children:
                continue
            for grandchild_name, grandchild in children.items():
                index.setdefault(grandchild_name, {})[name] = grandchild
            looked_at += len(children)
            if pause is not None and looked_at >= next_pause:
                pause()
                next_pause = looked_at + PAUSE_EVERY
                if self._changes != changes:
                    again, more = self._index(branches, None)
                    return again, looked_at + more
        return index, looked_at

    def _clear(self, topic: str, only: Message | None = None) -> None:
        """Forget the topic's message (only if it is still `only`, when given: an expired
        message may have been replaced while a lookup was paused), pruning empty levels."""
        levels = topic.split("/")
        path = [self._root]
        for level in levels:
            children = path[-1].children
            node = children.get(level) if children is not None else None
            if node is None:
                return
            path.append(node)
        if path[-1].message is None or (only is not None and path[-1].message is not only):
            return
        path[-1].message = None
        self._count -= 1
        self._changes += 1
        for depth in range(len(levels), 0, -1):
            node, parent, name = path[depth], path[depth - 1], levels[depth - 1]
            if node.children is not None or node.message is not None:
                break
            del parent.children[name]
            if depth >= 2:
                grandparent, parent_name = path[depth - 2], levels[depth - 2]
                if grandparent.grandchildren is not None:
                    siblings = grandparent.grandchildren[name]
                    del siblings[parent_name]
                    if not siblings:
                        del grandparent.grandchildren[name]
                if not parent.children:  # `parent` is no longer a branch
                    del grandparent.branches[parent_name]
                    if not grandparent.branches:
                        grandparent.branches = None
            if not parent.children:
                parent.children = None
