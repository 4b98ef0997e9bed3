"""Wiki slugs: what a valid one looks like, which are reserved, and how a Host names one."""

from __future__ import annotations

import re

from app.core.errors import BadRequest

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,28}[a-z0-9]$")

# Names the platform uses itself, or that users would mistake for the platform's.
RESERVED_SLUGS = frozenset(
    """
    www api app auth mcp admin static mail git login logout signup register account accounts
    settings dashboard docs help status blog support about root robot system internal
    smtp imap pop ftp ssh ns ns1 ns2 cdn assets media files test dev staging
    """.split()
)


def slug_problem(slug: str) -> str | None:
    """Return why `slug` cannot name a wiki, or None when it can."""
    if not isinstance(slug, str) or not slug:
        return "slug is required"
    if not SLUG_PATTERN.match(slug):
        return (
            f"invalid slug {slug!r}: use 3-30 lowercase letters, digits or hyphens, "
            "starting and ending with a letter or digit"
        )
    if "--" in slug:
        return f"invalid slug {slug!r}: no double hyphens"
    if slug in RESERVED_SLUGS:
        return f"slug {slug!r} is reserved"
    return None


def validate_slug(slug: str) -> str:
    """Return `slug` if it can name a wiki, else raise BadRequest saying why."""
    problem = slug_problem(slug)
    if problem:
        raise BadRequest(problem)
    return slug


def slug_from_host(host: str | None, domain: str) -> str | None:
    """Return the valid slug that `host` ({slug}.{domain}, any port) names, else None."""
    if not host or len(host) > 300:
        return None
    name = host.strip().lower()
    if name.startswith("["):
        return None  # IPv6 literal
    name = name.rsplit(":", 1)[0] if ":" in name else name
    name = name.rstrip(".")
    suffix = "." + domain
    if not name.endswith(suffix):
        return None
    slug = name[: -len(suffix)]
    if slug_problem(slug):
        return None
    return slug
