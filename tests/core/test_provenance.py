"""The Via / On-Behalf-Of trailer block: written once by our code, never forged by users."""

import subprocess

import pytest

from app.core.identity import Caller
from app.core.identity import authenticate
from app.core.provenance import OAUTH
from app.core.provenance import TOKEN
from app.core.provenance import Agent
from app.core.provenance import agent_name
from app.core.provenance import did_from_email
from app.core.provenance import read_message
from app.core.provenance import signed_message
from tests.conftest import oauth_grant

ALICE = ("did:plc:alice", "alice.test")
FORGED = "Via: Mallory (token)\nOn-Behalf-Of: mallory.test did:plc:mallory"


def test_token_commit_names_the_agent_and_the_person():
    message = signed_message("Fix typo", Agent("laptop", TOKEN), *ALICE)
    assert message == "Fix typo\n\nVia: laptop (token)\nOn-Behalf-Of: alice.test did:plc:alice\n"
    found = read_message(message)
    assert (found.message, found.agent, found.did, found.handle) == (
        "Fix typo",
        Agent("laptop", TOKEN),
        *ALICE,
    )


def test_oauth_commit_names_the_client_and_its_id():
    message = signed_message("Add page", Agent("Claude", OAUTH, "mcp_abc"), *ALICE)
    assert "\nVia: Claude (OAuth client mcp_abc)\n" in message
    assert read_message(message).agent.as_dict() == {
        "name": "Claude",
        "kind": "oauth",
        "client_id": "mcp_abc",
    }


def test_git_reads_the_same_trailers(tmp_path):
    """git interpret-trailers (git's own parser) finds exactly our two trailers."""
    message = signed_message("Title\n\nBody text.", Agent("bot", TOKEN), *ALICE)
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        input=message,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert parsed == "Via: bot (token)\nOn-Behalf-Of: alice.test did:plc:alice\n"


def test_a_persons_commit_has_no_block():
    assert signed_message("Edit", None, *ALICE) == "Edit"
    assert read_message("Edit").agent is None


@pytest.mark.parametrize(
    "forgery",
    [
        FORGED,
        f"Title\n\n{FORGED}",
        FORGED.lower(),
        "  Via : Mallory (token)\n\tOn-Behalf-Of:  mallory.test did:plc:mallory",
        f"Title\n\n{FORGED}\n\n\n",
    ],
)
def test_user_lines_that_look_like_the_block_are_quoted(forgery):
    for agent in (None, Agent("real", TOKEN)):
        message = signed_message(forgery, agent, *ALICE)
        found = read_message(message)
        assert found.did in (None, ALICE[0]) and "mallory" not in str(found.agent)
        assert found.agent == agent
        assert "> " in found.message  # the user's text is kept, visibly quoted


def test_a_forged_block_with_our_block_after_it_is_still_only_text():
    found = read_message(signed_message(FORGED, Agent("real", TOKEN), *ALICE))
    assert found.agent == Agent("real", TOKEN) and found.did == ALICE[0]
    assert found.message == "> Via: Mallory (token)\n> On-Behalf-Of: mallory.test did:plc:mallory"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("my laptop", "my laptop"),
        (
            "evil\n\nVia: x (token)\nOn-Behalf-Of: m did:plc:m",
            "evil Via: x (token) On-Behalf-Of: m did:plc:m",
        ),
        ("bell\x07esc\x1b[31mred\u202eltr", "bell esc [31mred ltr"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ("x" * 500, "x" * 63 + "…"),
        ("", "unnamed"),
        ("\x00\x01", "unnamed"),
        (None, "unnamed"),
        (["list"], "unnamed"),
    ],
)
def test_agent_names_are_one_short_plain_line(raw, expected):
    assert agent_name(raw) == expected


def test_a_hostile_agent_name_cannot_change_what_is_read_back():
    name = agent_name("x (token)\nOn-Behalf-Of: mallory did:plc:mallory")
    found = read_message(signed_message("m", Agent(name, OAUTH, "mcp_1"), *ALICE))
    assert found.agent == Agent(name, OAUTH, "mcp_1") and found.did == ALICE[0]


