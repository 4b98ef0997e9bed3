"""Fixtures of the sign-in tests: the fake ATProto network and a Network that reaches it."""

from __future__ import annotations

import pytest

from app.core.atproto_identity import Network
from app.core.atproto_identity import dns_txt_lookup
from app.core.outbound import Fetcher
from tests.auth.fake_atproto import FakeNetwork
from tests.auth.fake_servers import FakeDns


@pytest.fixture
def fake_net(tmp_path):
    """The fake ATProto network, served on 127.0.0.1 (HTTP and TLS) for this test."""
    with FakeNetwork(tmp_path / "fake-atproto") as net:
        yield net


@pytest.fixture
def network(fake_net) -> Network:
    """What sign-in uses to reach the fake network: real HTTP(S) and DNS over loopback."""
    fetcher = Fetcher(allow_loopback=True, resolve=fake_net.resolve, verify=fake_net.client_ssl)
    with FakeDns(fake_net.txt) as dns:
        yield Network(fetcher, dns_txt_lookup(["127.0.0.1"], dns.port), fake_net.origin)
