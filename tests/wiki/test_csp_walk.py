"""The whole Otterwiki UI in headless chromium under the CSP: it all works, nothing is refused.

One SQLite stack, one browser for the module; the tests run in file order as one walk. A recorder
installed through the DevTools protocol before any page script runs keeps every
`securitypolicyviolation`; the walk must end with none, and each step checks what it did.
"""

from __future__ import annotations

import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import httpx2
import pytest

from app.core.store import Store
from app.core.wikis import create_wiki
from tests.browser import Browser
from tests.browser import browser_available

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(not browser_available(), reason="chromium not installed (make test does)"),
]

OWNER = ("did:plc:cspwalker", "csp-walker.test")
SLUG = "csp-walk"
PAGE = "/Docs/Walk"
CONTENT = """# Walk heading

Some **bold** words.

```python
print("highlighted")
```

| left | right |
|------|-------|
| one  | two   |

```mermaid
graph TD
  Start --> Finish
```

$$E = mc^2$$

>! a hidden spoiler line

{{Datatable
| fruit | count |
|-------|-------|
| apple | 3     |
| pear  | 5     |
}}
"""


@pytest.fixture(scope="module")
def walk_stack(stack):
    if stack.env.get("ROBOT_DB_URL"):
        pytest.skip("the browser walk runs on the SQLite stack only")
    store = Store(stack.settings.database_url)
    store.upsert_user(*OWNER)
    create_wiki(stack.settings, store, SLUG, OWNER[0], "CSP Walk")
    store.close()
    return stack


@pytest.fixture(scope="module")
def jwt(walk_stack):
    return walk_stack.robot("session", OWNER[0]).stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def browser(walk_stack):
    session = Browser()
    session.get(url(walk_stack, "/healthz"))
    session.add_cookie("robot_session", walk_stack.browser_session(OWNER[0], f"{SLUG}.localhost"))
    session.record_csp_violations()  # from here on: the signed-in walk
    session.get(url(walk_stack, "/"))
    assert "CSP Walk" in session.source
    # Before sign-in, /healthz's favicon was sent to the login page: not part of the walk.
    session.console_errors()
    session.console = []
    yield session
    session.close()


def url(stack, path="/"):
    return f"http://{SLUG}.localhost:{stack.port('otterwiki')}{path}"


def wait_for(browser, condition, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} on {browser.url}")
        time.sleep(0.2)


def present(browser, css) -> bool:
    return browser.script("return !!document.querySelector(arguments[0]);", css)


def press(browser, css) -> None:
    """Dispatch a click on the first element matching `css`, even inside a closed menu."""
    browser.script("document.querySelector(arguments[0]).click();", css)
    browser.console.extend(browser.console_errors())


def editor_text(browser) -> str:
    return browser.script("return cm_editor.state.doc.toString();")


def open_editor(browser, stack, path):
    browser.get(url(stack, path + "/edit"))
    wait_for(browser, lambda: browser.script("return !!window.otterwiki_editor;"), "the editor")


def set_editor_text(browser, text):
    browser.script(
        "cm_editor.dispatch({changes: {from: 0, to: cm_editor.state.doc.length,"
        " insert: arguments[0]}});",
        text,
    )


def save(browser, message):
    browser.click("#save-page-btn")
    submit = "#modal-commit input[type=submit]"
    wait_for(
        browser,
        lambda: browser.script(f"return !!document.querySelector('{submit}').offsetParent;"),
        "the commit dialog",
    )
    browser.script("document.getElementById('commit-message').value = arguments[0];", message)
    press(browser, submit)  # the dialog may still be sliding in
    wait_for(browser, lambda: not present(browser, "#save-page-btn"), "the saved page")


