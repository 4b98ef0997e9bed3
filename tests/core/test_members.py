"""Members added before they sign in, the owner's fixed role, deleting a user with all theirs."""

import pytest

from app.core.errors import BadRequest
from app.core.errors import Conflict
from app.core.errors import NotFound
from app.core.schema import users as users_table
from app.core.wikis import clean_display_name
from app.core.wikis import create_wiki
from app.core.wikis import delete_user
from tests.conftest import ALICE
from tests.conftest import BOB
from tests.conftest import oauth_grant

pytestmark = pytest.mark.both_engines

NEWCOMER = ("did:plc:newcomer", "new.test")


@pytest.fixture
def alpha(settings, store, users):
    create_wiki(settings, store, "alpha", ALICE[0])
    return "alpha"


def test_added_member_has_not_signed_in_until_they_do(store, alpha):
    member, is_new = store.add_member(alpha, *NEWCOMER, "editor")
    assert is_new and (member.role, member.signed_in, member.owner) == ("editor", False, False)
    assert store.get_user(NEWCOMER[0]).last_sign_in_at is None
    store.upsert_user(*NEWCOMER, signed_in=True)
    [listed] = [m for m in store.list_members(alpha) if m.did == NEWCOMER[0]]
    assert listed.signed_in and listed.role == "editor"


def test_adding_again_changes_the_role_and_keeps_the_sign_in(store, alpha):
    store.upsert_user(*BOB, signed_in=True)
    store.add_member(alpha, *BOB, "viewer")
    member, is_new = store.add_member(alpha, BOB[0], "bob.renamed.test", "admin")
    assert not is_new and (member.role, member.handle, member.signed_in) == (
        "admin",
        "bob.renamed.test",
        True,
    )


def test_listing_marks_the_owner(store, alpha):
    store.add_member(alpha, *BOB, "viewer")
    assert [(m.did, m.owner) for m in store.list_members(alpha)] == [
        (ALICE[0], True),
        (BOB[0], False),
    ]


@pytest.mark.parametrize("role", ["admin", "editor", "viewer"])
def test_the_owners_role_never_changes_and_they_stay(store, alpha, role):
    with pytest.raises(Conflict):
        store.add_member(alpha, *ALICE, role)
    with pytest.raises(Conflict):
        store.remove_member(alpha, ALICE[0])
    assert store.role_of(alpha, ALICE[0]) == "admin"


def test_a_failed_add_makes_no_user(store, alpha):
    with pytest.raises(NotFound):
        store.add_member("nowiki", *NEWCOMER, "viewer")
    assert store.find_user(NEWCOMER[0]) is None


# Twenty-fifth review: a handle holding '<' was stored and made every commit of its user a
# 500. Each a member of the kind: a handle or DID not of the ATProto specs' syntax.
BAD_HANDLES = [
    "<img src=x onerror=alert(1)>.example",
    "new",
    "new.test\n",
    "new..test",
    "-new.test",
    "new test.test",
    "new.test.",
    "a" * 250 + ".test",
    "",
]
BAD_DIDS = ["did:plc:new<x>", "did:plc:", "did:plc:a b", "DID:plc:new", "new", "did:plc:x\n"]


@pytest.mark.parametrize("handle", BAD_HANDLES)
def test_a_handle_not_of_the_specs_syntax_is_never_stored(store, alpha, handle):
    with pytest.raises(BadRequest, match="not a valid handle"):
        store.upsert_user(NEWCOMER[0], handle)
    with pytest.raises(BadRequest, match="not a valid handle"):
        store.add_member(alpha, NEWCOMER[0], handle, "editor")
    assert store.find_user(NEWCOMER[0]) is None
    store.upsert_user(*BOB)
    with pytest.raises(BadRequest):
        store.upsert_user(BOB[0], handle, signed_in=True)
    assert store.get_user(BOB[0]).handle == BOB[1]


@pytest.mark.parametrize("did", BAD_DIDS)
def test_a_did_not_of_the_specs_syntax_is_never_stored(store, alpha, did):
    with pytest.raises(BadRequest, match="not a valid DID"):
        store.upsert_user(did, NEWCOMER[1])
    with pytest.raises(BadRequest, match="not a valid DID"):
        store.add_member(alpha, did, NEWCOMER[1], "editor")
    assert [user.did for user in store.list_users()] == sorted([ALICE[0], BOB[0]])


