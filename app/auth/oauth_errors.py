"""Error descriptions the OAuth endpoints may send: RFC 6749 §5.2 allows only %x20-21 / %x23-5B
/ %x5D-7E in `error_description`, and authlib raises ValueError for anything else.

Every description we build from a client's input goes through `safe_description` (or `quoted`
for the input itself); `is_description_error` lets the views turn an unsafe description that
authlib built itself (it quotes redirect_uri and response_type) into a plain 400, not a 500.
"""

from __future__ import annotations

# A description explains; it need not repeat a 2000-character input.
MAX_DESCRIPTION = 300
MAX_QUOTED = 80
_FORBIDDEN_MESSAGE = "Error description contains forbidden characters"


def _allowed(char: str) -> bool:
    return " " <= char <= "~" and char not in '"\\'


def safe_description(text: str, limit: int = MAX_DESCRIPTION) -> str:
    """`text` with every character RFC 6749 §5.2 forbids replaced by '?', cut to `limit`
    characters (ending in '...' when cut)."""
    cleaned = "".join(c if _allowed(c) else "?" for c in text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def quoted(value: object, limit: int = MAX_QUOTED) -> str:
    """A client's input as a description may quote it: in single quotes, made safe and short.

    Any value (a list from a repeated parameter, a number from JSON) is quoted as text."""
    text = value if isinstance(value, str) else repr(value)
    return "'" + safe_description(text, limit) + "'"


def is_description_error(error: ValueError) -> bool:
    """Whether authlib refused an error description (rather than any other ValueError)."""
    return str(error).startswith(_FORBIDDEN_MESSAGE)
