"""The names a wiki's pages and attachments may have: one rule for the page API and for pushes.

Standard library only: git runs app/wiki/push_rules.py, which applies these too, as a script
inside `git receive-pack`. Each function returns why a name is refused, or None; the page API
(app/pages/paths.py) raises that as a 400, a push prints it as its refusal.
"""

from __future__ import annotations

import ntpath
import unicodedata

# Characters Otterwiki's sanitize_pagename silently drops: a page named with them would be
# written under one name and shown under another (or, pushed, never opened at all).
DROPPED_BY_OTTERWIKI = frozenset("?|$.!#\\")
# A file name segment must fit the file system's 255-byte limit with ".md" appended.
MAX_SEGMENT_BYTES = 200
MAX_PATH_CHARS = 500
# Folders a page's path may go down: a path of ~1,000 segments made Otterwiki's split_path and
# GitPython's tree writing recurse past Python's limit (RecursionError: 500 on every write).
MAX_PAGE_DEPTH = 64
# The longest path of any file in a wiki, in characters: a page's path and an attachment's
# name fit well within it.
MAX_FILE_PATH_CHARS = 1024
MAX_ATTACHMENT_NAME_BYTES = 200
# What a byte that is not UTF-8 becomes when Werkzeug decodes a URL (or a header) with
# "replace": a name holding it was not valid UTF-8 where the caller spelled it.
REPLACEMENT = "\ufffd"


def has_control(text: str) -> bool:
    """Tell whether `text` holds a control, format, surrogate, private-use or unassigned
    character."""
    return any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in text)


def not_utf8_problem(text: str, what: str) -> str | None:
    """Return why `text` (a path or name, called `what`) is no valid UTF-8, or None: it holds
    U+FFFD, which is what a decoder puts for bytes that are not."""
    return _NOT_UTF8.format(what) if REPLACEMENT in text else None


_NOT_UTF8 = (
    "{} is not valid UTF-8 (it holds U+FFFD, what bytes that are not UTF-8 are read as): "
    "send the name percent-encoded from its UTF-8 bytes"
)


def _first(*checks: tuple[bool, str]) -> str | None:
    """The message of the first of `checks` (failed, message) that failed, or None."""
    return next((message for failed, message in checks if failed), None)


def page_path_problem(path: str) -> str | None:
    """Return why `path` (a page's path without `.md`, as Otterwiki would open it) cannot
    name a page, or None. The page API normalises a path (NFKC) before it asks; a push must
    name the file in that form itself (see `unopenable_problem`). The same rule for pushed
    pages: a pushed `a/-x.md` was shown, but the page API, the editor and MCP refused it."""
    whole = _first(
        ("\x00" in path, "page path contains a NUL character"),
        (not path.strip(), "page path is empty"),
        (len(path) > MAX_PATH_CHARS, f"page path is longer than {MAX_PATH_CHARS} characters"),
        (path.count("/") >= MAX_PAGE_DEPTH, f"page path has more than {MAX_PAGE_DEPTH} parts"),
        (has_control(path), "page path contains control characters"),
        (REPLACEMENT in path, _NOT_UTF8.format("page path")),
        (path.startswith("/"), "page path must not start with '/'"),
        # Otterwiki strips leading '-' off a page's path (sanitize_pagename): never opened.
        (path.startswith("-"), "page path must not start with '-'"),
        (path.endswith("/"), "page path must not end with '/'"),
        (bool(ntpath.splitdrive(path)[0]), "page path " + _DRIVE),
    )
    return whole or next(filter(None, map(_segment_problem, path.split("/"))), None)


def repository_path_problem(filename: str) -> str | None:
    """Return why git's index (as GitPython reads it) would refuse `filename` (a path in the
    repository), or None: a path that starts with a drive name (`c:notes.md`, `1:1 with
    Bob.md`, as Windows reads it) or has a segment that Windows or macOS would read as the
    `.git` folder (`git~1`, `.git.`, `.GIT::$DATA`). Such an entry made every later write
    to its wiki fail (500), as GitPython refused to read the index holding it; git's own
    `verify_path` and GitPython's `_validate_repo_path` refuse the same. So does a path
    deeper than MAX_PAGE_DEPTH + 1 folders or longer than MAX_FILE_PATH_CHARS: one of 1,000
    folders made GitPython's tree writing recurse past Python's limit on every write. And a
    path that starts with '-' (`--`, `-dir/x.png`, under no page): any git command given it
    without a `--` before it would read it as an option."""
    return _first(
        (filename.startswith("-"), _LEADING_DASH),
        (bool(ntpath.splitdrive(filename)[0]), _DRIVE),
        (any(_aliases_git(part) for part in filename.split("/")), _GIT_ALIAS),
        (len(filename) > MAX_FILE_PATH_CHARS or filename.count("/") > MAX_PAGE_DEPTH, _TOO_DEEP),
    )