# Twenty-sixth review: the DID syntax alone let these be stored. A user's DID is a did:plc
# (lower-case letters, digits, inner hyphens) or a did:web naming a bare host.
OTHER_METHOD_DIDS = ["did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", "did:example:1"]
OTHER_METHOD_DIDS += ["did:ion:EiClkZMDxPKqC9c", "did:pkh:eip155:1:0xb9c5714089478a327f09197"]
BAD_PLC_DIDS = ["did:plc:AAA", "did:plc:Alice", "did:plc:a.b", "did:plc:a:b", "did:plc:-x"]
BAD_PLC_DIDS += ["did:plc:x-", "did:plc:a_b", "did:plc:%61lice", "did:plc:" + "a" * 70]
BAD_WEB_DIDS = ["did:web:evil.com:..:x", "did:web:evil.com:user:alice", "did:web:a.b%2Fpath"]
BAD_WEB_DIDS += ["did:web:evil.com%3A443:x", "did:web:a_b.example", "did:web:a.b%3Ax"]
GOOD_DIDS = ["did:plc:ewvi7nxzyoun6zhxrhs64oiz", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"]
# Twenty-seventh review: hosts that are no DNS name, addresses, local names, upper case.
BAD_WEB_DIDS += ["did:web:.", "did:web:..", "did:web:-", "did:web:a..b", "did:web:-evil.com"]
BAD_WEB_DIDS += ["did:web:evil.com.", "did:web:evil.com%3A99999999999", "did:web:localhost"]
BAD_WEB_DIDS += ["did:web:127.0.0.1", "did:web:169.254.169.254", "did:web:EVIL.COM"]
BAD_WEB_DIDS += ["did:web:pds.Example.org", "did:web:metadata.google.internal", "did:web:a.local"]
BAD_WEB_DIDS += ["did:web:localhost%3A0", "did:web:localhost%3A65536", "did:web:evil.com%3A443"]
BAD_WEB_DIDS += ["did:web:" + "a" * 64 + ".com", "did:web:" + "a." * 130 + "com"]
GOOD_DIDS += ["did:web:example.com", "did:web:localhost%3A8080", "did:web:pds.example.org"]
GOOD_DIDS += ["did:web:a-b.co.uk", "did:web:localhost%3A65535", "did:web:x1.example.com"]
GOOD_DIDS += ["did:plc:carol", "did:plc:ten-alice", "did:plc:x9"]  # hand-made instances


@pytest.mark.parametrize(
    ("did", "why"),
    [
        *((did, "only did:plc and did:web") for did in OTHER_METHOD_DIDS),
        *((did, "not a valid did:plc") for did in BAD_PLC_DIDS),
        *((did, "not a valid did:web") for did in BAD_WEB_DIDS),
    ],
)
def test_a_did_no_account_can_have_is_never_stored(store, alpha, did, why):
    with pytest.raises(BadRequest, match=why):
        store.upsert_user(did, NEWCOMER[1])
    with pytest.raises(BadRequest, match=why):
        store.upsert_user(did, NEWCOMER[1], signed_in=True)
    with pytest.raises(BadRequest, match=why):
        store.add_member(alpha, did, NEWCOMER[1], "editor")
    assert [user.did for user in store.list_users()] == sorted([ALICE[0], BOB[0]])


@pytest.mark.parametrize("did", GOOD_DIDS)
def test_a_did_plc_or_web_is_stored(store, alpha, did):
    assert store.upsert_user(did, NEWCOMER[1]).did == did
    member, _ = store.add_member(alpha, did, NEWCOMER[1], "viewer")
    assert member.did == did


# A handle names one account (twenty-sixth review: `robot user add` gave a second DID Alice's).
@pytest.mark.parametrize("handle", [ALICE[1], ALICE[1].upper(), "Alice.Test"])
def test_a_handle_another_user_holds_is_refused_when_not_verified(store, users, handle):
    with pytest.raises(Conflict, match=f"belongs to another user, {ALICE[0]}"):
        store.upsert_user(NEWCOMER[0], handle)
    assert store.find_user(NEWCOMER[0]) is None
    # Nor may a known user take it by changing theirs.
    with pytest.raises(Conflict, match="belongs to another user"):
        store.upsert_user(BOB[0], handle)
    assert store.get_user(BOB[0]).handle == BOB[1]
    assert store.get_user(ALICE[0]).handle == ALICE[1]


def test_a_user_may_set_their_own_handle_again_or_a_free_one(store, users):
    assert store.upsert_user(*ALICE).handle == ALICE[1]
    assert store.upsert_user(ALICE[0], "alice2.test").handle == "alice2.test"
    # The handle Alice left is free for another account.
    assert store.upsert_user(NEWCOMER[0], ALICE[1]).handle == ALICE[1]


@pytest.mark.parametrize("handle", [ALICE[1], "ALICE.test"])
def test_a_sign_in_takes_its_handle_from_the_user_who_held_it(settings, store, users, handle):
    create_wiki(settings, store, "alices", ALICE[0])
    user = store.upsert_user(NEWCOMER[0], handle, signed_in=True)
    assert user.handle == handle and user.last_sign_in_at is not None
    # The older row keeps its DID, wikis and memberships; its handle no longer names it.
    old = store.get_user(ALICE[0])
    assert old.handle == "handle.invalid"
    assert store.get_wiki("alices").owner_did == ALICE[0]
    assert store.role_of("alices", ALICE[0]) == "admin"
    assert [u.did for u in store.list_users() if u.handle.lower() == ALICE[1]] == [NEWCOMER[0]]
    # Alice signs in again under a new handle (or takes hers back the same way).
    assert store.upsert_user(ALICE[0], "alice.new.test", signed_in=True).handle == (
        "alice.new.test"
    )
    assert store.upsert_user(ALICE[0], ALICE[1], signed_in=True).handle == ALICE[1]
    assert store.get_user(NEWCOMER[0]).handle == "handle.invalid"


def test_adding_a_member_takes_their_verified_handle_from_the_user_who_held_it(store, alpha):
    member, _ = store.add_member(alpha, NEWCOMER[0], BOB[1], "editor")
    assert member.handle == BOB[1]
    assert store.get_user(BOB[0]).handle == "handle.invalid"


def test_any_number_of_accounts_may_show_the_invalid_handle(store, alpha):
    for did in ("did:plc:one", "did:plc:two"):
        store.upsert_user(did, "handle.invalid", signed_in=True)
    store.add_member(alpha, "did:plc:three", "handle.invalid", "viewer")
    store.upsert_user("did:plc:four", "handle.invalid")
    assert sum(u.handle == "handle.invalid" for u in store.list_users()) == 4
    assert store.get_user(ALICE[0]).handle == ALICE[1]


def test_recording_the_handle_a_user_has_takes_it_from_nobody(store, users):
    # Two rows with one handle from before the rule: a sign-in whose handle no longer verifies
    # records the one known again (app.auth.atproto.login.record_user), which proves nothing.
    with store.engine.begin() as connection:
        connection.execute(
            users_table.insert().values(did=NEWCOMER[0], handle=ALICE[1], created_at=0)
        )
    assert store.upsert_user(ALICE[0], ALICE[1], signed_in=True).handle == ALICE[1]
    assert store.get_user(NEWCOMER[0]).handle == ALICE[1]
    assert store.upsert_user(*ALICE).handle == ALICE[1]


def test_what_sign_in_records_is_still_stored(store):
    # An account whose handle does not verify is recorded as the Handle spec says to show it.
    assert store.upsert_user(NEWCOMER[0], "handle.invalid", signed_in=True).handle == (
        "handle.invalid"
    )


def test_delete_user_takes_everything_of_theirs(settings, store, alpha):
    create_wiki(settings, store, "bobs", BOB[0])
    store.set_member("bobs", ALICE[0], "editor")
    _, bobs_token = store.create_token("bobs", ALICE[0], "editor")
    _, own_token = store.create_token(alpha, ALICE[0], "admin")
    grant = oauth_grant(store, ALICE[0], "bobs")
    _, cookie = store.create_session(ALICE[0], "localhost", 3600)
    assert delete_user(settings, store, ALICE[0]) == [alpha]
    assert store.find_user(ALICE[0]) is None and store.find_wiki(alpha) is None
    assert not settings.wiki_dir(alpha).exists()
    assert store.role_of("bobs", ALICE[0]) is None
    assert store.authenticate_token(bobs_token, "bobs") is None
    assert not store.oauth_grant_live(grant, ALICE[0], "bobs")
    assert store.session_for_secret(cookie, "localhost") is None
    assert store.find_wiki("bobs") is not None and store.find_user(BOB[0]) is not None


def test_delete_user_refuses_a_stale_list_of_wikis(settings, store, alpha):
    with pytest.raises(Conflict):
        store.delete_user(ALICE[0], [])
    assert store.find_wiki(alpha) is not None and store.find_user(ALICE[0]) is not None


# Labels and display names are read by other people, in pages and in an operator's terminal
# (`robot token list`): controls would drive the terminal, format characters reorder the text.
_HIDDEN = ["\x1b[31m", "\x07", "\x00", "\x7f", "\x9b", "\u202e", "\u2066", "\u200b", "\ufeff"]


@pytest.mark.parametrize("hidden", _HIDDEN, ids=[repr(h) for h in _HIDDEN])
def test_token_labels_and_display_names_refuse_hidden_characters(store, alpha, hidden):
    with pytest.raises(BadRequest, match="control or invisible"):
        clean_display_name(f"Notes{hidden}x", "notes")
    with pytest.raises(BadRequest, match="control or invisible"):
        store.create_token(alpha, ALICE[0], "viewer", f"laptop{hidden}agent")
    assert store.list_tokens(alpha) == []
    token, _secret = store.create_token(alpha, ALICE[0], "viewer", " my\tlaptop\n")
    assert token.label == "my laptop"


def test_list_wikis_by_owner_leaves_out_wikis_shared_with_them(settings, store, alpha):
    create_wiki(settings, store, "bobs", BOB[0])
    store.set_member("bobs", ALICE[0], "admin")
    assert [w.slug for w in store.list_wikis(member_did=ALICE[0])] == ["alpha", "bobs"]
    assert [w.slug for w in store.list_wikis(owner_did=ALICE[0])] == ["alpha"]
