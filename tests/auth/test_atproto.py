"""The ATProto OAuth client against the fake network, over real HTTP(S) on loopback."""

from __future__ import annotations

import time
from types import SimpleNamespace
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import httpx2
import pytest

from app.auth.atproto import login
from app.auth.atproto import oauth
from app.auth.atproto.login import SignInError
from app.auth.atproto.login import finish_login
from app.auth.atproto.login import record_user
from app.auth.atproto.login import start_login
from app.core import atproto_identity as identity
from app.core.errors import BadRequest
from app.core.outbound import OutboundError
from app.core.outbound import OutboundTimeout
from app.core.store import Store
from tests.auth.fake_servers import FakeDns

# The hash of the starting browser's sign-in cookie, as the login views compute it.
BROWSER = "b" * 64
REDIRECT = "http://127.0.0.1:9/auth/callback"
LOOPBACK = oauth.Client(
    "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fauth%2Fcallback&scope=atproto",
    REDIRECT,
)


@pytest.fixture
def store(tmp_path):
    instance = Store(tmp_path / "robot.db")
    instance.migrate()
    yield instance
    instance.close()


@pytest.fixture
def alice(fake_net) -> str:
    return fake_net.add_account("alice.test")


def approve(net, url: str, decision: str = "approve") -> dict:
    """Act as the person at the AS's page; return the query of the redirect back to us."""
    request_uri = parse_qs(urlsplit(url).query)["request_uri"][0]
    answer = httpx2.post(
        net.origin + "/oauth/authorize", data={"request_uri": request_uri, "decision": decision}
    )
    back = answer.headers["location"]
    assert back.startswith(REDIRECT + "?")
    return {key: values[0] for key, values in parse_qs(urlsplit(back).query).items()}


def sign_in(store, network, net, text="alice.test", client=LOOPBACK):
    url = start_login(store, network, client, text, "http://localhost:8003/after", BROWSER)
    return finish_login(store, network, client, approve(net, url), BROWSER)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("alice.bsky.social", ("handle", "alice.bsky.social")),
        ("  @Alice.Bsky.Social ", ("handle", "alice.bsky.social")),
        ("did:plc:ewvi7nxzyoun6zhxrhs64oiz", ("did", "did:plc:ewvi7nxzyoun6zhxrhs64oiz")),
        ("https://pds.example.com/", ("url", "https://pds.example.com")),
    ],
)
def test_input_is_a_handle_a_did_or_a_server(text, expected):
    assert identity.classify_input(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "alice",
        "alice..test",
        "-alice.test",
        "alice.local",
        "al ice.test",
        "a\x00.test",
        "did:plc:short",
        "did:key:zabc",
        "alice.123",
        "x" * 300 + ".test",
    ],
)
def test_malformed_input_is_refused_in_plain_words(text):
    with pytest.raises(BadRequest):
        identity.classify_input(text)


def test_handle_resolves_over_https_well_known(network, alice):
    found = identity.identity_for_handle("alice.test", network)
    assert (found.did, found.handle) == (alice, "alice.test")


def test_handle_resolves_by_dns_txt(network, fake_net, alice):
    other = fake_net.add_account("dana.example.org")
    fake_net.txt["_atproto.dana.example.org"] = [f"did={other}"]
    assert identity.resolve_handle("dana.example.org", network) == other


# Twenty-sixth review: what a handle's DNS names is held to the strict check, as a typed DID.
@pytest.mark.parametrize(
    "did",
    [
        "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        "did:web:evil.com:..:x",
        "did:plc:AAA",
        "did:plc:short",
        "did:example:123",
    ],
)
def test_a_handle_naming_a_did_no_account_can_have_is_refused(network, fake_net, did):
    fake_net.txt["_atproto.dana.example.org"] = [f"did={did}"]
    with pytest.raises(BadRequest, match="does not point to a valid DID"):
        identity.resolve_handle("dana.example.org", network)


def test_dns_txt_lookup_over_a_real_dns_server():
    records = {"_atproto.dana.example.org": ["did=did:plc:ewvi7nxzyoun6zhxrhs64oiz"]}
    with FakeDns(records) as server:
        lookup = identity.dns_txt_lookup(["127.0.0.1"], server.port)
        assert lookup("_atproto.dana.example.org") == ["did=did:plc:ewvi7nxzyoun6zhxrhs64oiz"]
        assert lookup("_atproto.nobody.example.org") == []


def test_handle_the_did_does_not_claim_is_refused(network, fake_net, alice):
    fake_net.accounts[alice] = "bob.test"  # the document now claims another handle
    fake_net.txt["_atproto.alice.test"] = [f"did={alice}"]
    with pytest.raises(BadRequest, match="does not claim"):
        identity.identity_for_handle("alice.test", network)


