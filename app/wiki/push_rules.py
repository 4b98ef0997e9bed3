"""The rules a git push to a wiki must pass: git's pre-receive hook, on the standard library
(and app.core.provenance, itself standard library only).

git runs this file (through the hook git_http.install_hook writes) inside `git receive-pack`,
with the pushed objects still in quarantine: nothing refused here ever reaches the repository.
It reads the updates on stdin (`<old> <new> <ref>` a line) and the environment the wiki service gave
`git http-backend` (app/wiki/git_http.py):

- `WIKI_PUSH_BRANCH`: the one branch a push may update (the branch the wiki shows);
- `WIKI_PUSH_MAX_BYTES`: the largest file (blob) a push may carry, in bytes;
- `WIKI_PUSH_MAX_TREE_BYTES`: the most the files of the pushed tip may add up to, in bytes (one
  blob under many names costs its size in the working tree each time);
- `WIKI_PUSH_MAX_PAGE_BYTES`: the largest page (.md) a push may carry, in bytes (the page
  API's cap: every view of a page reads, renders or highlights it whole);
- `WIKI_PUSH_LOWERCASE_PAGES`: "1" when the wiki lowercases page names (Otterwiki's
  RETAIN_PAGE_NAME_CASE is off): a page whose path has a capital letter could not be opened;
- `WIKI_PUSH_IMPORT`: "1" when the wiki's HEAD is still the creation commit the platform
  recorded (app.core.wikis.only_created), so a push may replace it (importing an existing
  wiki); else a rewrite is refused.

Every path in every new commit is checked, not only the tip: a revert in the UI would bring an
old commit's files back into the working tree. Refused: a path with a `.git` component (any
case), a file git reads as settings (`.gitattributes`, `.gitmodules`, `.gitignore`,
`.mailmap`; see `path_problem`), a path that is not UTF-8 or holds control or format
characters, a page (`.md`) that is not UTF-8 text, a submodule, a file over the size cap, any
symbolic link (see `link_problem`), a tip whose files add up past the tree cap or number more
than MAX_FILES, names in the tip the wiki could not open (see `name_problems`), a commit over
MAX_COMMIT_BYTES, a commit whose author, committer, message or any other field is not UTF-8,
more than MAX_UPDATES ref updates, and a commit claiming to be made on someone else's behalf
(see `commit_problems`). Exit status 1 refuses the whole push; each reason goes to stderr,
which the pusher's git shows as `remote: ...`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

# git runs this file as a script (`python -I`): the project's root is not on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from app.core.provenance import did_from_email  # noqa: E402 (standard library only)
from app.core.provenance import neutralise  # noqa: E402
from app.pages.names import collision_key  # noqa: E402 (standard library only)
from app.pages.names import unopenable_problem  # noqa: E402

_ZERO = re.compile(r"0+")
_SYMLINK = "120000"
_GITLINK = "160000"
_DELETED = "000000"
# Files git reads as settings of the tree itself, not as content: .gitignore makes the wiki's
# own later writes of matching pages untracked (never committed), .mailmap rewrites who made
# every change in `git log`'s answers, the owner's included.
_GIT_SETTINGS = frozenset({".gitattributes", ".gitmodules", ".gitignore", ".mailmap"})
# A wiki has one branch: a push updates it once (`git push --all` or `--tags` a few refs more,
# each refused by name). Each update costs a few git runs, so a flood of them is refused whole.
MAX_UPDATES = 32
# Files the pushed tip may hold, and paths all new commits may change: a tree of a million
# entries (one blob, many names) fits in a small pack, and every page view lists the pages
# (60,000 made each view 10 MB, 3 s).
MAX_FILES = 10_000
# The file names a refusal lists, of all the tip's that the wiki could not open.
MAX_NAMES_TOLD = 20
MAX_CHANGED_PATHS = 20 * MAX_FILES
# A commit's size (its message, mostly), and all new commits' together: every history view
# and feed reads commits whole, and so does this check (in batches of COMMIT_BATCH_BYTES).
MAX_COMMIT_BYTES = 64 * 1024
MAX_COMMITS_BYTES = 64 * 1024 * 1024
COMMIT_BATCH_BYTES = 8 * 1024 * 1024


def _git(*args: str, stdin: bytes | None = None) -> bytes:
    done = subprocess.run(["git", *args], input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"git {args[0]} failed: {reason}")
    return done.stdout


def _is_ancestor(old: str, new: str) -> bool:
    done = subprocess.run(["git", "merge-base", "--is-ancestor", old, new], capture_output=True)
    return done.returncode == 0


def _show(path: str) -> str:
    return repr(path if len(path) <= 120 else path[:120] + "...")


def path_problem(path: str) -> str | None:
    """Return why a file path may not be in a wiki, or None; `path` is as git lists it."""
    if any(part.casefold() == ".git" for part in path.split("/")):
        return f"{_show(path)}: nothing named .git may be in a wiki (it is git's own data)"
    # .gitattributes would change what the wiki's own git does with its files: line endings and
    # filters on checkout and commit, diffs, merges, and the export (export-ignore drops files,
    # export-subst rewrites them). .gitmodules configures submodules, which a wiki has none of.
    if any(part.casefold() in _GIT_SETTINGS for part in path.split("/")):
        return (
            f"{_show(path)}: a wiki holds no .gitattributes, .gitmodules, .gitignore or "
            ".mailmap (they would change how the wiki's own git treats its files and history); "
            "remove it and push again"
        )
    # Decoded with surrogateescape: a surrogate is a byte that was no UTF-8. Otterwiki, GitPython
    # and the page API read every name as UTF-8 text, and would fail on the whole wiki.
    if any("\ud800" <= ch <= "\udfff" for ch in path):
        return f"{_show(path)}: a file name must be UTF-8 text"
    if any(unicodedata.category(ch).startswith("C") for ch in path):
        return f"{_show(path)}: a file name may not hold control or invisible format characters"
    return None


def link_problem(path: str) -> str:
    """Why the symbolic link at `path` may not be in a wiki: no symlink may, wherever it points.

    Even a link that stays inside the repository breaks the wiki: Otterwiki and the page API
    write a page through it (or fail on it: a dangling target, a link to a folder, a loop), so
    the write commits nothing and leaves the working tree dirty, and every later push is
    refused. A wiki's files are Markdown pages and attachments; a copy does what a link would.
    Deleting a link (one brought before this rule) stays possible.
    """
    return (
        f"symlink {_show(path)}: a wiki holds no symbolic links; commit the file it points to "
        "under this name instead (or leave it out), and push again"
    )


def new_entries(new: str) -> dict[tuple[str, str], str]:
    """Every (path, object) added or changed by the commits `new` brings: {(path, sha): mode}.

    Merges are compared with each parent (-m), so a file from any side is seen; a root commit
    with the empty tree (--root).
    """
    commits = _git("rev-list", new, "--not", "--all")
    if not commits:
        return {}
    raw = _git_capped(
        ("diff-tree", "-r", "-m", "--root", "--no-renames", "--no-commit-id", "-z", "--stdin"),
        commits,
        2 * MAX_CHANGED_PATHS,
        f"the push changes more than {MAX_CHANGED_PATHS} paths; push it in parts",
    )
    tokens = raw.split(b"\0")
    entries = {}
    for meta, path in zip(tokens[0::2], tokens[1::2], strict=False):
        fields = meta.decode("ascii", "replace").lstrip(":").split()
        if len(fields) < 5 or fields[1] == _DELETED:
            continue
        entries[(path.decode("utf-8", "surrogateescape"), fields[3])] = fields[1]
    return entries


def _git_capped(args: tuple[str, ...], stdin: bytes, fields: int, refusal: str) -> bytes:
    """The output of `git ARGS` (fed `stdin`), NUL-separated; RuntimeError(`refusal`), with git
    stopped, once it has more than `fields` fields: held whole, it could fill the memory."""
    with tempfile.TemporaryFile() as feed:
        feed.write(stdin)
        feed.seek(0)
        process = subprocess.Popen(["git", *args], stdin=feed, stdout=subprocess.PIPE)
        chunks, seen = [], 0
        try:
            while chunk := process.stdout.read(1 << 16):
                seen += chunk.count(b"\0")
                if seen > fields:
                    raise _Refused(refusal)
                chunks.append(chunk)
        finally:
            process.kill()
            process.wait()
            process.stdout.close()
    if process.returncode not in (0, -9):
        raise RuntimeError(f"git {args[0]} failed")
    return b"".join(chunks)


class _Refused(RuntimeError):
    """A push refused whole while it was read: the message says why."""


def _tip(commit: str) -> tuple[list[str], int]:
    """The file paths of `commit` as checked out, and their sizes' sum in bytes. Refused once
    there are more than MAX_CHANGED_PATHS: held whole, they could fill the memory."""
    listing = _git_capped(
        ("ls-tree", "-r", "-l", "-z", "--full-tree", commit),
        b"",
        MAX_CHANGED_PATHS,
        f"the pushed wiki holds more than {MAX_CHANGED_PATHS} files, the most a wiki may",
    )
    total, paths = 0, []
    for entry in filter(None, listing.split(b"\0")):
        meta, _, path = entry.partition(b"\t")
        size = meta.split()[-1:]
        total += int(size[0]) if size and size[0].isdigit() else 0
        paths.append(path.decode("utf-8", "surrogateescape"))
    return paths, total


def tree_problems(
    new: str, max_bytes: int, lowercase_pages: bool = False, old: str | None = None
) -> list[str]:
    """Why the files of commit `new` (the pushed tip, as checked out) may not be a wiki's:
    more than MAX_FILES of them, more than `max_bytes` in all (0: no cap), or names the wiki
    could not open (see `name_problems`). Against `old`, the tip it replaces (None: none), only
    what the push adds counts: a wiki already past a cap (through the page API, or before the
    cap) may still push what does not grow it, and a name already there passes."""
    paths, total = _tip(new)
    before, before_total = _tip(old) if old else ([], 0)
    problems = name_problems(paths, lowercase_pages, set(before))
    if len(paths) > MAX_FILES and len(paths) > len(before):
        problems.append(
            f"the pushed wiki holds {len(paths)} files, more than the {MAX_FILES} a wiki may"
        )
    if max_bytes and total > max_bytes and total > before_total:
        problems.append(
            f"the pushed wiki's files add up to {total} bytes, more than the {max_bytes} a wiki "
            "may hold; leave large files out and push again"
        )
    return problems


def name_problems(
    paths: list[str], lowercase_pages: bool, before: frozenset[str] | set[str] = frozenset()
) -> list[str]:
    """Why the file names `paths` (every file of the pushed tip) would leave a file the wiki
    cannot open: a name the page API would refuse, or that Otterwiki opens in another form
    (see app.pages.names.unopenable_problem); two names that are one after Unicode NFC and
    lower case (Otterwiki opens one of them, and a clone on macOS or Windows keeps one); and,
    where the wiki lowercases page names (`lowercase_pages`: Otterwiki's RETAIN_PAGE_NAME_CASE
    is off), a page with a capital letter in its path, or an attachment in a folder with one
    (its page's path). Names in `before` (the tip the push replaces) pass on their own. At
    most MAX_NAMES_TOLD are named, then how many more."""
    problems, seen = [], {}
    pages = {path[:-3] for path in paths if path.endswith(".md")}
    for path in paths:
        other = seen.setdefault(collision_key(path), path)
        if other != path and not (other in before and path in before):
            problems.append(
                f"{_show(other)} and {_show(path)}: the names differ only in case or in Unicode "
                "form (an accented letter as one character or as a letter and an accent), and "
                "the wiki could open only one of them; rename or remove one and push again"
            )
        # path_problem's refusals (content_problems) are told once, there.
        unopenable = (
            None
            if path in before or path_problem(path)
            else unopenable_problem(path, path.rpartition("/")[0] in pages)
        )
        if unopenable:
            problems.append(
                f"{_show(path)}: the wiki could not open this file: {unopenable}; rename it and "
                "push again"
            )
        # A page's whole path, an attachment's folder (its page's path): the wiki looks for
        # them in lower case.
        named = path if path.endswith(".md") else path.rpartition("/")[0]
        if path not in before and lowercase_pages and named != named.lower():
            problems.append(
                f"{_show(path)}: this wiki lowercases page names (its setting 'Retain page name "
                f"case' is off), and could not open this file; name it {_show(path.lower())}, "
                "or turn that setting on first, and push again"
            )
    if len(problems) > MAX_NAMES_TOLD:
        more = len(problems) - MAX_NAMES_TOLD
        problems[MAX_NAMES_TOLD:] = [f"... and {more} more names the wiki could not open"]
    return problems


def _sizes(shas: list[str]) -> dict[str, int]:
    """{sha: size in bytes} of the objects `shas`, asked of git in one batch."""
    if not shas:
        return {}
    stdin = "".join(sha + "\n" for sha in shas).encode()
    listing = _git("cat-file", "--batch-check=%(objectname) %(objectsize)", stdin=stdin)
    sizes = {}
    for line in listing.decode("ascii", "replace").splitlines():
        sha, _, size = line.partition(" ")
        sizes[sha] = int(size) if size.isdigit() else 0
    return sizes


def content_problems(new: str, max_bytes: int, max_page_bytes: int = 0) -> list[str]:
    """Every reason the files of the commits `new` brings may not be in a wiki: a file over
    `max_bytes`, a page (.md) over `max_page_bytes` (0: no cap of its own), and the rest."""
    entries = sorted(new_entries(new).items())
    sizes = _sizes(sorted({sha for (_, sha), mode in entries if mode != _GITLINK}))
    problems = []
    for (path, sha), mode in entries:
        problem = path_problem(path)
        if problem is None and mode == _GITLINK:
            problem = f"{_show(path)}: submodules are not supported in a wiki"
        elif problem is None and mode == _SYMLINK:
            problem = link_problem(path)
        elif problem is None and sizes.get(sha, 0) > max_bytes:
            problem = f"{_show(path)} is {sizes[sha]} bytes; a file may be at most {max_bytes}"
        elif problem is None and max_page_bytes and _is_page(path, mode):
            if sizes.get(sha, 0) > max_page_bytes:
                problem = (
                    f"{_show(path)} is {sizes[sha]} bytes; a page may be at most "
                    f"{max_page_bytes} (as through the page API): split it, or attach the file"
                )
        if problem:
            problems.append(problem)
    # Otterwiki, the page API and search read every page as UTF-8: one that is not would be
    # listed but neither shown nor found.
    not_utf8 = _not_utf8(sorted({sha for (path, sha), mode in entries if _is_page(path, mode)}))
    for (path, sha), mode in entries:
        if sha in not_utf8 and _is_page(path, mode):
            problems.append(
                f"{_show(path)} is not UTF-8 text: a page is Markdown in UTF-8 (convert it, "
                "e.g. with iconv, and push again)"
            )
    return problems


def _is_page(path: str, mode: str) -> bool:
    return mode not in (_SYMLINK, _GITLINK) and path.lower().endswith(".md")


def _objects(shas: list[str]) -> list[tuple[str, bytes]]:
    """(id, raw content) of each object of `shas`, read in one `git cat-file --batch` and
    taken by the size git gives, so no byte of the content can be read as a separator."""
    if not shas:
        return []
    out = _git("cat-file", "--batch", stdin="".join(f"{sha}\n" for sha in shas).encode())
    objects, at = [], 0
    for _ in shas:
        end = out.index(b"\n", at)
        sha, _kind, size = out[at:end].decode("ascii").split()
        objects.append((sha, out[end + 1 : end + 1 + int(size)]))
        at = end + 1 + int(size) + 1  # each object's content is followed by a newline
    return objects


def _batched_objects(shas: list[str], sizes: dict[str, int]):
    """(id, raw content) of each object of `shas`, read COMMIT_BATCH_BYTES at a time (by
    `sizes`): read at once, a thousand 1 MB commits took 2 GB of memory."""
    batch, held = [], 0
    for sha in shas:
        batch.append(sha)
        held += sizes.get(sha, 0)
        if held >= COMMIT_BATCH_BYTES:
            yield from _objects(batch)
            batch, held = [], 0
    yield from _objects(batch)


def _not_utf8(shas: list[str]) -> set[str]:
    """The blobs among `shas` that are not UTF-8 (each is within the size cap, checked
    before)."""
    return {sha for sha, data in _objects(shas) if not _is_utf8(data)}


def _commit_fields(raw: bytes) -> tuple[dict[bytes, list[bytes]], str]:
    """(header lines by name, message) of a raw commit object; a header's continuation
    lines (a signature's) are not counted."""
    header, _, message = raw.partition(b"\n\n")
    headers: dict[bytes, list[bytes]] = {}
    for line in header.split(b"\n"):
        if line and not line.startswith(b" "):
            name, _, value = line.partition(b" ")
            headers.setdefault(name, []).append(value)
    return headers, message.decode("utf-8", "replace")


def _not_utf8_fields(raw: bytes) -> list[str]:
    """The fields of a raw commit object that are not UTF-8, in order: `author name`,
    `author email`, `committer name`, `committer email` (or the whole line, when the bytes
    are elsewhere in it), any other header by its name, and `message`."""
    header, _, message = raw.partition(b"\n\n")
    fields, name = [], b""
    for line in header.split(b"\n"):
        if not line.startswith(b" "):  # a continuation line (a signature's) is its header's
            name, _, value = line.partition(b" ")
        if _is_utf8(line):
            continue
        label = name.decode("ascii", "replace")
        if name in (b"author", b"committer"):
            person, _, rest = value.partition(b" <")
            parts = (("name", person), ("email", rest.partition(b">")[0]))
            bad = [f"{label} {part}" for part, text in parts if not _is_utf8(text)]
            fields += bad or [f"{label} line"]
        else:
            fields.append(label)
    if not _is_utf8(message):
        fields.append("message")
    return list(dict.fromkeys(fields))


def _listed(words: list[str]) -> str:
    """`words` as an English list: "a", "a and b", "a, b and c"."""
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _address(ident: bytes) -> str:
    """The address of an author or committer line's value: `Name <address> time zone`."""
    return ident.partition(b"<")[2].partition(b">")[0].decode("utf-8", "replace")


def commit_problems(new: str, pusher_did: str) -> list[str]:
    """Every reason the commits `new` brings may not be in a wiki as they claim to be made.

    The page API, history and MCP read who made a change from its author address (a
    DID-derived platform address names a person) and from robot's `Via:`/`On-Behalf-Of:`
    trailer (app/core/provenance.py). A push may not bring either on someone else's behalf: an
    author or committer address naming another person's DID, or a message line that looks like
    robot's trailer (which only robot writes). Commits are read whole (`git cat-file`): a
    separator byte in a message once hid a forged trailer after it from this check. A commit
    with a field that is not UTF-8 is refused too, naming the commit and the fields.
    """
    commits = _git("rev-list", new, "--not", "--all").decode("ascii").split()
    sizes = _sizes(commits)
    total = sum(sizes.values())
    if total > MAX_COMMITS_BYTES:
        return [
            f"the push's {len(commits)} new commits add up to {total} bytes, more than the "
            f"{MAX_COMMITS_BYTES} one push may bring; push them in parts"
        ]
    problems = [
        f"commit {sha[:12]} is {sizes[sha]} bytes, more than the {MAX_COMMIT_BYTES} a commit may "
        "be (its message, mostly); shorten it and push again"
        for sha in commits
        if sizes.get(sha, 0) > MAX_COMMIT_BYTES
    ]
    readable = [sha for sha in commits if sizes.get(sha, 0) <= MAX_COMMIT_BYTES]
    for sha, raw in _batched_objects(readable, sizes):
        headers, message = _commit_fields(raw)
        # git log and GitPython read the last author line, Otterwiki the first: a second
        # one named another person in history while this check read the pusher.
        for name in (b"author", b"committer"):
            if len(headers.get(name, [])) != 1:
                problems.append(
                    f"commit {sha[:12]} has {len(headers.get(name, []))} {name.decode()} "
                    "lines, not one; make it again with git commit and push again"
                )
        # Otterwiki, GitPython and git log's readers take names, addresses and messages as
        # UTF-8: one byte that is not made the changelog, history, blame and diff views 500.
        bad = _not_utf8_fields(raw)
        if bad:
            problems.append(
                f"commit {sha[:12]}: its {_listed(bad)} {'is' if len(bad) == 1 else 'are'} not "
                "UTF-8; a wiki's history is UTF-8 text: set user.name, user.email and the "
                "message in UTF-8 (git commit --amend --reset-author, or git rebase -i), and "
                "push again"
            )
        # git log shows a message re-encoded from its `encoding`; read here as UTF-8, a
        # forged trailer in IBM037 passed this check and showed in history.
        encodings = [value.strip().lower() for value in headers.get(b"encoding", [])]
        if any(encoding not in (b"utf-8", b"utf8") for encoding in encodings):
            problems.append(
                f"commit {sha[:12]}: its message is not UTF-8 (encoding "
                f"{b', '.join(encodings).decode('utf-8', 'replace')}); a wiki's commits are "
                "UTF-8: set i18n.commitEncoding to utf-8, commit again and push again"
            )
        author = [_address(value) for value in headers.get(b"author", [])]
        committer = [_address(value) for value in headers.get(b"committer", [])]
        for address in {*author, *committer}:
            did = did_from_email(address)
            if did is not None and did != pusher_did:
                problems.append(
                    f"commit {sha[:12]} names {address} as its author or committer: a robot "
                    "address of another person; commit as yourself and push again"
                )
        if neutralise(message) != message:
            problems.append(
                f"commit {sha[:12]}: its message has a 'Via:' or 'On-Behalf-Of:' line, which "
                "only robot writes; reword it (git commit --amend, git rebase -i) and push again"
            )
    return problems


def update_problems(
    old: str,
    new: str,
    ref: str,
    branch: str,
    max_bytes: int,
    may_replace: bool,
    pusher_did: str = "",
    max_tree_bytes: int = 0,
    lowercase_pages: bool = False,
    max_page_bytes: int = 0,
) -> list[str]:
    """Every reason the update of `ref` from `old` to `new` (object ids) is refused; a tree
    cap of 0 checks no totals; `lowercase_pages`: the wiki lowercases page names."""
    wanted = f"refs/heads/{branch}"
    if ref != wanted:
        return [
            f"{ref} refused: a wiki has one branch, {branch}; push to it with "
            f"'git push <remote> HEAD:{branch}'"
        ]
    if _ZERO.fullmatch(new):
        return [f"deleting {branch} is refused: it holds the wiki"]
    if not _ZERO.fullmatch(old) and not may_replace and not _is_ancestor(old, new):
        return [
            f"{branch} refused: the push rewrites the wiki's history (not a fast-forward). "
            "Pull, merge or rebase your changes on top, and push again; nothing was changed"
        ]
    tip = tree_problems(new, max_tree_bytes, lowercase_pages, None if _ZERO.fullmatch(old) else old)
    pages = content_problems(new, max_bytes, max_page_bytes)
    return tip + pages + commit_problems(new, pusher_did)


def main() -> int:
    """Check the updates on stdin; return the hook's exit status (0 accept, 1 refuse)."""
    branch = os.environ.get("WIKI_PUSH_BRANCH", "main")
    max_bytes = int(os.environ.get("WIKI_PUSH_MAX_BYTES", "0") or 0)
    may_replace = os.environ.get("WIKI_PUSH_IMPORT") == "1"
    pusher_did = os.environ.get("WIKI_PUSHER_DID", "")
    max_tree_bytes = int(os.environ.get("WIKI_PUSH_MAX_TREE_BYTES", "0") or 0)
    lowercase_pages = os.environ.get("WIKI_PUSH_LOWERCASE_PAGES") == "1"
    max_page_bytes = int(os.environ.get("WIKI_PUSH_MAX_PAGE_BYTES", "0") or 0)
    updates = [line.split() for line in sys.stdin.read().splitlines()]
    problems = []
    if len(updates) > MAX_UPDATES:
        problems.append(
            f"the push updates {len(updates)} refs; a wiki has one branch, {branch}: push it "
            f"with 'git push <remote> HEAD:{branch}'"
        )
    try:
        for fields in updates if not problems else []:
            if len(fields) == 3:
                problems += update_problems(
                    *fields,
                    branch,
                    max_bytes,
                    may_replace,
                    pusher_did,
                    max_tree_bytes,
                    lowercase_pages,
                    max_page_bytes,
                )
    except _Refused as refused:
        problems.append(str(refused))
    except (RuntimeError, ValueError) as error:  # git could not read what was pushed
        problems.append(f"the push could not be checked: {error}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("the push was refused; the wiki is unchanged", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