def tiny_png() -> bytes:
    """A valid 2x2 red PNG."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def upload(browser, stack, page, files):
    browser.get(url(stack, page + "/attachments"))
    browser.type("#file-upload", "\n".join(str(path) for path in files))
    press(browser, "form[enctype] input[type=submit]")
    wait_for(browser, lambda: all(path.name in browser.text() for path in files), "the upload")


def test_editor_toolbar_preview_and_save(walk_stack, browser):
    open_editor(browser, walk_stack, PAGE)
    set_editor_text(browser, "word")
    browser.script("cm_editor.dispatch({selection: {anchor: 0, head: 4}});")
    press(browser, '[data-robot-onclick="otterwiki_editor.bold"]')
    assert editor_text(browser) == "**word**"
    press(browser, '[data-robot-onclick="otterwiki_editor.table"]')
    assert "|" in editor_text(browser)
    press(browser, '[data-robot-onclick="otterwiki_editor.undo"]')
    assert editor_text(browser) == "**word**"
    set_editor_text(browser, CONTENT)
    press(browser, "#preview_btn")
    wait_for(browser, lambda: "Walk heading" in browser.text(), "the preview")
    save(browser, "A page with everything")
    assert browser.url.endswith(PAGE)


def test_a_drawn_diagram_is_drawn_again_from_its_source(walk_stack, browser):
    """Otterwiki's update_mermaid (its editor help's) draws every diagram of a page again;
    mermaid then read the drawn SVG as the diagram (review 56). Its source is kept."""
    browser.get(url(walk_stack, PAGE))
    wait_for(browser, lambda: present(browser, ".mermaid svg"), "mermaid's diagram")
    drawn = (
        "const node = document.querySelector('.mermaid');"
        "return node.getAttribute('data-processed') && !!node.querySelector('svg')"
        " && !/syntax error|no diagram type/i.test(node.textContent);"
    )
    assert browser.script(drawn)
    browser.script("otterwiki.update_mermaid();")
    wait_for(browser, lambda: browser.script(drawn), "the diagram drawn again")


def test_page_renders_and_its_buttons_work(walk_stack, browser):
    browser.get(url(walk_stack, PAGE))
    wait_for(browser, lambda: present(browser, ".mermaid svg"), "mermaid's diagram")
    wait_for(browser, lambda: present(browser, "mjx-container"), "MathJax's formula")
    # Set up by handlers.js: the embedding's own inline script is not sent (csp.py).
    wait_for(browser, lambda: present(browser, ".datatable-wrapper"), "the datatable")
    assert present(browser, "table") and present(browser, ".highlight")
    press(browser, "button.spoiler-button")
    assert browser.script(
        "return document.querySelector('.spoiler').classList.contains('nospoiler');"
    )
    press(browser, "button.spoiler-button")  # bound once: a second click hides it again
    assert not browser.script(
        "return document.querySelector('.spoiler').classList.contains('nospoiler');"
    )
    press(browser, "button.copy-to-clipboard")
    dark = (
        "return document.documentElement.classList.contains('dark-mode')"
        " || document.body.classList.contains('dark-mode');"
    )
    before = browser.script(dark)
    press(browser, '[data-robot-onclick="halfmoon.toggleDarkMode"]')
    assert browser.script(dark) != before
    press(browser, '[data-robot-onclick="halfmoon.toggleDarkMode"]')
    assert browser.script(dark) == before
    hidden = "return document.querySelector('.page-wrapper').getAttribute('data-sidebar-hidden');"
    before = browser.script(hidden)
    press(browser, "#toggle-sidebar-btn")
    assert browser.script(hidden) != before


def test_upload_and_embed_an_attachment(walk_stack, browser, tmp_path):
    image = tmp_path / "walk.png"
    image.write_bytes(tiny_png())
    upload(browser, walk_stack, PAGE, [image])
    open_editor(browser, walk_stack, PAGE)
    browser.script(
        "const select = document.getElementById('attachment-filename');"
        "select.selectedIndex = 1; select.dispatchEvent(new Event('change', {bubbles: true}));"
    )
    wait_for(browser, lambda: present(browser, "#extranav-preview img"), "the attachment preview")
    press(browser, "#attachment-image")
    browser.script("cm_editor.dispatch({selection: {anchor: cm_editor.state.doc.length}});")
    press(browser, '[data-robot-onclick="otterwiki_editor.insert_attachment"]')
    assert "walk.png" in editor_text(browser)
    save(browser, "Embed the image")
    picture = "img[src*='walk.png']"
    wait_for(
        browser,
        lambda: browser.script(
            f'const i = document.querySelector("{picture}"); return !!i && i.naturalWidth > 0;'
        ),
        "the embedded image",
    )


def test_a_draft_is_kept_and_offered(walk_stack, browser):
    open_editor(browser, walk_stack, PAGE)
    wait_for(browser, lambda: browser.script("return document.readyState;") == "complete", "load")
    set_editor_text(browser, CONTENT + "\nA draft line.\n")
    time.sleep(7)  # the editor stores a draft 6 s after a change
    browser.get(url(walk_stack, PAGE + "/edit"))
    wait_for(browser, lambda: "Continue editing draft" in browser.text(), "the draft choice")
    press(browser, 'form.draft-button input[value="Continue editing draft"]')
    wait_for(browser, lambda: browser.script("return !!window.cm_editor;"), "the editor")
    assert "A draft line." in editor_text(browser)
    browser.get(url(walk_stack, PAGE + "/edit"))
    press(browser, 'form.draft-button input[value^="Discard draft"]')
    wait_for(browser, lambda: browser.script("return !!window.cm_editor;"), "the editor")
    assert "A draft line." not in editor_text(browser)


def test_history_diff_and_blame(walk_stack, browser):
    browser.get(url(walk_stack, PAGE + "/history"))
    press(browser, "form button[type=submit]")
    wait_for(browser, lambda: "Comparing" in browser.text(), "the diff")
    press(browser, "#switch-side-by-side")
    wait_for(browser, lambda: "side-by-side" in browser.url, "the side-by-side diff")
    press(browser, "#switch-side-by-side")
    wait_for(browser, lambda: "view=inline" in browser.url, "the inline diff")
    browser.get(url(walk_stack, PAGE + "/blame"))
    assert "Walk heading" in browser.text()


def test_search(walk_stack, browser):
    browser.get(url(walk_stack, "/-/search"))
    browser.type("#search-query", "highlighted")
    press(browser, "form input[type=submit]")
    wait_for(browser, lambda: "Walk" in browser.text() and "/-/search" in browser.url, "results")


def test_create_and_rename_with_the_prefix_buttons(walk_stack, browser):
    browser.get(url(walk_stack, "/-/create"))
    browser.type("#pagename", "Fresh")
    press(browser, '[data-robot-onclick="otterwiki.toggle_pagename_prefix"]')
    assert browser.script("return document.getElementById('pagename').value;") == "Docs/Fresh"
    press(browser, "form input[type=submit]")
    wait_for(browser, lambda: "/Docs/Fresh" in browser.url, "the new page's editor")
    wait_for(browser, lambda: browser.script("return !!window.cm_editor;"), "the editor")
    set_editor_text(browser, "# Fresh\n\nNew.\n")
    save(browser, "A fresh page")
    browser.get(url(walk_stack, "/Docs/Fresh/rename"))
    press(browser, '[data-robot-onclick="otterwiki.toggle_pagename_prefix"]')
    assert browser.script("return document.getElementById('new_pagename').value;") == "Fresh"
    press(browser, "form input[type=submit][value=Rename]")
    wait_for(browser, lambda: browser.url.rstrip("/").endswith("/Fresh"), "the renamed page")
    assert "New." in browser.text()


def test_index_settings_and_admin_pages(walk_stack, browser):
    browser.get(url(walk_stack, "/-/index"))
    assert "Walk" in browser.text()
    # A page's headings show in the index only once its table of contents is cached: bring one.
    browser.script("document.body.insertAdjacentHTML('beforeend', '<div class=pagetoc></div>');")
    shown = "return [...document.querySelectorAll('.pagetoc')].map(e => e.style.display);"
    before = browser.script(shown)
    press(browser, "#switch-headings")
    assert browser.script(shown) != before
    browser.get(url(walk_stack, "/-/admin/sidebar_preferences"))
    rows = "return document.querySelectorAll('[data-robot-onclick=deleteRow]').length;"
    before = browser.script(rows)
    press(browser, '[data-robot-onclick="cloneRow"]')
    assert browser.script(rows) == before + 1
    press(browser, '[data-robot-onclick="deleteRow"]')
    assert browser.script(rows) == before
    # The settings menu offers only admin pages that work, and the platform's settings page.
    menu = "return [...document.querySelectorAll('a.sidebar-link')].map(a => a.href);"
    links = browser.script(menu)
    assert f"{walk_stack.settings.api_origin}/app/wiki/{SLUG}" in links, links
    for blocked in ("user_management", "repository_management", "mail_preferences"):
        assert not [link for link in links if blocked in link], links
    browser.get(url(walk_stack, "/-/admin/permissions_and_registration"))
    assert "decided by the platform" in browser.text()
    assert not present(browser, "#permissions_and_registration form")  # read-only
    browser.console.extend(browser.console_errors())
    for path in (
        "/-/admin",
        "/-/admin/content_and_editing",
        "/-/changelog",
        "/-/housekeeping",
        "/-/about",
    ):
        browser.get(url(walk_stack, path))
        assert "CSP Walk" in browser.source
        browser.console.extend(browser.console_errors())


def test_handlers_run_only_on_the_servers_own_elements(walk_stack, browser):
    """Markup that reaches the DOM without the response's nonce cannot borrow a handler."""
    browser.get(url(walk_stack, PAGE))
    wait_for(browser, lambda: present(browser, ".mermaid svg"), "mermaid's diagram")
    planted = """
      for (const nonce of ["", "guess", null]) {
        const b = document.createElement("b");
        b.setAttribute("data-robot-onclick", "@follow-checked-url");
        b.setAttribute("data-url-inline", "/-/logout");
        if (nonce !== null) b.setAttribute("data-robot-nonce", nonce);
        b.className = "planted";
        document.querySelector("article").append(b);
      }
      document.querySelectorAll("b.planted").forEach((b) => b.click());
    """
    browser.script(planted)
    time.sleep(1)
    assert browser.url.endswith(PAGE)  # not sent to /-/logout
    trusted = "return document.querySelectorAll('[data-robot-onclick][data-robot-nonce]').length;"
    assert browser.script(trusted) > 0  # the templates' own elements carry it
    # ... and a handler on the server's own element still runs.
    hidden = "return document.querySelector('.page-wrapper').getAttribute('data-sidebar-hidden');"
    before = browser.script(hidden)
    press(browser, "#toggle-sidebar-btn")
    assert browser.script(hidden) != before
    press(browser, "#toggle-sidebar-btn")


