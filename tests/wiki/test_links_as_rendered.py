"""The links the link map and a rename read (app/pages/links.py) are the links Otterwiki's own
renderer makes: for each page below, the pages its rendered HTML links to outside code are
those page_links finds, and a rename changes exactly those (twenty-seventh review: links in
double-backtick spans, indented code and fences in list items were rewritten; reference
definitions in quotes and list items, and raw HTML links, were missed)."""

from urllib.parse import unquote
from urllib.parse import urljoin

import pytest
from bs4 import BeautifulSoup

from app.pages.links import page_links
from app.pages.links import rewrite_links
from app.pages.paths import PathRules
from tests.wiki.test_sanitize import render  # noqa: F401 (fixtures)
from tests.wiki.test_sanitize import server  # noqa: F401
from tests.wiki.test_sanitize import wiki  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::bs4.MarkupResemblesLocatorWarning")
RULES = PathRules(retain_case=False)

PAGES = [
    "``code [[Target]] span`` and [[Target]]",
    "text\n\n    [[Target]]\n\nafter",
    "    [[Target]]\n",
    "- item\n\n  ```\n  [[Target]]\n  ```\n\n- [[Target]]",
    "~~~~\n[[Target]]\n~~~\n[[Target]]\n~~~~\n[x](/Target)",
    "```\n[[Target]]\n",
    "`one` [[Target]] `two`",
    "``` `inside` ```\n",
    "> quoted [r]\n>\n> [r]: /Target",
    "- item [b]\n\n    [b]: /Target",
    "[c]\n\n[c]:\n  /Target",
    "[R][] and [text][ r ]\n\n[r]: /Target",  # labels match without case or spacing
    "\n[unused]: /Target\n",  # a definition nothing uses makes no link
    "    [r]\n\n[r]: /Target\n",  # used only in code
    "[r]\n[r]: /Target\n",  # a definition cannot go on a paragraph
    '<a href="/Target">html</a> and <img src="/Target/pic.png">',
    "# [[Target]] heading\n    [[Target]] after a heading",
    "para\n    [[Target]] code, for mistune, right after a paragraph",
    "para\n\t[[Target]] a tab",
    "1. one\n\n    [[Target]] in the item",
    "- item\n    [[Target]] continued",
    "- item\n\n        [[Target]] code in the item",
    "> q\n>     [[Target]] code in the quote",
    "- a\n\nroot\n\n    [[Target]] code after the list",
    "- a\nlazy\n    [[Target]] still the item",
    "- a\n  - b\n\n        [[Target]] code in the inner item",
    "- a\n  - b\n\n      [[Target]] the inner item's text",
    "\\`[[Target]]\\`",
    "[t](Target) ![i](Target/x.png) [[Label|Target/Sub]]",
    # Twenty-eighth review: more code the renderer shows, and links it makes.
    "- ```\n  [[Target]]\n  ```\n",
    "<pre>\n[[Target]]\n</pre>\n\n[[Target]]",
    "<!-- [[Target]] --> text <!-- [x](/Target)",
    "\\[[Target]] escaped",
    "[t](/Target 'single title')",
    "[t](/Target (paren title))",
    '[t](/Target "a\nb")',
    "[t\n](/Target)",
    '<a title="x>" href="/Target">t</a>',
    "[t91](/x)\n\n[t91]: /Target",  # a definition an inline link's text does not use
    "[t95]\n\n[t95]: </Target x>",  # a target in angle brackets may hold spaces
    "[t96]\n\n[t96]: </Target",  # and must close
    # Twenty-ninth review: code and images in a link's text, brackets nested in it.
    "[`code`](/Target) and [`x` y `z`](Target/Sub)",
    "[![badge](/Target/badge.png)](/Target)",
    "[a [b] c](/Target)",
    "`[b](/Target)` in code",
    # Thirtieth review: a `<!--` in code, or one an inline comment never closes, hid every
    # later link; an HTML block's comment runs to the end of the line that closes it.
    "An HTML comment starts with `<!--`.\n\nFor the setup see [[Target]].",
    "```html\n<!-- header\n```\n\n[[Target]]",
    "`<!--` [[Target]] `-->` [[Target/Sub]]",
    "Write <!-- to open a comment. See [[Target]].",
    "x <!-- open\n\n[[Target]] -->",
    "x <!-- a -- [[Target]] --> b",
    "x <!-- [[Target]] --> [[Target/Sub]]",
    "   <!-- block\n[[Target]] --> [[Target/Sub]]\n[[Target/Two]]",
    '<!-- a --> <a href="/Target">x</a>',
    # Thematic breaks are no list items, closing fences indent at most three columns.
    "- - -\n    [[Target]]",
    "- item\n\n* * *\n    [[Target]]",
    '* * *\n    echo "[[Target]]"',
    "```\nx\n    ```\n[[Target]]",
    # Front matter, math and raw HTML blocks show no Markdown link.
    '---\nsee: "[[Target]]"\n---\n',
    "---\ntitle: x\n---\n[[Target]]",
    "$$\n[[Target]]\n$$\n\n[[Target/Sub]]",
    "text $$\n[[Target]]\n$$",
    "$x [[Target]] y$ and $ [[Target/Sub]] $",
    "[a $x$ b](/Target)",
    "<div>\n[[Target]]\n</div>\n\n[[Target/Sub]]",
    '<div>\n<a href="/Target">x</a> [[Target/Sub]]\n</div>',
    "<span>\n[[Target]]\n\n[[Target/Sub]]",
    "para\n<span>\n[[Target]]",
    "<?php [[Target]] ?>\n\n[[Target/Sub]]",
    # Backslashes: an escaped bracket is text, an escaped backslash is not an escape.
    "\\[t](/Target)",
    "\\![i](/Target)",
    "\\\\[[Target]]",
    "\\\\\\[[Target]]",
    "`\\`[[Target]]",
    # A fence in a quote or list item ends with its container; quote marks and tabs.
    "> ```\n> code\n\nafter: [[Target]]",
    "- ```\n  code\n\nafter: [[Target]]",
    "- ```\n  code\n- [[Target]]",
    "- ```\n  code\nlazy [[Target]]\n\n[[Target/Sub]]",
    "> p\n> ```\n> code\nlazy [[Target]]\n\n[[Target/Sub]]",
    ">\t[[Target]]",
    "> \t[[Target]]",
    ">\t\t[[Target]]",
    # A code span does not reach past a heading's underline.
    "`` a\n===\n[[Target]] ``",
    "``a\n---\n[[Target]] ``",
    # A wiki link wins over a code span or math starting inside it (review 34: a rename left
    # `[[`x`|Target]]` broken): its title may be code, and a backtick in it pairs with none.
    "[[`x`|Target]]",
    "[[$x$|Target]] and [[`a` b `c`|Target/Sub]]",
    "[[Target|`x`]]",
    "[[x|`]] text `[[Target]]`",
    "[[x|`y]] and `z` [[Target]]",
    "\\[[x|`y]] and `[[Target]]`",
    "\\\\[[x|`y]] and `[[Target]]`",
    "`a [[Target|`]] b",
    "``a [[Target|`]] b``",
    "$a [[Target|$]] b",
    # An autolink shows its URL and holds no wiki link (review 35: a rename rewrote it).
    "<http://example.com/[[Target]]> and [[Target/Sub]]",
    "<https://x.y/`a> b` [[Target]]",
    "<http:/x [[Target]]>",
    "a <mailto:x@y.z> [[Target]]",
    "\\<http://example.com/[[Target]]>",
    "see http://example.com/[[Target]] x and [[Target/Sub]]",
    "see www.example.com/[[Target]] x",
    "[see http://x.y/z](/Target) and <mailto:a@b.c>",
    "https://x.y/a`b` [[Target]]",
    # Review 36: what the renderer shows as code or text, and links it makes.
    "-     [[Target]]\n",
    "1.      [[Target]]\n\n[[Target/Sub]]",
    "para\n-     [[Target]]",
    "- a\n-     [[Target]]\n  more [[Target/Sub]]",
    "-      [[Target]]\n      more\n\n[[Target/Sub]]",
    "[t](&#x2F;Target) and [u](&#47;Target/Sub) [v](Target&amp;x)",
    '<a href="&#x2F;Target">x</a>',
    "[r]\n\n[r]: &#x2F;Target",
]


def _rendered_targets(html: str) -> set[str]:
    """The wiki pages the HTML's links outside code name, as page paths in lower case."""
    soup = BeautifulSoup(html, "html.parser")
    found = set()
    for anchor in soup.find_all("a", href=True):
        if anchor.find_parent(["code", "pre"]) is not None:
            continue
        href = urljoin("http://wiki.localhost/linker", anchor["href"])
        if not href.startswith("http://wiki.localhost/") or "#" in anchor["href"][:1]:
            continue
        path = unquote(href.removeprefix("http://wiki.localhost/")).split("#")[0]
        if path and "." not in path.rsplit("/", 1)[-1]:
            found.add(path.lower())
    return found


@pytest.mark.parametrize("content", PAGES)
def test_the_links_read_are_the_links_rendered(render, content):  # noqa: F811
    found = {page.lower() for page in page_links(RULES, "linker", content).pages}
    assert found == _rendered_targets(render(content))
    rewritten = rewrite_links(RULES, "linker", content, "Target", "Moved")
    assert (rewritten != content) == any(
        p == "target" or p.startswith("target/") for p in found
    ) or "target/pic.png" in content.lower()
    assert not {p for p in page_links(RULES, "linker", rewritten).pages if p.lower() == "target"}
