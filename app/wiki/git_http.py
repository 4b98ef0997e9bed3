"""git clone, pull and push at a wiki host's /.git: the smart HTTP protocol, by `git http-backend`.

The gateway hands over the requests whose route is one of Otterwiki's git endpoints, matched as
every other route is, so no spelling of the path (slashes, dot segments, percent-encoding)
reaches anything else; the path and query http-backend sees are rebuilt here from the endpoint.
Only the smart protocol is served (`info/refs?service=...`, `git-upload-pack`,
`git-receive-pack`); a wiki whose admin has not turned git access on answers 404.

Credentials: HTTP Basic with any user name and a wiki token or session JWT as the password (or
the same as Bearer); clone and pull need READ (a viewer, or anyone on a public wiki), push needs
WRITE (an editor). A refusal is plain text, which git prints as `remote: ...`; 401 carries
`WWW-Authenticate: Basic` so git asks for the password.

A push's body is first read whole from the network into a nameless temporary file in the wiki's
folder (never in memory), refused past `git_push_max_bytes` while it streams (in git's own
report, so the pusher sees why; see _report_refusal); only then does the push take the wiki's
write lock, run receive-pack on the file, and hold the lock until the working tree and the usage
figures follow it. A slow or stalled pusher so holds a worker, never the wiki: other writes go
on meanwhile. receive-pack keeps what it received in quarantine until the pre-receive hook
(push_rules.py) accepted it, so a refused or cut push leaves nothing behind. Caches need no
refresh: Otterwiki's per-wiki memories key on HEAD, rendered pages on their content.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import zlib
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import git
from werkzeug.wrappers import Response
from werkzeug.wsgi import get_input_stream

from app.core import usage
from app.core import wikis
from app.core.errors import BadRequest
from app.core.errors import NotFound
from app.core.errors import PayloadTooLarge
from app.core.errors import RobotError
from app.core.errors import Unauthorized
from app.core.errors import Unavailable
from app.core.errors import error_headers
from app.core.git_env import LITERAL_PATHSPECS
from app.core.git_env import safe_path
from app.core.identity import Caller
from app.core.identity import authenticate
from app.core.identity import refusal
from app.core.locks import wiki_write_lock
from app.core.platform import Platform
from app.core.store import Wiki
from app.pages.files import head_commit
from app.pages.paths import MAX_CONTENT_BYTES
from app.web.bodies import SlowPlaces
from app.web.bodies import read_chunk
from app.web.bodies import receive_body
from app.web.bodies import watch_body
from app.web.heartbeat import TRANSFER_LONGEST
from app.web.heartbeat import TRANSFER_MIN_RATE
from app.web.heartbeat import KeepAlive
from app.web.heartbeat import tree_cpu
from app.wiki.otterwiki.preferences import retains_page_name_case
from app.wiki.push_rules import MAX_UPDATES
from app.wiki.responses import text_response
from app.wiki.turns import WRITE_WAIT
from app.wiki.turns import Turn
from app.wiki.turns import WikiBusy
from app.wiki.turns import WriteWaits
from app.wiki.turns import join_pool

log = logging.getLogger("robot.wiki.git")

# Otterwiki's routes under /.git (its own git server, which stays blocked): what each serves.
_ENDPOINT_PATHS = {
    "git_info_refs": "/.git/info/refs",
    "git_upload_pack": "/.git/git-upload-pack",
    "git_receive_pack": "/.git/git-receive-pack",
}
GIT_ENDPOINTS = frozenset({"dotgit", *_ENDPOINT_PATHS})
_UPLOAD, _RECEIVE = "git-upload-pack", "git-receive-pack"
_PUSH_RULES = Path(__file__).with_name("push_rules.py")
# git's pre-receive hook, written by the service itself: a deploy that copies code files without
# their modes would leave a shipped hook not executable, and git skips such a hook silently.
_HOOK = """#!/bin/sh
# Written by the wiki service (app/wiki/git_http.py): every push to a wiki passes these rules.
exec {python} -I {rules}
"""
_CHUNK = 64 * 1024
# A push over the cap is read on (and dropped) to its end, up to the cap and this much more
# again, so that git (which sends its whole body before it reads an answer it takes as success)
# shows why it was refused; a larger one is cut at once with a bare 413.
_DRAIN_MIN = 16 * 1024 * 1024
# http-backend writes a few short CGI headers; more or longer is not http-backend.
_MAX_HEADER_LINES, _MAX_HEADER_LINE = 32, 1024
# git sends `GIT_PROTOCOL: version=2` and the like; anything else is not passed on.
_PROTOCOL_RE = re.compile(r"[a-z0-9=:.,-]{1,100}")
# Once the client stopped sending, http-backend ends in moments; past this it is stuck.
_EXIT_TIMEOUT = 30.0
# Where a push's ref updates must have ended (each is a pkt-line of about 100 bytes).
_COMMANDS_BYTES = 64 * 1024
# The most a fetch's request (its wants and haves, inflated) may be: 300,000 lines.
_UPLOAD_REQUEST_MAX = 16 * 1024 * 1024


def _credential(authorization: str | None) -> str | None:
    """The `Authorization` header authenticate() takes: Basic's password as a Bearer token."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return authorization
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("the Basic credentials are not base64 of user:password") from None
    password = decoded.partition(":")[2].strip()
    if not password:
        raise Unauthorized("give a wiki token (or a session token) as the password")
    return "Bearer " + password


