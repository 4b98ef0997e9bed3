"""The one place that touches Otterwiki's globals: boot it once, then point it at one wiki a time.

Otterwiki has no app factory: importing `otterwiki.server` builds one Flask `app`, one
Flask-SQLAlchemy `db` and one `GitStorage` that every other Otterwiki module imported by value.
So we keep those objects and repoint them per request: the storage's repo, the db engine's
connection pool and the app's config (reset to a pristine snapshot first, so nothing one wiki
set leaks into the next). Nothing outside this package patches Otterwiki; one module a concern:

- `boot`: import `otterwiki.server` once per process against an internal bootstrap repo;
- `config`: the values no wiki admin may change, kept on top when Otterwiki reloads its config;
- `tenancy`: open, evict, activate and deactivate a wiki per request (`Tenancy`, `OpenWiki`);
- `storage`: the storage's speed-ups (last commits per HEAD, paths resolved from known roots),
  writes undone when they fail, files staged by their literal names;
- `caches`: the preference rows read only after wiki.db changed, the table-of-contents cache fix;
- `sanitize`: every rendered page body through the nh3 HTML sanitizer, math blocks escaped;
- `mathjax`: MathJax typesets with its safe extension (no script URLs or names from TeX);
- `account`: the platform's account in the user menu, the session handoff's route;
- `managed`: the admin pages of what the platform decides, out of the menu or read-only;
- `csp`, `handlers`: Otterwiki's pages under the platform's Content-Security-Policy;
- `static_files`: the files under /static/ the platform adds, changes or withholds, served by
  Otterwiki's static view as by the gateway;
- `editor`: an editor save over a newer revision is merged, or shown as a conflict to resolve;
- `attachments`: Otterwiki's upload and rename forms held to the page API's name rules;
- `errors`: bad input (unknown revisions, git and storage errors, HEAD) answered 4xx, not 500;
- `preferences`: the platform's preferences (remote, mail, registration...) never stored;
- `page_preferences`: the preferences that name a page or a path (home page, 404 page, menu
  links, logo) held to the page path rules, on the forms, at the flush and when read;
- `patterns`: Otterwiki's backtracking Markdown patterns, rewritten to run in linear time;
- `budget`: the CPU budget that stops a render or a view where it runs (and its git);
- `render`: rendered page bodies cached on disk by content, each render (and the page index)
  held to the budget, each owner's entries to a share of the cache;
- `verdicts`: a view that went past its budget answers 503 at once until its wiki changes;
- `request_limit`: every read held to a few budgets of CPU with its git, and a wall clock;
- `bounded_views`: Otterwiki's views that grow with a wiki's history or size, held to bounds;
- `changelog`: the changelog and its feeds read one page of the log, not the whole history;
- `search`: `/-/search` answered from the wiki's full-text index (app.pages.fulltext);
- `provenance`: commits signed with the request's agent; authors shown with it, no mailto:;
- `hooks`: what `install` adds to Otterwiki's app (`g.tenant`, `g.caller`, errors, page API).
"""

from app.wiki.otterwiki.account import REDEEM_ENDPOINT
from app.wiki.otterwiki.boot import boot_otterwiki
from app.wiki.otterwiki.errors import THUMBNAIL_AS_FILE
from app.wiki.otterwiki.hooks import CALLER_KEY
from app.wiki.otterwiki.hooks import TENANT_KEY
from app.wiki.otterwiki.hooks import install
from app.wiki.otterwiki.static_files import generated_static_files
from app.wiki.otterwiki.tenancy import OpenWiki
from app.wiki.otterwiki.tenancy import Tenancy

# Routes whose answer is a file, the same for every wiki: Otterwiki's static folder, with the
# files the platform adds (handlers.js) or changes. The gateway answers them without a turn.
STATIC_ENDPOINTS = frozenset({"static"})


__all__ = [
    "CALLER_KEY",
    "TENANT_KEY",
    "REDEEM_ENDPOINT",
    "OpenWiki",
    "STATIC_ENDPOINTS",
    "THUMBNAIL_AS_FILE",
    "generated_static_files",
    "Tenancy",
    "boot_otterwiki",
    "install",
]
