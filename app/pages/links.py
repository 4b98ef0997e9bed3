"""Links between pages: find what a Markdown page links to, where Otterwiki's renderer makes links
(never in code: app.pages.code_spans), and rewrite them when a page is renamed."""

from __future__ import annotations

import bisect
import functools
import html
import posixpath
import re
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote
from urllib.parse import unquote

from app.core.errors import BadRequest
from app.core.errors import PayloadTooLarge
from app.pages.code_spans import WIKILINK_RE
from app.pages.code_spans import markup_ranges
from app.pages.code_spans import odd_backslashes_before
from app.pages.paths import MAX_CONTENT_BYTES
from app.pages.paths import PathRules

# Wiki links (app.pages.code_spans.WIKILINK_RE): one after an odd run of backslashes is text
# (`\[[x]]`, but `\\[[x]]` links): _links_in counts them, as a lookbehind cannot.
# [text](target "title") and ![alt](target): group 1 is "!" for images; the text may hold
# escaped characters (`[a\]b](t)`), as CommonMark's does, but for '['. Neither the text nor
# the target holds '[' (a try stops at the next one, for the same reason): in `[a [b](c)` the
# link is `[b](c)`, to the same target, and `[x](` repeated is read once. A target may hold
# balanced parentheses one deep, as CommonMark's (and the renderer's): `[t](Sev(en))` links
# to `Sev(en)`, not `Sev(en`. In angle brackets a target may hold spaces and parentheses,
# not a line's end (`[t](<Target Page>)` links to `Target Page`: review 33).
MARKDOWN_LINK_RE = re.compile(
    r"(!?)\[((?:[^\[\]\\]|\\[^\[]|\[(?:[^\[\]\\]|\\[^\[])*+\])*+)\]\(\s*(?P<open><)?"
    r"(?P<target>(?(open)[^\n<>\[]*+|(?!<)(?:[^()\s>\[]|\([^()\s>\[]*+\))++))(?(open)>)"
    r"((?:\s+(?:\"[^\"]*+\"|'[^']*+'|\([^()]*+\)))?\s*)\)"
)
# A link reference definition, `[label]: target "title"` (CommonMark 4.7), which `[text][label]`
# and `[label]` use, at a line's start after any block quote marks, indentation or list
# marker, its target on the same line or the next (in angle brackets it may hold spaces, and
# must close); not a footnote's `[^note]:`.
REFERENCE_RE = re.compile(
    r"^(?:[ \t]*+>)*+[ \t]*+(?:(?:[-*+]|[0-9]{1,9}[.)])[ \t]++)?\[(?!\^)(?P<label>[^\[\]\n]++)\]:"
    r"[ \t]*+(?:\n(?:[ \t]*+>)*+[ \t]*+)?"
    r"(?P<open><)?(?P<target>(?(open)[^\n<>]++|[^\s<>]++))(?(open)>)",
    re.MULTILINE,
)
# A bracketed text that may use a definition's label: `[label]`, `[text][label]`, `[label][]`;
# not a definition itself, nor an inline link's text (`[label](target)`).
_LABEL_USE = re.compile(r"\[([^\[\]\n]++)\](?![:(])")
# Raw HTML's links and images, which the sanitizer keeps: `<a href="/P">`, `<img src=...>`;
# a quoted attribute before it may hold '>' (`<a title="x>" href=...>`).
HTML_LINK_RE = re.compile(
    r"<(?P<tag>a|img)\b(?:[^<>\"']|\"[^\"]*+\"|'[^']*+')*?\s(?:href|src)[ \t\n]*=[ \t\n]*"
    r"(?P<quote>[\"']?)(?P<target>[^\s\"'<>`=]++)(?P=quote)",
    re.IGNORECASE,
)
# What a wiki link's page name cannot hold: its end, its title's bar, its anchor's mark, and
# a percent sign (a wiki link's name is percent-decoded: `[[Per%25cent]]` is `Per%cent`).
_NOT_IN_WIKILINKS = ("]", "|", "#", "[[", "%")
_SCHEME_RE = re.compile(r"\A[a-zA-Z][a-zA-Z0-9+.-]*:")
# Distinct link texts of one page that page_links follows: more than a page of
# MAX_CONTENT_BYTES can hold (the shortest, `[](a)`, takes five characters), so every link of
# a page is reported (a page of 10,000 distinct links then one more silently lost the last:
# thirty-first review). Each costs one name check: a whole page of them is read in about 3 s.
MAX_LINK_TARGETS = MAX_CONTENT_BYTES // 5 + 1


