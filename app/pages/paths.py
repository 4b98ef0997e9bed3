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
from app.pages.names import attachment_name_problem
from app.pages.names import not_utf8_problem
from app.pages.names import page_path_problem

# Pages are text for people and agents; a megabyte is far past any real page and keeps one
# write from filling the repository or a worker's memory.
MAX_CONTENT_BYTES = 1024 * 1024
MAX_MESSAGE_CHARS = 2000
MAX_LIMIT = 1000
# A git commit sha, full or a prefix as short as the 6 digits Otterwiki shows in its history.
_REVISION_RE = re.compile(r"\A[0-9a-fA-F]{6,64}\Z")


def refuse_not_utf8(text: str, what: str) -> str:
    """Return `text`, or raise BadRequest when it was no valid UTF-8 (see not_utf8_problem)."""
    problem = not_utf8_problem(text, what)
    if problem:
        raise BadRequest(problem)
    return text


@dataclass(frozen=True)
class PathRules:
    """How one wiki names its files: Otterwiki lowercases them unless RETAIN_PAGE_NAME_CASE."""

    retain_case: bool = False

    def clean(self, raw: object) -> str:
        """Return the page path `raw` names, or raise BadRequest saying what is wrong with it."""
        if not isinstance(raw, str):
            raise BadRequest("page path must be a string")
        path = unicodedata.normalize("NFKC", raw)
        if path.endswith(".md"):
            path = path[:-3]
        problem = page_path_problem(path)
        if problem:
            raise BadRequest(problem)
        return path

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
    if not isinstance(raw, str):
        raise BadRequest("attachment name is empty")
    problem = attachment_name_problem(raw)
    if problem:
        raise BadRequest(problem)
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
