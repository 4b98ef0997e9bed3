"""The wiki service's front door: Host picks the wiki, credentials the caller, then Otterwiki."""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import parse_qsl
from urllib.parse import quote

from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_cookie
from werkzeug.wsgi import ClosingIterator

from app.core import handoff
from app.core import usage
from app.core.errors import Forbidden
from app.core.errors import InsufficientStorage
from app.core.errors import InternalError
from app.core.errors import MethodNotAllowed
from app.core.errors import NotFound
from app.core.errors import PayloadTooLarge
from app.core.errors import RobotError
from app.core.errors import Unauthorized
from app.core.errors import Unavailable
from app.core.errors import UriTooLong
from app.core.identity import Caller
from app.core.identity import authenticate
from app.core.locks import put_back_unfinished
from app.core.locks import wiki_write_lock
from app.core.platform import Platform
from app.core.settings import Settings
from app.core.settings import gunicorn_workers
from app.core.slugs import slug_from_host
from app.core.store import Store
from app.core.store import Wiki
from app.pages.files import head_commit
from app.pages.names import MAX_PAGE_DEPTH
from app.web.bodies import SlowPlaces
from app.web.bodies import receive_body
from app.web.heartbeat import kept_alive
from app.web.session_cookie import clear_session_cookie
from app.web.session_cookie import cookie_name
from app.web.session_cookie import set_session_cookie
from app.wiki import page_api
from app.wiki.git_http import GIT_ENDPOINTS
from app.wiki.git_http import GitHttp
from app.wiki.otterwiki import CALLER_KEY
from app.wiki.otterwiki import REDEEM_ENDPOINT
from app.wiki.otterwiki import STATIC_ENDPOINTS
from app.wiki.otterwiki import TENANT_KEY
from app.wiki.otterwiki import THUMBNAIL_AS_FILE
from app.wiki.otterwiki import Tenancy
from app.wiki.otterwiki import generated_static_files
from app.wiki.otterwiki.config import FORM_ENVELOPE_BYTES
from app.wiki.responses import error_response
from app.wiki.responses import html_page
from app.wiki.responses import is_api_path
from app.wiki.responses import redirect
from app.wiki.responses import text_response
from app.wiki.routes import READ_ONLY_ENDPOINTS
from app.wiki.routes import Route
from app.wiki.routes import Routes
from app.wiki.sends import SLOW_SEND
from app.wiki.sends import SendWatch
from app.wiki.static import FILE_ROUTES
from app.wiki.static import static_files
from app.wiki.turns import TURN_KEY
from app.wiki.turns import WRITE_WAIT
from app.wiki.turns import Turn
from app.wiki.turns import Turns
from app.wiki.turns import WikiBusy
from app.wiki.turns import WriteWaits
from app.wiki.turns import join_pool

log = logging.getLogger("robot.wiki")


# Parts ('/') a request's path may have: a page's URL has at most MAX_PAGE_DEPTH, and a view
# of it or of an attachment a few more. A path of ~1,000 parts made Otterwiki's split_path
# recurse past Python's limit (500), for anonymous visitors too.
MAX_URL_PARTS = 4 * MAX_PAGE_DEPTH

