"""The SSRF-safe fetcher against a real loopback server."""

from __future__ import annotations

import threading
import time

import pytest
from flask import Flask
from flask import Response
from flask import jsonify
from flask import redirect
from flask import request
from werkzeug.serving import make_server

from app.core.outbound import Fetcher
from app.core.outbound import OutboundError
from app.core.outbound import OutboundTimeout


def _app() -> Flask:
    app = Flask("outbound_target")

    @app.get("/doc")
    def doc():
        return jsonify({"host": request.host})

    @app.get("/moved")
    def moved():
        return redirect("/doc", 302)

    @app.get("/big")
    def big():
        return Response(b"x" * (300 * 1024), mimetype="application/json")

    @app.get("/endless")
    def endless():
        def chunks():
            while True:
                yield b"x" * 4096

        return Response(chunks(), mimetype="application/json")

    @app.get("/slow")
    def slow():
        time.sleep(1.5)
        return jsonify({})

    @app.get("/latin1")
    def latin1():
        return Response(b"did:plc:\xff", mimetype="text/plain")

    @app.get("/html")
    def html():
        return Response("<html></html>", mimetype="text/html")

    return app


@pytest.fixture(scope="module")
def server():
    instance = make_server("127.0.0.1", 0, _app(), threaded=True)
    thread = threading.Thread(target=instance.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield instance.server_port
    instance.shutdown()
    instance.server_close()


def _resolver(answers: dict):
    def resolve(host: str, port: int):
        return answers.get(host, [(host, port)])

    return resolve


@pytest.fixture
def fetcher(server) -> Fetcher:
    """Loopback allowed; `site.test` resolves to the test server."""
    return Fetcher(allow_loopback=True, resolve=_resolver({"site.test": [("127.0.0.1", server)]}))


def test_connects_to_the_checked_address_with_the_name_as_host(fetcher, server):
    assert fetcher.get_json(f"http://site.test:{server}/doc", "doc") == {
        "host": f"site.test:{server}"
    }


@pytest.mark.parametrize("url", ["http://example.com/doc", "ftp://example.com/", "file:///etc"])
def test_only_https_without_the_loopback_switch(url):
    with pytest.raises(OutboundError, match="not an https URL"):
        Fetcher().get_json(url, "doc")


def test_loopback_is_refused_without_the_switch():
    with pytest.raises(OutboundError, match="private or reserved"):
        Fetcher().get_json("https://127.0.0.1/doc", "doc")


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1", "192.168.1.1", "169.254.169.254", "::ffff:10.0.0.1", "fd00::1", "0.0.0.0"],
)
def test_private_addresses_are_refused_even_with_the_switch(address):
    fetcher = Fetcher(allow_loopback=True, resolve=_resolver({"x.test": [(address, 443)]}))
    with pytest.raises(OutboundError, match="private or reserved"):
        fetcher.get_json("https://x.test/doc", "doc")


def test_one_private_address_among_public_ones_is_refused():
    answers = {"x.test": [("93.184.216.34", 443), ("10.0.0.1", 443)]}
    with pytest.raises(OutboundError, match="private or reserved"):
        Fetcher(resolve=_resolver(answers)).get_json("https://x.test/doc", "doc")


def test_redirects_are_not_followed(fetcher, server):
    with pytest.raises(OutboundError, match="redirect"):
        fetcher.get_json(f"http://127.0.0.1:{server}/moved", "doc")


@pytest.mark.parametrize("path", ["/big", "/endless"])
def test_bodies_are_capped(fetcher, server, path):
    with pytest.raises(OutboundError, match="more than 256 KiB"):
        fetcher.get_json(f"http://127.0.0.1:{server}{path}", "doc")


def test_slow_servers_time_out(server):
    fetcher = Fetcher(allow_loopback=True, timeouts=(1.0, 0.5, 1.0))
    with pytest.raises(OutboundTimeout):
        fetcher.get_json(f"http://127.0.0.1:{server}/slow", "doc")


def test_a_body_that_is_not_json_is_named(fetcher, server):
    with pytest.raises(OutboundError, match="the document at .* is not a JSON object"):
        fetcher.get_json(f"http://127.0.0.1:{server}/html", "the document")


def test_unreachable_server_is_a_502(fetcher):
    with pytest.raises(OutboundError, match="could not reach") as caught:
        fetcher.get_json("http://127.0.0.1:1/doc", "doc")
    assert caught.value.status == 502


def test_text_that_is_not_utf8_is_named(fetcher, server):
    with pytest.raises(OutboundError, match="is not UTF-8 text"):
        fetcher.get_text(f"http://127.0.0.1:{server}/latin1", "the handle's DID")


def test_the_system_resolver_gives_up_on_a_hung_lookup(monkeypatch):
    import socket
    import threading

    from app.core import outbound

    release = threading.Event()
    monkeypatch.setattr(outbound, "RESOLVE_TIMEOUT", 0.2)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: release.wait(5) or [])
    try:
        with pytest.raises(outbound.OutboundTimeout, match="took too long"):
            outbound.system_resolver("hangs.example", 443)
    finally:
        release.set()


def test_the_system_resolver_answers_real_names():
    from app.core import outbound

    assert ("127.0.0.1", 443) in outbound.system_resolver("127.0.0.1", 443)
    with pytest.raises(outbound.OutboundError, match="does not resolve"):
        outbound.system_resolver("no-such-name.invalid", 443)