def _linktitle_style(wikilink_style: str) -> bool:
    return wikilink_style.upper().replace("_", "").strip() in ("LINKTITLE", "PAGENAMETITLE")


def _split_wikilink(inner: str, linktitle: bool) -> tuple[str, str | None, bool]:
    """Return (link, title, link_is_left) of a wiki link's inner text."""
    if "|" not in inner:
        return inner, None, True
    left, right = inner.split("|", 1)
    return (left, right, True) if linktitle else (right, left, False)


def _links_in(content: str) -> Iterator[re.Match]:
    """Yield every link's match the renderer would make a link of, in order of their starts:
    wiki links (WIKILINK_RE), inline links and images (MARKDOWN_LINK_RE; and the images or
    links in an inline link's text, as a badge's `[![alt](img)](target)`), the reference
    definitions some text uses (REFERENCE_RE; one no `[label]` uses makes no link, nor one
    that cannot begin a block) and raw HTML's (HTML_LINK_RE). Never one that starts, ends or
    names its target in code, or holds a code block (app.pages.code_spans); a code span in a
    link's text is its text. Markdown's links are none in raw HTML blocks, nor after an odd
    run of backslashes (`\\[t](x)` is text). Of matches that overlap, the first is kept."""
    code, raw = markup_ranges(content)
    starts = [start for start, _ in code]
    raw_starts = [start for start, _ in raw]

    def clear(match: re.Match) -> bool:
        """Whether no code is where `match` would be a link (nor raw HTML, for Markdown's)."""
        low, high = match.span()
        at = bisect.bisect_right(starts, low) - 1
        if at >= 0 and code[at][1] > low:
            return False  # starts in code
        if match.re is not HTML_LINK_RE:
            inside = bisect.bisect_right(raw_starts, low) - 1
            if inside >= 0 and raw[inside][1] > low:
                return False  # Markdown in raw HTML is text
        target = match.span("target") if "target" in match.re.groupindex else (low, high)
        at += 1
        while at < len(code) and code[at][0] < high:
            start, end = code[at]
            at += 1
            # a span, math, a comment, or a URL (`[see http://x](T)` links to T)
            inline = content.endswith(("`", "$", "-->"), start, end) or content.startswith(
                ("http", "<http"), start
            )
            if end > high or not inline or start < target[1] and end > target[0]:
                return False  # ends in code, holds a block, or its target is code
        return True

    def escaped(at: int) -> bool:
        """Whether an odd run of backslashes, outside code, comes right before `at`."""
        if not odd_backslashes_before(content, at):
            return False
        inside = bisect.bisect_right(starts, at - 1) - 1
        return not (inside >= 0 and code[inside][1] > at - 1)

    def unescaped(pattern: re.Pattern) -> Iterator[re.Match]:
        """`pattern`'s matches in `content` that no backslash escapes; after an escaped one
        the search goes on from its second character (`\\![a](b)` holds the link `[a](b)`)."""
        match = pattern.search(content)
        while match:
            if escaped(match.start()):
                match = pattern.search(content, match.start() + 1)
            else:
                yield match
                match = pattern.search(content, match.end())

    found = sorted(
        (
            match
            for pattern in (WIKILINK_RE, MARKDOWN_LINK_RE, REFERENCE_RE, HTML_LINK_RE)
            for match in (
                unescaped(pattern)
                if pattern in (WIKILINK_RE, MARKDOWN_LINK_RE)
                else pattern.finditer(content)
            )
            if clear(match)
        ),
        key=lambda match: match.start(),
    )
    used = {_label(use[1]) for use in _LABEL_USE.finditer(content) if clear(use)}
    reached = 0
    for match in found:
        if match.start() < reached:
            continue
        reached = match.end()
        if match.re is REFERENCE_RE and not (
            _label(match["label"]) in used and _begins_block(content, match.start())
        ):
            continue
        yield match
        if match.re is MARKDOWN_LINK_RE:
            inner = MARKDOWN_LINK_RE.finditer(content, match.start(2), match.end(2))
            yield from (link for link in inner if clear(link))