def moved_files_problem(new_folder: str, names: list[str]) -> str | None:
    """Return why moving a page's folder to `new_folder` (its subpages and attachments: `names`,
    relative to the folder) would leave a file the wiki cannot reach, or None: a subpage past
    MAX_PAGE_DEPTH parts or MAX_PATH_CHARS, any file past repository_path_problem's limits. A
    rename of a parent moved its subpages past the limits, where no route could change them,
    and renames repeated made Otterwiki's sidebar recurse past Python's limit (500)."""
    for name in names:
        moved = f"{new_folder}/{name}"
        page = moved[:-3] if moved.endswith(".md") else None
        too_far = page is not None and (
            page.count("/") >= MAX_PAGE_DEPTH or len(page) > MAX_PATH_CHARS
        )
        if too_far or repository_path_problem(moved) == _TOO_DEEP:
            return (
                f"this rename would move {name!r} below it too deep or too far: a page path has "
                f"at most {MAX_PAGE_DEPTH} parts and {MAX_PATH_CHARS} characters"
            )
    return None


_LEADING_DASH = "path must not start with '-' (git would read it as an option)"
_DRIVE = "name must not start with a drive name such as 'c:' (git refuses it)"
_GIT_ALIAS = "name must not hold a segment read as '.git' (such as 'git~1' or '.git.')"
_TOO_DEEP = (
    f"path must have at most {MAX_PAGE_DEPTH + 1} parts and {MAX_FILE_PATH_CHARS} characters"
)


def _aliases_git(segment: str) -> bool:
    """Tell whether NTFS reads `segment` as `.git`: its short name `git~1`, trailing dots and
    spaces dropped, and an alternate data stream (`:...`) after it. (macOS's variants add
    format characters, which `has_control` refuses.)"""
    return any(
        part.split(":", 1)[0].rstrip(" .").lower() in (".git", "git~1")
        for part in segment.split("\\")
    )


def _segment_problem(segment: str) -> str | None:
    dropped = " ".join(sorted(DROPPED_BY_OTTERWIKI.intersection(segment)))
    return _first(
        (segment == "", "page path has an empty segment ('//')"),
        (segment in (".", ".."), "page path must not contain '.' or '..' segments"),
        (_aliases_git(segment), "page path " + _GIT_ALIAS),
        (bool(dropped), f"page path must not contain {dropped}"),
        (segment != segment.strip(), "page path segments must not start or end with spaces"),
        (segment.startswith("-"), "page path segments must not start with '-'"),
        (
            len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES,
            f"page path segment is longer than {MAX_SEGMENT_BYTES} bytes",
        ),
    )


def attachment_name_problem(name: str) -> str | None:
    """Return why `name` (a file name, no folder) cannot name an attachment, or None."""
    return _first(
        (not name, "attachment name is empty"),
        ("\x00" in name or has_control(name), "attachment name contains control characters"),
        (REPLACEMENT in name, _NOT_UTF8.format("attachment name")),
        ("/" in name or "\\" in name, "attachment name must not contain slashes"),
        (name in (".", ".."), "attachment name is not allowed"),
        (_aliases_git(name), "attachment " + _GIT_ALIAS),
        (name.endswith(".md"), "attachment names ending in .md are pages"),
        (
            len(name.encode("utf-8", "surrogatepass")) > MAX_ATTACHMENT_NAME_BYTES,
            f"attachment name is longer than {MAX_ATTACHMENT_NAME_BYTES} bytes",
        ),
    )


def unopenable_problem(filename: str, page_exists: bool = True) -> str | None:
    """Return why the wiki could not open the repository file `filename` (as git lists it),
    or None: a page (`.md`) by its path, any other file by its own name and, when its page
    exists (`page_exists`: the file is listed as that page's attachment), its page's path.
    Otterwiki opens a page under its path in NFKC form, so a name in another form (é as e and
    a combining accent) is never found. A file under no page (`assets/v1.2/x.png`) is listed
    nowhere, so its folder's name misleads no one; nor are hidden files (in a folder starting
    with '.', such as `.github/pull_request_template.md`, or `.gitignore`) judged."""
    problem = repository_path_problem(filename)
    if problem:
        return "file " + problem
    parts = filename.split("/")
    hidden_file = parts[-1].startswith(".") and not filename.endswith(".md")
    if hidden_file or any(part.startswith(".") for part in parts[:-1]):
        # Hidden (.github/..., .gitignore): a repository's own files, as pushed before. A page
        # file whose name starts with '.' is listed as a page all the same (`...md` as `..`,
        # which nothing could open, reviews 55 and 56), so it is judged as one.
        return None
    folder, _, name = filename.rpartition("/")
    is_page = filename.endswith(".md")
    page = filename[:-3] if is_page else folder
    if is_page or (page and page_exists):
        normal = unicodedata.normalize("NFKC", page)
        problem = page_path_problem(page) or _first(
            (normal != page, f"page path is not in Unicode NFKC form: the wiki opens {normal!r}")
        )
        if problem:
            return problem
    return None if is_page else attachment_name_problem(name)


def collision_key(filename: str) -> str:
    """The form in which two file names are one to the wiki, or to a clone on macOS or Windows:
    the same after Unicode NFC and lower() (Otterwiki lowercases names; casefold() would also
    join straße and strasse, which it keeps apart)."""
    return unicodedata.normalize("NFC", filename).lower()
