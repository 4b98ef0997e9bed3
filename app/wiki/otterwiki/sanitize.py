"""Every page body Otterwiki renders passes an HTML sanitizer (nh3) before anyone sees it.

Otterwiki escapes most raw HTML itself, but not everywhere (a fenced block with the info string
`math` is copied into the page unescaped), and any future gap would be script in every visitor's
browser. So the rendered HTML goes through nh3 (the Ammonia sanitizer) with an allow-list of
exactly what Otterwiki's renderer and its embeddings produce, and the math block is escaped.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from types import ModuleType

import nh3
from bs4 import ParserRejectedMarkup
from markupsafe import escape

from app.wiki.otterwiki.budget import RenderOverBudget
from app.wiki.otterwiki.budget import RenderStalled
from app.wiki.otterwiki.budget import budgeted
from app.wiki.otterwiki.budget import uninterrupted

# Bump POLICY whenever the allow-list below (or what `sanitizable` refuses) changes: the render
# cache keys on SANITIZER_VERSION, so pages rendered under an older policy are rendered again.
# nh3's version is part of it too.
POLICY = "3"  # 3: growth bound; included pages sanitized with their page
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
    """
    if html.count("<") ** 2 <= limit:  # the sum is below (tags x depth), so below the limit
        return 0
    open_names: list[str] = []  # the open elements, outermost first
    work = 0
    closing = True  # whether end tags are still read as such
    at = html.find("<")
    while at >= 0:
        match = _MARKUP.match(html, at)
        if match is None or match[2] is None:  # a lone `<`, a comment or the like
            at = html.find("<", at + 1 if match is None else max(match.end(), at + 1))
            continue
        name = match[2].lower()
        if not match[3]:
            closing = False  # a tag left open: how the rest reads is not sure
        if match[1]:
            if closing and open_names and open_names[-1] == name:
                open_names.pop()
        elif name not in _VOID:
            work += len(open_names)
            if work > limit:
                break
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
    """False when `html` nests so deep that nh3 would spend more than about 0.1 s on it (see
    MAX_NESTING_WORK); True does not say it is cheap (see `surely_cheap`)."""
    return nesting_work(html) <= MAX_NESTING_WORK


# html5ever has more ways to spend time than nesting: it makes again, before each text or
# tag, every formatting element (b, i, em ...) still in its list of active formatting
# elements once a block, a list item or a table row closed it (WHATWG HTML 13.2.4.3), and
# 28-47 KB of such markup cost nh3 6-13 s of native code no budget stops (reviews 37 and 38:
# each model of the parser's modes left another spelling out). So a body that an upper
# bound of html5ever's work cannot call cheap is sanitized in a confined child
# (app.core.confined), killed after SANITIZE_SECONDS or past SANITIZE_MEMORY_BYTES more
# memory; its page then shows as escaped source. The bound, in MAX_NESTING_WORK's units:
# stack walks and the adoption agency's steps, 10 x tags squared; elements made again, at
# most the formatting start tags at each tag and text, RECONSTRUCT_WORK each (~3 us of nh3).
SANITIZE_SECONDS = 2.0
SANITIZE_MEMORY_BYTES = 256 * 1024 * 1024
RECONSTRUCT_WORK = 1000
_FORMATTING_TAG = re.compile(
    r"<(?:a|b|big|code|em|font|i|nobr|s|small|strike|strong|tt|u)(?:>|[\t\n\f\r /][^>]*)",
    re.IGNORECASE,
)
# A formatting tag counts once for each TAG_CHARS characters it has, at least once: html5ever
# copies its attributes each time it makes the element again (review 40: five `<b>` with
# 200 KB titles cost nh3 6.9 s and 845 MB in the worker). And a body longer than
# SURELY_CHEAP_CHARS is never surely cheap (100 MB of text cost nh3 1.5 s).
TAG_CHARS = 64
SURELY_CHEAP_CHARS = 4 * 1024 * 1024
_PIECE_CHARS = 1024 * 1024  # of the child's answer, one message each
# html5ever makes every formatting element still open again in each block after it: 25 KB of
# `<b>` and paragraphs came back as 23 MB of HTML (review 39), kept in the shared render cache
# and sent to every visitor. A body whose clean HTML is more than MAX_GROWTH times its own
# length plus GROWTH_FLOOR characters is shown as its source instead. Sanitizing only removes
# and closes, so a page's own HTML is far below it.
MAX_GROWTH = 4
GROWTH_FLOOR = 64 * 1024


def _longest_clean(html: str) -> int:
    """The most characters `html`'s clean HTML may have (see MAX_GROWTH). nh3 writes a
    no-break space as `&nbsp;` and a quote in an attribute as `&quot;`: each counts as six
    (review 40: a page of no-break spaces showed as source)."""
    entities = html.count("\xa0") + html.count('"') + html.count("'")
    return MAX_GROWTH * (len(html) + 5 * entities) + GROWTH_FLOOR


