"""Names both sides of the reserved-slug rule, shared by the validator, API, CLI and check-slug
tests: host names are reserved numbered, versioned, without hyphens or with a region; well-known
names and literal values only whole (app/core/slugs.py, _GROUPS)."""

from app.core.slugs import RESERVED_HOST_NAMES
from app.core.slugs import RESERVED_WHOLE_NAMES
from app.core.slugs import SLUG_PATTERN

# A review found these refused: a literal or a well-known name with a number, a version or a
# hyphen inside is a name, not the value or the path. And `dav-1` was refused while `dav2`
# passed: now both pass, as every spelling of a whole name does.
WHOLE_NAME_SPELLINGS_FREE = [
    *("true1", "yes2024", "calendar-2026", "timezone-v2", "no-ne", "dav2", "dav-1"),
    *("null1", "true-2", "jwks-v2", "caldav-2", "webdav2", "well-known-2", "nan-v1"),
    *("nullable-notes", "truely", "calendars-of-ann", "falsehoods", "yes-and", "off-grid"),
]
# Host names keep their hosts' spellings, the same way for a name ending in `v` (dev2 was free
# while dev-2 was refused: `-?v?\d+` read it as `de` version 2).
HOST_SPELLINGS_REFUSED = [
    *("www1", "www-12", "api-2", "apiv2", "api-v2", "api-eu-2", "dev2", "dev-2", "devv2"),
    *("listserv2", "sign-in", "ma-il", "postmaster-1", "wpad2", "robot-support", "pds-eu"),
    *("robot2", "bsky-v1", "mx7"),
    # Twenty-fifth review: the new host names in the same spellings.
    *("ews2", "ews-v2", "ms-exchange", "ipv42", "ipv6-2", "ipv6v2", "meta-data", "helpdesk1"),
    *("pass-word", "password-reset-2", "alerts-2"),
    # Twenty-sixth review: a desk of an office, an address, a metadata name, a DKIM selector.
    *("team-support", "it-team", "169-254-169-254", "metadata-google", "selector1"),
]


def _slug_shaped(name: str) -> bool:
    return bool(SLUG_PATTERN.fullmatch(name)) and "--" not in name


def _spellings(name: str) -> list[str]:
    """Numbered, versioned and hyphen-split spellings of `name` that are slug-shaped."""
    spellings = [name + "2", name + "-2", name + "01", name + "v2", name + "-v2", name + "2024"]
    spellings += [name[:2] + "-" + name[2:]] if len(name) > 3 else []
    return [spelling for spelling in spellings if _slug_shaped(spelling)]


# Every spelling of every whole name is free; every spelling of every host name is refused.
EVERY_WHOLE_NAME_SPELLING = sorted(
    {s for name in RESERVED_WHOLE_NAMES for s in _spellings(name)} - RESERVED_WHOLE_NAMES
)
EVERY_HOST_SPELLING = sorted({s for name in RESERVED_HOST_NAMES for s in _spellings(name)})