def test_the_walk_met_no_csp_violation(browser):
    time.sleep(1)  # a violation is reported asynchronously
    browser.console.extend(browser.console_errors())
    assert browser.csp_violations() == []
    assert [line for line in browser.console if "Content Security Policy" in line] == []


class _Beacon(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def beacon():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Beacon)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Beacon.hits
    server.shutdown()
    server.server_close()


def test_uploaded_html_and_svg_run_no_script(walk_stack, browser, jwt, beacon, tmp_path):
    address, hits = beacon
    wiki = httpx2.Client(
        base_url=f"http://127.0.0.1:{walk_stack.port('otterwiki')}",
        headers={"Authorization": f"Bearer {jwt}", "Host": f"{SLUG}.localhost"},
    )
    created = wiki.put("/api/v1/pages/Files", json={"content": "# Files\n"})
    assert created.status_code in (200, 201)
    go = f"location.href='{address}/ran'"
    files = {
        "evil.html": f'<p>evil</p><script>{go}</script><img src=x onerror="{go}">',
        "evil.svg": f'<svg xmlns="http://www.w3.org/2000/svg" onload="{go}">'
        f'<script>{go}</script><rect width="10" height="10"/></svg>',
        "evil.txt": f"<script>{go}</script>",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "dot.png").write_bytes(tiny_png())
    upload(browser, walk_stack, "/Files", [tmp_path / name for name in [*files, "dot.png"]])
    for name in [*files, "dot.png"]:
        answer = wiki.get(f"/Files/a/{name}")
        assert answer.status_code == 200
        assert "sandbox" in answer.headers["content-security-policy"].split("; ")
        assert answer.headers["x-content-type-options"] == "nosniff"
        answer = wiki.get(f"/api/v1/pages/Files/attachments/{name}")
        assert "sandbox" in answer.headers["content-security-policy"].split("; "), name
    wiki.close()
    # Otterwiki sends HTML as a download; the SVG and the text open in the tab, sandboxed.
    for name in files:
        browser.get(url(walk_stack, f"/Files/a/{name}"))
        time.sleep(1)
    assert browser.url.endswith("evil.txt")
    assert hits == []
    browser.get(url(walk_stack, "/Files/a/dot.png"))
    assert browser.script("return document.querySelector('img').naturalWidth;") == 2