def test_did_whose_handle_does_not_point_back_gets_handle_invalid(network, fake_net):
    did = fake_net.add_account("nobody.example.org")  # no DNS, no well-known host
    assert identity.identity_for_did(did, network).handle == identity.INVALID_HANDLE


def test_unknown_did_is_refused(network):
    with pytest.raises(BadRequest, match="there is no account"):
        identity.resolve_did("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", network)


def test_handle_resolving_to_a_private_address_is_refused(network, fake_net, alice):
    fake_net.knobs.private_handles.add("alice.test")
    with pytest.raises(BadRequest, match="private"):
        identity.identity_for_handle("alice.test", network)


def test_loopback_client_signs_in(store, network, fake_net, alice):
    signed = sign_in(store, network, fake_net)
    assert (signed.did, signed.handle) == (alice, "alice.test")
    assert signed.return_to == "http://localhost:8003/after"
    [issued] = fake_net.tokens_issued
    assert signed.upstream["access_token"] == issued["access_token"]
    assert signed.upstream["issuer"] == fake_net.origin


def test_sign_in_from_a_did(store, network, fake_net, alice):
    assert sign_in(store, network, fake_net, text=alice).did == alice


def test_signing_in_marks_someone_added_earlier_as_signed_in(store, network, fake_net, alice):
    store.upsert_user(alice, "alice.test")  # an admin added them by handle
    assert not store.get_user(alice).signed_in
    record_user(store, sign_in(store, network, fake_net))
    assert store.get_user(alice).signed_in


def test_sign_in_from_a_server_url_resolves_sub(store, network, fake_net, alice):
    signed = sign_in(store, network, fake_net, text=fake_net.origin)
    assert signed.did == alice


def test_upstream_tokens_are_revoked(store, network, fake_net, alice):
    signed = sign_in(store, network, fake_net)
    assert login.revoke_upstream(network, LOOPBACK, signed.upstream) is True
    assert fake_net.revoked == [signed.upstream["refresh_token"]]


def test_each_login_uses_a_fresh_dpop_key(store, network, fake_net, alice):
    sign_in(store, network, fake_net)
    sign_in(store, network, fake_net)
    first, second = fake_net.tokens_issued
    assert first["jkt"] != second["jkt"]


def test_confidential_client_assertion_checks_against_published_jwks(
    store, network, fake_net, alice, public_auth
):
    settings, client_app, key = public_auth
    jwks = client_app.get("/auth/client-jwks.json").json
    client = oauth.Client(settings.auth_origin + "/auth/client-metadata.json", REDIRECT, key=key)
    fake_net.trust_client(client.client_id, jwks)
    assert sign_in(store, network, fake_net, client=client).did == alice


def test_assertion_signed_by_another_key_is_refused(store, network, fake_net, alice, public_auth):
    settings, _, key = public_auth
    client = oauth.Client(settings.auth_origin + "/auth/client-metadata.json", REDIRECT, key=key)
    fake_net.trust_client(client.client_id, {"keys": [oauth.new_dpop_key().as_dict()]})
    with pytest.raises(oauth.AuthorizationServerError, match="invalid_client"):
        start_login(store, network, client, "alice.test", None, BROWSER)


@pytest.fixture
def public_auth(tmp_path):
    """A deployed-style auth service (https, robot.wtf): settings, test client, client key."""
    from app.auth_server import create_app
    from app.core.platform import init_instance
    from app.core.settings import Settings
    from app.core.signing import SigningKey

    settings = Settings.from_env(
        {"ROBOT_DATA_DIR": str(tmp_path / "public"), "PLATFORM_DOMAIN": "robot.wtf"}
    )
    init_instance(settings)
    return settings, create_app(settings).test_client(), SigningKey.load(settings.client_key_path)


# -- what must fail, and how --------------------------------------------------------------------


def _start(store, network):
    return start_login(store, network, LOOPBACK, "alice.test", None, BROWSER)


def test_wrong_sub_is_refused(store, network, fake_net, alice):
    fake_net.knobs.wrong_sub = fake_net.add_account("mallory.test")
    with pytest.raises(SignInError, match="different account"):
        sign_in(store, network, fake_net)


def test_wrong_iss_is_refused(store, network, fake_net, alice):
    fake_net.knobs.wrong_iss = "https://evil.example.com"
    with pytest.raises(SignInError, match="did not come from the server"):
        sign_in(store, network, fake_net)
    assert fake_net.tokens_issued == []


def test_replayed_callback_is_refused(store, network, fake_net, alice):
    args = approve(fake_net, _start(store, network))
    finish_login(store, network, LOOPBACK, args, BROWSER)
    with pytest.raises(SignInError, match="unknown or was already used"):
        finish_login(store, network, LOOPBACK, args, BROWSER)


def test_unknown_state_is_refused(store, network, fake_net, alice):
    args = approve(fake_net, _start(store, network))
    with pytest.raises(SignInError, match="unknown"):
        finish_login(store, network, LOOPBACK, {**args, "state": "forged"}, BROWSER)


