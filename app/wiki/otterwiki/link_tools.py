"""Otterwiki's tools that read every page's links, answered from the wiki's link map instead.

Otterwiki 2.26.1 reads links with patterns of its own in two places: the rename's "Update
backlinks" (otterwiki.backlinks.rename_backlinks) and the housekeeping task "broken WikiLinks"
(otterwiki.tools.handle_housekeeping_brokenwikilinks). Both read every page on every call
(a rename of a page nothing links to took 5-7 s on a wiki of 6,000 pages), both rewrote or
counted links inside code (a rename from the UI changed `[[T]]` in a fenced block, where the
page API's rename did not), and the housekeeping pattern backtracks: 40 KB of `[[` kept a
worker 64 s, until it was killed (thirty-first review). Here both use what the page API uses:
app.pages.links to read and rewrite links (never in code, in linear time) and the link map
(links.db) to know which pages link where, each page text read once.
"""

from __future__ import annotations

import time

# Pages, wanted pages and names in each of their lists that the broken-links task shows: it
# listed every pair, 44 MB of HTML for 8 pages of distinct missing links (thirty-second review).
SHOWN = 100


def install_link_map_tools() -> None:
    """Make Otterwiki's rename update links with app.pages (Pages.update_links_after_move)
    and its broken-links housekeeping answer from app.pages.search.broken_links. Installing
    twice changes nothing."""
    import otterwiki.tools
    import otterwiki.wiki

    if getattr(otterwiki.wiki.rename_backlinks, "robot_link_map", False):
        return
    for module, function in (
        (otterwiki.wiki, rename_backlinks),
        (otterwiki.tools, handle_housekeeping_brokenwikilinks),
    ):
        function.robot_link_map = True
        function.__wrapped__ = getattr(module, function.__name__)
        setattr(module, function.__name__, function)


def _pages():
    """The current wiki's pages, with its link map."""
    from flask import current_app
    from flask import g

    from app.pages.storage import Pages

    link_map = g.tenant.settings.link_map_path(g.tenant.slug)
    return Pages.for_config(g.tenant.storage, current_app.config, link_map)


def rename_backlinks(old_filename: str, new_pagename: str) -> dict[str, str]:
    """Otterwiki's `rename_backlinks`, as its `Page.rename` calls it once the page file
    `old_filename` (and its folder) are moved to page `new_pagename` and before the commit:
    rewrite the links to the page, its subpages and its files in the pages that hold them and
    return {file: new text} for that commit. Raises the link map's Unavailable while it fills
    (Otterwiki then puts everything back and says the rename failed; the notice says why)."""
    from otterwiki.helper import toast

    from app.core.errors import RobotError

    pages = _pages()
    old = pages.rules.page_path(old_filename)
    try:
        return pages.update_links_after_move(old, pages.rules.clean(new_pagename))
    except RobotError as error:
        toast(error.message, "error")
        raise


def handle_housekeeping_brokenwikilinks(form):
    """Otterwiki's "broken WikiLinks" housekeeping task (same permission, template and
    figures), from the link map: every link of every kind (wiki links, Markdown links,
    reference links), outside code, to a page that does not exist. While the map fills, the
    notice says to try again."""
    from flask import abort
    from flask import render_template
    from markupsafe import Markup
    from otterwiki.auth import has_permission

    from app.core.errors import RobotError
    from app.pages.search import broken_links

    if not has_permission("WRITE"):
        abort(403)
    started = time.monotonic()
    pages = _pages()
    # Notices go in the answer itself: it replaces the task's form (htmx), and a toast would
    # show only on the next whole page.
    notices = []
    try:
        broken = broken_links(pages)
        checked = len(pages.page_files())
    except RobotError as error:
        notices.append(error.message)
        broken, checked = {}, 0
    wanted: dict[str, list[str]] = {}
    for source, targets in broken.items():
        for target in targets:
            wanted.setdefault(target, []).append(source)
    most_wanted = [
        {"page": target, "found_in": sorted(sources)[:SHOWN], "occurrences": len(sources)}
        for target, sources in wanted.items()
    ]
    most_wanted.sort(key=lambda item: (-item["occurrences"], item["page"]))
    by_count = sorted(broken.items(), key=lambda item: (-len(item[1]), item[0]))
    if (
        len(by_count) > SHOWN
        or len(most_wanted) > SHOWN
        or any(len(targets) > SHOWN for _, targets in by_count)
    ):
        notices.append(
            f"Shown: the {SHOWN} pages with the most broken links, the {SHOWN} most wanted "
            f"pages, and {SHOWN} names in each list."
        )
    answer = render_template(
        "tools/housekeeping_brokenwikilinks.html",
        pages={source: targets[:SHOWN] for source, targets in by_count[:SHOWN]},
        most_wanted=most_wanted[:SHOWN],
        stats={"pages": checked, "duration": f"{time.monotonic() - started:.3f}s"}
        if checked
        else None,
    )
    notice = Markup('<p class="text-muted">{}</p>')
    return Markup("").join(notice.format(text) for text in notices) + Markup(answer)
