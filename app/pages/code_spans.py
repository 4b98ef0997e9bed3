"""Where a Markdown page's code is, and its raw HTML, as Otterwiki's renderer (mistune, with
Otterwiki's plugins) reads them (CommonMark, https://spec.commonmark.org/0.31.2/, sections
4.3-4.6, 6.1, 6.6), so that the links in code are left as text by the link map and a rename
(app.pages.links).

Code is what shows no link: fenced and indented code blocks, code spans, HTML comments, raw
HTML blocks of text (pre, script, style, textarea; `<?`, `<!X`, CDATA), math (`$$` blocks,
`$..$` and `$$..$$` in a paragraph) and the front matter Otterwiki shows as a <pre>. Raw HTML
is an HTML block (a `<div>` or a lone tag on its line, to the next blank line; a comment's
block to the end of the line that closes it): there Markdown makes no link, but HTML does.

The renderer's own parser keeps no source offsets, so the blocks are found here by lines, one
pass: a fence opens inside quotes (`>`) and list items, and is closed by a fence of its own
character at least as long indented at most three columns past its container, or by the
end of its container (a quote's marks, a list item's indentation), or runs to the end; an
indented block is lines indented four columns past their container, which mistune starts
even right after a paragraph's line; the inline code of a paragraph is read left to right,
the first to start winning (a code span, a closed comment, math). Where containers would end
a block early in ways not followed here, more is read as code than the renderer does.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections import deque

# A line's indentation and list marker, then a fence (the line's quote marks taken off).
_FENCE = re.compile(
    r"[ \t]*+(?:(?:[-*+]|[0-9]{1,9}[.)])[ \t]++)?(?P<fence>`{3,}+(?=[^`]*$)|~{3,}+)"
)
_CLOSING_FENCE = re.compile(r"[ \t]*+(?P<fence>`{3,}+|~{3,}+)[ \t]*+$")
# The start of an HTML block (CommonMark 4.6, as mistune reads it): a tag's name, a comment,
# a processing instruction, CDATA or a declaration.
_HTML_START = re.compile(
    r" {0,3}<(?:(?P<close>/)?(?P<tag>[A-Za-z][A-Za-z0-9-]*+)|(?P<comment>!--)|(?P<pi>\?)"
    r"|(?P<cdata>!\[CDATA\[)|(?P<decl>![A-Z]))"
)
# The rest of a line that is one whole open tag (its attributes) or close tag: an HTML block
# of kind 7, which cannot interrupt a paragraph.
_OPEN_TAG_END = re.compile(
    r"(?:\s++[A-Za-z_:][A-Za-z0-9_.:-]*+(?:\s*+=\s*+(?:[^\s\"'=<>`]++|'[^']*+'|\"[^\"]*+\"))?+)*+"
    r"[ \t]*+>[ \t]*+$"
)
_CLOSE_TAG_END = re.compile(r"[ \t]*+>[ \t]*+$")
_PRE_TAGS = ("pre", "script", "style", "textarea")
_BLOCK_TAGS = frozenset(
    "address article aside base basefont blockquote body caption center col colgroup dd "
    "details dialog dir div dl dt fieldset figcaption figure footer form frame frameset h1 h2 "
    "h3 h4 h5 h6 head header hr html iframe legend li link main menu menuitem meta nav "
    "noframes ol optgroup option p param section source summary table tbody td tfoot th "
    "thead title tr track ul".split()
)
# A list item's marker and the spaces after it (its content's column is where they end).
_LIST_ITEM = re.compile(r" {0,3}(?:[-*+]|[0-9]{1,9}[.)])(?: {1,4}|$)")
# A list item whose marker five spaces or more follow: its content's column is one past the
# marker, and the rest of the line is indented code (CommonMark 5.2, rule 2; mistune shows it
# so: review 36, a rename rewrote `-     [[T]]`).
_ITEM_OF_CODE = re.compile(r" {0,3}(?:[-*+]|[0-9]{1,9}[.)])(?P<gap> {5,})\S")
_THEMATIC_BREAK = re.compile(r" {0,3}(?:(?:-[ \t]*+){3,}+|(?:_[ \t]*+){3,}+|(?:\*[ \t]*+){3,}+)$")
_SETEXT_UNDERLINE = re.compile(r" {0,3}(?:=++|-++)[ \t]*+$")
_HEADING = re.compile(r"[ \t]{0,3}#{1,6}(?:[ \t]|$)")
# What ends a container's lazy line: a block that interrupts a paragraph.
_INTERRUPTS = re.compile(
    r" {0,3}(?:[-*+](?:[ \t]|$)|[0-9]{1,9}[.)](?:[ \t]|$)|>|#{1,6}(?:[ \t]|$)|`{3}|~{3}"
    r"|(?:\*[ \t]*+){3}|(?:_[ \t]*+){3}|<[A-Za-z/!?])"
)
_MATH_OPEN = re.compile(r"\s*+\$\$")
_FRONT_MATTER = re.compile(r"---(?:\r\n?|\n)")
_FRONT_MATTER_END = re.compile(r"(?:\r\n?|\n)---")
# [[Page]], [[Title|Page]] (or [[Page|Title]] in Otterwiki's LINKTITLE style); never spans a
# ']', nor holds '[[' (as Otterwiki's pattern, made linear: app/wiki/otterwiki/patterns.py).
# Each try stops at the next '[[', so a run of 30,000 '[' is one scan, not 30,000 (a text
# that may hold '[[' cost 17 s a call on such a page: twenty-third review). Possessive (`++`):
# what a try took is never given back. Otterwiki's wiki link is an inline rule: it wins over
# a code span or math that starts inside it (`[[`x`|Page]]` links, its title code).
WIKILINK_RE = re.compile(r"\[\[((?:[^\[\]\n]|\[(?!\[))++)\]\]")
# A bare URL as mistune's url plugin (which Otterwiki uses) reads one, `https?://[^\s<]+`
# ending in no punctuation, but ending at a `]` too: in a link's text (`[see http://x](T)`)
# the link is what mistune reads first, the URL its text.
_BARE_URL = re.compile(r"""https?://[^\s<\]]+[^<.,:;"')\]\s]""")
# What may start inline code in a paragraph: a run of backticks, a dollar, a comment, an
# autolink (CommonMark 6.5: `<scheme:...>`) or a bare URL, which show their URL, link to no
# page and hold no wiki link (review 35: a rename rewrote `<http://x/[[T]]>`); and a wiki
# link, which holds none.
_INLINE = re.compile(
    rf"`++|\$|<!--|<[A-Za-z][A-Za-z0-9+.-]{{1,31}}:[^\s<>]*+>|{_BARE_URL.pattern}|\[\["
)