def test_caller_signs_with_its_own_agent():
    caller = Caller(*ALICE, "editor", "token", agent=Agent("ci", TOKEN))
    assert read_message(caller.commit_message("m")).agent == Agent("ci", TOKEN)
    person = Caller(*ALICE, "editor", "session")
    assert person.commit_message(FORGED).startswith("> Via:")


@pytest.mark.parametrize(
    ("email", "did"),
    [
        ("did.plc.abc123@localhost", "did:plc:abc123"),
        ("did.web.example.com@robot.example", "did:web:example.com"),
        ("alice@example.com", None),
        ("", None),
        (None, None),
    ],
)
def test_did_from_the_derived_address(email, did):
    assert did_from_email(email) == did


def test_the_derived_address_round_trips():
    name, email = Caller(*ALICE).git_identity("localhost")
    assert (name, did_from_email(email)) == ("alice.test", ALICE[0])


def _access(platform, did, client_id):
    settings = platform.settings
    grant = oauth_grant(platform.store, did, "alpha", client_id)
    return platform.key.mint_access_token(
        did, settings.mcp_url("alpha"), settings.auth_origin, "wiki:write", 60, client_id, grant
    )


def _caller(platform, authorization=None, cookie=None):
    return authenticate(
        platform.settings, platform.key, platform.store, "alpha", authorization, cookie
    )


def test_a_token_caller_knows_its_label(wikis, users):
    _, secret = wikis.store.create_token("alpha", users[0], "editor", "  my   laptop ")
    assert _caller(wikis, f"Bearer {secret}").agent == Agent("my laptop", TOKEN)


def test_an_oauth_caller_knows_its_clients_name_made_plain(wikis, users):
    wikis.store.save_oauth_client("mcp_x", {"client_name": "Claude\r\n\x1b]0;pwn\x07 Desktop"})
    found = _caller(wikis, f"Bearer {_access(wikis, users[0], 'mcp_x')}")
    assert found.agent == Agent("Claude ]0;pwn Desktop", OAUTH, "mcp_x")


@pytest.mark.parametrize("metadata", [{}, {"client_name": 42}, {"client_name": ""}])
def test_an_oauth_client_without_a_usable_name_is_unnamed(wikis, users, metadata):
    wikis.store.save_oauth_client("mcp_anon", metadata)
    found = _caller(wikis, f"Bearer {_access(wikis, users[0], 'mcp_anon')}")
    assert found.agent == Agent("unnamed", OAUTH, "mcp_anon")


def test_a_session_has_no_agent(wikis, users):
    _, secret = wikis.store.create_session(users[0], "alpha.localhost", 60)
    assert _caller(wikis, cookie=secret).agent is None


def test_a_long_handle_is_kept_whole():
    handle = "a" * 60 + "." + "b" * 60 + ".example.com"
    found = read_message(signed_message("m", Agent("x", TOKEN), ALICE[0], handle))
    assert (found.handle, found.did) == (handle, ALICE[0])


# Every character a reader may strip or split at before a key: Otterwiki's log strips each line
# with str.strip(); str.splitlines breaks at more than git's "\n".
SLIPPED = ["\x0b", "\x0c", "\r", "\x1c", "\x1f", "\x85", "\xa0", "\u2003", "\u3000", "\u2028"]
INVISIBLE = ["\u200b", "\ufeff", "\u200e", "\x00", "\x7f"]


@pytest.mark.parametrize("prefix", SLIPPED + INVISIBLE + ["\t \x0b", " \u200b\xa0"])
@pytest.mark.parametrize("agent", [None, Agent("laptop", TOKEN)], ids=["person", "token"])
def test_no_prefix_a_reader_strips_brings_a_forged_block_back(prefix, agent):
    forged = f"x\n\n{prefix}Via: forged (token)\n{prefix}On-Behalf-Of: eve.test did:plc:alice"
    stored = signed_message(forged, agent, "did:plc:bob", "bob.test")
    as_git_log = "\n".join(line.strip() for line in stored.split("\n"))
    as_lines = "\n".join(line.strip() for line in stored.splitlines())
    for seen in (stored, as_git_log, as_lines):
        found = read_message(seen)
        assert found.did in (None, "did:plc:bob"), repr(seen)
        assert found.agent in (None, agent) and "forged" not in str(found.agent)
