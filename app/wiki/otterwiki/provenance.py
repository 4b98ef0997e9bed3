"""Every commit made for a request says who and through what, and Otterwiki's pages show it.

Writing: each open wiki's repository is a `SigningRepo`, whose index passes every commit
message through the request's `Caller.commit_message` (app.core.provenance): the user's
lookalike trailer lines are quoted and a token's or OAuth grant's commit gets the Via /
On-Behalf-Of block. Otterwiki's editor, attachments, renames, reverts and the page API all
commit through this one index, so none of them can miss it; outside a request nothing changes.

Reading: Otterwiki's history, changelog, diff, blame, attachment and draft pages show authors
as `mailto:` links to the DID-derived address the gateway gives git, or by bare name.
`TEMPLATE_ADDITIONS` puts `robot_author` there instead (the person's profile link, "via
<agent>") and `robot_message` (the message without our block); the changelog's RSS and Atom
feeds name the agent the same way and carry no address.
"""

from __future__ import annotations

import re
from types import ModuleType
from urllib.parse import quote

import git
from git.index import IndexFile
from markupsafe import Markup
from markupsafe import escape

from app.core.provenance import did_from_email
from app.core.provenance import read_message

# Where an author's name links to: their public profile, by DID (handles change, DIDs stay).
PROFILE_URL = "https://bsky.app/profile/{}"


def _signed(message: str) -> str:
    from flask import g
    from flask import has_request_context

    caller = g.get("caller") if has_request_context() else None
    return caller.commit_message(message) if caller is not None else message


class _SigningIndex(IndexFile):
    """GitPython's index, committing with the request's caller's message (see module doc)."""

    def commit(self, message, *args, **kwargs):
        return super().commit(_signed(message), *args, **kwargs)


class SigningRepo(git.Repo):
    """A `git.Repo` whose `index` signs commits made during a request (see module doc)."""

    @property
    def index(self) -> IndexFile:
        return _SigningIndex(self)


def robot_author(name, email, message) -> Markup:
    """HTML naming a commit's author: a profile link when their DID is known (our trailer or
    the DID-derived address), else the bare name; then "via <agent>" for an agent's commit.
    Every value is escaped; arguments may be Jinja's Undefined (treated as empty)."""
    found = read_message(str(message or ""))
    did = found.did or did_from_email(str(email or ""))
    shown = escape(str(name or found.handle or "unknown"))
    if did:
        href = escape(PROFILE_URL.format(quote(did, safe=":")))
        shown = Markup(f'<a href="{href}" rel="nofollow noopener" class="robot-author">{shown}</a>')
    if found.agent is not None:
        via = escape(str(found.agent))
        shown += Markup(f' <span class="robot-via text-muted">via {via}</span>')
    return shown


def robot_message(message) -> str:
    """A commit message without our trailer block (Jinja escapes it as any text)."""
    return read_message(str(message or "")).message


# Otterwiki's author cell and message cell, for any RECORD (entry, metadata) that has them.
_AUTHOR_CELL = (
    "{%if not RECORD.author_email%}{{RECORD.author_name}}{%else%}"
    '<a href="mailto:{{RECORD.author_email}}">{{RECORD.author_name}}</a>{%endif%}'
)
_OUR_AUTHOR_CELL = "{{ robot_author(RECORD.author_name, RECORD.author_email, RECORD.message) }}"
_MESSAGE_CELL = "{{RECORD.message or '-/-'}}"
_OUR_MESSAGE_CELL = "{{ robot_message(RECORD.message) or '-/-' }}"


def _author(record: str) -> tuple[str, str]:
    """(anchor, replacement) of Otterwiki's author cell for `record`."""
    return _AUTHOR_CELL.replace("RECORD", record), _OUR_AUTHOR_CELL.replace("RECORD", record)


def _message(record: str) -> tuple[str, str]:
    """(anchor, replacement) of Otterwiki's commit message cell for `record`."""
    return _MESSAGE_CELL.replace("RECORD", record), _OUR_MESSAGE_CELL.replace("RECORD", record)


# Otterwiki 2.26.1's templates: (template, anchor, replacement) for csp.RewritingLoader, which
# refuses to serve a template that lost its anchor. diff.html shows a revision's author twice.
TEMPLATE_ADDITIONS = (
    *((page, *_author("entry")) for page in ("history.html", "changelog.html")),
    *((page, *_message("entry")) for page in ("history.html", "changelog.html")),
    ("edit_attachment.html", *_author("entry")),
    ("edit_attachment.html", *_message("entry")),
    ("diff.html", *_author("metadata")),
    ("diff.html", *_author("metadata")),
    ("diff.html", *_message("metadata")),
    ("diff.html", *_message("metadata")),
    (
        "draft.html",
        "by {{entry.author_name}}:",
        "by {{ robot_author(entry.author_name, entry.author_email, entry.message) }}:",
    ),
    ("draft.html", *_message("entry")),
    ("attachments.html", "{{f.author_name}}", "{{ robot_author(f.author_name, '', f.message) }}"),
    ("attachments.html", "{{f.message}}", "{{ robot_message(f.message) }}"),
    ("blame.html", "{{line[1]}}", '{{ robot_author(line[1], "", line[7]) }}'),
    ("blame.html", "{{line[7]}}", "{{ robot_message(line[7]) }}"),
)


# What XML 1.0 may not hold (its Char production): a pushed commit's message, author or file
# name with one of these made lxml refuse the whole feed (a 500 for every reader).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: object) -> str:
    return _NOT_XML.sub("", str(text or ""))


def feed_entry(entry: dict) -> dict:
    """A changelog entry as the RSS and Atom feeds show it: "<person> via <agent>" as the
    author's name, no (DID-derived) address, the message without our block, and no character
    XML cannot hold in any of them or in the file names."""
    found = read_message(entry.get("message") or "")
    name = entry.get("author_name") or ""
    if found.agent is not None and name:
        name = f"{name} via {found.agent}"
    files = {
        key: {**details, "name": _xml_text(details.get("name"))}
        for key, details in (entry.get("files") or {}).items()
    }
    return {
        **entry,
        "author_name": _xml_text(name),
        "author_email": "",
        "message": _xml_text(found.message),
        "files": files,
    }


def _feeds_without_addresses() -> None:
    from otterwiki.wiki import Changelog

    original = Changelog.get_feedgenerator

    def get_feedgenerator(self):
        entries = self.get
        self.get = lambda *args, **kwargs: [feed_entry(e) for e in entries(*args, **kwargs)]
        return original(self)

    Changelog.get_feedgenerator = get_feedgenerator


def install_provenance(server: ModuleType) -> None:
    """Give Otterwiki's templates (`server.app`) `robot_author` and `robot_message`; make its
    changelog feeds name the agent and no address (`feed_entry`)."""
    server.app.jinja_env.globals["robot_author"] = robot_author
    server.app.jinja_env.globals["robot_message"] = robot_message
    _feeds_without_addresses()