def surely_cheap(html: str) -> bool:
    """True when nh3 surely spends less than about 0.1 s on `html`, by the bound above."""
    tags = html.count("<")
    if len(html) > SURELY_CHEAP_CHARS or 10 * tags * tags > MAX_NESTING_WORK:
        return False
    formatting = sum(1 + len(tag) // TAG_CHARS for tag in _FORMATTING_TAG.findall(html))
    return 10 * tags * tags + 2 * (tags + 1) * formatting * RECONSTRUCT_WORK <= MAX_NESTING_WORK


def _clean_confined(html: str) -> str | None:
    """nh3's answer for `html` from a confined child, or None when it ran out of time or
    memory (or failed). Raises RenderStalled when it was stopped at its deadline having had
    little of the CPU (Ending.STARVED): a busy host's stop, no verdict on `html`."""
    from app.core.confined import Ending
    from app.core.confined import run_confined

    def produce():
        cleaned = _clean(html)
        if len(cleaned) > _longest_clean(html):
            yield None  # grown past its bound: not worth sending
            return
        for at in range(0, len(cleaned), _PIECE_CHARS):
            yield cleaned[at : at + _PIECE_CHARS]

    pieces: list[str | None] = []
    ending = run_confined(produce, pieces.append, SANITIZE_SECONDS, SANITIZE_MEMORY_BYTES)
    if ending is Ending.STARVED:
        raise RenderStalled
    if ending is not Ending.FINISHED or None in pieces:
        return None
    return "".join(pieces)


def sanitize_html(html: str) -> str:
    """Return `html` (a rendered page body, an HTML fragment) with only the allow-list left.

    Removes every element not in `TAGS` (script and style with their content), every attribute
    not in `ATTRIBUTES` (all `on*` and `data-*` among them), URLs whose scheme is not in
    `URL_SCHEMES` (and the data: URLs and frames `_filter_attribute` refuses) and the style
    properties not in `STYLE_PROPERTIES`. Pure and deterministic: the same input and
    `SANITIZER_VERSION` give the same output. Follows the WHATWG HTML parsing rules (html5ever).
    HTML nested too deep for nh3 (see `sanitizable`), or on which nh3 spends more than
    SANITIZE_SECONDS or SANITIZE_MEMORY_BYTES (in a child, unless `surely_cheap`), or whose
    clean HTML grows past MAX_GROWTH times its length (html5ever's remade formatting elements),
    comes back escaped, as text.
    """
    try:
        cleaned = _sanitized(html)
    except RenderStalled:
        cleaned = None
    return _as_text(html) if cleaned is None else cleaned


def _sanitized(html: str) -> str | None:
    """nh3's answer for `html`, or None when it would cost too much (see sanitize_html)."""
    if surely_cheap(html):
        cleaned = _clean(html)
        return cleaned if len(cleaned) <= _longest_clean(html) else None
    if not sanitizable(html):
        return None
    return _clean_confined(html)


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


_rendering = threading.local()  # depth 1 inside a markdown() call whose output is sanitized


def _sanitize_markdown_output(renderer_class: type) -> None:
    """Sanitize the HTML of every `OtterwikiRenderer.markdown(...)` call, in any instance.

    Page view, preview, the custom 404 page, help, plugin help and the Include embedding all
    render through it; its table of contents carries heading text that the templates escape.
    HTML too costly for nh3 (see `sanitize_html`) makes a budgeted render go over budget: the
    page shows its source (render.py); unbudgeted, the page body is the HTML escaped, as text.
    """
    original = renderer_class.markdown
    if _installed(original):
        return

    def markdown(self, text, cursor=None, **kwargs):
        if getattr(_rendering, "depth", 0):
            # A page an embedding (Include) renders inside this render: its HTML is part of
            # this render's, sanitized with it, once; each part in a confined child of its
            # own cost a view seconds of waiting per include (review 39).
            return original(self, text, cursor, **kwargs)
        _rendering.depth = 1
        try:
            html, toc, requirements = original(self, text, cursor, **kwargs)
        finally:
            _rendering.depth = 0
        try:
            cleaned = _sanitized(html)
        except RenderStalled:
            if budgeted():
                raise  # the render cache keeps its source view a short time only
            cleaned = None
        if cleaned is not None:
            return cleaned, toc, requirements
        if budgeted():
            raise RenderOverBudget
        return _as_text(html), toc, requirements

    _mark(markdown, original)
    renderer_class.markdown = markdown


MENU_ICONS_KEPT = 64  # sanitized menu icons a worker keeps (each under the form's 32 KB)


def _sanitize_menu_icons() -> None:
    """Pass the sidebar menu's icons (raw HTML from the admin's menu, shown `|safe`) too."""
    import otterwiki.sidebar

    original = otterwiki.sidebar.clean_html
    if _installed(original):
        return

    kept: OrderedDict[str, str] = OrderedDict()
    lock = threading.Lock()

    def clean_html(html, *args, **kwargs):
        # Built for every page view, outside the render cache (review 39: an icon nh3 needed a
        # confined child for cost 0.45 s of CPU on each view): kept per worker by content.
        key = repr((html, args, sorted(kwargs.items())))
        with lock:
            cleaned = kept.get(key)
        if cleaned is None:
            try:
                made = original(html, *args, **kwargs)
                cleaned = _sanitized(made)
            except ParserRejectedMarkup:  # Otterwiki's html.parser refused it (`<![a`)
                cleaned = str(escape(html))
            except RenderStalled:  # a busy host's stop: escaped this once, not kept
                return _as_text(made)
            if cleaned is None:
                cleaned = _as_text(made)
            with lock:
                kept[key] = cleaned
                while len(kept) > MENU_ICONS_KEPT:
                    kept.popitem(last=False)
        return cleaned

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
