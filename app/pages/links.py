"""Links between pages: find the pages a markdown page links to, and rewrite links on a rename."""

from __future__ import annotations

import functools
import posixpath
import re
import unicodedata
from collections.abc import Callable
from urllib.parse import quote
from urllib.parse import unquote

from app.core.errors import BadRequest
from app.pages.paths import PathRules

# [[Page]], [[Title|Page]] (or [[Page|Title]] in Otterwiki's LINKTITLE style); never spans a
# ']', nor holds '[[' (as Otterwiki's pattern, made linear: app/wiki/otterwiki/patterns.py).
# Each try stops at the next '[[', so a run of 30,000 '[' is one scan, not 30,000 (a text
# that may hold '[[' cost 17 s a call on such a page: twenty-third review). Possessive (`++`):
# what a try took is never given back.
WIKILINK_RE = re.compile(r"\[\[((?:[^\[\]\n]|\[(?!\[))++)\]\]")
# [text](target "title") and ![alt](target): group 1 is "!" for images. Neither the text nor
# the target holds '[' (a try stops at the next one, for the same reason): in `[a [b](c)` the
# link is `[b](c)`, to the same target, and `[x](` repeated is read once. A target may hold
# balanced parentheses one deep, as CommonMark's (and the renderer's): `[t](Sev(en))` links
# to `Sev(en)`, not `Sev(en`.
MARKDOWN_LINK_RE = re.compile(
    r"(!?)\[([^\[\]\n]*+)\]\(\s*<?((?:[^()\s>\[]|\([^()\s>\[]*+\))++)>?"
    r"((?:\s+\"[^\"\n]*\")?\s*)\)"
)
_FENCE_RE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN_RE = re.compile(r"`[^`\n]*`")
_SCHEME_RE = re.compile(r"\A[a-zA-Z][a-zA-Z0-9+.-]*:")
# Distinct link texts of one page that outgoing_links follows; a page with more is unusual
# (each costs a name check), and the rest are not reported.
MAX_LINK_TARGETS = 10_000


def _linktitle_style(wikilink_style: str) -> bool:
    return wikilink_style.upper().replace("_", "").strip() in ("LINKTITLE", "PAGENAMETITLE")


def _split_wikilink(inner: str, linktitle: bool) -> tuple[str, str | None, bool]:
    """Return (link, title, link_is_left) of a wiki link's inner text."""
    if "|" not in inner:
        return inner, None, True
    left, right = inner.split("|", 1)
    return (left, right, True) if linktitle else (right, left, False)


def _without_code(content: str) -> str:
    return _CODE_SPAN_RE.sub("", _FENCE_RE.sub("", content))


def _page_target(rules: PathRules, raw: str, base_dir: str) -> str | None:
    """Return the clean page path a link target names, or None if it is not a wiki page."""
    target = raw.split("#", 1)[0].split("?", 1)[0].strip()
    if not target or _SCHEME_RE.match(target) or target.startswith("//"):
        return None
    target = unquote(target)
    if target.startswith("/"):
        target = target.lstrip("/")
    else:
        target = posixpath.normpath(posixpath.join(base_dir, target))
        if target.startswith(".."):
            return None
    last = target.rsplit("/", 1)[-1]
    if "." in last.removesuffix(".md"):
        return None  # an attachment such as /Page/diagram.png
    try:
        return rules.clean(target)
    except BadRequest:
        return None


