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
# (reviews 47 and 55). Before each run, every tag's `<` (a letter, `/`, `!` or `?` after it)
# gets a word joiner (U+2060) after it, so that no HTML parser reads a tag there and every
# diagram still shows `<` (mermaid's entity `#lt;` did, but most renderers showed its
# internal markers, review 64); `<br>` and annotations (`<<interface>>`, unless a word starts
# with "on") stay as they were. End tags too: a
# classDef's `</style><style>@import ...` closed mermaid's style element and added one of
# its own, which restyled the whole page (review 63).
# And no diagram asks the browser to fetch from its CSS. Its style statements may hold only
# what colours need (an allow-list, `plainStyles` below). As a second line: mermaid writes
# style statements (classDef, style, linkStyle) into the SVG unchecked in state, class and
# block diagrams, and colours (a sequence's `rect`) into fill attributes, so `url(...)` there
# fetched on every view (reviews 61, 62). Before each run, in the whole source: a CSS function
# that fetches (url, image-set, cross-fade, src, image, with -webkit-), or any whose name is
# written with CSS escapes or mermaid entities (`\75 rl(`, `#117;rl(`), gets a word joiner
# (U+2060) before its `(`, making it no function the browser knows (a label shows the same);
# entities for `(` and `\` (`#40;`, `#lpar;`, `#92;`, `#bsol;`) and mermaid's own entity
# markers typed as text (U+FB02 U+00B0, U+00B6 U+00DF) are broken by one too; and a directive
# (`%%{...}%%`) that does not start its line, which mermaid removes wherever it is, joining
# what was around it (`u%%{x}%%rl(`), is broken the same way, as is every `@` before a letter
# or `\` (no at-rule: `@import`; a label's `@import` is drawn as written). Then the source as
# mermaid 12.2.0 will read it (front matter, directives and comment lines removed or not,
# encodeEntities' dropped `;`, what the diagrams' parsers and stylis take out of styles,
# entities and CSS escapes decoded) must call no such function, nor `@import`, or the diagram
# is not drawn: a splice not foreseen here fails closed.
# Each source is kept: Otterwiki draws the editor's Markdown help again on each opening, and
# mermaid would read the drawn SVG as the diagram.
MERMAID_SOURCE_AS_TEXT = r"""        const tagStart =
            /<(?=[A-Za-z\/!?])(?!br\s*\/?>)(?!(?<=<<)(?![\w -]*[\s-]on)[\w -]*>>)/gi;
        const joiner = '\u2060';
        const cssEscape = String.raw`\\(?:[0-9a-fA-F]{1,6}[ \t\r\f\n]?|[^\n\r\f0-9a-fA-F])`;
        const functionName = new RegExp(
            String.raw`(?:[\w\u0080-\uffff-]|${cssEscape}|#\+?\d+;)+(?=\()`, 'g');
        const fetchingName = '(?:-webkit-)?(?:url|src|image|image-set|cross-fade)';
        const fetching = new RegExp(`^${fetchingName}$`, 'i');
        const fetchingCall = new RegExp(
            String.raw`@import|(?<![\w\u0080-\uffff-])${fetchingName}\(`, 'i');
        const inert = (source) => source
            .replace(/(?<!^[ \t]*)%%\{/gm, '%%' + joiner + '{')
            .replace(/@(?=[A-Za-z\\])/g, '@' + joiner)
            .replace(/[\ufb02\u00b6]/g, (marker) => marker + joiner)  // none can be joined
            .replace(/#(?=(?:\+?0*(?:40|92)|lpar|bsol);)/gi, '#' + joiner)
            .replace(functionName, (name) => /[\\#]/.test(name) || fetching.test(name)
                ? name + joiner : name);
        const directive = new RegExp(String.raw`%{2}{\s*(?:(\w+)\s*:|(\w+))\s*(?:(\w+)|`
            + String.raw`((?:(?!}%{2}).|\r?\n)*))?\s*(?:}%{2})?`, 'gi');  // mermaid's own
        // What mermaid 12.2.0 reads of `source` (preprocessDiagram, encodeEntities), and then
        // the browser of its CSS: with what mermaid removes (front matter, directives,
        // comment lines) taken out, or left in; the removals join no text by themselves
        // (see `inert`), but one may take out more than mermaid's would (review 63).
        const asRead = (source, removing) => {
            let text = source.replace(/\r\n?/g, '\n');
            if (removing) {
                text = text.replace(/^-{3}\s*\n[\s\S]*?\n-{3}\s*\n+/, '')
                    .replace(directive, '').replace(/^\s*%%(?!{)[^\n]+\n?/gm, '');
            }
            return text.replace(/style.*:\S*#.*;/g, (line) => line.slice(0, -1))
                .replace(/classDef.*:\S*#.*;/g, (line) => line.slice(0, -1))
                .replace(/#\w+;/g, (entity) => {  // encodeEntities' markers
                    const inner = entity.slice(1, -1);
                    return (/^\+?\d+$/.test(inner) ? '\ufb02\u00b0\u00b0' : '\ufb02\u00b0')
                        + inner + '\u00b6\u00df';
                });
        };
        // ... and then the browser, after the removals below (review 66: a marker split by
        // a `;` or a comment was whole again once they were made): mermaid's decodeEntities,
        // HTML's character references, CSS escapes last.
        const decoded = (text) => {
            const decoder = document.createElement('textarea');  // RCDATA: text only
            decoder.innerHTML = text.replace(/\ufb02\u00b0\u00b0/g, '&#')
                .replace(/\ufb02\u00b0/g, '&').replace(/\u00b6\u00df/g, ';');
            return cssDecoded(decoder.value);
        };
        // The diagrams' own parsers take out more of a style's text (mermaid 12.2.0: a state
        // or block classDef each item's first `;`, a state `style` every `;`, label styles
        // their `fill:...;` and `stroke:...;`), joining what was around it (review 64:
        // `u;rl(`): each such reading, CSS escapes decoded last, is checked too.
        const cssDecoded = (text) => text.replace(new RegExp(cssEscape, 'g'), (escaped) => {
            const hex = /^\\([0-9a-fA-F]{1,6})/.exec(escaped);
            return hex ? String.fromCodePoint(Math.min(parseInt(hex[1], 16), 0x10ffff))
                : escaped.slice(1);
        });
        // And stylis, which compiles a state or block diagram's classDefs, drops CSS comments,
        // joining `u/**/rl(` (review 65).
        const paintTaken = /(?:stroke|fill):[^;]+;?/g;
        const commentsTaken = (text) => text.replace(/\/\*[\s\S]*?(?:\*\/|$)/g, '');
        const readings = (text) => [text, commentsTaken(text)].flatMap((read) => [read,
            read.replace(/;/g, ''), read.replace(paintTaken, ''),
            read.replace(paintTaken, '').replace(/;/g, '')]).map(decoded);
        // First, an allow-list (review 67's plan, after six reviews each found one more step
        // of mermaid's reading to model): every statement mermaid 12.2.0 writes into CSS or a
        // paint attribute unchecked (a `style`, `classDef` or `linkStyle` anywhere a statement
        // may start, any case, its styles on a later line when none are on its own, as state
        // and block diagrams allow; a sequence's `rect`; a C4 colour argument) may hold only
        // names, numbers, units, hex colours and rgb()/hsl() of numbers: no `(` of any other
        // function, no `/`, `*`, `\`, `@`, `<`, `&`, `{`, `;` but a last one, no `%%`, nothing
        // outside ASCII (mermaid's entity markers), no `#` but a hex colour's. Nothing mermaid
        // takes out or decodes can then join into a fetch. Sequence boxes, quadrant points
        // and venn styles are checked by mermaid itself (CSS.supports, hex patterns).
        // A statement starts a line, or follows a `;` or a directive, after any whitespace
        // (`\s`: mermaid's lexers skip U+00A0 and its kind too, review 69); in block diagrams
        // after any whitespace, as their grammar reads statements in a line (`a b style a`).
        const keywords = '(?:style|classDef|linkStyle)(?=\\s|$)[^\\n]*';
        const styleStatement = new RegExp(String.raw`(?:^|;|%%)\s*` + keywords, 'i');
        const blockStyleStatement = new RegExp(String.raw`(?:^|;|%%|\s)\s*` + keywords, 'i');
        const rectStatement = new RegExp(String.raw`(?:^|;|%%)\s*rect(?=\s|$)[^\n]*`, 'i');
        // C4's style updates take colours as positional arguments too (review 69).
        const c4StyleUpdate = /\bUpdate\w*Style\s*\(([^\n]*)/i;
        const colourFunction = /\b(?:rgba?|hsla?)\([\d\s.,%\/+a-z-]*\)/gi;
        const plainStyle = /^(?:[\w \t.,:!"'=$+>-]|%(?!%)|#[0-9a-f]{3,8}(?!\w))*;?[ \t]*$/i;
        const colourArgument = /\$\w*colou?r\w*\s*=\s*("[^"\n]*"?|[^\s,)]*)/gi;
        const plain = (text) => plainStyle.test(text.replace(colourFunction, 'rgb'));
        // Diagram types with no style statement (their grammars, mermaid 12.2.0): a mindmap's
        // "Style (voice)" is a node (review 68). Read only from a first line mermaid cannot
        // read otherwise: the first line not blank, in a source with no directive (mermaid
        // removes one anywhere) and so no front matter either (it would be the first line);
        // review 70 made a looser reading see `pie` where mermaid saw a class diagram.
        const unstyled = new RegExp(String.raw`^\s*(?:mindmap|kanban|timeline|journey|gantt|`
            + String.raw`pie|gitGraph|sankey(?:-beta)?|xychart(?:-beta)?|packet(?:-beta)?|`
            + String.raw`radar(?:-beta)?|architecture(?:-beta)?|ishikawa|info)(?=\s|$)`);
        const commentLine = /^\s*%%(?!\{)/;  // mermaid takes these out before any parser
        const surelyOfType = (source, type) => !source.includes('%%{')
            && type.test(source.split('\n').find((line) => line.trim()) || '');
        // Only state, block and treemap grammars read a statement's styles from a later line
        // (`\s+` after the keyword and its names); elsewhere a line ends it (review 69:
        // `linkStyle 0 interpolate basis` took the next line as its styles).
        const typeLine = (types) => new RegExp(String.raw`^\s*(?:${types})`, 'im');
        const spanning = typeLine('stateDiagram|block|treemap');
        const plainStyles = (written) => {
            const source = written.replace(/\r\n?/g, '\n');
            if (surelyOfType(source, unstyled)) {
                return true;
            }
            const sequence = /\bsequenceDiagram\b/.test(source);
            const statementIn = typeLine('block').test(source) ? blockStyleStatement
                : styleStatement;
            const mayContinue = spanning.test(source);
            let continued = false;
            for (const line of source.split('\n')) {
                if ((continued && !line.trim()) || commentLine.test(line)) {
                    continue;  // its styles may come after blank lines too
                }
                const statement = (continued && line)
                    || (statementIn.exec(line) || [])[0]
                    || (sequence && (rectStatement.exec(line) || [])[0]);
                if (statement && !plain(statement.replace(/^[;%\s]+/, ''))) {
                    return false;
                }
                // A hex colour's last `;` is kept by mermaid's encodeEntities, and so read as
                // an entity (`#125;` is `}`), unless the line is one it takes that `;` from
                // (its own two patterns; review 71: `--a: x #125;`).
                if (statement && /#[0-9a-f]+;\s*$/i.test(statement)
                        && !/style.*:\S*#.*;|classDef.*:\S*#.*;/.test(line)) {
                    return false;
                }
                continued = mayContinue && Boolean(statement) && !statement.includes(':')
                    && !/^[;%\s]*rect/i.test(statement);
                const update = c4StyleUpdate.exec(line);
                if (update && !plain(update[1].replace(/\)\s*$/, ''))) {
                    return false;
                }
                for (const [, value] of line.matchAll(colourArgument)) {
                    if (value.includes(';') || !plain(value)) {
                        return false;
                    }
                }
            }
            return true;
        };
        // A diagram's settings (front matter, which mermaid reads only at its start, and
        // `%%{...}%%` directives) may hold no `\`: YAML's and JSON's escapes (`\x28`,
        // `\u0028`) are decoded after every check, and some settings (a sankey's linkColor, a
        // journey's titleColor, C4's colours) are written into paint attributes unchecked
        // (review 68: `url\u0028...)` fetched). Labels may hold `\` (KaTeX).
        const settingsSpans = (source) => {
            const lines = source.split(/\r\n?|\n/);
            let last = -1;
            lines.forEach((line, index) => {
                last = /^\s*-{3}\s*$/.test(line) ? index : last;
            });
            const frontMatter = lines.slice(0, last + 1).join('\n');
            return [frontMatter, ...(source.match(/%%\{[\s\S]*?(?:\}%%|$)/g) || [])];
        };
        const plainSettings = (source) =>
            !settingsSpans(source).some((span) => span.includes('\\'));
        const notDrawn = (why) => 'flowchart TD\n  robotNotDrawn["This diagram is not drawn: '
            + why + '"]';  // no `<`: the rewrite is done
        const diagramSource = (written) => {
            if (!plainStyles(written)) {
                return notDrawn('its styles may hold only colours, numbers and sizes.');
            }
            if (!plainSettings(written)) {
                return notDrawn('its settings may not hold a backslash.');
            }
            const source = inert(written).replace(tagStart, '<' + joiner);
            const fetches = [true, false].some((removing) =>
                readings(asRead(source, removing)).some((text) => fetchingCall.test(text)));
            return fetches ? notDrawn('it asks the browser to fetch from its styles.') : source;
        };
        const diagramSources = new WeakMap();  // each drawn diagram's source, to draw again
        const runDiagrams = mermaid.run;
        mermaid.run = function (options) {
            const nodes = (options && options.nodes)
                || document.querySelectorAll((options && options.querySelector) || '.mermaid');
            for (const node of nodes) {
                if (!node.getAttribute('data-processed')) {
                    if (!diagramSources.has(node)) {
                        diagramSources.set(node, diagramSource(node.textContent));
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


def _own_files() -> tuple[str | None, tuple[str, ...]]:
    """Where this wiki's script and style files live, from the settings, not Host: its static
    folder (`{wiki URL}static/`) and the plugins' one stylesheet (`-/plugin-static.css`,
    Otterwiki's views.py), or (None, ()) outside a wiki.

    Uploads are served from the wiki's own origin too; a policy naming only these never lets
    an uploaded `.js` count as the platform's script, nor an uploaded `.css` as its style.
    """
    from flask import g

    tenant = getattr(g, "tenant", None)
    if tenant is None:
        return None, ()
    wiki_url = tenant.settings.wiki_url(tenant.slug)
    return wiki_url + "static/", (wiki_url + "-/plugin-static.css",)


def _add_headers(response):
    from flask import request

    if request.endpoint in ATTACHMENT_ENDPOINTS:
        policy = ATTACHMENT_POLICY
        if response.mimetype:
            response.mimetype = inert_mimetype(response.mimetype)
    else:
        _drop_rendered_handlers(response)
        policy = page_policy(csp_nonce(), _form_sources(), *_own_files())
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