# A request only waits here if an earlier response was never closed: fail instead of hanging.
_BUSY_TIMEOUT = 30.0
# Static files are the same public Otterwiki assets for every wiki: remember for a few seconds
# that a host names a wiki instead of asking robot.db for every stylesheet.
_STATIC_HOST_TTL = 5.0
_STATIC_HOSTS_MAX = 10_000
# Hosts whose wiki's owner this worker has seen (most kept): a request to one arrives among
# that owner's (app.wiki.turns), lowered if its pools are in debt, before its route and wiki
# are looked up. Those took half a millisecond of every hammering client's request at full
# priority, a tenth of what a cached view of a costly page costs.
_OWNERS_MAX = 10_000
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Bytes of body a caller who may not write can send (a search form); more is refused unread.
READER_BODY_BYTES = 64 * 1024
# Bytes of body a write to a full wiki may have: a deletion's or a rename's form.
FULL_WIKI_BODY_BYTES = 4096
# The writes that add a page's text or a file, refused whatever their size in a full wiki:
# 200 appends of 3.9 KB each went on growing one past its cap.
_GROWING_ENDPOINTS = frozenset(
    {
        "save",
        "attachments",
        "inline_attachment",
        "page_api.write_page",
        "page_api.append_page",
        "page_api.put_attachment",
        "page_api.post_attachments",
    }
)
# The writes that upload files: what they add is at most their body, reserved before they run
# (the body's declared length; chunked, the largest body a route takes).
_UPLOAD_ENDPOINTS = frozenset(
    {"attachments", "inline_attachment", "page_api.put_attachment", "page_api.post_attachments"}
)
# Bytes a wiki's wiki.db may grow to with drafts (Otterwiki keeps one per page and writer, each
# as long as a page): five drafts of 4 MB under made-up page names grew it by 20 MB, outside
# the files' cap.
WIKI_DB_MAX_BYTES = 64 * 1024 * 1024
# Bytes of body Otterwiki's forms may have, but those that carry a page's text or a file
# (_LARGE_FORM_ENDPOINTS, under the app's MAX_CONTENT_LENGTH): every other is a few fields.
# The sidebar preferences took a custom menu of 7,500 entries (8.9 MB) that every page view
# then spent 5 s on.
FORM_BODY_BYTES = 32 * 1024
_LARGE_FORM_ENDPOINTS = frozenset(
    {"save", "preview", "draft", "attachments", "inline_attachment", "edit_attachment"}
)
_IDENTITY_PREFIX = "HTTP_X_OTTERWIKI_"
# Bulk transfers (app.wiki.turns): a turn held while the answer goes out at the server's pace.
_BULK_ENDPOINTS = GIT_ENDPOINTS | {"page_api.export_wiki"}
# Otterwiki sends a file: no turn (a page's images all at once, to a slow phone, are no crowd).
# A thumbnail is computed (decode and resize: half a second of CPU for a large image), so it
# takes a turn as a page view does.
_FILE_ENDPOINTS = frozenset({"get_attachment"})
# Otterwiki's answers that cost next to nothing and that a browser asks for with every page,
# as it does the favicon: no turn either (the manifest was refused 429 on a page of thumbnails,
# review 47).
_FREE_ENDPOINTS = frozenset({"webmanifest"})
# Otterwiki's page view also sends a file named by its path (`/Page/photo.png`: how pages embed
# their images, and the attachments list's `?thumbnail`s). Those took a turn, and one member
# opening a page of 10 images had 8 refused 429 (twenty-fifth review): a file goes as a file;
# a thumbnail (these arguments) takes a turn, and one that finds none sends the file itself,
# which costs no CPU (THUMBNAIL_AS_FILE, app.wiki.otterwiki.errors).
_RESIZE_ARGS = ("thumbnail", "size", "width", "height")
# Otterwiki's forms that are posted but write nothing to the repository: a search, a preview,
# the history's compare form, a draft (kept in wiki.db), a page's create form (it only opens
# the editor). They take no write lock: six anonymous regex searches once queued on it, each
# holding a worker, and every tenant's views waited 15-19 s.
_POSTS_THAT_WRITE_NO_GIT = frozenset(
    {"search", "preview", "history", "diff", "view", "draft", "discard_draft", "create", "edit"}
)
# A refused form post's fields, for its refusal page to send again (_keep_form).
_RESEND_KEY = "robot.resend"
# The environ key of the bytes a revert or an upload reserved in its wiki's recorded size:
# (slug, bytes), until a measurement after its commit takes their place.
_RESERVED_KEY = "robot.reserved_bytes"


def _http_refusal(error: HTTPException, environ, path: str):
    """Answer a werkzeug HTTPException as the gateway answers its own errors, with the
    headers that go with it (416's Content-Range: bytes */length, RFC 9110 15.5.17)."""
    refusal = RobotError(error.description or error.name)
    refusal.status = error.code or 400
    response = error_response(refusal, path, environ.get("REQUEST_METHOD", "GET"))
    for name, value in error.get_headers(environ):
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _file_view(environ, route: Route, wiki_dir: Path) -> str | None:
    """What Otterwiki's page view of this request sends (see _RESIZE_ARGS): "file" for a
    file named by its path, which takes no turn, as `get_attachment`; "thumbnail" for its
    thumbnail, which takes a turn, or is sent as the file when none is free; None for
    anything else (a page, or another endpoint). The thumbnail route
    (`/<page>/t/<file>/<size>`) is a thumbnail, whichever file it names: Otterwiki answers
    404 for one that is not there, at no cost."""
    if route.endpoint == "get_attachment_thumbnail":
        return "thumbnail"
    path = route.args.get("path") if route.endpoint == "view" else None
    if not isinstance(path, str) or path.endswith(".md"):
        return None
    repo = wiki_dir / "repo"
    if not any(os.path.isfile(repo / name) for name in {path, path.lower()}):
        return None  # a page (or nothing): its view computes
    asked = {name for name, _ in parse_qsl(environ.get("QUERY_STRING", ""), True)}
    return "thumbnail" if asked.intersection(_RESIZE_ARGS) else "file"