def outgoing_links(
    rules: PathRules, path: str, content: str, wikilink_style: str = ""
) -> list[str]:
    """Return the page paths (canonical, deduplicated, in order) that a page's content links to."""
    base_dir = posixpath.dirname(path)
    linktitle = _linktitle_style(wikilink_style)
    text = _without_code(content)
    # Each distinct link text is resolved once: a page of 80,000 links to one page resolved
    # each, and /links and /orphans of a 24 MB wiki ran past the worker timeout (twenty-
    # fourth review). At most MAX_LINK_TARGETS distinct ones a page are followed.
    raws: dict[str, None] = {}
    for match in WIKILINK_RE.finditer(text):
        link, _, _ = _split_wikilink(match.group(1), linktitle)
        raws.setdefault("/" + link.strip().lstrip("/"))
        if len(raws) >= MAX_LINK_TARGETS:
            break
    for match in MARKDOWN_LINK_RE.finditer(text):
        if len(raws) >= MAX_LINK_TARGETS:
            break
        if not match.group(1):
            raws.setdefault(match.group(3))
    seen: dict[str, str] = {}
    for raw in raws:
        target = _page_target(rules, raw, base_dir)
        if target is not None:
            canonical = rules.page_path(rules.filename(target))
            seen.setdefault(canonical, canonical)
    return list(seen)


def rewrite_links(
    rules: PathRules,
    path: str,
    content: str,
    old: str,
    new: str,
    wikilink_style: str = "",
) -> str:
    """Return page `path`'s `content` with links to page `old` (and its files) aimed at `new`."""
    if not _may_link_to(path, content, old):
        return content
    base_dir = posixpath.dirname(path)
    linktitle = _linktitle_style(wikilink_style)
    old_file = rules.filename(old)
    old_dir = rules.attachment_dir(old) + "/"

    @functools.cache  # once per distinct link text (see outgoing_links)
    def points_at_old(raw: str) -> bool:
        target = _page_target(rules, raw, base_dir)
        return target is not None and rules.filename(target) == old_file

    def wikilink(match: re.Match) -> str:
        link, title, link_is_left = _split_wikilink(match.group(1), linktitle)
        if not points_at_old("/" + link.strip().lstrip("/")):
            return match.group(0)
        anchor = "#" + link.split("#", 1)[1] if "#" in link else ""
        lead = "/" if link.strip().startswith("/") else ""
        new_link = lead + new + anchor
        if title is None:
            return f"[[{new_link}]]"
        return f"[[{new_link}|{title}]]" if link_is_left else f"[[{title}|{new_link}]]"

    def mdlink(match: re.Match) -> str:
        bang, text, target, tail = match.groups()
        new_target = _rewrite_target(rules, target, old_dir, new, points_at_old)
        if new_target is None:
            return match.group(0)
        return f"{bang}[{text}]({new_target}{tail})"

    return MARKDOWN_LINK_RE.sub(mdlink, WIKILINK_RE.sub(wikilink, content))


def _may_link_to(path: str, content: str, old: str) -> bool:
    """Whether page `path`'s `content` may link to page `old` or its files: a cheap test that
    lets a rename skip the pages that cannot, without resolving each link (a wiki full of
    distinct links was slow to rename in: twenty-fourth review).

    A link names a page by its last segment, which is in the link's own text (percent-decoded
    and NFKC-normalised as `_page_target` reads it, in any case) unless the text is dot
    segments alone (`..` names the linking page's folder), whose names are in `path`.
    """
    name = folded(old.rsplit("/", 1)[-1])
    return name in folded(path) or name in folded(unquote(content))


def folded(text: str) -> str:
    """`text` NFKC-normalised and case-folded: as a link's text may name a page."""
    return unicodedata.normalize("NFKC", text).casefold()


def _rewrite_target(
    rules: PathRules, target: str, old_dir: str, new: str, points_at_old: Callable[[str], bool]
) -> str | None:
    rest = ""
    for sep in ("#", "?"):
        if sep in target:
            target, tail = target.split(sep, 1)
            rest = sep + tail + rest
    decoded = unquote(target)
    if decoded.startswith("/"):
        on_disk = decoded if rules.retain_case else decoded.lower()
        if on_disk.startswith("/" + old_dir):
            # a file attached to the renamed page: its folder moved with it
            return quote("/" + new + "/" + decoded[len(old_dir) + 1 :], safe="/") + rest
    if points_at_old(target):
        return quote("/" + new, safe="/") + rest
    return None
