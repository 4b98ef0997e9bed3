"""Otterwiki under the platform's Content-Security-Policy (app/core/csp.py).

`install_csp` makes Otterwiki's app load its templates through `handlers.rewrite_template`
(declarative handlers, nonced inline scripts), serve `static/handlers.js` from the wiki's own
origin, and put the headers on every response: a page policy with this response's nonce, or
the sandbox policy for uploaded files, so an uploaded HTML or SVG file can never run as a page.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

from jinja2 import BaseLoader

from app.core.csp import ATTACHMENT_POLICY
from app.core.csp import inert_mimetype
from app.core.csp import new_nonce
from app.core.csp import page_policy
from app.core.csp import security_headers
from app.wiki.otterwiki.account import TEMPLATE_ADDITION as ACCOUNT_MENU
from app.wiki.otterwiki.editor import TEMPLATE_ADDITIONS as MERGING_EDITOR
from app.wiki.otterwiki.handlers import NONCE_ATTRIBUTE
from app.wiki.otterwiki.handlers import rewrite_template
from app.wiki.otterwiki.managed import TEMPLATE_ADDITIONS as MANAGED_MENU
from app.wiki.otterwiki.provenance import TEMPLATE_ADDITIONS as AUTHORS

HANDLERS_JS = Path(__file__).with_name("static") / "handlers.js"
HANDLERS_URL = "/static/robot/handlers.js"
# Otterwiki's views that send an uploaded file's bytes (views.py, 2.26.1).
ATTACHMENT_ENDPOINTS = frozenset({"get_attachment", "get_attachment_thumbnail"})
# The renderer writes these inline handlers into page bodies (renderer.py, renderer_plugins.py,
# renderer_embeddings.py); handlers.js binds the same elements by class and id instead.
_RENDERED_HANDLERS = (
    ' onclick="otterwiki.copy_to_clipboard(this);"',
    ' onclick="otterwiki.toggle_spoiler(this)"',
    " onchange=\"otterwiki.toggleClass(event.target.checked,'pagetoc')\"",
)
# As they appear in an HTML body, and inside the JSON the editor's preview fetches.
RENDERED_HANDLERS = {
    "text/html": [handler.encode() for handler in _RENDERED_HANDLERS],
    "application/json": [json.dumps(handler)[1:-1].encode() for handler in _RENDERED_HANDLERS],
}
# Mermaid's sanitizer (DOMPurify, via its sanitizeText) parses each label as HTML in an inert
# DOMParser document: nothing there can run, but Chromium reports every on* attribute it
# parses as a script-src-attr violation, so a hostile diagram filled the console with them
# (reviews 47 and 55). Before each run, the `<` of every tag that could hold attributes (a
# name, then a blank or `/`) is written as mermaid's own entity `#lt;`, shown as `<`; `<br>`
# and annotations (`<<interface>>`, unless a word starts with "on") stay as they were.
# And the CSS of a diagram's style statements (classDef, style, linkStyle: mermaid writes
# them into the SVG's style, unchecked in state, class and block diagrams) calls no function
# that fetches: url() and its kind, or any function whose name is written with CSS escapes
# (`\75 rl(` is `url(`), get a word joiner (U+2060) before their `(`, which makes them no CSS
# function the browser knows (review 61: `classDef x fill:url(...)` fetched on every view).
# Mermaid's own entities (`#40;` is `(`, `#117;` is `u`) would spell them after that check, so
# in those statements none is left: mermaid's encodeEntities (12.2.0) first drops the last
# `;` of a line where a colour could end (done here first, as it does), then takes every
# `#name;` for an entity; each of those gets the word joiner after its `#`.
# Each source is kept: Otterwiki draws the editor's Markdown help again on each opening, and
# mermaid would read the drawn SVG as the diagram.
MERMAID_SOURCE_AS_TEXT = r"""        const tagWithAttributes =
            /<(?=[A-Za-z][^\s\/>]*[\s\/])(?!br\s*\/?>)(?!(?<=<<)(?![\w -]*[\s-]on)[\w -]*>>)/gi;
        const styleStatement = /\b(?:classDef|style|linkStyle)\b[^\n]*/gi;
        const cssEscape = String.raw`\\(?:[0-9a-fA-F]{1,6}[ \t\r\f\n]?|[^\n\r\f0-9a-fA-F])`;
        const cssFunctionName =
            new RegExp(String.raw`(?:[\w\u0080-\uffff-]|${cssEscape})+(?=\()`, 'g');
        const fetching = /^(?:-webkit-)?(?:url|src|image|image-set|cross-fade)$/i;
        const noFetch = (statement) => statement
            .replace(/#(?=\w+;)/g, '#\u2060')
            .replace(cssFunctionName, (name) =>
                name.includes('\\') || fetching.test(name) ? name + '\u2060' : name);
        const lastSemicolonDropped = [/style.*:\S*#.*;/g, /classDef.*:\S*#.*;/g];
        const diagramSources = new WeakMap();  // each drawn diagram's source, to draw again
        const runDiagrams = mermaid.run;
        mermaid.run = function (options) {
            const nodes = (options && options.nodes)
                || document.querySelectorAll((options && options.querySelector) || '.mermaid');
            for (const node of nodes) {
                if (!node.getAttribute('data-processed')) {
                    if (!diagramSources.has(node)) {
                        let source = node.textContent;
                        for (const line of lastSemicolonDropped) {
                            source = source.replace(line, (text) => text.slice(0, -1));
                        }
                        diagramSources.set(node, source
                            .replace(styleStatement, noFetch)
                            .replace(tagWithAttributes, '#lt;'));
                    }
                    node.textContent = diagramSources.get(node);
                }
            }
            return runDiagrams.apply(this, arguments);
        };
        mermaid.initialize({"""

# Otterwiki's templates, changed before the rewrite: (template, anchor, what replaces it).
# The manifest is fetched without cookies unless asked, and a private wiki sends that to login.
TEMPLATE_ADDITIONS = (
    (
        "layout.html",
        "</head>",
        f'<script src="{HANDLERS_URL}"{NONCE_ATTRIBUTE} defer></script>\n</head>',
    ),
    ("layout.html", '<link rel="manifest"', '<link rel="manifest" crossorigin="use-credentials"'),
    # Mermaid labels as SVG text, never as HTML.
    (
        "snippets/renderer_js.html",
        "theme: theme,",
        "theme: theme, securityLevel: 'strict', htmlLabels: false, flowchart: {htmlLabels: false},"
        # A diagram's own `%%{init: ...}%%` may not change these (mermaid's `secure` list):
        # the CSS a diagram writes into its SVG (themeCSS, fonts and theme variables wrote
        # `url(...)` fetches on every view, review 60), nor DOMPurify's settings.
        " secure: ['secure', 'securityLevel', 'startOnLoad', 'maxTextSize',"
        " 'suppressErrorRendering', 'maxEdges', 'htmlLabels', 'flowchart', 'themeCSS',"
        " 'fontFamily', 'altFontFamily', 'themeVariables', 'dompurifyConfig'],",
    ),
    ("snippets/renderer_js.html", "        mermaid.initialize({", MERMAID_SOURCE_AS_TEXT),
    ACCOUNT_MENU,  # the platform's account instead of Otterwiki's login and settings links
    *MANAGED_MENU,  # no menu entries for the admin pages the platform decides
    *MERGING_EDITOR,  # the editor's save sends its revision; a conflict is shown to resolve
    *AUTHORS,  # authors as profile links with their agent, not mailto: links
)


class TemplateChanged(LookupError):
    """An Otterwiki template no longer holds the text a TEMPLATE_ADDITIONS entry anchors on."""


class RewritingLoader(BaseLoader):
    """A Jinja loader serving `inner`'s templates rewritten by `rewrite_template`, once each.

    Jinja caches the compiled result, so the rewrite costs nothing per request. Raises
    `handlers.UnknownHandler` when a template holds a handler the rewriter cannot translate.
    """

    def __init__(self, inner: BaseLoader):
        self.inner = inner

    def get_source(self, environment, template):
        source, filename, uptodate = self.inner.get_source(environment, template)
        for name, anchor, replacement in TEMPLATE_ADDITIONS:
            if name == template:
                if anchor not in source:
                    raise TemplateChanged(f"{template} no longer holds {anchor!r}")
                source = source.replace(anchor, replacement, 1)
        return rewrite_template(source), filename, uptodate

    def list_templates(self):
        return self.inner.list_templates()


def csp_nonce() -> str:
    """This response's script nonce (made on first use), for `<script nonce=...>`."""
    from flask import g

    if "csp_nonce" not in g:
        g.csp_nonce = new_nonce()
    return g.csp_nonce


def _form_sources() -> tuple[str, ...]:
    from flask import g

    tenant = getattr(g, "tenant", None)
    if tenant is None:
        return ("'self'",)
    # A post whose session ran out is redirected to sign-in on the auth service.
    return ("'self'", tenant.settings.auth_origin)


def _drop_rendered_handlers(response) -> None:
    handlers = RENDERED_HANDLERS.get(response.mimetype)
    if not handlers or response.is_streamed or response.direct_passthrough:
        return
    body = response.get_data()
    if b" on" not in body:
        return
    for handler in handlers:
        body = body.replace(handler, b"")
    response.set_data(body)


def _static_url() -> str | None:
    """Where this wiki's script files live (`{wiki URL}static/`), from the settings, not Host.

    Uploads are served from the wiki's own origin too; a policy naming only Otterwiki's static
    folder never lets an uploaded `.js` count as the platform's script.
    """
    from flask import g

    tenant = getattr(g, "tenant", None)
    return tenant.settings.wiki_url(tenant.slug) + "static/" if tenant else None


def _add_headers(response):
    from flask import request

    if request.endpoint in ATTACHMENT_ENDPOINTS:
        policy = ATTACHMENT_POLICY
        if response.mimetype:
            response.mimetype = inert_mimetype(response.mimetype)
    else:
        _drop_rendered_handlers(response)
        policy = page_policy(csp_nonce(), _form_sources(), _static_url())
    for name, value in security_headers(policy).items():
        response.headers.setdefault(name, value)  # a view's own policy (page API files) stands
    return response


def install_csp(server: ModuleType) -> None:
    """Put Otterwiki's app (`server.app`) under the platform's policy; see the module doc."""
    app = server.app
    app.jinja_loader = RewritingLoader(app.jinja_loader)
    if app.jinja_env.cache is not None:
        app.jinja_env.cache.clear()  # nothing compiled before the rewrite may be served
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.after_request(_add_headers)
    _send_no_renderer_javascript()


def _no_script() -> None:
    return None


def _send_no_renderer_javascript() -> None:
    """Make every `renderer_javascript` hook (Otterwiki's datatable embedding) return nothing.

    Its script comes from the renderer's state, not from the cached render: on a cache hit it
    would be whatever page this worker rendered last, another wiki's maybe. Otterwiki sends it
    inline with a page and `eval`s it after a preview, neither of which the policy allows;
    handlers.js sets every datatable up instead.
    """
    from otterwiki.plugins import plugin_manager

    for implementation in plugin_manager.hook.renderer_javascript.get_hookimpls():
        implementation.function = _no_script