def _close_turn(environ) -> None:
    turn = environ.pop(TURN_KEY, None)
    if turn is not None:
        turn.close()


@dataclass(frozen=True)
class Tenant:
    """The wiki a request is for (`flask.g.tenant`): its row, folder and Otterwiki's storage."""

    slug: str
    wiki: Wiki
    wiki_dir: Path
    storage: object
    settings: Settings
    store: Store


def _may_write(caller: Caller, wiki: Wiki) -> bool:
    """Whether `caller` may change `wiki` at all (write pages or upload attachments)."""
    permissions = caller.permissions(wiki.is_public)
    return "WRITE" in permissions or "UPLOAD" in permissions


def body_cap(settings) -> int:
    """The largest request body (bytes) any wiki route takes: an attachment in its form, or a
    page API request."""
    return max(settings.max_attachment_bytes + FORM_ENVELOPE_BYTES, page_api.MAX_REQUEST_BYTES)


def _body_over(environ, limit: int) -> bool:
    """Whether the request declares a body over `limit` bytes, or comes chunked (any size)."""
    declared = environ.get("CONTENT_LENGTH", "")
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    return chunked or (declared.isdigit() and int(declared) > limit)


def _check_reader_body(environ, caller: Caller, wiki: Wiki) -> None:
    """Refuse, before reading it, a body over READER_BODY_BYTES (or chunked) from a caller who
    may not write to the wiki: no route takes one from them, and reading it only holds a worker.

    Raises Unauthorized (anonymous) or Forbidden (signed in, no writer).
    """
    if _may_write(caller, wiki) or not _body_over(environ, READER_BODY_BYTES):
        return
    message = (
        f"only a member who may write to this wiki can send a body over {READER_BODY_BYTES} "
        "bytes or a chunked one"
    )
    raise Unauthorized(message) if caller.is_anonymous else Forbidden(message)


def _check_form_body(environ, route: Route) -> None:
    """Refuse, before reading it, a body over FORM_BODY_BYTES (or chunked) to an Otterwiki form
    that takes neither a page's text nor a file. The page API has caps of its own.

    Raises PayloadTooLarge (413).
    """
    if route.is_page_api or route.endpoint in _LARGE_FORM_ENDPOINTS:
        return
    # Any method: Otterwiki's search reads a form from a GET's body too.
    if _body_over(environ, FORM_BODY_BYTES):
        raise PayloadTooLarge(
            f"this form may send at most {FORM_BODY_BYTES} bytes (only a page's text and "
            "attachments may be larger)"
        )


def _reserve(environ, platform: Platform, wiki: Wiki, grows: int, refusal: str) -> None:
    """Reserve `grows` bytes in `wiki`'s recorded size for this request (given back by the
    gateway unless a measurement after its commit takes their place), or raise
    InsufficientStorage(`refusal`) if they do not fit under ROBOT_WIKI_MAX_BYTES."""
    if grows <= 0:
        return
    if not platform.store.reserve_bytes(wiki.slug, grows, platform.settings.wiki_max_bytes):
        raise InsufficientStorage(refusal)
    environ[_RESERVED_KEY] = (wiki.slug, grows)


def _check_room(environ, wiki: Wiki, platform: Platform, route: Route) -> None:
    """Refuse, before reading it, a body over FULL_WIKI_BODY_BYTES (or chunked) to a wiki whose
    files (as last measured, app.core.usage) already add up to ROBOT_WIKI_MAX_BYTES: uploads
    and pages, each under its own cap, could otherwise fill the host's disk; and any write that
    adds a page's text or a file (_GROWING_ENDPOINTS), whatever its size. Deletions and renames
    still go through, so room can be made. A revert brings back an old commit's
    files with a small form, and an upload adds at most its body: each reserves that much
    before it runs, and is refused when it does not fit.

    Raises InsufficientStorage (507).
    """
    if environ.get("REQUEST_METHOD", "GET") in _SAFE_METHODS:
        return
    settings = platform.settings
    held, most = wiki.size_bytes, settings.wiki_max_bytes
    if route.endpoint == "revert":
        revision = str(route.args.get("revision", ""))
        grows = usage.revert_growth(settings.repo_path(wiki.slug), revision)
        # Reserved at once: four reverts sent together each fitted as measured before.
        _reserve(
            environ,
            platform,
            wiki,
            grows,
            f"reverting this change would bring back {grows} bytes, and this wiki's files add "
            f"up to {held} of the {most} a wiki may hold: delete attachments or pages to make "
            "room first",
        )
    elif held >= most and (
        route.endpoint in _GROWING_ENDPOINTS or _body_over(environ, FULL_WIKI_BODY_BYTES)
    ):
        raise InsufficientStorage(
            f"this wiki's files add up to {held} bytes, the most a wiki may hold "
            f"({most}): delete attachments or pages to make room"
        )
    elif route.endpoint in _UPLOAD_ENDPOINTS:
        # Uploads sent together, each fitting as last measured, went past the cap together.
        declared = environ.get("CONTENT_LENGTH", "")
        adds = int(declared) if declared.isdigit() else body_cap(settings)
        _reserve(
            environ,
            platform,
            wiki,
            adds,
            f"this upload may add up to {adds} bytes, and this wiki's files add up to {held} of "
            f"the {most} a wiki may hold: delete attachments or pages to make room first",
        )
    elif route.endpoint == "draft" and _drafts_full(settings.wiki_db_path(wiki.slug)):
        raise InsufficientStorage(
            f"this wiki's drafts and settings take {WIKI_DB_MAX_BYTES} bytes, the most they "
            "may: save or discard drafts to make room"
        )


