"""Inputs of page operations (paths, revisions, content, limits), validated as Otterwiki needs."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from otterwiki.util import sanitize_filename
from otterwiki.util import split_path
from otterwiki.util import titleSs

from app.core.errors import BadRequest
from app.core.errors import PayloadTooLarge

# Characters Otterwiki's sanitize_pagename silently drops: a page named with them would be
# written under one name and shown under another, so the API refuses them instead.
_DROPPED_BY_OTTERWIKI = set("?|$.!#\\")
# A file name segment must fit the file system's 255-byte limit with ".md" appended.
MAX_SEGMENT_BYTES = 200
MAX_PATH_CHARS = 500
MAX_ATTACHMENT_NAME_BYTES = 200
# Pages are text for people and agents; a megabyte is far past any real page and keeps one
# write from filling the repository or a worker's memory.
MAX_CONTENT_BYTES = 1024 * 1024
MAX_MESSAGE_CHARS = 2000
MAX_LIMIT = 1000
# A git commit sha, full or a prefix as short as the 6 digits Otterwiki shows in its history.
_REVISION_RE = re.compile(r"\A[0-9a-fA-F]{6,64}\Z")


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in text)


@dataclass(frozen=True)
class PathRules:
    """How one wiki names its files: Otterwiki lowercases them unless RETAIN_PAGE_NAME_CASE."""

    retain_case: bool = False

    def clean(self, raw: object) -> str:
        """Return the page path `raw` names, or raise BadRequest saying what is wrong with it."""
        if not isinstance(raw, str):
            raise BadRequest("page path must be a string")
        if "\x00" in raw:
            raise BadRequest("page path contains a NUL character")
        path = unicodedata.normalize("NFKC", raw)
        if path.endswith(".md"):
            path = path[:-3]
        if not path.strip():
            raise BadRequest("page path is empty")
        if len(path) > MAX_PATH_CHARS:
            raise BadRequest(f"page path is longer than {MAX_PATH_CHARS} characters")
        if _has_control(path):
            raise BadRequest("page path contains control characters")
        if path.startswith("/"):
            raise BadRequest("page path must not start with '/'")
        if path.endswith("/"):
            raise BadRequest("page path must not end with '/'")
        for segment in path.split("/"):
            self._check_segment(segment)
        return path

    def _check_segment(self, segment: str) -> None:
        if segment == "":
            raise BadRequest("page path has an empty segment ('//')")
        if segment in (".", ".."):
            raise BadRequest("page path must not contain '.' or '..' segments")
        if segment.lower() == ".git":
            raise BadRequest("page path must not contain '.git'")
        dropped = sorted(_DROPPED_BY_OTTERWIKI.intersection(segment))
        if dropped:
            raise BadRequest(f"page path must not contain {' '.join(dropped)!s}")
        if segment != segment.strip():
            raise BadRequest("page path segments must not start or end with spaces")
        if segment.startswith("-"):
            raise BadRequest("page path segments must not start with '-'")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise BadRequest(f"page path segment is longer than {MAX_SEGMENT_BYTES} bytes")

    def filename(self, path: str) -> str:
        """Return the repository file of a clean page path (Otterwiki's get_filename)."""
        return f"{path if self.retain_case else path.lower()}.md"

    def attachment_dir(self, path: str) -> str:
        """Return the folder holding a page's attachments and subpages."""
        return self.filename(path)[:-3]

    def page_path(self, filename: str) -> str:
        """Return the page path Otterwiki shows for a repository .md file (get_pagename)."""
        parts = split_path(filename[:-3] if filename.endswith(".md") else filename)
        if not self.retain_case:
            # Otterwiki keeps a segment that already has capitals, else title-cases it.
            parts = [p if p != p.lower() else titleSs(p) for p in parts]
        return "/".join(parts)

    def same_page(self, a: str, b: str) -> bool:
        """Tell whether two clean page paths name the same file."""
        return self.filename(a) == self.filename(b)


def clean_attachment_name(raw: object) -> str:
    """Return an attachment file name, or raise BadRequest saying what is wrong with it."""
    if not isinstance(raw, str) or not raw:
        raise BadRequest("attachment name is empty")
    if "\x00" in raw or _has_control(raw):
        raise BadRequest("attachment name contains control characters")
    if "/" in raw or "\\" in raw:
        raise BadRequest("attachment name must not contain slashes")
    if raw in (".", "..") or raw.lower() == ".git":
        raise BadRequest("attachment name is not allowed")
    if raw.endswith(".md"):
        raise BadRequest("attachment names ending in .md are pages")
    if len(raw.encode("utf-8")) > MAX_ATTACHMENT_NAME_BYTES:
        raise BadRequest(f"attachment name is longer than {MAX_ATTACHMENT_NAME_BYTES} bytes")
    return raw


def clean_new_attachment_name(raw: object) -> str:
    """Return the name of an attachment about to be written, or raise BadRequest saying why not.

    Stricter than `clean_attachment_name` (which also names files pushed over git): no hidden
    files, no `.md` in any case (the file would be a page), and only names Otterwiki's own
    upload form would keep as they are (its `sanitize_filename`: NFKC form, no spaces or dots at
    the ends), so the file is found under the name the caller gave.
    """
    name = clean_attachment_name(raw)
    if name.startswith("."):
        raise BadRequest("attachment name must not start with '.' (hidden files are not shown)")
    if "\ufffd" in name:  # what bytes that are not UTF-8 become in a decoded URL or header
        raise BadRequest("attachment name is not valid UTF-8")
    if name.lower().endswith(".md"):
        raise BadRequest("attachment names ending in .md are pages")
    kept = sanitize_filename(name)
    if unicodedata.normalize("NFKC", name) != name or kept != name:
        raise BadRequest(
            f"attachment name {name!r} would be stored as {kept!r}: use that name (Unicode "
            "NFKC form, no spaces or dots at the ends)"
        )
    return name


def clean_revision(raw: object) -> str:
    """Return a revision (a commit sha or a prefix of one), or raise BadRequest."""
    if not isinstance(raw, str) or not _REVISION_RE.match(raw):
        raise BadRequest("revision must be a git commit sha (6 to 64 hex digits)")
    return raw.lower()


def clean_limit(raw: object, default: int) -> int:
    """Return a result count limit from a query parameter, or raise BadRequest."""
    if raw is None or raw == "":
        return default
    try:
        limit = int(raw)
    except (TypeError, ValueError):
        raise BadRequest("limit must be a whole number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def clean_content(raw: object) -> str:
    """Return page content, or raise BadRequest / PayloadTooLarge."""
    if not isinstance(raw, str):
        raise BadRequest("content must be a string")
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_CONTENT_BYTES:
        raise PayloadTooLarge(f"content is larger than {MAX_CONTENT_BYTES} bytes")
    if "\x00" in raw:
        raise BadRequest("content contains a NUL character")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("content is not valid Unicode text") from None
    return raw


def clean_message(raw: object, default: str) -> str:
    """Return a commit message (the default when none is given), or raise BadRequest."""
    if raw is None:
        return default
    if not isinstance(raw, str):
        raise BadRequest("message must be a string")
    message = raw.strip()
    if len(message) > MAX_MESSAGE_CHARS:
        raise BadRequest(f"message is longer than {MAX_MESSAGE_CHARS} characters")
    if "\x00" in message:
        raise BadRequest("message contains a NUL character")
    if any(ch not in "\n\r\t" and unicodedata.category(ch) == "Cc" for ch in message):
        raise BadRequest("message contains control characters (only line breaks and tabs may)")
    return message or default