def _begins_block(content: str, at: int) -> bool:
    """Whether the line at offset `at` may begin a definition: a definition cannot go on a
    paragraph, so the line before is none, blank (but for quote marks), or a definition."""
    if at == 0:
        return True
    before = content.rfind("\n", 0, at - 1) + 1
    line = content[before : at - 1]
    return not line.replace(">", "").strip() or REFERENCE_RE.match(line) is not None


def _label(text: str) -> str:
    """A reference label as CommonMark matches it: case-folded, its whitespace one space."""
    return " ".join(text.split()).casefold()


def _link_text(match: re.Match, linktitle: bool) -> str:
    """What a link of _links_in names: a wiki link's page as an absolute path, else the
    target (_target_text)."""
    if match.re is WIKILINK_RE:
        link, _, _ = _split_wikilink(match.group(1), linktitle)
        return "/" + link.strip().lstrip("/")
    return _target_text(match)


def _target_text(match: re.Match) -> str:
    """The target of a Markdown, definition or HTML link with its character references
    decoded, as the renderer and a browser read it (`&#x2F;Page` is `/Page`: review 36); a
    wiki link's are not (Otterwiki links `[[&#x2F;P]]` to `/&#x2F;P`)."""
    return html.unescape(match.group("target"))


def _resolve(raw: str, base_dir: str) -> str | None:
    """The wiki path (no leading '/', not yet cleaned) a link text names from a page in
    `base_dir`, or None: a link to another site or scheme."""
    target = raw.split("#", 1)[0].split("?", 1)[0].strip()
    if not target or _SCHEME_RE.match(target) or target.startswith("//"):
        return None
    target = unquote(target)
    # Dot segments go, in an absolute target too, as a browser removes them before it asks
    # (`/Tgt/../Tgt` is Tgt: review 32); a '..' past the root stays at the root (RFC 3986
    # 5.2.4). An absolute target ignores `base_dir` (posixpath.join starts again at it).
    target = posixpath.normpath(posixpath.join("/", base_dir, target))
    return target.lstrip("/")


def _is_relative(raw: str) -> bool:
    """Whether a link text names a path from the linking page's folder (`Sub`, `../P`), not
    from the root (`/P`), another site or scheme, or a place in the page itself (`#part`)."""
    text = raw.strip()
    return not (text.startswith(("/", "#", "?")) or _SCHEME_RE.match(text))


def _clean_page(rules: PathRules, target: str) -> str | None:
    """The clean page path of a resolved link target, or None: an attachment such as
    `Page/diagram.png`, or no valid page name."""
    last = target.rsplit("/", 1)[-1]
    if "." in last.removesuffix(".md"):
        return None
    try:
        return rules.clean(target)
    except BadRequest:
        return None


def _page_target(rules: PathRules, raw: str, base_dir: str) -> str | None:
    """The clean page path a link text names from a page in `base_dir`, or None."""
    target = _resolve(raw, base_dir)
    return None if target is None else _clean_page(rules, target)


def _is_image(match: re.Match) -> bool:
    """Whether a match of _links_in is an image (`![alt](target)`)."""
    if match.re is HTML_LINK_RE:
        return match.group("tag").lower() == "img"
    return match.re is MARKDOWN_LINK_RE and match.group(1) == "!"


def _file_folder(rules: PathRules, target: str) -> str | None:
    """The folder (as on disk) of a resolved link target that names a file (one that
    `_clean_page` finds no page in), or None for a file at the root or a bad folder name."""
    if "/" not in target:
        return None
    try:
        return rules.attachment_dir(rules.clean(target.rsplit("/", 1)[0]))
    except BadRequest:
        return None


@dataclass(frozen=True)
class PageLinks:
    """What one page links to: `pages` the page paths (canonical, in order, no repeats),
    `folders` the folders (as on disk) of the files it links to or shows, and `relative`
    whether any link text is relative (then what it names depends on the page's folder)."""

    pages: tuple[str, ...]
    folders: tuple[str, ...]
    relative: bool


