"""Adding collaborators by handle or DID through the management API, on the fake ATProto network.

Pinned here: someone who never signed in can be added (their handle verified both ways) and
finds the wiki when they sign in; every refusal is a 4xx (5xx only for upstream trouble, as
JSON) and leaves members and users as they were.
"""

from dataclasses import replace

import pytest

from app.core.atproto_identity import Network
from app.core.wikis import create_wiki
from tests.conftest import ALICE
from tests.conftest import BOB
from tests.conftest import free_ports

pytestmark = pytest.mark.both_engines

PATH = "/api/wikis/alpha/members"


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth(platform):
    def headers(user):
        token = platform.key.mint_session(*user, platform.settings.auth_origin, 3600)
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture
def alpha(settings, store, users):
    """Wiki alpha: Alice owns it, Bob is its editor."""
    store.upsert_user(*ALICE, signed_in=True)
    create_wiki(settings, store, "alpha", ALICE[0])
    store.set_member("alpha", BOB[0], "editor")
    return "alpha"


@pytest.fixture
def carol(fake_net) -> str:
    """Carol has an ATProto account (carol.test) but has never signed in here."""
    return fake_net.add_account("carol.test")


def members(client, auth) -> list[tuple]:
    listed = client.get(PATH, headers=auth(ALICE)).json["members"]
    return [(m["did"], m["handle"], m["role"], m["owner"], m["signed_in"]) for m in listed]


def test_add_by_handle_before_they_ever_sign_in(client, auth, store, alpha, carol):
    response = client.post(
        PATH, json={"member": "@Carol.test", "role": "editor"}, headers=auth(ALICE)
    )
    assert response.status_code == 201
    assert response.json["member"] == {
        "did": carol,
        "handle": "carol.test",
        "role": "editor",
        "owner": False,
        "signed_in": False,
    }
    assert members(client, auth)[0] == (ALICE[0], ALICE[1], "admin", True, True)


def test_they_find_the_wiki_when_they_sign_in(client, auth, store, alpha, carol):
    client.post(PATH, json={"member": "carol.test", "role": "viewer"}, headers=auth(ALICE))
    store.upsert_user(carol, "carol.test", signed_in=True)  # what sign-in does
    listed = client.get("/api/wikis", headers=auth((carol, "carol.test"))).json["wikis"]
    assert [(w["slug"], w["role"]) for w in listed] == [("alpha", "viewer")]
    assert members(client, auth)[-1][-1] is True


def test_add_by_did_verifies_its_handle(client, auth, fake_net, alpha, carol):
    response = client.post(PATH, json={"member": carol, "role": "viewer"}, headers=auth(ALICE))
    assert response.status_code == 201 and response.json["member"]["handle"] == "carol.test"


def test_add_by_handle_resolved_by_dns(client, auth, fake_net, alpha):
    dana = fake_net.add_account("dana.example.org")
    fake_net.txt["_atproto.dana.example.org"] = [f"did={dana}"]
    body = {"member": "dana.example.org", "role": "editor"}
    response = client.post(PATH, json=body, headers=auth(ALICE))
    assert response.status_code == 201 and response.json["member"]["did"] == dana


def test_old_did_body_still_changes_a_role(client, auth, store, alpha):
    response = client.post(PATH, json={"did": BOB[0], "role": "admin"}, headers=auth(ALICE))
    assert response.status_code == 200 and store.role_of("alpha", BOB[0]) == "admin"


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"member": "nobody.test", "role": "viewer"}, 400, "no Bluesky/ATProto account found"),
        ({"member": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "role": "viewer"}, 400, "no Bluesky"),
        ({"member": "not a handle!", "role": "viewer"}, 400, "not a handle"),
        ({"member": "", "role": "viewer"}, 400, "handle"),
        ({"member": "https://pds.test", "role": "viewer"}, 400, "handle"),
        ({"member": "did:plc:short", "role": "viewer"}, 400, "not a valid did:plc"),
        ({"member": 5, "role": "viewer"}, 400, "must be a string"),
        ({"member": "carol.test"}, 400, "'role' is required"),
        ({"member": "carol.test", "role": "owner"}, 400, "invalid role"),
        ({"member": "carol.test", "did": BOB[0], "role": "viewer"}, 400, "send 'member'"),
        ({"role": "viewer"}, 400, "send 'member'"),
        ({"member": "alice.test", "role": "viewer", "x": 1}, 400, "unknown field"),
        ({"member": ALICE[0], "role": "viewer"}, 409, "you are already the owner"),
    ],
)
def test_refusals_change_nothing(client, auth, store, alpha, carol, body, status, message):
    before = (members(client, auth), store.list_users())
    response = client.post(PATH, json=body, headers=auth(ALICE))
    assert response.status_code == status and message in response.json["error"]
    assert (members(client, auth), store.list_users()) == before


def test_a_handle_its_did_does_not_claim_is_refused(client, auth, store, fake_net, alpha, carol):
    fake_net.accounts[carol] = "someone.else.test"
    fake_net.txt["_atproto.carol.test"] = [f"did={carol}"]  # carol.test still points to it
    response = client.post(
        PATH, json={"member": "carol.test", "role": "viewer"}, headers=auth(ALICE)
    )
    assert response.status_code == 400 and "does not claim" in response.json["error"]
    assert store.find_user(carol) is None


def test_the_owner_cannot_be_changed_by_another_admin(client, auth, store, alpha):
    store.set_member("alpha", BOB[0], "admin")
    response = client.post(PATH, json={"member": ALICE[0], "role": "editor"}, headers=auth(BOB))
    assert response.status_code == 409 and "owner" in response.json["error"]
    assert store.role_of("alpha", ALICE[0]) == "admin"


def test_an_admin_cannot_change_themselves(client, auth, store, alpha):
    store.set_member("alpha", BOB[0], "admin")
    response = client.post(PATH, json={"member": BOB[0], "role": "viewer"}, headers=auth(BOB))
    assert response.status_code == 400 and "you are already an admin" in response.json["error"]
    assert store.role_of("alpha", BOB[0]) == "admin"


@pytest.mark.parametrize("user, status", [(BOB, 403), (("did:plc:eve", "eve.test"), 404)])
def test_only_admins_add(client, auth, store, alpha, carol, user, status):
    body = {"member": "carol.test", "role": "viewer"}
    assert client.post(PATH, json=body, headers=auth(user)).status_code == status
    assert store.find_user(carol) is None


def test_an_unreachable_directory_is_a_json_502(app, client, auth, store, network, alpha):
    dead = f"http://127.0.0.1:{free_ports(1)[0]}"
    platform = app.extensions["robot"]
    app.extensions["robot"] = replace(
        platform, network=Network(network.fetcher, network.txt_lookup, dead)
    )
    body = {"member": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "role": "viewer"}
    response = client.post(PATH, json=body, headers=auth(ALICE))
    assert response.status_code == 502 and response.json["error"]
    assert store.find_user(body["member"]) is None