def _drafts_full(db_path) -> bool:
    """Whether the wiki's wiki.db (its drafts, mostly) has reached WIKI_DB_MAX_BYTES."""
    try:
        return os.stat(db_path).st_size >= WIKI_DB_MAX_BYTES
    except OSError:
        return False


def _session_cookie(environ, settings: Settings) -> str | None:
    header = environ.get("HTTP_COOKIE", "")
    name = cookie_name(settings)
    if name not in header:
        return None  # most requests carry only Otterwiki's own cookie: skip the parse
    return parse_cookie(header).get(name)


def _keep_form(environ, body) -> None:
    """Keep the fields of a browser's form post (`body`: the received body, or None) in
    `environ` for its refusal page to send again (app.wiki.responses.resend_form): a
    urlencoded body of valid UTF-8 only, as browsers send Otterwiki's forms."""
    kind = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if body is None or kind != "application/x-www-form-urlencoded":
        return
    try:
        body.seek(0)
        text = body.read().decode("utf-8")
        environ[_RESEND_KEY] = parse_qsl(text, keep_blank_values=True, max_num_fields=100)
    except (OSError, UnicodeDecodeError, ValueError):
        return  # closed, not UTF-8, or more fields than any Otterwiki form has


def _query_value(environ, name: str) -> str | None:
    """The first value of query parameter `name`, or None (absent, or an unreadable query)."""
    try:
        args = parse_qs(environ.get("QUERY_STRING", ""), max_num_fields=20)
    except ValueError:
        return None
    return (args.get(name) or [None])[0]


def _next_path(environ) -> tuple[str, str]:
    """Otterwiki's `/-/login?next=/a/path?q`: (path, query) on this wiki to come back to."""
    wanted = _query_value(environ, "next") or "/"
    # A path on this host only: `//host` and `/\\host` would name another one.
    if not wanted.startswith("/") or wanted.startswith(("//", "/\\")):
        return "/", ""
    path, _, query = wanted.partition("?")
    return path.encode("utf-8").decode("latin-1"), query  # as PATH_INFO would carry it


