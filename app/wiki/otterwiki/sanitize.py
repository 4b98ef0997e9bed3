"""Every page body Otterwiki renders passes an HTML sanitizer (nh3) before anyone sees it.

Otterwiki escapes most raw HTML itself, but not everywhere (a fenced block with the info string
`math` is copied into the page unescaped), and any future gap would be script in every visitor's
browser. So the rendered HTML goes through nh3 (the Ammonia sanitizer) with an allow-list of
exactly what Otterwiki's renderer and its embeddings produce, and the math block is escaped.
"""

from __future__ import annotations

import re
from types import ModuleType

import nh3
from markupsafe import escape

from app.wiki.otterwiki.render import RenderOverBudget
from app.wiki.otterwiki.render import budgeted
from app.wiki.otterwiki.render import uninterrupted

# Bump POLICY whenever the allow-list below (or what `sanitizable` refuses) changes: the render
# cache keys on SANITIZER_VERSION, so pages rendered under an older policy are rendered again.
# nh3's version is part of it too.
POLICY = "2"
SANITIZER_VERSION = f"{POLICY}/nh3-{nh3.__version__}"

# Everything Otterwiki's renderer, its plugins and its embeddings emit (renderer.py,
# renderer_plugins.py, renderer_embeddings.py of 2.26.1), plus the inline HTML its own
# `clean_html` lets authors write. No script, style, form, object, embed, base, meta, link,
# svg or math element: nh3 drops those tags (and the content of script and style).
TAGS = {
    *("a", "abbr", "audio", "b", "big", "blockquote", "br", "button", "caption", "cite"),
    *("code", "col", "colgroup", "dd", "del", "details", "div", "dl", "dt", "em"),
    *("figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "iframe"),
    *("img", "input", "ins", "kbd", "label", "li", "mark", "ol", "p", "pre", "q", "s"),
    *("samp", "section", "small", "source", "span", "strike", "strong", "sub", "summary"),
    *("sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul"),
    *("var", "video"),
}

# No `on*` and no `data-*` attribute anywhere: Otterwiki's renderer emits no data-* attribute,
# and the platform binds its own handlers through `data-robot-*` attributes on Otterwiki's
# templates, which page content must never be able to carry.
ATTRIBUTES = {
    "*": {"class", "id", "title", "style", "role", "aria-hidden", "aria-label", "lang", "dir"},
    "a": {"href", "name", "target"},
    "img": {"src", "alt", "width", "height", "loading"},
    "td": {"colspan", "rowspan", "align", "valign", "width"},
    "th": {"colspan", "rowspan", "align", "valign", "width", "scope"},
    "col": {"span", "width"},
    "colgroup": {"span", "width"},
    "table": {"border", "cellpadding", "cellspacing", "width"},
    "ol": {"start", "reversed"},
    "li": {"value"},
    "time": {"datetime"},
    "details": {"open"},
    "label": {"for"},
    # Task-list items and the "Toggle page headings" switch; `type` is forced to checkbox below.
    "input": {"checked", "disabled", "value"},
    # The copy-to-clipboard and spoiler buttons; outside a form a button submits nothing.
    "button": {"type"},
    "video": {"width", "height", "controls", "autoplay", "muted", "loop", "poster"},
    "audio": {"controls", "src"},
    "source": {"src", "type"},
    # The Video embedding's YouTube player; `src` is held to YOUTUBE_EMBEDS below.
    "iframe": {
        *("src", "width", "height", "title", "frameborder", "allow", "allowfullscreen"),
        "referrerpolicy",
    },
}

# Any other input type would be a text field or a button an author could dress up as a login form.
FORCED_VALUES = {"input": {"type": "checkbox"}}

# CSS properties kept in style attributes: table cell alignment (mistune's `text-align`) and
# what the embeddings' layout and `style=` options use. Nothing that positions an element over
# the page chrome (position, z-index, inset) or loads a URL (background, content, cursor).
STYLE_PROPERTIES = {
    *("text-align", "vertical-align", "float", "clear", "display", "width", "height"),
    *("min-width", "max-width", "min-height", "max-height", "margin", "margin-top"),
    *("margin-right", "margin-bottom", "margin-left", "padding", "padding-top"),
    *("padding-right", "padding-bottom", "padding-left", "border", "border-width"),
    *("border-style", "border-color", "border-radius", "border-left-color", "color"),
    *("background-color", "font-size", "font-weight", "font-style", "font-family"),
    *("text-decoration", "white-space", "word-break", "overflow", "overflow-x", "line-height"),
}

# `data:` only for raster images in <img src> (Markdown images pasted inline; mistune keeps
# exactly these), never in links, frames or media. javascript:, vbscript:, file: are not listed.
URL_SCHEMES = {"http", "https", "mailto", "tel", "ftp", "sftp", "xmpp", "irc", "ircs", "data"}
INLINE_IMAGE = re.compile(r"data:image/(?:png|gif|jpeg|webp);", re.IGNORECASE)
# The only frames a page may show: YouTube's players, which the CSP's frame-src allows too.
YOUTUBE_EMBEDS = ("https://www.youtube.com/embed/", "https://www.youtube-nocookie.com/embed/")
_URL_ATTRIBUTES = {"href", "src", "poster"}


def _filter_attribute(tag: str, name: str, value: str) -> str | None:
    """Drop data: URLs other than inline raster images, and frames not on YouTube's player."""
    if name not in _URL_ATTRIBUTES:
        return value
    if tag == "iframe":
        return value if value.startswith(YOUTUBE_EMBEDS) else None
    if value.lstrip().lower().startswith("data:"):
        return value if tag == "img" and name == "src" and INLINE_IMAGE.match(value) else None
    return value


def _clean(html: str) -> str:
    """`html` through the sanitizer, whole: nh3 calls `_filter_attribute` from native code,
    which drops any exception raised there (a budget's or a slice's stop, printed as
    unraisable), so a stop that comes due meanwhile is raised once the sanitizer returns.
    Its work is linear in `html` (see `sanitizable`)."""
    with uninterrupted():
        return _CLEANER.clean(html)


_CLEANER = nh3.Cleaner(
    tags=TAGS,
    attributes=ATTRIBUTES,
    attribute_filter=_filter_attribute,
    set_tag_attribute_values=FORCED_VALUES,
    url_schemes=URL_SCHEMES,
    filter_style_properties=STYLE_PROPERTIES,
    strip_comments=True,
    # Otterwiki's links carry no rel; Chromium opens target=_blank links without an opener.
    link_rel=None,
)


# nh3's parser (html5ever, native code: the render budget's SIGPROF cannot stop it) walks the
# stack of open elements at most start tags (e.g. "is a <p> in button scope?"), so it spends
# about 3-6 ns x the sum, over the start tags, of the elements open then: quadratic in nesting.
# Measured (nh3 0.2, this machine): 10,000 nested <div> 0.19-0.32 s, 20,000 0.95 s, 40,000
# 4.7 s (the reviewer's `"<div>" * 50000` page: 10 s of a 2 s budget); 4,000 nested <div>
# around 80,000 more <div> 1.07 s; a 20,000-row table (depth ~5) 0.1 s. `nesting_work` counts
# that sum in Python (interruptible, ~0.5 us a tag: 0.08 s for that table) and a body above
# MAX_NESTING_WORK (~0.1 s of nh3) is not handed to nh3: the render counts as over its budget.
# Depth 6,300 alone reaches it, far beyond any page (Chromium flattens the DOM past 512 levels).
MAX_NESTING_WORK = 20_000_000
_VOID = frozenset(
    ("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param")
    + ("source", "track", "wbr")
)
# Markup as html5ever's tokenizer reads it (WHATWG HTML 13.2.5), near enough that no end tag
# is seen where it sees none: a comment (ending at `-->` or `--!>`, at once for `<!-->` and
# `<!--->`, else at the end), a bogus comment or doctype (`<!x`, `<?x`, `</` before no letter:
# to the first `>`), or a tag whose attribute values are read whole (quoted or not, only
# after `=`: `<div a"b>` holds no quoted value). Group 1 is "/" for an end tag, group 2 the
# name, group 3 the ">" that ends the tag (empty: the tag runs to the end of the text).
_MARKUP = re.compile(
    r"<!--(?:-?>|.*?--!?>|.*)"
    r"|<[!?][^>]*+>?"
    r"|</(?![A-Za-z])[^>]*+>?"
    r"|<(/?)([A-Za-z][^\t\n\f\r />]*+)"
    r"(?:[^>=]|=[\t\n\f\r ]*+(?:\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >]*+))*+(>?)",
    re.DOTALL,
)
# Elements whose content is text up to their own end tag (13.2.5.2-13.2.5.7): what looks like
# markup in them is none.
_RAW_TEXT = frozenset(
    ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript")
)


# Formatting elements (WHATWG HTML 13.2.4.3): html5ever keeps those started and not yet ended
# in its list of active formatting elements, and once an end tag or a block's start closed
# them while still in the list (`<p><b id=1>...<b id=999><p>x</p>`: each `<p>` closes the
# one before, and the b's in it), it makes them again, each, before the next text or tag
# ("reconstruct the active formatting elements"): 1,000 b's before 2,000 `<p>x</p>`, a 28 KB
# body, made 2 million elements, 6.6 s of nh3 and 32 MB (review 37). Each element that may
# be made so counts RECONSTRUCT_WORK: about 3 us of nh3, as much as 600 start tags.
_FORMATTING = frozenset(
    ("a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong")
    + ("tt", "u")
)
RECONSTRUCT_WORK = 1000
# Start tags that close an open p first (13.2.6.4.7, "in body"): what was open in it closes.
_CLOSES_P = frozenset(
    ("address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div")
    + ("dl", "fieldset", "figcaption", "figure", "footer", "header", "hgroup", "main", "menu")
    + ("nav", "ol", "p", "search", "section", "summary", "ul", "h1", "h2", "h3", "h4", "h5")
    + ("h6", "pre", "listing", "form", "plaintext", "table", "hr", "xmp", "li", "dd", "dt")
)
# Elements that put a marker in that list (their formatting elements end with them), and the
# tags that end a table cell (a cell's start ends the one before).
_MARKERS = frozenset(("td", "th", "caption", "marquee", "object", "applet", "template"))
_CELLS = frozenset(("td", "th"))
_ENDS_CELLS = frozenset(("tr", "tbody", "thead", "tfoot", "table"))
_FORMATTING_TAG = re.compile(
    r"<(?:a|b|big|code|em|font|i|nobr|s|small|strike|strong|tt|u)[\t\n\f\r />]", re.IGNORECASE
)


def nesting_work(html: str, limit: int = MAX_NESTING_WORK) -> int:
    """Sum, over the start tags of `html`, of the elements open at each (void ones not counted):
    nh3's cost beyond linear.

    An end tag closes an element here only when it names the innermost open one: html5ever
    may close more (`</div>` closes a `<p>` left open in it), never a deeper tree than this
    count. Counting every end tag as one closed let `"<div></i>" * 40_000` (40,000 divs deep
    for nh3) count as no nesting, and closing up to the last element of the name let
    `"<p><div></p>"` (a `</p>` closing no p, in html5ever: an empty p, the div left open)
    count as none (review 35). Tags are read as html5ever's tokenizer reads them (_MARKUP):
    an end tag in a comment, an attribute value or a raw text element closes nothing
    (`<div title="</div>">` did: review 36), and after a tag left open to the end, nothing is
    closed. Stops counting once the sum passes `limit`.

    Adds RECONSTRUCT_WORK for each formatting element html5ever may make again (see
    _FORMATTING): at the first markup after an end tag, or after a start tag that closes an
    open p, as many as were started and not yet ended by their own end tag. More than it
    makes: it makes only those closed meanwhile, and at most three alike. Those started in a
    table cell (or another of _MARKERS) end with it.
    """
    tags = html.count("<")
    formatting = len(_FORMATTING_TAG.findall(html)) if tags * tags <= limit else tags
    # The sum is below tags x depth, plus tags x formatting elements made again at each.
    if tags * tags + tags * formatting * RECONSTRUCT_WORK <= limit:
        return 0
    open_names: list[str] = []  # the open elements, outermost first
    unended: dict[str, int] = {}  # formatting elements started and not yet ended, by name
    remade = 0  # how many html5ever may make again: their sum
    closed_since = False  # whether some may have been closed since they were last made
    markers: list[tuple[str, dict[str, int], int]] = []  # (element, unended, remade) then

    def end_markers(names: frozenset[str]) -> None:
        """End the markers on top while they are of `names`: forget what started since."""
        nonlocal unended, remade
        while markers and markers[-1][0] in names:
            _, unended, remade = markers.pop()

    work = 0
    closing = True  # whether end tags are still read as such
    at = html.find("<")
    while at >= 0:
        match = _MARKUP.match(html, at)
        if match is None or match[2] is None:  # a lone `<`, a comment or the like
            at = html.find("<", at + 1 if match is None else max(match.end(), at + 1))
            continue
        if closed_since:
            work += remade * RECONSTRUCT_WORK  # before this markup (or text before it)
            closed_since = False
        name = match[2].lower()
        if not match[3]:
            closing = False  # a tag left open: how the rest reads is not sure
        if match[1]:
            if closing and open_names and open_names[-1] == name:
                open_names.pop()
            if unended.get(name):
                unended[name] -= 1  # its own end tag ends one
                remade -= 1
            elif name in _ENDS_CELLS:
                end_markers(_CELLS)
            elif any(marker[0] == name for marker in markers):
                while markers[-1][0] != name:
                    markers.pop()
                end_markers(frozenset((name,)))
            closed_since = True
        elif name not in _VOID:
            work += len(open_names)
            if work > limit:
                break
            if name in _CLOSES_P and "p" in open_names:
                closed_since = True
            if name in _CELLS or name in _ENDS_CELLS:
                end_markers(_CELLS)
            if name in _MARKERS:
                markers.append((name, dict(unended), remade))
            if name in _FORMATTING:
                if name in ("a", "nobr") and unended.get(name):
                    remade -= 1  # it ends the one before (the adoption agency)
                    unended[name] -= 1
                unended[name] = unended.get(name, 0) + 1
                remade += 1
            open_names.append(name)
            if name in _RAW_TEXT:  # its text runs to its end tag, which closes it
                end = re.compile(rf"</{re.escape(name)}[\t\n\f\r />]", re.IGNORECASE)
                found = end.search(html, match.end())
                if found is None:
                    break
                at = found.start()
                continue
        at = html.find("<", match.end())
    return work


def sanitizable(html: str) -> bool:
    """True when nh3 would sanitize `html` in linear time (see MAX_NESTING_WORK)."""
    return nesting_work(html) <= MAX_NESTING_WORK


def sanitize_html(html: str) -> str:
    """Return `html` (a rendered page body, an HTML fragment) with only the allow-list left.

    Removes every element not in `TAGS` (script and style with their content), every attribute
    not in `ATTRIBUTES` (all `on*` and `data-*` among them), URLs whose scheme is not in
    `URL_SCHEMES` (and the data: URLs and frames `_filter_attribute` refuses) and the style
    properties not in `STYLE_PROPERTIES`. Pure and deterministic: the same input and
    `SANITIZER_VERSION` give the same output. Follows the WHATWG HTML parsing rules (html5ever).
    HTML nested too deep for nh3 (see `sanitizable`) comes back escaped, as text.
    """
    return _clean(html) if sanitizable(html) else _as_text(html)


def _as_text(html: str) -> str:
    return f"<pre>{escape(html)}</pre>"


def _installed(function) -> bool:
    """True when `function` is our wrapper, or wraps it (another wrapper, e.g. the render cache,
    may sit outside ours: installing again must neither stack nor unwrap it)."""
    while function is not None:
        if getattr(function, "robot_sanitizer", False):
            return True
        function = getattr(function, "__wrapped__", None)
    return False


def _mark(wrapper, original) -> None:
    wrapper.robot_sanitizer = True
    wrapper.__wrapped__ = original


def _is_math(info: str, magic: str) -> bool:
    """True for the info strings Otterwiki's `block_code` treats as math (`math`, `math=`)."""
    info = info.replace(magic, "")
    return (info[:-1] if info.endswith("=") else info) == "math"


def _escape_math_blocks(renderer_class: type) -> None:
    """Escape the lines of a ```math block, which `OtterwikiMdRenderer.block_code` copies raw.

    MathJax reads the block's text content, so `&lt;` still typesets as `<`. The `$$` math
    plugin escapes its blocks already; this does the same for the fenced form.
    """
    import mistune
    from otterwiki.util import cursormagicword

    original = renderer_class.block_code
    if _installed(original):
        return

    def block_code(self, code, info=None):
        if info and _is_math(info, cursormagicword):
            code = mistune.escape(code, quote=False)
        return original(self, code, info)

    _mark(block_code, original)
    renderer_class.block_code = block_code


def _sanitize_markdown_output(renderer_class: type) -> None:
    """Sanitize the HTML of every `OtterwikiRenderer.markdown(...)` call, in any instance.

    Page view, preview, the custom 404 page, help, plugin help and the Include embedding all
    render through it; its table of contents carries heading text that the templates escape.
    HTML nested too deep for nh3 (see `sanitizable`) makes a budgeted render go over budget: the
    page shows its source (render.py); unbudgeted, the page body is the HTML escaped, as text.
    """
    original = renderer_class.markdown
    if _installed(original):
        return

    def markdown(self, text, cursor=None, **kwargs):
        html, toc, requirements = original(self, text, cursor, **kwargs)
        if sanitizable(html):
            return _clean(html), toc, requirements
        if budgeted():
            raise RenderOverBudget
        return _as_text(html), toc, requirements

    _mark(markdown, original)
    renderer_class.markdown = markdown


def _sanitize_menu_icons() -> None:
    """Pass the sidebar menu's icons (raw HTML from the admin's menu, shown `|safe`) too."""
    import otterwiki.sidebar

    original = otterwiki.sidebar.clean_html
    if _installed(original):
        return

    def clean_html(html, *args, **kwargs):
        return sanitize_html(original(html, *args, **kwargs))

    _mark(clean_html, original)
    otterwiki.sidebar.clean_html = clean_html


def sanitize_renderer(renderer: object) -> None:
    """Patch the class of `renderer` (an `otterwiki.renderer.OtterwikiRenderer`) and of its
    `md_renderer`: escape math blocks, sanitize the HTML of every `markdown(...)` call.

    Acts on the classes, so every instance is covered (the app's and the one help uses).
    Patching again changes nothing.
    """
    _escape_math_blocks(type(renderer.md_renderer))
    _sanitize_markdown_output(type(renderer))


def install_sanitizer(server: ModuleType) -> None:
    """Make every page body Otterwiki renders pass `sanitize_html` and escape math blocks
    (MathJax typesets with its safe extension: app.wiki.otterwiki.static_files).

    `server` is the booted `otterwiki.server` module. Installing again changes nothing.

    The other `|safe` outputs of Otterwiki's templates carry no unescaped user content:
    search titles and snippets (`html_escape` before the match spans), blame, source and diff
    lines (Pygments or `escape`), attachment icons and the danger alert (fixed strings), the
    diff's first cell (a revision git resolved), the user note (template text); the sidebar
    menu's icons are sanitized here. tests/wiki/test_sanitize_browser.py opens each of those
    views with hostile content.
    """
    sanitize_renderer(server.app_renderer)
    _sanitize_menu_icons()
