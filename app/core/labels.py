"""One-line names people give things that others see: wiki display names, token labels."""

from __future__ import annotations

import unicodedata

from app.core.errors import BadRequest


def one_line_label(value: str, what: str, limit: int) -> str:
    """Return `value` with its whitespace runs collapsed to single spaces ("" if none is left).

    Raises BadRequest naming `what` when the result is longer than `limit` characters or keeps
    a character of Unicode category C (controls such as ESC and BEL, which a terminal listing
    would obey; format characters such as bidi overrides U+202A-202E and U+2066-2069, which
    reorder what a reader sees; surrogates, private-use and unassigned code points).
    """
    label = " ".join(value.split())
    if len(label) > limit:
        raise BadRequest(f"{what} is longer than {limit} characters")
    if any(unicodedata.category(c).startswith("C") for c in label):
        raise BadRequest(f"{what} contains control or invisible formatting characters")
    return label


def shown_label(value: str, limit: int) -> str:
    """Return `value` made safe to show as one line: category C characters removed (as
    `one_line_label` refuses them), whitespace runs collapsed, cut to `limit` characters with
    an ellipsis. Never raises; for text stored before it was checked, or from elsewhere."""
    kept = "".join(c for c in value if not unicodedata.category(c).startswith("C") or c.isspace())
    label = " ".join(kept.split())
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"