class WikiGateway:
    """WSGI app serving every wiki from the one Otterwiki app of this process."""

    def __init__(self, platform: Platform, tenancy: Tenancy):
        self.platform = platform
        self.settings = platform.settings
        self.tenancy = tenancy
        self._otterwiki = tenancy.app.wsgi_app
        self.routes = Routes(tenancy.app)
        # Otterwiki's globals hold one wiki at a time: one request per process, until close().
        self._busy = threading.Lock()
        self.turns = Turns(self.settings.wiki_concurrency)
        # The largest body any route takes: an attachment in its form, or a page API request.
        self._body_cap = body_cap(self.settings)
        # Slow bodies and slow sends, together, may hold all the workers but one: one set of
        # places for both (app.web.bodies, app.wiki.sends). Two sets once let three slow
        # uploads and one slow download take all four workers.
        self._slow_bodies = SlowPlaces(self.settings.run_dir / "slow", gunicorn_workers() - 1)
        self._sends = SendWatch(self._slow_bodies)
        # Waits for a wiki's write lock: one per pool of callers, half the workers in all,
        # among the slow-transfer places (app.wiki.turns.WriteWaits).
        self.write_waits = WriteWaits(
            self.settings.run_dir / "slow", max(1, gunicorn_workers() // 2)
        )
        self.git = GitHttp(platform, self._slow_bodies, self.write_waits)
        # The pool of slow sends of no wiki's caller (Otterwiki's static files, errors).
        self._strangers = self.settings.run_dir / "slow" / "strangers"
        self._static_hosts: dict[str, float] = {}
        self._owners: dict[str, tuple[str, Path]] = {}  # Host -> (slug, owner's turns folder)
        self._static = static_files(
            tenancy.app.static_folder,
            lambda environ, start_response: self._serve(environ, start_response, None, None),
            tenancy.pristine.get("SECURITY_HEADERS", True),
            generated_static_files(tenancy.app.static_folder),
        )

    def __call__(self, environ, start_response):
        for name in [k for k in environ if k.startswith(_IDENTITY_PREFIX)]:
            del environ[name]
        path = environ.get("PATH_INFO") or "/"
        if path == "/healthz":
            return self._health()(environ, start_response)
        try:
            response = self._answer(environ, start_response, path)
        except BaseException:
            _close_turn(environ)
            raise
        finally:
            self._release_reserved(environ)
        closing = [partial(_close_turn, environ)]
        turn = environ.get(TURN_KEY)
        if turn is None:  # Otterwiki's static files, or no wiki: strangers all
            watching = self._sends.start(environ, self._strangers, visitor=True)
        else:
            watching = self._sends.start(
                environ, turn.pool, turn.visitor, turn.end_turn, turn.tenancy
            )
        if watching:
            closing.append(partial(self._sent, environ))
        return ClosingIterator(response, closing)

    def _release_reserved(self, environ) -> None:
        """Give back what a revert or upload reserved (_check_room) when no commit was
        measured in its place, never below the wiki's files as measured now: a refused or
        failed write must not leave its wiki's recorded size too large, nor make it too
        small."""
        reserved = environ.pop(_RESERVED_KEY, None)
        if reserved is not None:
            slug, grows = reserved
            try:
                files = usage.measure(self.settings.repo_path(slug)).size_bytes
                self.platform.store.release_bytes(slug, grows, files)
            except Exception:
                log.exception("could not give back the bytes reserved in wiki %s", reserved[0])

    def _sent(self, environ) -> None:
        if self._sends.stop():
            log.warning(
                "cut the response to %s %s: still going out after %s s, no slow-send place "
                "(or a visitor's, given up to a member)",
                environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"),
                SLOW_SEND,
            )

    def _answer(self, environ, start_response, path: str):
        """The response to a request (an error page for every failure but the client's)."""
        try:
            return self._dispatch(environ, start_response, path)
        except RobotError as error:
            method = environ.get("REQUEST_METHOD", "GET")
            resend = environ.pop(_RESEND_KEY, None)
            return error_response(error, path, method, resend)(environ, start_response)
        except HTTPException as error:  # werkzeug's own refusals (a Range past the end: 416)
            return _http_refusal(error, environ, path)(environ, start_response)
        except Exception:
            log.exception("wiki gateway failed on %s %s", environ.get("REQUEST_METHOD"), path)
            error = InternalError("internal error; the operator can find details in the log")
            return error_response(error, path)(environ, start_response)

    def _dispatch(self, environ, start_response, path: str):
        if path.count("/") > MAX_URL_PARTS:
            raise UriTooLong(f"this path has more than {MAX_URL_PARTS} parts; no page has so many")
        # Decide by the route Flask would run, never by how the path is spelled.
        route = self.routes.match(environ)
        static = route.endpoint in STATIC_ENDPOINTS and not route.redirects
        if route.endpoint in FILE_ROUTES and route.method_allowed:
            environ["PATH_INFO"] = FILE_ROUTES[route.endpoint]  # answered as that file
            static = True
        if static:  # Otterwiki's own files are no wiki's: strangers serve them, with no turn
            self._check_static_host(environ)
            if not route.method_allowed:
                raise MethodNotAllowed(f"{environ.get('REQUEST_METHOD')} is not allowed on {path}")
            return self._static(environ, start_response)
        self._arrive_early(environ)
        if route.endpoint in GIT_ENDPOINTS:
            wiki = self._wiki_of(environ)
            turn = self._arrive(environ, wiki)
            return self.git(environ, start_response, route.endpoint, wiki, turn)
        wiki = self._wiki_of(environ)
        turn = self._arrive(environ, wiki)
        if route.blocked:
            if route.managed and not is_api_path(path):
                return self._managed(route, wiki)(environ, start_response)
            raise NotFound("this page is not available on this platform")
        if is_api_path(path) and not route.is_page_api:
            if self.routes.page_api_methods(environ):
                raise MethodNotAllowed(f"{environ.get('REQUEST_METHOD')} is not allowed on {path}")
            raise NotFound(f"there is no {path} in this API")
        if not route.method_allowed and route.is_page_api:
            raise MethodNotAllowed(f"{environ.get('REQUEST_METHOD')} is not allowed on {path}")
        if route.endpoint == REDEEM_ENDPOINT:
            return self._redeem(environ, wiki)(environ, start_response)
        if route.endpoint == "login":
            return redirect(self._handoff(wiki, *_next_path(environ)))(environ, start_response)
        if route.endpoint == "logout":
            logout = self.settings.auth_origin + handoff.LOGOUT_PATH
            return redirect(logout)(environ, start_response)
        secret = _session_cookie(environ, self.settings)
        caller = authenticate(
            self.settings,
            self.platform.key,
            self.platform.store,
            wiki.slug,
            environ.get("HTTP_AUTHORIZATION"),
            secret,
        )
        if secret and caller.is_anonymous and not (route.is_page_api or is_api_path(path)):
            return self._session_ended(environ, path, wiki)(environ, start_response)
        refusal = self._refusal(environ, path, wiki, caller, route)
        if refusal is not None:
            return refusal(environ, start_response)
        _check_reader_body(environ, caller, wiki)
        _check_form_body(environ, route)
        _check_room(environ, wiki, self.platform, route)
        self._set_identity(environ, wiki, caller)
        join_pool(turn, wiki, caller)
        bulk = route.endpoint in _BULK_ENDPOINTS
        sends_file = route.endpoint in _FILE_ENDPOINTS | _FREE_ENDPOINTS
        writes = route.is_page_api or route.endpoint not in _POSTS_THAT_WRITE_NO_GIT
        return self._serve(
            environ, start_response, wiki, caller, turn, bulk, sends_file, writes, route
        )

    def _arrive(self, environ, wiki: Wiki) -> Turn:
        """The request's place among its wiki owner's (app.wiki.turns): from here until the
        response is out, a request of an owner in debt runs low. Closed by __call__."""
        owner_dir = self.settings.owner_turns_dir(wiki.owner_did)
        early = environ.get(TURN_KEY)
        if early is not None and early.entered == (owner_dir, wiki.slug):
            return early
        _close_turn(environ)  # arrived early as another owner's: the wiki changed hands
        turn = self.turns.enter(owner_dir, wiki.slug)
        environ[TURN_KEY] = turn
        if len(self._owners) > _OWNERS_MAX:
            self._owners.clear()
        self._owners[environ.get("HTTP_HOST")] = (wiki.slug, owner_dir)
        return turn

    def _arrive_early(self, environ) -> None:
        """Arrive among the owner's whose wiki this request's host named before (_arrive
        checks that it still does), so finding the wiki and its caller run low for an owner
        in debt. Once routed: Otterwiki's static files take no turn (entering one read /proc,
        a fifth of such a request's CPU)."""
        known = self._owners.get(environ.get("HTTP_HOST"))
        if known is not None:
            slug, owner_dir = known
            environ[TURN_KEY] = self.turns.enter(owner_dir, slug)

    def _check_static_host(self, environ) -> None:
        """Let Otterwiki's own CSS and scripts through on any existing wiki's host."""
        host = environ.get("HTTP_HOST")
        if self._static_hosts.get(host, 0.0) > time.monotonic():
            return
        self._wiki_of(environ)
        if len(self._static_hosts) > _STATIC_HOSTS_MAX:
            self._static_hosts.clear()
        self._static_hosts[host] = time.monotonic() + _STATIC_HOST_TTL

    def _wiki_of(self, environ) -> Wiki:
        host = environ.get("HTTP_HOST")
        slug = slug_from_host(host, self.settings.platform_domain)
        wiki = self.platform.store.find_wiki(slug) if slug else None
        if wiki is None:
            self._owners.pop(host, None)
            _close_turn(environ)  # arrived early at a wiki since deleted
            raise NotFound("there is no wiki at this address")
        return wiki

    def _wanted(self, wiki: Wiki, path: str, query: str = "") -> str:
        """The public URL of what the browser asked for, to come back to after login."""
        # PATH_INFO carries the URL's bytes as latin-1; the browser meant UTF-8.
        path = path.encode("latin-1").decode("utf-8", "replace")
        url = self.settings.wiki_url(wiki.slug).rstrip("/") + quote(path)
        return url + "?" + query if query else url

    def _handoff(self, wiki: Wiki, path: str, query: str = "", reason: str | None = None) -> str:
        """The auth service's URL that gives this browser a session here, then shows `path`."""
        wanted = self._wanted(wiki, path, query)
        return handoff.wiki_session_url(self.settings, wiki.slug, wanted, reason)

    def _session_ended(self, environ, path: str, wiki: Wiki):
        """A browser whose cookie here is dead (expired, or signed out on another host): drop
        the cookie and send it for a new session, with a word on why (never silently)."""
        query = environ.get("QUERY_STRING", "")
        response = redirect(self._handoff(wiki, path, query, handoff.REASON_EXPIRED))
        clear_session_cookie(response, self.settings)
        return response

    def _redeem(self, environ, wiki: Wiki):
        """Trade a handoff code (app.core.handoff) for this wiki host's own session cookie."""
        if environ.get("REQUEST_METHOD") != "GET":
            raise MethodNotAllowed("open the sign-in link with GET")
        code = _query_value(environ, "code")
        redeemed = self.platform.store.redeem_handoff(code, self.settings.wiki_host(wiki.slug))
        if redeemed is None:
            return html_page(
                400,
                "This sign-in link does not work: it was already used, it has expired, or it "
                "was made for another wiki. You were not signed in.",
                (self._handoff(wiki, "/"), "Sign in to this wiki"),
            )
        _session, secret = redeemed
        response = redirect(
            handoff.on_wiki(self.settings, wiki.slug, _query_value(environ, "return_to"))
            or self.settings.wiki_url(wiki.slug)
        )
        set_session_cookie(response, self.settings, secret)
        response.headers["Referrer-Policy"] = "no-referrer"  # the code stays in this one hop
        return response

    def _managed(self, route: Route, wiki: Wiki):
        """Say that the platform decides what this Otterwiki admin page would, and where.

        Answered before anyone is authenticated and before Otterwiki runs: nothing is changed,
        and the page only names what the platform's own settings page shows its admins.
        """
        read_only = route.endpoint in READ_ONLY_ENDPOINTS
        link = (self.settings.api_origin + f"/app/wiki/{wiki.slug}", "This wiki's settings")
        response = html_page(405 if read_only else 404, route.managed, link)
        if read_only:
            response.headers["Allow"] = "GET, HEAD, OPTIONS"
        return response

    def _refusal(self, environ, path: str, wiki: Wiki, caller: Caller, route: Route):
        """Answer callers who may not read this wiki; the page API gives its own answers."""
        if caller.permissions(wiki.is_public) or route.is_page_api:
            return None
        if caller.is_anonymous:
            return redirect(self._handoff(wiki, path, environ.get("QUERY_STRING", "")))
        who = caller.handle or caller.did
        return html_page(
            403,
            f"You are signed in as {who}, but you are not a member of the wiki "
            f"“{wiki.display_name}”. Ask its owner to add you, or sign in with another "
            "account.",
            (self.settings.dashboard_url, "Your wikis"),
        )

    def _set_identity(self, environ, wiki: Wiki, caller: Caller) -> None:
        name, email = caller.git_identity(self.settings.platform_domain)
        environ["HTTP_X_OTTERWIKI_NAME"] = name.encode("latin-1", "replace").decode("latin-1")
        environ["HTTP_X_OTTERWIKI_EMAIL"] = email
        environ["HTTP_X_OTTERWIKI_PERMISSIONS"] = ",".join(caller.permissions(wiki.is_public))

    def _serve(
        self,
        environ,
        start_response,
        wiki: Wiki | None,
        caller: Caller | None,
        turn: Turn | None = None,
        bulk: bool = False,
        sends_file: bool = False,
        writes: bool = True,
        route: Route | None = None,
    ):
        """Switch Otterwiki to `wiki` and run it, holding the switch until the response closes.

        The request's body is received whole first (app.web.bodies), as one of `turn`'s pool.
        `turn` (app.wiki.turns) is the request's at its wiki: taken after the write lock (a
        push takes both in that order), for Otterwiki to compute the response in, handed on
        when the app returns it, so a slow reader never holds it. A `bulk` transfer (an
        export) computes while its response goes out: its turn is handed on once that is out,
        or slow (app.wiki.sends). A response that `sends_file` (an attachment) takes no turn,
        as it computes nothing, nor does Otterwiki's view of a file by its `route`
        (_file_view). Every response but a bulk one goes out in pieces that keep its
        worker alive while they move (app.web.heartbeat.kept_alive).
        A request of a method that may change things, by a caller who may write, takes the
        wiki's write lock before its turn, unless its route `writes` nothing to git; it waits
        for it WRITE_WAIT seconds at most, in a place of `write_waits` (app.wiki.turns), and
        lets it go once the view has run and the usage is recorded, before the response goes.
        """
        if not self._busy.acquire(timeout=_BUSY_TIMEOUT):
            raise Unavailable("this worker is stuck on an earlier request; try again")
        held = ExitStack()
        held.callback(self._busy.release)
        locked = ExitStack()  # the wiki's write lock: let go once the write is done
        body = None
        written = None  # (slug, opened wiki, HEAD before) of a request that may write
        try:
            if caller is None:
                self.tenancy.deactivate()  # Otterwiki's static files need no wiki at all
            else:
                writer = _may_write(caller, wiki)
                body = receive_body(
                    environ, self._body_cap, self._slow_bodies, writer, turn.pool, turn.tenancy
                )
                if body is not None:
                    held.callback(body.close)
                opened = self.tenancy.activate(wiki)
                put_back_unfinished(opened.wiki_dir)  # a killed write's half is never shown
                # Only a caller who may write waits for the lock: a stranger's PUT to a private
                # wiki waited 20 s for a push's lock before its 401, and told when it was
                # written to (nineteenth review). It waits in one of the host's places to
                # wait, before its turn (app.wiki.turns.WriteWaits).
                method = environ.get("REQUEST_METHOD", "GET")
                if writes and writer and method not in _SAFE_METHODS:
                    waiting = partial(self.write_waits.waiting, turn)
                    locked.enter_context(wiki_write_lock(opened.wiki_dir, WRITE_WAIT, waiting))
                    written = (wiki.slug, opened, head_commit(opened.repo))
                viewed = _file_view(environ, route, opened.wiki_dir) if route else None
                sends_file = sends_file or viewed == "file"
                if turn is not None and not sends_file:
                    try:
                        turn.take()
                    except WikiBusy:
                        if viewed != "thumbnail":
                            raise
                        environ[THUMBNAIL_AS_FILE] = True
                        sends_file = True
                environ[TENANT_KEY] = Tenant(
                    wiki.slug,
                    wiki,
                    opened.wiki_dir,
                    self.tenancy.server.storage,
                    self.settings,
                    self.platform.store,
                )
                environ[CALLER_KEY] = caller
            app_iter = self._otterwiki(environ, start_response)
            if turn is not None and not bulk and not sends_file:
                # Computed: the turn goes on, its CPU is counted, and the priority comes back.
                # Sending costs next to no CPU, and a heavy page sent at the lowest priority to
                # a steady reader starved on a busy host until the worker timeout killed it.
                turn.close()
            if not bulk:
                # A large attachment or page to a slow but steady reader outlasts the worker
                # timeout. (Bulk transfers keep themselves alive: app.wiki.git_http, page_api.)
                app_iter = kept_alive(app_iter, environ.get("gunicorn.socket"))
            if written is not None:
                # Flask has run the view, so any commit is made; still under the write lock, and
                # before the response goes out, so whoever reads the figures next sees them.
                if self._record_usage(*written):
                    environ.pop(_RESERVED_KEY, None)  # measured: the real size took its place
            # The write is done: the lock is let go before the response goes out. A slowly
            # read 4.6 MB conflict page held it 17 s (twenty-second review), and every other
            # write to the wiki waited.
            locked.close()
        except BaseException as error:
            if isinstance(error, RobotError) and error.retry_after is not None:
                _keep_form(environ, body)  # refused for now: the browser's form may go again
            # A refusal of ours wrote nothing; anything else (the worker's timeout kill too)
            # may have stopped a write midway: the lock's next holder puts the files back.
            if isinstance(error, RobotError):
                locked.close()
            else:
                locked.__exit__(type(error), error, error.__traceback__)
            held.close()
            raise
        return ClosingIterator(app_iter, held.close)

    def _record_usage(self, slug: str, opened, head_before: str | None) -> bool:
        """After a request that may have written: if HEAD moved, record the wiki's usage;
        return whether it was recorded.

        Never fails the request (its write is done): a failure is logged and the figures wait
        for the next write.
        """
        try:
            if head_commit(opened.repo) == head_before:
                return False  # a preview, a failed form, a refused write: nothing changed
            usage.record(self.platform.store, slug, Path(opened.repo_path))
        except Exception:
            log.exception("could not record the usage of wiki %s", slug)
            return False
        return True

    def _health(self):
        problem = self.platform.store.health_problem()
        if problem:
            return text_response(503, f"platform database: {problem}")
        if not self.settings.wiki_base.is_dir():
            return text_response(503, f"wiki folder {self.settings.wiki_base} is missing")
        return text_response(200, "ok")
