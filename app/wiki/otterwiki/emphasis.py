"""mistune's pairing of emphasis delimiters (`inline_parser._process_emphasis_delimiters`),
answered in near-linear time.

mistune 3.3 pairs `*` and `_` runs as CommonMark's "process emphasis" does, over a list of a
text's parts. Each pair it makes splices the parts between it into one node and walks every
delimiter to renumber the ones after it; each closer scans back over every delimiter before
it that cannot open for it. 40 KB of `a*b_` cost 5 s of CPU (quadratic; review 40).

Here the parts keep their slots in a linked list (a node takes the first slot of what it
wraps), the delimiters that can still open wait in one list per kind a closer may pair with
(marker, original length mod 3, whether it can also close: all CommonMark's rule of three
looks at), finished delimiters are skipped by union-find, and the emphasis depth of the parts
is a max segment tree. The pairs made are mistune's own, its quirks included: a pair that
wraps more than one part leaves its closer spent (mistune renumbers the closer with the parts
it wrapped), and a delimiter wrapped alone keeps its place as an opener that pairs with
nothing. tests/wiki/test_render.py compares the two on drawn texts. Short texts (under
`SMALL` delimiters) go to mistune's own, which is quicker there.
"""

from __future__ import annotations

import bisect
from typing import Any

SMALL = 48  # delimiters; below this mistune's own pairing is cheaper than building the index

_Part = dict[str, Any]


def _raw(part: _Part) -> str:
    return part["raw"] if part["type"] == "text" else ""


def _find(parent: list[int], at: int) -> int:
    """Union-find root of `at` with path halving: the nearest member still in the set."""
    while parent[at] != at:
        parent[at] = parent[parent[at]]
        at = parent[at]
    return at


class _Openers:
    """Delimiters of one kind that can still open, by ordinal: the nearest at or below one."""

    def __init__(self) -> None:
        self.ordinals: list[int] = []
        self.parent: list[int] = [0]  # index 0 is "none"; ordinals[k] is at k + 1

    def add(self, ordinal: int) -> int:
        self.ordinals.append(ordinal)
        self.parent.append(len(self.parent))
        return len(self.ordinals)

    def remove(self, place: int) -> None:
        self.parent[place] = place - 1

    def nearest(self, highest: int) -> int:
        """The largest ordinal <= `highest` still here, or -1."""
        place = _find(self.parent, bisect.bisect_right(self.ordinals, highest))
        return self.ordinals[place - 1] if place else -1


class _DepthTree:
    """Max segment tree over part slots: the deepest emphasis in a range of slots."""

    def __init__(self, depths: list[int]) -> None:
        self.size = len(depths)
        self.tree = [0] * self.size + depths
        for at in range(self.size - 1, 0, -1):
            self.tree[at] = max(self.tree[2 * at], self.tree[2 * at + 1])

    def set(self, slot: int, depth: int) -> None:
        at = slot + self.size
        self.tree[at] = depth
        while at > 1:
            at //= 2
            self.tree[at] = max(self.tree[2 * at], self.tree[2 * at + 1])

    def deepest(self, low: int, high: int) -> int:
        """Max over slots low..high-1 (0 for an empty range)."""
        best = 0
        low += self.size
        high += self.size
        while low < high:
            if low & 1:
                best = max(best, self.tree[low])
                low += 1
            if high & 1:
                high -= 1
                best = max(best, self.tree[high])
            low //= 2
            high //= 2
        return best