def test_an_uploaded_script_is_not_the_platforms_script(walk_stack, browser, tmp_path):
    """Uploads share the wiki's origin; script-src names only Otterwiki's static folder."""
    (tmp_path / "evil.js").write_text("window.robotUploadRan = true;")
    upload(browser, walk_stack, "/Files", [tmp_path / "evil.js"])
    browser.get(url(walk_stack, "/Files"))
    planted = """
      const s = document.createElement("script");
      s.src = "/Files/a/evil.js";
      document.head.append(s);
      const own = document.createElement("script");
      own.src = "/static/js/halfmoon.js";
      own.onload = () => { window.robotOwnLoaded = true; };
      document.head.append(own);
    """
    browser.script(planted)
    wait_for(browser, lambda: browser.script("return window.robotOwnLoaded === true;"), "halfmoon")
    assert browser.script("return window.robotUploadRan === undefined;")


def test_an_uploaded_stylesheet_is_not_the_platforms_style(walk_stack, browser, tmp_path):
    """Review 63's kind: a stylesheet from the wiki's origin styles the whole page, and with
    attribute selectors can read it (a form's token, letter by letter, through url()s). An
    upload is sent as text/plain and style-src names only the platform's own files, so neither
    a `<link>` nor an `@import` in an inline style applies it."""
    (tmp_path / "evil.css").write_text("body { outline: 7px solid rgb(1, 2, 3) !important; }")
    upload(browser, walk_stack, "/Files", [tmp_path / "evil.css"])
    browser.get(url(walk_stack, "/Files"))
    planted = """
      window.robotStyleRefusals = [];
      document.addEventListener("securitypolicyviolation", (event) => {
        window.robotStyleRefusals.push(event.violatedDirective);
      });
      const link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = "/Files/a/evil.css";
      document.head.append(link);
      const style = document.createElement("style");
      style.textContent = '@import "/Files/a/evil.css"; @import "/static/../Files/a/evil.css";';
      document.head.append(style);
      const own = document.createElement("link");
      own.rel = "stylesheet";
      own.href = "/static/css/print.css";
      own.onload = () => { window.robotOwnLoaded = true; };
      document.head.append(own);
    """
    browser.script(planted)
    wait_for(browser, lambda: browser.script("return window.robotOwnLoaded === true;"), "print")
    wait_for(
        browser,
        lambda: len(browser.script("return window.robotStyleRefusals;")) >= 2,
        "the policy's refusals",
    )
    outline = browser.script("return getComputedStyle(document.body).outlineWidth;")
    assert outline != "7px"
    assert set(browser.script("return window.robotStyleRefusals;")) <= {"style-src-elem"}


