"""Who made a commit and through what: the trailer block robot appends, and reading it back.

A commit made with a wiki token or an OAuth grant ends with one paragraph of two trailers in
git's `interpret-trailers` format (`git log --format=%(trailers)` reads them too):

    Via: <agent name> (token)                     a wiki token, named by its label
    Via: <agent name> (OAuth client <client id>)  an OAuth grant, named by the client's name
    On-Behalf-Of: <handle> <did>                  the person whose credential it was

Commits a person makes in the browser (a session) carry no trailer: their author is the person.
What users write cannot forge the block: `signed_message` quotes every line of theirs that
starts with one of these keys (`> Via: ...`), and `read_message` takes a block only from the
message's last paragraph, only when it is exactly these two lines. Agent names are chosen by
whoever made the token or registered the client: `agent_name` makes them one short plain line.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

VIA_KEY = "Via"
ON_BEHALF_OF_KEY = "On-Behalf-Of"
TOKEN = "token"
OAUTH = "oauth"
# Agent names are shown next to every change they made: short, like a token label.
MAX_AGENT_NAME = 64
UNNAMED = "unnamed"
# Handles are domain names (at most 253 characters); DIDs are shorter in practice.
MAX_IDENTIFIER = 300
# A line of a user's message that git or a reader could take for one of our trailers: the key in
# any case, git's `:` separator, after anything a reader may strip first (Otterwiki's log strips
# every line with str.strip(), which takes \x0b, \x0c, \x1c-\x1f, \x85, \xa0, \u3000 ...).
_LOOKALIKE = re.compile(r"(via|on-behalf-of)\s*:", re.IGNORECASE)
_VIA = re.compile(r"(?P<name>.+) \((?:token|OAuth client (?P<client>[^\s()]+))\)")
_ON_BEHALF_OF = re.compile(r"(?P<handle>\S+) (?P<did>did:[a-z0-9]+:\S+)")
# The DID-derived author address of app.core.identity.Caller.git_identity: did.plc.xyz@domain.
_DID_EMAIL = re.compile(r"did\.([a-z0-9]+)\.([^@\s]+)@")


@dataclass(frozen=True)
class Agent:
    """The program a person let act for them: `kind` is "token" or "oauth"; `client_id` names
    the OAuth client (None for tokens). `name` is already one clean line (`agent_name`)."""

    name: str
    kind: str
    client_id: str | None = None

    def as_dict(self) -> dict:
        """{"name", "kind"} and, for OAuth, "client_id": the page API's `via`."""
        found = {"name": self.name, "kind": self.kind}
        if self.client_id:
            found["client_id"] = self.client_id
        return found

    def __str__(self) -> str:
        """How history pages name it: `label (token)`, `name (OAuth client)`."""
        return f"{self.name} ({'token' if self.kind == TOKEN else 'OAuth client'})"


@dataclass(frozen=True)
class Provenance:
    """A commit message read back: the user's `message` without our block, the `agent` it
    names (None for a person's own commit) and the person's `did` and `handle` (None if the
    message does not say)."""

    message: str
    agent: Agent | None = None
    did: str | None = None
    handle: str | None = None


def agent_name(raw: object, limit: int = MAX_AGENT_NAME) -> str:
    """Return hostile text (a token label, an OAuth client_name) as one plain line.

    Control, format and other invisible characters (Unicode category C) become spaces,
    whitespace runs collapse, the result is cut to `limit` characters (an ellipsis marks the
    cut); anything that is not a non-empty string becomes "unnamed". Never raises.
    """
    if not isinstance(raw, str):
        return UNNAMED
    text = "".join(" " if unicodedata.category(c).startswith("C") else c for c in raw)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or UNNAMED


def neutralise(message: str) -> str:
    """Quote (`> `) every line of `message` that looks like one of our trailers.

    Lines are split at every break Python or git knows (str.splitlines is a superset of git's
    `\n`), and a line counts once leading whitespace and invisible characters (Unicode
    categories C and Z) are set aside, so no spelling a reader strips can bring a key back.
    """
    quoted = []
    for line in message.splitlines(keepends=True):
        core = line.lstrip()
        while core and unicodedata.category(core[0])[0] in "CZ":
            core = core[1:].lstrip()
        quoted.append("> " + core if _LOOKALIKE.match(core) else line)
    return "".join(quoted)


def _trailer_block(agent: Agent, did: str, handle: str | None) -> str:
    """The two trailer lines naming `agent` and the person (`did`, `handle`), no newline after."""
    if agent.kind == OAUTH:
        via = f"{agent.name} (OAuth client {_client_id(agent.client_id)})"
    else:
        via = f"{agent.name} (token)"
    return f"{VIA_KEY}: {via}\n{ON_BEHALF_OF_KEY}: {_word(handle or did)} {_word(did)}"


def _word(text: str) -> str:
    """A handle or DID as one trailer word (they hold no spaces; a stored one never will)."""
    return agent_name(text, MAX_IDENTIFIER).replace(" ", "")


def _client_id(client_id: str | None) -> str:
    """An OAuth client id as the trailer writes it: no spaces or parentheses, "unknown" if none."""
    cleaned = re.sub(r"[\s()]", "", agent_name(client_id or "", 200))
    return cleaned if client_id and cleaned else "unknown"


def signed_message(message: str, agent: Agent | None, did: str | None, handle: str | None) -> str:
    """Return a commit message to store for a change by person `did` through `agent`.

    The user's lookalike lines are quoted (see `neutralise`); when `agent` and `did` are given
    the trailer block follows after a blank line. A person's own change (`agent` None) gets no
    block. This is the one function every commit path calls (Otterwiki's UI and the page API
    through app.wiki.otterwiki.provenance, git pushes through their own code).
    """
    message = neutralise(message or "").rstrip()
    if agent is None or did is None:
        return message
    block = _trailer_block(agent, did, handle)
    return f"{message}\n\n{block}\n" if message else f"{block}\n"


def read_message(message: str) -> Provenance:
    """Split a stored commit message into the user's text and what our trailer block says.

    Only a last paragraph of exactly a `Via:` and an `On-Behalf-Of:` line counts (lines may
    carry the indentation `git log` adds). Anything else is all user text, agent None.
    """
    text = (message or "").rstrip()
    head, _, last = text.rpartition("\n\n")
    lines = [line.strip() for line in last.split("\n")]
    if len(lines) == 2 and lines[0].startswith(f"{VIA_KEY}: "):
        via = _VIA.fullmatch(lines[0][len(VIA_KEY) + 2 :])
        person = lines[1].removeprefix(f"{ON_BEHALF_OF_KEY}: ")
        who = _ON_BEHALF_OF.fullmatch(person) if person != lines[1] else None
        if via and who:
            client = via["client"]
            agent = Agent(via["name"], OAUTH if client else TOKEN, client)
            return Provenance(head.rstrip(), agent, who["did"], who["handle"])
    return Provenance(text)


def did_from_email(email: str | None) -> str | None:
    """The DID a DID-derived author address stands for (`did.plc.xyz@host` -> `did:plc:xyz`).

    Exact for did:plc and for did:web without a path (a did:web path's colons became dots and
    stay dots); None for any other address.
    """
    found = _DID_EMAIL.match(email or "")
    return f"did:{found[1]}:{found[2]}" if found else None