class _Pairing:
    """One run of mistune's pairing over `parts` (text parts and other inline tokens) and
    `delimiters` (mistune `_Delimiter`s, in text order, `index` their part's slot)."""

    def __init__(self, parts: list[_Part], delimiters: list, max_depth: int) -> None:
        self.parts = parts
        self.slots = list(parts)
        count = len(parts)
        self.next_slot = list(range(1, count + 1))
        from mistune.inline_parser import _emphasis_depth

        self.depths = _DepthTree([_emphasis_depth([part]) for part in parts])
        self.delimiters = delimiters
        self.max_depth = max_depth
        total = len(delimiters)
        self.slot_of = [delimiter.index for delimiter in delimiters]
        # Union-find "next still there" over ordinals; `total` is the end.
        self.unspent = list(range(total + 1))  # length != 0
        self.closers = list(range(total + 1))  # can close, length != 0
        self.openers: dict[tuple[str, int, bool], _Openers] = {}
        self.opener_place: list[tuple[_Openers, int] | None] = []
        for ordinal, delimiter in enumerate(delimiters):
            if not (delimiter.can_close and delimiter.length):
                self.closers[ordinal] = ordinal + 1
            if not delimiter.length:
                self.unspent[ordinal] = ordinal + 1
            place = None
            if delimiter.can_open and delimiter.length > 0:
                key = (delimiter.marker, delimiter.orig_length % 3, delimiter.can_close)
                kind = self.openers.setdefault(key, _Openers())
                place = (kind, kind.add(ordinal))
            self.opener_place.append(place)

    def settle(self, ordinal: int) -> None:
        """Take a delimiter out of the sets its new length and abilities no longer fit."""
        delimiter = self.delimiters[ordinal]
        place = self.opener_place[ordinal]
        if place and (delimiter.length <= 0 or not delimiter.can_open):
            place[0].remove(place[1])
            self.opener_place[ordinal] = None
        if delimiter.length == 0 or not delimiter.can_close:
            self.closers[ordinal] = ordinal + 1
        if delimiter.length == 0:
            self.unspent[ordinal] = ordinal + 1

    def nearest_opener(self, closer, highest: int, lowest: int) -> int:
        """The ordinal of the nearest delimiter in lowest..highest that can open for `closer`
        (same marker, CommonMark's rule of three on the original lengths), or -1."""
        closes = closer.orig_length % 3
        best = -1
        for (marker, opens, can_close), kind in self.openers.items():
            if marker != closer.marker:
                continue
            if (can_close or closer.can_open) and (opens + closes) % 3 == 0 and (opens or closes):
                continue
            best = max(best, kind.nearest(highest))
        return best if best >= lowest else -1

    def has_content(self, after: int, before: int) -> bool:
        slot = self.next_slot[after]
        while slot != before:
            part = self.slots[slot]
            if part["type"] != "text" or part["raw"] != "":
                return True
            slot = self.next_slot[slot]
        return False

    def wrap(self, after: int, before: int, kind: str) -> int:
        """Replace the parts between slots `after` and `before` with one `kind` node in the
        first of their slots; return how many parts it wrapped."""
        first = self.next_slot[after]
        depth = 1 + self.depths.deepest(first, before)
        children = []
        slot = first
        while slot != before:
            children.append(self.slots[slot])
            if slot != first:
                self.depths.set(slot, 0)
            slot = self.next_slot[slot]
        self.depths.set(first, depth)
        self.slots[first] = {"type": kind, "children": children}
        self.next_slot[first] = before
        return len(children)

    def pair(self, opener_pos: int, closer_pos: int) -> bool:
        """Pair the two delimiters as mistune would, or answer False where it declines."""
        opener, closer = self.delimiters[opener_pos], self.delimiters[closer_pos]
        start, end = self.slot_of[opener_pos], self.slot_of[closer_pos]
        opener_part, closer_part = self.slots[start], self.slots[end]
        use = 2 if opener.length >= 2 and closer.length >= 2 else 1
        if use == 2 and not (len(_raw(opener_part)) >= 2 and len(_raw(closer_part)) >= 2):
            use = 1
        if use == 1 and not (_raw(opener_part) and _raw(closer_part)):
            return False
        if not self.has_content(start, end):
            return False
        if opener_part["type"] != "text" or closer_part["type"] != "text":
            return False
        if self.max_depth > 0 and self.depths.deepest(start + 1, end) >= self.max_depth:
            return False
        opener_part["raw"] = opener_part["raw"][:-use]
        closer_part["raw"] = closer_part["raw"][use:]
        wrapped = self.wrap(start, end, "strong" if use == 2 else "emphasis")
        if wrapped > 1:
            # mistune zeroes the delimiters inside, and its closer with them (renumbered
            # into the range it tests before its own length is taken).
            ordinal = _find(self.unspent, opener_pos + 1)
            while ordinal < closer_pos:
                self.delimiters[ordinal].length = 0
                self.settle(ordinal)
                ordinal = _find(self.unspent, ordinal + 1)
            closer.length = 0
        opener.length -= use
        closer.length -= use
        if opener.length == 0:
            opener.can_open = False
        if closer.length == 0:
            closer.can_close = False
        self.settle(opener_pos)
        self.settle(closer_pos)
        return True

    def run(self) -> None:
        bottoms: dict[tuple[str, int, bool], int] = {}
        closer_pos = 0
        while True:
            closer_pos = _find(self.closers, closer_pos)
            if closer_pos == len(self.delimiters):
                break
            closer = self.delimiters[closer_pos]
            key = (closer.marker, closer.length % 3, closer.can_open)
            opener_pos = self.nearest_opener(closer, closer_pos - 1, bottoms.get(key, 0))
            if opener_pos < 0:
                bottoms[key] = closer_pos
                closer_pos += 1
            elif not self.pair(opener_pos, closer_pos):
                closer_pos += 1
            elif self.delimiters[opener_pos].can_open or closer.can_close:
                closer_pos = max(opener_pos, bottoms.get(key, 0))
            else:
                closer_pos += 1
        parts, slot = [], 0  # slot 0 is never wrapped: an opener comes before what it wraps
        while slot < len(self.slots):
            parts.append(self.slots[slot])
            slot = self.next_slot[slot]
        self.parts[:] = parts


def _linear(original):
    def process_emphasis_delimiters(parts, delimiters, max_depth):
        if len(delimiters) < SMALL:
            return original(parts, delimiters, max_depth)
        _Pairing(parts, delimiters, max_depth).run()

    process_emphasis_delimiters.__wrapped__ = original
    process_emphasis_delimiters.robot_linear = True
    return process_emphasis_delimiters


def install_linear_emphasis() -> None:
    """Make mistune's emphasis pairing (`mistune.inline_parser._process_emphasis_delimiters`,
    called by `_finalize_emphasis_tokens` for every inline text) run in near-linear time.
    Installing twice does nothing."""
    import mistune.inline_parser as inline_parser

    current = inline_parser._process_emphasis_delimiters
    if getattr(current, "robot_linear", False):
        return
    inline_parser._process_emphasis_delimiters = _linear(current)