def test_each_page_gets_its_own_nonce_on_every_inline_script(walk_stack, jwt):
    import re

    wiki = httpx2.Client(
        base_url=f"http://127.0.0.1:{walk_stack.port('otterwiki')}",
        headers={"Authorization": f"Bearer {jwt}", "Host": f"{SLUG}.localhost"},
    )
    nonces = []
    for path in ("/Home", "/Home", "/Home/edit", "/-/admin/sidebar_preferences"):
        answer = wiki.get(path)
        policy = answer.headers["content-security-policy"]
        nonce = re.search(r"'nonce-([\w-]+)'", policy)[1]
        nonces.append(nonce)
        scripts = re.findall(r"<script\b[^>]*>", answer.text)
        inline = [tag for tag in scripts if "src=" not in tag]
        assert inline and all(f'nonce="{nonce}"' in tag for tag in inline), path
        assert not re.search(r"\son[a-z]+=", answer.text), path
    script = wiki.get("/static/robot/handlers.js")
    wiki.close()
    assert len(set(nonces)) == len(nonces)
    assert script.headers["content-type"].startswith("text/javascript")
    assert "data-robot-on" in script.text


def test_every_service_sends_the_policy(stack):
    answers = {
        "api": httpx2.get(f"http://127.0.0.1:{stack.port('api')}/no-such-page"),
        "auth": httpx2.get(f"http://localhost:{stack.port('auth')}/auth/login"),
        "mcp": httpx2.get(f"http://127.0.0.1:{stack.port('mcp')}/no-such-page"),
        "wiki": httpx2.get(
            f"http://127.0.0.1:{stack.port('otterwiki')}/", headers={"Host": "nowiki.localhost"}
        ),
    }
    for service, answer in answers.items():
        policy = dict(
            part.strip().partition(" ")[::2]
            for part in answer.headers["content-security-policy"].split(";")
        )
        scripts = policy.get("script-src", policy["default-src"]).split()
        assert set(scripts) <= {"'self'", "'none'"} | {s for s in scripts if "'nonce-" in s}
        assert policy.get("object-src", policy["default-src"]) == "'none'", service
        assert policy["base-uri"] == "'none'", service
        assert answer.headers.get("x-content-type-options") == "nosniff", service
        assert answer.headers.get("referrer-policy"), service
    assert answers["auth"].headers["content-type"].startswith("text/html")