def code_ranges(content: str) -> list[tuple[int, int]]:
    """The [start, end) offsets of `content`'s code (see the module), in order and without
    overlap: each block whole (its lines), each span with its marks."""
    return markup_ranges(content)[0]


def markup_ranges(content: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(code, raw HTML) of `content`: two lists of [start, end) offsets, each in order and
    without overlap (see the module). Code shows no link; raw HTML shows only HTML's links
    (`<a href>`), not Markdown's. One pass by lines."""
    reader = _Reader(content)
    reader.read()
    return _merged(reader.code), _merged(reader.raw)


class _Reader:
    """The state of markup_ranges' pass: what block is open, and where."""

    def __init__(self, content: str):
        self.content = content
        self.code: list[tuple[int, int]] = []
        self.raw: list[tuple[int, int]] = []
        self.paragraph: list[tuple[int, int]] = []  # the prose lines since the last break

    def read(self) -> None:
        content, code = self.content, self.code
        lines = content.splitlines(keepends=True)
        # the lines that may close a math block: ending in an unescaped `$$`
        math_ends = [n for n, line in enumerate(lines) if _ends_math(line)]
        fence: tuple[str, int] | None = None  # the open fence's character and length
        fence_quotes = fence_column = 0  # its container: quote marks, list item's column
        fence_lazy = True  # whether a line without its quote marks may go on in it
        block_start = 0
        list_indent: int | None = None  # the open list item's content column, if any
        after_blank = True
        indented_start: int | None = None
        raw_end: str | None = None  # the end of the open HTML block of text, if any
        comment_block = False  # whether that block is a comment's (raw HTML, not code)
        html_start: int | None = None  # the open HTML block that ends at a blank line
        math_end: int | None = None  # the line that closes the open math block
        prev_quotes = 0
        offset = 0
        front = _front_matter(content)
        if front:
            code.append((0, front))
        for number, line in enumerate(lines):
            start, offset = offset, offset + len(line)
            if start < front:
                continue
            text = line.rstrip("\r\n")
            if math_end is not None:
                if number == math_end:
                    code.append((block_start, offset))
                    math_end = None
                continue
            if raw_end is not None:
                if raw_end in text.lower():
                    self._raw_block(block_start, offset, comment_block)
                    raw_end = None
                continue
            blank = not text.strip()
            if html_start is not None:
                if not blank:
                    continue
                self._html_block(html_start, start)
                html_start = None
            quotes, body = _quoted(text)
            body = body.expandtabs(4)
            indent = len(body) - len(body.lstrip(" "))
            if fence is not None:
                ended = quotes < fence_quotes and (
                    blank or not fence_lazy or _INTERRUPTS.match(body) is not None
                )
                ended = ended or (
                    fence_column > 0
                    and not blank
                    and indent < fence_column
                    and (after_blank or _INTERRUPTS.match(body) is not None)
                )
                if not ended:
                    after_blank, prev_quotes = blank, quotes
                    closing = _CLOSING_FENCE.match(body)
                    # a closing fence at most three columns into its container
                    if closing and indent - min(indent, fence_column) <= 3:
                        if _closes(closing["fence"], fence):
                            code.append((block_start, offset))
                            fence = None
                    continue
                code.append((block_start, start))  # its container ended: so did the fence
                fence = None
            if indented_start is not None:
                if blank or indent >= 4:
                    prev_quotes = quotes
                    continue
                code.append((indented_start, start))
                indented_start = None
            if blank:
                self._inline()
                after_blank = True
                prev_quotes = quotes
                continue
            item = _LIST_ITEM.match(body)
            if list_indent is not None and after_blank and indent == 0 and not item:
                list_indent = None  # a block back at the left margin ends the list
            # mistune, the renderer, starts indented code even right after a paragraph's line
            if not item and indent >= (4 if list_indent is None else list_indent + 4):
                self._inline()
                indented_start = start
                prev_quotes = quotes
                continue
            after_blank = False
            first_in_quote, prev_quotes = quotes > prev_quotes, quotes
            if self.paragraph and _SETEXT_UNDERLINE.match(body) and not item:
                self._inline()  # a heading's underline: it ends the paragraph
                continue
            if _THEMATIC_BREAK.match(body):
                self._inline()  # before a list item: `- - -` is a break, not an item
                if list_indent is not None and indent < list_indent:
                    list_indent = None
                continue
            item_of_code = _ITEM_OF_CODE.match(body) if item else None
            if item_of_code:
                self._inline()
                list_indent = item_of_code.start("gap") + 1
                indented_start = start
                continue
            html = _HTML_START.match(body)
            if html:
                end = _html_end(html)
                tail = body[html.end() :]
                if end is not None:
                    self._inline()
                    block_start, raw_end, comment_block = start, end, bool(html["comment"])
                    if end in tail.lower():
                        self._raw_block(start, offset, comment_block)
                        raw_end = None
                    continue
                if (html["tag"].lower() in _BLOCK_TAGS) or (
                    not self.paragraph
                    and (_CLOSE_TAG_END if html["close"] else _OPEN_TAG_END).match(tail)
                ):
                    self._inline()
                    html_start = start
                    continue
            if _MATH_OPEN.match(body):
                close = _math_close(body, number, math_ends)
                if close is not None:
                    self._inline()
                    if close == number:
                        code.append((start, offset))
                    else:
                        block_start, math_end = start, close
                    continue
            opening = _FENCE.match(body)
            if opening:
                self._inline()
                marks = opening["fence"]
                fence, block_start = (marks[0], len(marks)), start
                fence_quotes, fence_lazy = quotes, not first_in_quote
                if item:
                    fence_column = item.end() if item.end() < len(body) else item.end() + 1
                elif list_indent is not None and indent >= list_indent:
                    fence_column = list_indent
                else:
                    fence_column = 0
                after_blank = False
                continue
            if item:
                list_indent = item.end() if item.end() < len(body) else item.end() + 1
            self.paragraph.append((start, offset))
            if _HEADING.match(body):
                self._inline()
        end = len(content)
        if fence is not None:
            code.append((block_start, end))  # never closed: code to the end
        elif math_end is not None:
            code.append((block_start, end))
        elif raw_end is not None:
            self._raw_block(block_start, end, comment_block)
        elif html_start is not None:
            self._html_block(html_start, end)
        elif indented_start is not None:
            code.append((indented_start, end))
        else:
            self._inline()

    def _raw_block(self, start: int, end: int, comment: bool) -> None:
        """An HTML block of text [start, end): a comment's is raw HTML, its comments code;
        any other (pre, script, `<?`...) shows no link."""
        if comment:
            self._html_block(start, end)
        else:
            self.code.append((start, end))

    def _html_block(self, start: int, end: int) -> None:
        """Raw HTML [start, end); its comments, closed, are code (one never closed the
        sanitizer shows as text)."""
        self.raw.append((start, end))
        content, at = self.content, self.content.find("<!--", start, end)
        while at >= 0:
            close = content.find("-->", at + 4, end)
            if close < 0:
                break
            self.code.append((at, close + 3))
            at = content.find("<!--", close + 3, end)

    def _inline(self) -> None:
        """Add the inline code of the paragraph made of `paragraph`'s lines, and empty it.
        Read left to right, the first to start wins: a run of n backticks opens a span
        closed by the next run of exactly n (one with no partner is text); `<!--` a comment
        closed as mistune closes one (no `--` in it; one never closed is text); `$$` math
        to the next `$$`, `$` math to the next `$` after no space (none after a space), an
        autolink to its `>`; a
        wiki link (WIKILINK_RE) that no odd run of backslashes escapes holds none of them."""
        paragraph, content = self.paragraph, self.content
        if not paragraph:
            return
        low, high = paragraph[0][0], paragraph[-1][1]
        paragraph.clear()
        tokens = []
        for match in _INLINE.finditer(content, low, high):
            s, e = match.span()
            if content[s] in "<[" or s == low or content[s - 1] != "\\":
                tokens.append((s, e))
            elif content[s] == "`" and e > s + 1:
                tokens.append((s + 1, e))  # an escaped backtick is text, the rest a run
        later: dict[int, deque[int]] = defaultdict(deque)  # run length: its runs, in order
        dollars = []  # the unescaped dollars' offsets
        for number, (s, e) in enumerate(tokens):
            if content[s] == "`":
                later[e - s].append(number)
            elif content[s] == "$":
                dollars.append(s)
        reached = low
        for number, (s, e) in enumerate(tokens):
            if s < reached:
                continue
            mark = content[s]
            end = None
            if mark == "[":
                link = WIKILINK_RE.match(content, s, high)
                if link and not odd_backslashes_before(content, s):
                    reached = link.end()
                continue
            if mark == "`":
                partners = later[e - s]
                while partners and partners[0] <= number:
                    partners.popleft()
                if partners:
                    end = tokens[partners.popleft()][1]
            elif mark == "<" and content[s + 1] == "!":
                end = _comment_end(content, s, high)
            elif mark == "$":
                end = _math_end(content, s, dollars, high)
            elif mark == "<" and odd_backslashes_before(content, s):  # `\<http://x>`: a URL
                bare = _BARE_URL.match(content, s + 1, high)
                end = bare.end() if bare else None
            else:
                end = e  # an autolink or a bare URL
            if end is not None:
                self.code.append((s, end))
                reached = end


def odd_backslashes_before(content: str, at: int) -> bool:
    """Whether an odd run of backslashes comes right before offset `at`."""
    run = at
    while run > 0 and content[run - 1] == "\\":
        run -= 1
    return (at - run) % 2 == 1


def _quoted(text: str) -> tuple[int, str]:
    """(how many quote marks open the line, the rest of it), as mistune strips them: at most
    three spaces before a `>`, and the one space after it (a tab after it counts as three
    columns, one of them the space). One pass: slices only at the end."""
    at, quotes, spaces, length = 0, 0, 0, len(text)
    while True:
        ahead = at
        while ahead < length and text[ahead] == " " and spaces + ahead - at <= 3:
            ahead += 1
        if ahead >= length or text[ahead] != ">" or spaces + ahead - at > 3:
            break
        quotes, at, spaces = quotes + 1, ahead + 1, 0
        run = at
        while run < length and run - at < 3 and text[run] == " ":
            run += 1
        if run < length and text[run] == "\t":
            at, spaces = run + 1, 3  # the tab with the spaces before it: three columns
        if spaces:
            spaces -= 1
        elif at < length and text[at] == " ":
            at += 1
    return quotes, " " * spaces + text[at:]


def _front_matter(content: str) -> int:
    """Where the front matter Otterwiki shows as a <pre> ends (0: there is none): `---` as
    the first line, to the next line that begins with `---`."""
    opening = _FRONT_MATTER.match(content)
    if not opening:
        return 0
    closing = _FRONT_MATTER_END.search(content, opening.end())
    return closing.end() if closing else 0


def _html_end(html: re.Match) -> str | None:
    """The text that ends an HTML block of text opened by `html`, or None (another kind)."""
    if html["comment"]:
        return "-->"
    if html["pi"]:
        return "?>"
    if html["cdata"]:
        return "]]>"
    if html["decl"]:
        return ">"
    if not html["close"] and html["tag"].lower() in _PRE_TAGS:
        return f"</{html['tag'].lower()}>"
    return None


def _ends_math(line: str) -> bool:
    """Whether `line` may close a math block: it ends in `$$` after no backslash."""
    text = line.rstrip()
    return text.endswith("$$") and not text.endswith("\\$$")


def _math_close(body: str, number: int, math_ends: list[int]) -> int | None:
    """The number of the line that closes a math block opened on line `number` (whose text
    after quote marks is `body`), or None: no `$$` closes it, so it is none."""
    rest = body.strip()
    if len(rest) >= 4 and _ends_math(rest):
        return number
    at = bisect.bisect_right(math_ends, number)
    return math_ends[at] if at < len(math_ends) else None


def _comment_end(content: str, at: int, high: int) -> int | None:
    """The end of the inline comment `<!--` at `at` opens, before `high`, or None: mistune
    takes one that holds no `--` and neither starts with `>` or `->` nor ends with `-`."""
    if content.startswith((">", "->"), at + 4):
        return None
    close = content.find("--", at + 4, high)
    if close <= at + 4 or not content.startswith("-->", close) or close + 3 > high:
        return None
    return close + 3


def _math_end(content: str, at: int, dollars: list[int], high: int) -> int | None:
    """The end of the math a `$` at `at` opens (Otterwiki's math plugin), or None: `$$` to
    the next `$$`, `$` before no space to the next `$` after no space."""
    number = bisect.bisect_left(dollars, at)
    following = dollars[number + 1] if number + 1 < len(dollars) else None
    if following is None:
        return None
    if following == at + 1:  # `$$`: display math, to the next dollar if it is `$$` too
        after = dollars[number + 2] if number + 2 < len(dollars) else None
        if after is not None and after > at + 2 and content.startswith("$$", after):
            return after + 2 if after + 2 <= high else None
        return None
    if content[at + 1].isspace() or content[following - 1].isspace():
        return None
    return following + 1


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`ranges` in order, those that overlap joined into one."""
    joined: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end))
        else:
            joined.append((start, end))
    return joined


def _closes(marks: str, fence: tuple[str, int]) -> bool:
    return marks[0] == fence[0] and len(marks) >= fence[1]