class GitHttp:
    """Serve git's smart HTTP protocol for every wiki; `platform` gives settings and robot.db."""

    def __init__(
        self,
        platform: Platform,
        slow: SlowPlaces | None = None,
        write_waits: WriteWaits | None = None,
    ):
        self.platform = platform
        self.settings = platform.settings
        self.slow = slow  # the host's places for slow request bodies (app.web.bodies)
        self.write_waits = write_waits  # the host's places to wait for a write lock
        # Beside the wikis, not in the run dir: /run is often mounted noexec.
        self.hooks = install_hook(self.settings.data_dir / "git-hooks")

    def __call__(self, environ, start_response, endpoint: str, wiki: Wiki, turn: Turn | None):
        """Answer the request for Otterwiki's git `endpoint` on `wiki` (a WSGI app call).

        `turn` (app.wiki.turns; None: none) is the request's: once the caller may go on, it
        joins the caller's pool, and git runs in one of the pool's turns (low once heavy); a
        crowded pool is refused with 429.
        """
        try:
            return self._serve(environ, start_response, endpoint, wiki, turn)
        except RobotError as error:
            return _refused(error)(environ, start_response)

    def _serve(self, environ, start_response, endpoint: str, wiki: Wiki, turn: Turn | None):
        method = environ.get("REQUEST_METHOD", "GET")
        service = self._service(endpoint, method, environ.get("QUERY_STRING", ""))
        caller = authenticate(
            self.settings,
            self.platform.key,
            self.platform.store,
            wiki.slug,
            _credential(environ.get("HTTP_AUTHORIZATION")),
            None,
        )
        permission, doing = ("WRITE", "pushing") if service == _RECEIVE else ("READ", "cloning")
        problem = refusal(caller, permission, wiki.is_public, doing)
        if problem is not None:
            raise problem
        # Only after the caller may read (or push): a private wiki tells an anonymous caller or
        # a stranger nothing of its settings, whatever git_access is.
        if not wiki.git_access:
            raise NotFound(
                f"git access to the wiki {wiki.slug!r} is off; an admin of the wiki can turn it "
                "on in its settings"
            )
        admit = partial(_admit, turn, caller)
        if turn is not None:
            join_pool(turn, wiki, caller)
        if endpoint == "git_receive_pack":
            env = self._cgi_env(environ, wiki, endpoint, service, caller)
            return self._push(environ, start_response, env, wiki, admit, turn)
        # A clone's request (wants and haves) arrives whole before git runs, so a client
        # trickling it holds a slow-body place (a member) or is cut (anyone else), never git.
        writer = caller.role is not None
        cap = self.settings.git_push_max_bytes
        body = receive_body(environ, cap, self.slow, writer, *_pools_of(turn))
        held = ExitStack()
        if body is not None:
            held.callback(body.close)
        try:
            env = self._cgi_env(environ, wiki, endpoint, service, caller)
            admit()
        except BaseException:
            held.close()
            raise
        return self._run(environ, start_response, env, held)

    def _push(
        self,
        environ,
        start_response,
        env: dict,
        wiki: Wiki,
        admit,
        turn: Turn | None,
    ):
        """Spool the push's body (a slow one takes a slow-body place of `turn`'s pool), then run
        receive-pack on it under the wiki's write lock (waited for in a place of the host's
        `write_waits`), then its turn; record the usage once it ended."""
        if not os.access(self.hooks / "pre-receive", os.X_OK):
            # git would skip the hook without a word, and with it every push rule.
            log.error("git's pre-receive hook in %s cannot run: pushes refused", self.hooks)
            raise Unavailable("pushing is unavailable on this server right now; try again later")
        if environ.get("HTTP_CONTENT_ENCODING", "identity").strip().lower() != "identity":
            # git never compresses a push (its pack is compressed already); inflated, a small
            # body could carry millions of ref updates, each a few git runs.
            raise BadRequest("push refused: send its body uncompressed (no Content-Encoding)")
        length = environ.get("CONTENT_LENGTH", "")
        if length.isdigit() and int(length) > self._drain_limit():
            raise self._too_large()
        held = ExitStack()
        try:
            try:
                folder = self.settings.wiki_dir(wiki.slug)
                body = held.enter_context(self._spool(environ, folder, turn))
            except _PushTooLarge as refused:
                reason = f"push over {self.settings.git_push_max_bytes} bytes"
                return self._report_refusal(refused, refused.head, reason)(environ, start_response)
            env["CONTENT_LENGTH"] = str(body.seek(0, os.SEEK_END))  # what came, chunked or not
            body.seek(0)
            head = body.read(_COMMANDS_BYTES)
            _check_commands(head)
            body.seek(0)
            waits = self.write_waits
            waiting = partial(waits.waiting, turn) if waits is not None else None
            try:
                # The lock before the turn, as other writes: a push waiting for it holds no
                # turn of its pool, so the pusher's views go on (app.wiki.turns.WriteWaits).
                lock = held.enter_context(wiki_write_lock(folder, WRITE_WAIT, waiting))
                admit()  # the body came at the pusher's pace; receive-pack computes in the turn
            except (WikiBusy, Unavailable) as busy:
                # Said in git's answer: git showed only "HTTP 503" (eighteenth review).
                reason = f"wiki busy, try again in {busy.retry_after or 1} s"
                held.close()  # the spooled body
                return self._report_refusal(busy, head, reason)(environ, start_response)
            repo = self.settings.repo_path(wiki.slug)
            if wikis.only_created(repo):
                env["WIKI_PUSH_IMPORT"] = "1"
                env.update(_config({"receive.denyNonFastForwards": "false"}, env))
            repository = held.enter_context(git.Repo(repo))  # one handle for before and after
            held.callback(self._after_push, wiki.slug, repository, head_commit(repository))
            return self._run(environ, start_response, env, held, body, lock)
        except BaseException as error:
            # A refusal of ours wrote nothing; anything else may have stopped the push midway:
            # the lock's next holder puts the files back (app.core.locks.wiki_write_lock).
            if isinstance(error, RobotError):
                held.close()
            else:
                held.__exit__(type(error), error, error.__traceback__)
            raise

    def _spool(self, environ, folder: Path, turn: Turn | None):
        """The request body, read whole into a temporary file in `folder` (returned at its end).

        Still arriving after app.web.bodies.SLOW_AFTER, it takes one of the host's slow-body
        places for `turn`'s pool, or is refused (Unavailable, 503 with Retry-After): four pushers
        trickling their packs would hold every worker.

        The file has no name (unlinked at once), so a worker killed midway leaves nothing. A
        body over the cap is read on (and dropped) to its end, up to _drain_limit(), then
        _PushTooLarge (git, its upload done, shows the refusal); past that it is
        PayloadTooLarge at once. One that ends before its Content-Length said is BadRequest
        (the pusher went away: receive-pack would only fail on the half pack).
        """
        spool = tempfile.TemporaryFile(dir=folder, prefix=".push-")
        sock = environ.get("gunicorn.socket")
        keepalive = KeepAlive(TRANSFER_LONGEST, TRANSFER_MIN_RATE, sock=sock).start()
        watch = watch_body(environ, self.slow, True, *_pools_of(turn))
        cap = self.settings.git_push_max_bytes
        try:
            stream, total = get_input_stream(environ), 0
            while chunk := read_chunk(stream):
                total += len(chunk)
                if total > self._drain_limit():
                    raise self._too_large()
                if total <= cap:
                    spool.write(chunk)
                keepalive.moved(len(chunk))
            if total > cap:
                spool.seek(0)
                raise _PushTooLarge(self._too_large().message, spool.read(_CHUNK))
            declared = environ.get("CONTENT_LENGTH", "")
            if declared.isdigit() and total < int(declared):
                raise BadRequest(
                    f"push refused: its body ended after {total} of {declared} bytes; nothing "
                    "was changed. Push again"
                )
            spool.flush()
            return spool
        except BaseException as error:
            spool.close()
            if watch is not None and watch.cut and isinstance(error, BadRequest):
                raise watch.refusal() from None
            raise
        finally:
            keepalive.stop()
            if watch is not None:
                watch.stop()

    def _service(self, endpoint: str, method: str, query: str) -> str:
        """Which git service the request is for; NotFound for anything but the smart protocol."""
        if endpoint == "git_info_refs" and method in ("GET", "HEAD"):
            service = query.removeprefix("service=")
            if query.startswith("service=") and service in (_UPLOAD, _RECEIVE):
                return service
        elif endpoint == "git_upload_pack" and method == "POST":
            return _UPLOAD
        elif endpoint == "git_receive_pack" and method == "POST":
            return _RECEIVE
        raise NotFound(
            "only git's smart HTTP protocol is served here: clone with git 1.6.6 or newer"
        )

    def _report_refusal(self, refused: RobotError, head: bytes, reason: str):
        """Refuse a push (`head`: its body's first bytes, its commands) in git's own answer,
        so the pusher sees why: `refused`'s message and `reason` (a few words per ref).

        git prints nothing of a 4xx or 5xx body to a push but "RPC failed; HTTP 413" (and
        then "Everything up-to-date"). Answered as receive-pack would: the message on side
        band 2 (`remote: ...`) and a report-status naming every ref `ng` ("[remote
        rejected]"). A request whose commands cannot be read gets the plain refusal.
        """
        parsed = _push_commands(head)
        if parsed is None:
            return _refused(refused)
        refs, capabilities = parsed
        report = _pkt(f"unpack {reason}\n".encode())
        report += b"".join(_pkt(f"ng {ref} {reason}\n".encode()) for ref in refs) + b"0000"
        if "report-status" not in capabilities and "report-status-v2" not in capabilities:
            report = b""
        if "side-band-64k" in capabilities or "side-band" in capabilities:
            size = 65515 if "side-band-64k" in capabilities else 995
            body = _pkt(b"\x02" + f"{refused.message}\n".encode()[: size - 1])
            body += b"".join(
                _pkt(b"\x01" + report[at : at + size - 1]) for at in range(0, len(report), size - 1)
            )
            body += b"0000"
        else:
            body = report
        response = Response(body, 200, content_type="application/x-git-receive-pack-result")
        response.headers["Cache-Control"] = "no-cache"
        return response

    def _drain_limit(self) -> int:
        cap = self.settings.git_push_max_bytes
        return cap + max(cap, _DRAIN_MIN)

    def _too_large(self) -> PayloadTooLarge:
        cap = self.settings.git_push_max_bytes
        return PayloadTooLarge(
            f"push refused: it is larger than {cap} bytes, the most one push may send here; "
            "nothing was changed. Push fewer commits at a time, or leave large files out"
        )

    def _cgi_env(self, environ, wiki: Wiki, endpoint: str, service: str, caller) -> dict:
        """The environment of `git http-backend`: the CGI request and the git config to use."""
        pushing = service == _RECEIVE
        name, email = caller.git_identity(self.settings.platform_domain)
        env = {
            "PATH": safe_path(),
            "HOME": str(self.settings.wiki_dir(wiki.slug)),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_PROJECT_ROOT": str(self.settings.repo_path(wiki.slug)),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": environ.get("REQUEST_METHOD", "GET"),
            "PATH_INFO": _ENDPOINT_PATHS[endpoint],
            "QUERY_STRING": f"service={service}" if endpoint == "git_info_refs" else "",
            "REMOTE_USER": caller.handle or caller.did or "anonymous",
            "REMOTE_ADDR": environ.get("REMOTE_ADDR", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            # The reflog says who pushed.
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
            **LITERAL_PATHSPECS,  # its hooks (the push rules) too
        }
        # A gzipped body reaches git inflated (_Inflated), to its end: its length is unknown.
        if environ.get("CONTENT_LENGTH", "").isdigit() and "HTTP_CONTENT_ENCODING" not in environ:
            env["CONTENT_LENGTH"] = environ["CONTENT_LENGTH"]
        if _PROTOCOL_RE.fullmatch(environ.get("HTTP_GIT_PROTOCOL", "")):
            env["HTTP_GIT_PROTOCOL"] = environ["HTTP_GIT_PROTOCOL"]
        cap = str(self.settings.git_push_max_bytes)
        config = {
            "http.uploadpack": "true",
            "http.receivepack": "true" if pushing else "false",
            "core.hooksPath": str(self.hooks),
            "receive.denyCurrentBranch": "updateInstead",  # Otterwiki reads the working tree
            # A push's automatic gc runs within it (holding the lock, counted, ended with it),
            # never detached in a session of its own, out of reach.
            "gc.autoDetach": "false",
            "receive.denyDeletes": "true",
            "receive.denyNonFastForwards": "true",
            "receive.fsckObjects": "true",
            "receive.maxInputSize": cap,
            # The platform's own record (the creation commit): not cloned, never pushed to.
            "transfer.hideRefs": wikis.CREATED_REF,
        }
        # fsck only warns of these by default; a wiki refuses them.
        for message in ("hasDot", "hasDotdot", "hasDotgit", "fullPathname", "badFilemode"):
            config[f"receive.fsck.{message}"] = "error"
        env.update(_config(config, env))
        if pushing:
            env.update(
                WIKI_PUSH_BRANCH=wikis.BRANCH,
                WIKI_PUSH_MAX_BYTES=cap,
                WIKI_PUSH_MAX_TREE_BYTES=str(self.settings.wiki_max_bytes),
                WIKI_PUSH_MAX_PAGE_BYTES=str(MAX_CONTENT_BYTES),
                WIKI_PUSH_LOWERCASE_PAGES=(
                    "0" if retains_page_name_case(self.settings.wiki_db_path(wiki.slug)) else "1"
                ),
                WIKI_PUSHER_DID=caller.did or "",
            )
        return env

    def _run(
        self,
        environ,
        start_response,
        env: dict,
        held: ExitStack | None,
        spooled=None,
        lock: int | None = None,
    ):
        """Run http-backend on the request; stream its answer; close `held` (a push's lock,
        spool and after-work; a clone's received body) once it is out. A push reads its
        `spooled` body; anything else its request's body (inflated here, if gzipped).

        git runs in a session of its own, ended whole with http-backend. A push's git holds
        the wiki's write `lock` too (the descriptor, inherited): should its worker be killed
        (a timeout, a reload), git would otherwise go on updating the working tree outside
        the lock, and undo the next edit made there.
        """
        body = get_input_stream(environ)
        gzipped = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower() in ("gzip", "x-gzip")
        process = subprocess.Popen(
            ["git", "http-backend"],
            stdin=subprocess.PIPE if spooled is None else spooled,
            stdout=subprocess.PIPE,
            cwd=env["GIT_PROJECT_ROOT"],
            env=env,
            pass_fds=() if lock is None else (lock,),
            start_new_session=True,
        )
        cleanup = ExitStack()
        cleanup.callback(_reap, process)
        sock = environ.get("gunicorn.socket")
        keepalive = KeepAlive(TRANSFER_LONGEST, TRANSFER_MIN_RATE, sock=sock)
        keepalive.watch(process.pid).start()
        cleanup.callback(keepalive.stop)
        if spooled is not None:
            # The push is in whole: git takes it in (index-pack, fsck, the push rules) at its
            # own pace, sending nothing; a push of 250k commits within the size cap outlasted
            # the worker timeout, and the worker was killed after the branch had moved.
            keepalive.moving_while(_working(process))
        if held is not None:
            cleanup.push(held)
        cap = _UPLOAD_REQUEST_MAX
        try:
            if spooled is None:
                source = _Inflated(body) if gzipped else body
                pump = threading.Thread(
                    target=_pump, args=(source, process.stdin, cap, keepalive), daemon=True
                )
                pump.start()
            status, headers = _cgi_headers(process.stdout)
        except BaseException:
            cleanup.close()
            raise
        start_response(status, headers)
        return _stream(process.stdout, cleanup, keepalive)

    def _after_push(self, slug: str, repository: git.Repo, head_before: str | None) -> None:
        """Once receive-pack ended, still under the lock: record the usage if HEAD moved (read
        again from `repository`: GitPython reads refs from the files each time)."""
        try:
            if head_commit(repository) != head_before:
                usage.record(self.platform.store, slug, Path(repository.working_tree_dir))
        except Exception:
            log.exception("could not record the usage of wiki %s after a push", slug)


def install_hook(folder: Path) -> Path:
    """Write git's pre-receive hook (push_rules.py run by this Python) into `folder`, made if
    missing, executable; return `folder`, the `core.hooksPath` of every push.

    Replaced in one rename, so a push running meanwhile sees the old hook or the new, whole.
    """
    folder.mkdir(parents=True, exist_ok=True)
    text = _HOOK.format(python=shlex.quote(sys.executable), rules=shlex.quote(str(_PUSH_RULES)))
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".pre-receive-")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.chmod(temporary, 0o755)
        os.replace(temporary, folder / "pre-receive")
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return folder