def page_links(rules: PathRules, path: str, content: str, wikilink_style: str = "") -> PageLinks:
    """Return what page `path`'s `content` links to (PageLinks): wiki links, inline links,
    reference definitions, and the files of images; never what is inside code.

    Each distinct link text is resolved once: a page of 80,000 links to one page resolved
    each, and /links and /orphans of a 24 MB wiki ran past the worker timeout (twenty-fourth
    review). Raises PayloadTooLarge past MAX_LINK_TARGETS distinct texts, which no page of
    MAX_CONTENT_BYTES holds: none is left out silently.
    """
    base_dir = posixpath.dirname(path)
    linktitle = _linktitle_style(wikilink_style)
    raws: dict[str, bool] = {}  # link text: whether it is only ever an image's
    for match in _links_in(content):
        raw = _link_text(match, linktitle)
        raws[raw] = raws.get(raw, True) and _is_image(match)
        if len(raws) > MAX_LINK_TARGETS:  # only a text past MAX_CONTENT_BYTES: say so
            raise PayloadTooLarge(f"a page may link to at most {MAX_LINK_TARGETS} targets")
    pages: dict[str, None] = {}
    folders: dict[str, None] = {}
    relative = False
    for raw, image in raws.items():
        # what a relative text names depends on the folder, even where it names nothing
        relative = relative or _is_relative(raw)
        target = _resolve(raw, base_dir)
        if target is None:
            continue
        page = _clean_page(rules, target)
        if page is not None:
            if not image:  # an image of a page's name shows nothing: no link
                pages.setdefault(rules.page_path(rules.filename(page)))
        elif (folder := _file_folder(rules, target)) is not None:
            folders.setdefault(folder)
    return PageLinks(tuple(pages), tuple(folders), relative)


def rewrite_links(
    rules: PathRules,
    path: str,
    content: str,
    old: str,
    new: str,
    wikilink_style: str = "",
) -> str:
    """Return page `path`'s `content` with its links to page `old`, its subpages and its files
    aimed at `new` and below it: wiki links, inline links and images, reference definitions;
    never inside code. A link to the page itself becomes `new` (absolute for a Markdown
    link), one below it keeps its own spelling of the part below. A target with dot segments
    (`/Old/../Old`) is resolved first, as a browser does, and rewritten whole (`/New`).
    `![i](/Old/pic.png =100x)` is text, as Otterwiki renders it (it reads no image size).

    `path` is a page path without `.md` (where relative links start from); `old` and `new`
    clean page paths (PathRules.clean). Raises nothing of its own. For a page that itself
    moves in the rename, see move_page_text."""
    return move_page_text(rules, path, path, content, old, new, wikilink_style)