def test_expired_login_request_is_refused(store, network, fake_net, alice, monkeypatch):
    args = approve(fake_net, _start(store, network))
    later = time.time() + 601
    monkeypatch.setattr(login, "time", SimpleNamespace(time=lambda: later))
    with pytest.raises(SignInError, match="expired"):
        finish_login(store, network, LOOPBACK, args, BROWSER)


def test_old_login_requests_are_purged_when_a_login_starts(
    store, network, fake_net, alice, monkeypatch
):
    with monkeypatch.context() as patch:
        patch.setattr("app.core.store._now", lambda: int(time.time()) - 601)
        store.save_login_request("stale", {"issuer": "x"})
    store.save_login_request("fresh", {"issuer": "x"})
    _start(store, network)
    assert store.take_login_request("stale") is None
    assert store.take_login_request("fresh") is not None


def test_denied_consent_is_refused(store, network, fake_net, alice):
    args = approve(fake_net, _start(store, network), decision="deny")
    with pytest.raises(SignInError, match="not approved"):
        finish_login(store, network, LOOPBACK, args, BROWSER)


def test_server_without_par_is_refused(store, network, fake_net, alice):
    fake_net.knobs.no_par = True
    with pytest.raises(oauth.AuthorizationServerError, match="require_pushed"):
        _start(store, network)


def test_pds_that_redirects_is_refused(store, network, fake_net, alice):
    fake_net.knobs.pds_redirects = True
    with pytest.raises(OutboundError, match="redirect"):
        _start(store, network)


def test_garbage_server_metadata_is_refused(store, network, fake_net, alice):
    fake_net.knobs.garbage_as_metadata = True
    with pytest.raises(OutboundError, match="not a JSON object"):
        _start(store, network)


def test_slow_server_times_out(store, network, fake_net, alice):
    fake_net.knobs.slow_as_metadata = 1.5
    network.fetcher.timeouts = (1.0, 0.5, 1.0)
    with pytest.raises(OutboundTimeout):
        _start(store, network)


# -- the fake AS holds the client to the rules (so passing tests mean a compliant client) ------


def _pending(store, network, fake_net):
    args = approve(fake_net, _start(store, network))
    data, _ = store.take_login_request(args["state"])
    meta = {"issuer": data["issuer"], "token_endpoint": data["token_endpoint"]}
    key = oauth.ECKey.import_key(data["dpop_key"])
    return args["code"], data, meta, key


@pytest.mark.parametrize(
    "change, refusal",
    [
        ("other_dpop_key", "the DPoP key is not the PAR's"),
        ("wrong_verifier", "PKCE verifier does not match"),
    ],
)
def test_fake_server_refuses_a_token_request_that_breaks_the_rules(
    store, network, fake_net, alice, change, refusal
):
    code, data, meta, key = _pending(store, network, fake_net)
    if change == "other_dpop_key":
        key = oauth.new_dpop_key()
    verifier = "x" * 64 if change == "wrong_verifier" else data["verifier"]
    with pytest.raises(oauth.AuthorizationServerError, match=refusal):
        oauth.exchange_code(
            network.fetcher, LOOPBACK, meta, code=code, verifier=verifier, key=key, nonce=None
        )


def test_fake_server_refuses_a_replayed_code(store, network, fake_net, alice):
    code, data, meta, key = _pending(store, network, fake_net)
    redeem = dict(code=code, verifier=data["verifier"], key=key, nonce=data["dpop_nonce"])
    oauth.exchange_code(network.fetcher, LOOPBACK, meta, **redeem)
    with pytest.raises(oauth.AuthorizationServerError, match="invalid_grant"):
        oauth.exchange_code(network.fetcher, LOOPBACK, meta, **redeem)


def test_fake_server_refuses_a_replayed_dpop_proof(network, fake_net):
    key = oauth.new_dpop_key()
    url = fake_net.origin + "/oauth/token"
    proof = oauth.dpop_proof(key, "POST", url, fake_net.nonce)
    answers = [httpx2.post(url, data={}, headers={"DPoP": proof}) for _ in range(2)]
    assert "replayed" in answers[1].json()["error_description"]


@pytest.mark.parametrize("presented", [None, "", "c" * 64, "b" * 63])
def test_a_callback_from_another_browser_is_refused(store, network, fake_net, alice, presented):
    """Login CSRF (RFC 6749 §10.12): a callback URL relayed to another browser signs no one in."""
    args = approve(fake_net, _start(store, network))
    with pytest.raises(SignInError, match="another browser"):
        finish_login(store, network, LOOPBACK, args, presented)
    with pytest.raises(SignInError, match="unknown or was already used"):
        finish_login(store, network, LOOPBACK, args, BROWSER)  # the request is gone for good
    assert fake_net.tokens_issued == []