class _PushTooLarge(PayloadTooLarge):
    """A push body over the cap, read to its end; `head` is its first bytes (its commands)."""

    def __init__(self, message: str, head: bytes):
        super().__init__(message)
        self.head = head


def _pkt(data: bytes) -> bytes:
    """`data` as one of git's pkt-lines (four hex digits of length, then the data)."""
    return f"{len(data) + 4:04x}".encode() + data


def _push_commands(head: bytes) -> tuple[list[str], set[str]] | None:
    """The refs and capabilities of a receive-pack request starting with `head`, or None.

    The request starts with pkt-lines `<old> <new> <ref>` (the first with NUL and the
    capabilities; `shallow <sha>` lines may come before), ended by a flush (`0000`).
    """
    refs, capabilities, at = [], set(), 0
    while at + 4 <= len(head):
        try:
            size = int(head[at : at + 4], 16)
        except ValueError:
            return None
        if size == 0:
            return (refs, capabilities) if refs else None
        if size < 4 or at + size > len(head):
            return None
        line, _, offered = head[at + 4 : at + size].rstrip(b"\n").partition(b"\0")
        at += size
        if line.startswith(b"shallow "):
            continue
        fields = line.decode("utf-8", "replace").split(" ")
        if len(fields) != 3:
            return None
        if not refs:
            capabilities = set(offered.decode("ascii", "replace").split())
        refs.append(fields[2])
    return None