def move_page_text(
    rules: PathRules,
    old_path: str,
    new_path: str,
    content: str,
    old: str,
    new: str,
    wikilink_style: str = "",
) -> str:
    """Return the `content` of a page that moves from `old_path` to `new_path` (page paths
    without `.md`) while page `old` is renamed to `new` (clean page paths): the page itself
    or one of its subpages. Its links then name, from `new_path`, what they named from
    `old_path`, moved as rewrite_links moves them (a target that was `old` or below it is
    now `new` or below it).

    Each link is resolved from `old_path`, as it was written. A link that, written as it
    is, still names that (possibly moved) target from `new_path` stays byte for byte: an
    absolute one (`/Other`, and every wiki link, which Otterwiki reads from the root) to
    a page that does not move, a relative one to a sibling that moves with it (`[s](Sib)`
    in a subpage). Any other has its target written as rewrite_links writes one: absolute
    from the root, percent-encoded (`../Other%20Page` from `Mv` moved to `Deep/Er/Mv2`
    becomes `/Other%20Page`), its `#fragment` and `?query` kept; a wiki link stays a wiki
    link. Absolute, not a new relative spelling: the same rule as rewrite_links, and a
    later move of this page leaves it right. Images of a page's name (no link, as
    page_links reads them) and code are left as written.

    The page's `page_links(rules, new_path, result)` are then its `page_links(rules,
    old_path, content)` moved. A rename needs it for each moved page whose links are
    relative (PageLinks.relative) or name `old`; rewrite_links for every other page that
    names `old`. Raises nothing of its own; with `old_path == new_path` it is rewrite_links."""
    base_dir, new_base = posixpath.dirname(old_path), posixpath.dirname(new_path)
    linktitle = _linktitle_style(wikilink_style)
    old_file, old_dir = rules.filename(old), rules.attachment_dir(old)
    depth = old.count("/") + 1

    @functools.cache  # once per distinct link text (see page_links)
    def moved(raw: str) -> str | None:
        """The path (no leading '/') a link to `raw` names after the rename, or None."""
        target = _resolve(raw, base_dir)
        if target is None:
            return None
        segments = target.split("/")
        if len(segments) < depth:
            return None
        if len(segments) == depth:
            page = _clean_page(rules, target)
            return new if page is not None and rules.filename(page) == old_file else None
        try:
            head = rules.attachment_dir(rules.clean("/".join(segments[:depth])))
        except BadRequest:
            return None
        return "/".join([new, *segments[depth:]]) if head == old_dir else None

    @functools.cache
    def retarget(raw: str) -> str | None:
        """A Markdown, definition or HTML link's new target text, or None: it stays."""
        if new_path == old_path or not _is_relative(raw):
            return _moved_target(raw, moved)  # it names from `new_path` what it did
        before = _resolve(raw, base_dir)
        if before is None:
            return None
        target = moved(raw) or before
        now = _resolve(raw, new_base)
        if now is not None and _target_key(rules, now) == _target_key(rules, target):
            return None
        return _absolute_target(raw, target)

    def wikilink(match: re.Match) -> str | None:
        link, title, link_is_left = _split_wikilink(match.group(1), linktitle)
        target = moved(_link_text(match, linktitle))
        if target is None:
            return None
        anchor = "#" + link.split("#", 1)[1] if "#" in link else ""
        # After a `[` of the text, `[[New]]` would be read from that `[` (`[[[New]]`: a link
        # to `[New`), where the old link's `[` kept it apart (`[[[[../Old]]`): a Markdown link.
        joins = content[match.start() - 1 : match.start()] == "[" and not target.startswith("[")
        if joins or any(mark in target for mark in _NOT_IN_WIKILINKS):
            # a wiki link cannot hold the new name (`[[Odd]Name]]` is text): a Markdown link
            label = target if title is None else title
            label = label.replace("&", "&amp;").replace("<", "&lt;").replace("\\", "\\\\")
            label = label.replace("]", "\\]").replace("[", "&#91;")
            return f"[{label}]({quote('/' + target, safe='/')}{quote(anchor, safe='#/')})"
        lead = "/" if link.strip().startswith("/") else ""
        new_link = lead + target + anchor
        if title is None:
            return f"[[{new_link}]]"
        return f"[[{new_link}|{title}]]" if link_is_left else f"[[{title}|{new_link}]]"

    edits = []  # (start, end, text): a wiki link whole, another link's target
    for match in _links_in(content):
        if match.re is WIKILINK_RE:
            replaced = wikilink(match)
            span = match.span()
        elif _is_image(match) and _page_target(rules, _target_text(match), base_dir):
            continue  # an image of a page's name is no link (page_links)
        else:
            replaced = retarget(_target_text(match))
            span = match.span("target")
        if replaced is not None:
            edits.append((*span, replaced))
    out, done = [], 0
    for start, end, replaced in sorted(edits):
        if start >= done:
            out += [content[done:start], replaced]
            done = end
    out.append(content[done:])
    return "".join(out)


def _target_key(rules: PathRules, target: str) -> str:
    """What a resolved link target names, alike for two spellings of one page or file: a
    page's file (`other page.md`), else a file's page folder (as on disk) and name."""
    page = _clean_page(rules, target)
    if page is not None:
        return rules.filename(page)
    folder, _, name = target.rpartition("/")
    if not folder:
        return target
    try:
        return rules.attachment_dir(rules.clean(folder)) + "/" + name
    except BadRequest:
        return target


def _moved_target(target: str, moved: Callable[[str], str | None]) -> str | None:
    """A Markdown link target aimed where `moved` says (absolute, percent-encoded, its
    `#fragment` or `?query` kept), or None when it does not move."""
    path = moved(target)
    return None if path is None else _absolute_target(target, path)


def _absolute_target(target: str, path: str) -> str:
    """Link text `target` aimed at wiki path `path` (no leading '/'): absolute and
    percent-encoded, its `#fragment` or `?query` kept as written."""
    rest = ""
    for sep in ("#", "?"):
        if sep in target:
            target, tail = target.split(sep, 1)
            rest = sep + tail + rest
    return quote("/" + path, safe="/") + rest
