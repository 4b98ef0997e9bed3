"""SSRF-safe outbound HTTP: https only, no redirects, public addresses only, timeouts, size caps.

Sign-in fetches documents at addresses a stranger chose (their handle's domain, their PDS, their
authorization server). Each request resolves the host itself, refuses it unless every address is
public, then connects to the checked address (Host header and TLS SNI keep the name, and the
certificate is verified against the name), so a DNS answer that changes between the check and
the connection (rebinding) cannot point the request at the platform's own network.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from dataclasses import field

import httpx2

from app.core.errors import UpstreamError

# A sockaddr list as getaddrinfo gives it: (address, port) pairs for one host and port.
Resolver = Callable[[str, int], list[tuple[str, int]]]

# Documents (DID documents, OAuth metadata, token answers) are a few KiB; past this it is abuse.
MAX_DOCUMENT_BYTES = 256 * 1024
CONNECT_TIMEOUT = 3.0  # seconds
READ_TIMEOUT = 5.0  # seconds, per read
# A server trickling bytes under the read timeout still ends here (seconds, whole request).
TOTAL_TIMEOUT = 10.0
USER_AGENT = "robot-atproto-signin/1"


class OutboundError(UpstreamError):
    """A remote server could not be reached, refused, or answered something unusable (502)."""


class OutboundTimeout(OutboundError):
    """A remote server did not answer in time (504)."""

    status = 504


@dataclass(frozen=True)
class Answer:
    """A remote answer: HTTP status, headers (lower-case names) and the JSON body (or None)."""

    status: int
    headers: dict[str, str]
    body: object = None
    url: str = ""

    def json_object(self, what: str) -> dict:
        """Return the body as a JSON object, or raise OutboundError naming `what` it should be."""
        if not isinstance(self.body, dict):
            raise OutboundError(f"{what} at {self.url} is not a JSON object")
        return self.body


# getaddrinfo has no timeout of its own: it runs on these threads and is waited for at most
# RESOLVE_TIMEOUT. A lookup that hangs keeps its thread until the resolver gives up, but never
# the worker serving the sign-in.
RESOLVE_TIMEOUT = 3.0  # seconds
_resolver_threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="robot-resolve")


def system_resolver(host: str, port: int) -> list[tuple[str, int]]:
    """Resolve `host` with the system resolver: every (address, port) it gives for TCP.

    Raises OutboundError when the name does not resolve, OutboundTimeout when the resolver
    takes longer than RESOLVE_TIMEOUT seconds.
    """
    lookup = _resolver_threads.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = lookup.result(timeout=RESOLVE_TIMEOUT)
    except FutureTimeout:
        raise OutboundTimeout(f"looking up the name {host} took too long") from None
    except (socket.gaierror, UnicodeError):
        raise OutboundError(f"the name {host} does not resolve") from None
    return [(info[4][0], info[4][1]) for info in infos]


@dataclass
class Fetcher:
    """Fetch JSON and text from hosts a stranger named, safely.

    `allow_loopback` (the ATPROTO_ALLOW_INSECURE_LOOPBACK test switch) also admits http:// and
    loopback addresses, for the fake ATProto network of the tests; private, link-local and
    other non-public addresses stay refused. `resolve` and `verify` (True or an ssl.SSLContext)
    are injectable so tests can serve real TLS over loopback.
    Errors: OutboundError (502) saying what failed, OutboundTimeout (504).
    """

    allow_loopback: bool = False
    resolve: Resolver = system_resolver
    verify: object = True
    timeouts: tuple[float, float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT, TOTAL_TIMEOUT)
    _schemes: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        self._schemes = ("https", "http") if self.allow_loopback else ("https",)

    def get_json(self, url: str, what: str, headers: dict | None = None) -> dict:
        """GET `url` and return its JSON object; any other status or body is an OutboundError."""
        answer = self.request("GET", url, headers=headers, expect_json=True)
        if answer.status != 200:
            raise OutboundError(f"{what} at {url} answered HTTP {answer.status}")
        return answer.json_object(what)

    def get_text(self, url: str, what: str, max_bytes: int = 4096) -> str:
        """GET `url` and return its body as text (at most `max_bytes`); 200 only."""
        answer = self.request("GET", url, expect_json=False, max_bytes=max_bytes)
        if answer.status != 200:
            raise OutboundError(f"{what} at {url} answered HTTP {answer.status}")
        if answer.body is None:
            raise OutboundError(f"{what} at {url} is not UTF-8 text")
        return answer.body

    def post_form(self, url: str, data: dict, headers: dict | None = None) -> Answer:
        """POST a form to `url`; return the Answer with its JSON body (None if not JSON)."""
        return self.request("POST", url, headers=headers, data=data, expect_json=True)

    def request(
        self,
        method: str,
        url: str,
        headers: dict | None = None,
        data: dict | None = None,
        expect_json: bool = True,
        max_bytes: int = MAX_DOCUMENT_BYTES,
    ) -> Answer:
        """Send one request to a checked address; a 3xx comes back as is (never followed)."""
        target = self._pin(url)
        connect, read, total = self.timeouts
        timeout = httpx2.Timeout(read, connect=connect)
        deadline = time.monotonic() + total
        try:
            with httpx2.Client(verify=self.verify, timeout=timeout, trust_env=False) as client:
                request = client.build_request(
                    method,
                    target.pinned_url,
                    headers={"User-Agent": USER_AGENT, **(headers or {}), "Host": target.netloc},
                    data=data,
                    extensions={"sni_hostname": target.host} if target.tls else {},
                )
                response = client.send(request, stream=True, follow_redirects=False)
                try:
                    raw = _read_capped(response, max_bytes, deadline, url)
                finally:
                    response.close()
        except httpx2.TimeoutException:
            raise OutboundTimeout(f"{target.host} did not answer in time") from None
        except httpx2.HTTPError as error:
            reason = type(error).__name__
            raise OutboundError(f"could not reach {target.host} ({reason})") from None
        answer_headers = {k.lower(): v for k, v in response.headers.items()}
        if 300 <= response.status_code < 400:
            raise OutboundError(f"{url} answered with a redirect; redirects are not followed")
        body = _decode(raw, expect_json)
        return Answer(response.status_code, answer_headers, body, url)

    def _pin(self, url: str) -> _Target:
        try:
            parsed = httpx2.URL(url)
        except (httpx2.InvalidURL, TypeError):
            raise OutboundError(f"{url!r} is not a valid URL") from None
        if parsed.scheme not in self._schemes:
            raise OutboundError(f"{url} is not an https URL")
        host = parsed.host
        if not host or parsed.userinfo:
            raise OutboundError(f"{url} names no usable host")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        addresses = self.resolve(host, port)
        if not addresses:
            raise OutboundError(f"the name {host} does not resolve")
        for address, _ in addresses:
            self._check_address(host, address)
        address, real_port = addresses[0]
        netloc = host if parsed.port is None else f"{host}:{parsed.port}"
        pinned_url = str(parsed.copy_with(host=address.split("%", 1)[0], port=real_port))
        return _Target(host, netloc, pinned_url, parsed.scheme == "https")

    def _check_address(self, host: str, address: str) -> None:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            raise OutboundError(f"{host} resolves to an unusable address") from None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if self.allow_loopback and ip.is_loopback:
            return
        if not ip.is_global or ip.is_multicast or ip.is_reserved:
            raise OutboundError(
                f"refused to contact {host}: it resolves to a private or reserved address"
            )


@dataclass(frozen=True)
class _Target:
    host: str
    netloc: str
    pinned_url: str
    tls: bool


def _read_capped(response, max_bytes: int, deadline: float, url: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise OutboundError(f"{url} sent more than {max_bytes // 1024} KiB")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise OutboundError(f"{url} sent more than {max_bytes // 1024} KiB")
        if time.monotonic() > deadline:
            raise httpx2.ReadTimeout("total deadline passed")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(raw: bytes, expect_json: bool):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not expect_json:
        return text
    try:
        return json.loads(text) if text.strip() else None
    except (ValueError, RecursionError):
        return None