def _config(values: dict[str, str], env: dict) -> dict[str, str]:
    """`values` as GIT_CONFIG_COUNT/KEY_n/VALUE_n, after any already in `env` (git >= 2.31)."""
    start = int(env.get("GIT_CONFIG_COUNT", "0"))
    out = {"GIT_CONFIG_COUNT": str(start + len(values))}
    for index, (key, value) in enumerate(values.items(), start):
        out[f"GIT_CONFIG_KEY_{index}"] = key
        out[f"GIT_CONFIG_VALUE_{index}"] = value
    return out


def _pump(body, sink, limit: int, keepalive: KeepAlive) -> bool:
    """Copy the request `body` into http-backend's stdin (`sink`), then close it.

    Returns True, having stopped reading, once more than `limit` bytes came: git then sees the
    request end early and keeps nothing of it.
    """
    total = 0
    try:
        while chunk := body.read(_CHUNK):
            total += len(chunk)
            if total > limit:
                return True
            sink.write(chunk)
            keepalive.moved(len(chunk))
    except OSError:
        pass  # http-backend stopped reading (it refused the request): its answer says why
    finally:
        try:
            sink.close()
        except OSError:
            pass
    return False


def _cgi_headers(stdout) -> tuple[str, list[tuple[str, str]]]:
    """Read http-backend's CGI headers: (WSGI status line, headers)."""
    status, headers = "200 OK", []
    for _ in range(_MAX_HEADER_LINES):
        line = stdout.readline(_MAX_HEADER_LINE).decode("latin-1").rstrip("\r\n")
        if not line:
            return status, headers + [("X-Content-Type-Options", "nosniff")]
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = value.strip()
        else:
            headers.append((name.strip(), value.strip()))
    raise RuntimeError("git http-backend wrote no end of its headers")


