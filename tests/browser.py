"""A minimal W3C WebDriver client for Debian's chromium + chromedriver (no extra dependency)."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx2
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking flags chromium keeps dialling out of this closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
]


def browser_available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


# The marks of a test module driving chromium against the real stack.
BROWSER_ON_STACK = [
    pytest.mark.stack,
    pytest.mark.skipif(not browser_available(), reason="chromium not installed (make test does)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Bring the first element matching arguments[0] into view; true when a click at its centre
# would reach it (nothing, such as a dialog still fading in, lies over it).
_LANDS_ON_ELEMENT = """
const element = document.querySelector(arguments[0]);
if (!element) return false;
element.scrollIntoView({block: "center", inline: "center"});
const box = element.getBoundingClientRect();
const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
if (!hit || !(hit === element || element.contains(hit))) return null;
return [box.left, box.top, box.width, box.height];
"""


# Kept in localStorage, so a violation survives the navigation that follows it (a form post).
_CSP_RECORDER = """
document.addEventListener("securitypolicyviolation", function (event) {
  const seen = {directive: event.effectiveDirective, blocked: event.blockedURI,
    sample: event.sample, page: event.documentURI, line: event.lineNumber};
  try {
    const all = JSON.parse(localStorage.getItem("robot-csp-violations") || "[]");
    all.push(seen);
    localStorage.setItem("robot-csp-violations", JSON.stringify(all));
  } catch (error) {
    (window.robotCspViolations = window.robotCspViolations || []).push(seen);
  }
}, true);
"""
_READ_CSP_VIOLATIONS = """
let stored = [];
try { stored = JSON.parse(localStorage.getItem("robot-csp-violations") || "[]"); }
catch (error) {}
return stored.concat(window.robotCspViolations || []);
"""


class Browser:
    """One headless chromium session driven through chromedriver."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="robot-chromium-")
        port = _free_port()
        self.driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.http = httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        self._wait_for_driver()
        capabilities = {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [*CHROMIUM_ARGS, f"--user-data-dir={self.profile}"],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }
        answer = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        self.session = answer["sessionId"]

    def _wait_for_driver(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.http.get("/status").status_code == 200:
                    return
            except httpx2.TransportError:
                time.sleep(0.1)
        raise RuntimeError("chromedriver did not start")

    def _call(self, method: str, path: str, payload: dict | None = None):
        response = self.http.request(method, path, json=payload)
        value = response.json().get("value")
        if response.status_code >= 400:
            raise RuntimeError(f"webdriver {method} {path}: {value}")
        return value

    def _session_call(self, method: str, path: str, payload: dict | None = None):
        return self._call(method, f"/session/{self.session}{path}", payload)

    def get(self, url: str) -> None:
        self._session_call("POST", "/url", {"url": url})

    @property
    def url(self) -> str:
        return self._session_call("GET", "/url")

    @property
    def source(self) -> str:
        return self._session_call("GET", "/source")

    def text(self) -> str:
        return self.script("return document.body.innerText;")

    def script(self, code: str, *args):
        return self._session_call("POST", "/execute/sync", {"script": code, "args": list(args)})

    def cdp(self, command: str, params: dict | None = None):
        """Send a Chrome DevTools Protocol command through chromedriver; return its result."""
        payload = {"cmd": command, "params": params or {}}
        return self._session_call("POST", "/goog/cdp/execute", payload)

    def _element(self, css: str) -> str:
        found = self._session_call("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(found.values()))

    def click(self, css: str, settle: float = 10.0) -> None:
        """Click the first element matching a CSS selector, as a person would.

        A person waits for a menu or dialog to finish sliding in: wait (up to `settle` seconds)
        until the element has stopped moving and a click at its centre would land on it, then
        click; a click that something still covers is tried again until `settle` runs out, and
        past that the click itself reports what covers it.
        """
        deadline = time.monotonic() + settle
        previous = None
        while time.monotonic() < deadline:
            box = self.script(_LANDS_ON_ELEMENT, css)
            if box is not None and box == previous:
                try:
                    self._session_call("POST", f"/element/{self._element(css)}/click", {})
                    return
                except RuntimeError as error:
                    if "click intercepted" not in str(error):
                        raise
                    box = None
            previous = box
            time.sleep(0.1)
        self._session_call("POST", f"/element/{self._element(css)}/click", {})

    def type(self, css: str, text: str) -> None:
        """Type text into the first element matching a CSS selector."""
        self._session_call("POST", f"/element/{self._element(css)}/value", {"text": text})

    def add_cookie(self, name: str, value: str) -> None:
        """Set a cookie for the current page's host."""
        cookie = {"name": name, "value": value, "path": "/", "httpOnly": True}
        self._session_call("POST", "/cookie", {"cookie": cookie})

    def wait_for(self, condition, timeout: float = 45.0) -> None:
        """Poll `condition()` until it is true; past `timeout` seconds fail with where we are."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out on {self.url}: {self.text()[:300]}")
            time.sleep(0.2)

    def cookies(self) -> dict[str, str]:
        """The cookies the browser would send to the current page (HttpOnly ones included)."""
        return {cookie["name"]: cookie["value"] for cookie in self._session_call("GET", "/cookie")}

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self._session_call("GET", "/screenshot")))

    def on_every_document(self, source: str) -> None:
        """Run JavaScript `source` in every document from now on, before the page's scripts."""
        self.cdp("Page.addScriptToEvaluateOnNewDocument", {"source": source})

    def record_csp_violations(self) -> None:
        """Record every `securitypolicyviolation` of every page on an origin (read with
        `csp_violations`), from before the page's own scripts run."""
        self.on_every_document(_CSP_RECORDER)

    def csp_violations(self) -> list[dict]:
        """The violations recorded on the current page's origin since recording began."""
        return self.script(_READ_CSP_VIOLATIONS)

    def console_errors(self) -> list[str]:
        """The browser's console and network errors logged since the last call (SEVERE)."""
        entries = self._session_call("POST", "/se/log", {"type": "browser"})
        return [entry["message"] for entry in entries if entry.get("level") == "SEVERE"]

    def close(self) -> None:
        try:
            self._session_call("DELETE", "")
        finally:
            self.http.close()
            self.driver.terminate()
            self.driver.wait(10)
            shutil.rmtree(self.profile, ignore_errors=True)