def _stream(stdout, cleanup: ExitStack, keepalive: KeepAlive):
    try:
        while chunk := stdout.read1(_CHUNK):
            yield chunk
            keepalive.moved(len(chunk))  # counted once the server took it
    finally:
        cleanup.close()


def _reap(process: subprocess.Popen) -> None:
    """Close http-backend's pipes and wait for it to end (killing it if it hangs).

    Its output is closed before the wait: a client that went away mid-clone left git blocked
    writing a full pipe, and the worker waited _EXIT_TIMEOUT for it (30 s). Now git's next
    write fails and it ends; after a whole answer, the pipe was at its end anyway.
    """
    for pipe in (process.stdin, process.stdout):
        if pipe and not pipe.closed:
            try:
                pipe.close()
            except OSError:
                pass
    try:
        process.wait(timeout=_EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    try:
        os.killpg(process.pid, signal.SIGKILL)  # what it started and left running
    except OSError:
        pass  # none left


class _Inflated:
    """A gzipped request body (`read(n)` like a file's), inflated: git's own inflating knows
    no bound, and a few MB of gzip held millions of `have` lines for upload-pack."""

    def __init__(self, body):
        self._body = body
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def read(self, size: int) -> bytes:
        """Up to `size` inflated bytes; b"" at the end (or where the gzip stops making sense:
        git then sees the request end early and refuses it)."""
        while not self._inflate.eof:
            compressed = self._inflate.unconsumed_tail or self._body.read(size)
            if not compressed:
                break
            try:
                data = self._inflate.decompress(compressed, size)
            except zlib.error:
                break
            if data:
                return data
        return b""


def _check_commands(head: bytes) -> None:
    """Refuse a push whose ref updates (at the start of its body, `head`) are more than
    push_rules.MAX_UPDATES, or do not end within _COMMANDS_BYTES: receive-pack holds them all
    in memory and the push rules run a few git processes for each. A body that is no list of
    updates at all is left to receive-pack, which says what is wrong."""
    parsed = _push_commands(head)
    too_many = len(parsed[0]) > MAX_UPDATES if parsed else len(head) >= _COMMANDS_BYTES
    if too_many:
        raise BadRequest(
            f"push refused: it updates more than {MAX_UPDATES} refs; a wiki has one branch, "
            f"{wikis.BRANCH}: push with 'git push <remote> HEAD:{wikis.BRANCH}'"
        )


def _working(process: subprocess.Popen):
    """A check (no arguments) whether `process` and the processes under it used CPU since the
    last check: git taking a push in computes; git blocked writing to a client that stopped
    reading does not, and must not keep its worker alive (it once could for 15 minutes)."""
    last = [-1.0]

    def working() -> bool:
        if process.poll() is not None:
            return False
        spent = tree_cpu(process.pid)
        worked, last[0] = spent > last[0], spent
        return worked

    return working


def _refused(error: RobotError):
    """A refusal git shows its user: plain text (`remote: ...`), with Basic for a 401 and
    Retry-After for a 429 or 503 that names one."""
    response = text_response(error.status, error.message)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="robot wiki", charset="UTF-8"'
    response.headers.update(error_headers(error))
    return response


def _pools_of(turn: Turn | None) -> tuple[Path | None, Path | None]:
    """(the request's pool, its owner's folder) whose slow-transfer places it takes
    (app.web.bodies.SlowPlaces.take); (None, None) without a turn: no limit but the host's."""
    return (turn.pool, turn.tenancy) if turn is not None else (None, None)


def _admit(turn: Turn | None, caller: Caller) -> None:
    """Let git compute: take a turn of the request's pool (app.wiki.turns).

    Raises WikiBusy (429) as Turn.take() does; for an anonymous caller, Unauthorized (401,
    with Retry-After) instead: git sends the credentials it has (a token in the URL, a
    credential helper's) only when challenged, so a member cloning a public wiki arrives
    anonymous, among the crowd; challenged, it comes back signed in, in a pool of its own.
    """
    if turn is None:
        return
    try:
        turn.take()
    except WikiBusy as busy:
        if not caller.is_anonymous:
            raise
        raise Unauthorized(
            f"{busy.message}. Members of the wiki get in at once: give a wiki token as the "
            "password",
            retry_after=busy.retry_after,
        ) from None
