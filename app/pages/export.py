"""A whole wiki as one download: its files at HEAD, archived by `git archive` and streamed.

The download holds the files exactly as committed, whatever `.gitattributes` the wiki holds
(pushes refuse them now; a wiki may have one from before): `export-ignore` would leave files
out, `export-subst`, `ident`, `text`/`eol` and filters would rewrite them. git 2.39 has no
GIT_ATTR_SOURCE, so the repository's own `info/attributes`, which outranks every
`.gitattributes`, sets each of them back to unspecified (git's default).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from app.core.errors import BadRequest
from app.core.errors import NotFound

# Download formats: git archive's --format and the file's media type.
FORMATS = {"zip": "application/zip", "tar.gz": "application/gzip"}
_CHUNK = 64 * 1024
# Every attribute that changes what git archive writes, set back to unspecified for every path.
NEUTRAL_ATTRIBUTES = (
    "* !export-ignore !export-subst !ident !filter !text !eol !crlf !working-tree-encoding\n"
)


def archive(repo: Path, slug: str, fmt: str) -> tuple[str, str, Iterator[bytes]]:
    """Archive the files of wiki `slug` (repository work tree `repo`) at HEAD in format `fmt`.

    Returns (file name `{slug}-{short sha}.{fmt}`, media type, chunks of the archive as git
    writes them). The files sit in a folder named like the file, so unpacking makes one folder.
    Raises BadRequest for a format other than FORMATS, NotFound for a wiki without commits.
    """
    if fmt not in FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FORMATS)}; got {fmt[:20]!r}")
    head = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "--short=12", "HEAD^{commit}"],
        cwd=repo,
        capture_output=True,
        check=False,
    )
    if head.returncode != 0:
        raise NotFound("this wiki has no pages yet: there is nothing to download")
    sha = head.stdout.decode().strip()
    _neutralise_attributes(repo)
    name = f"{slug}-{sha}"
    # The commit named by sha, not HEAD again: a write meanwhile must not change the file.
    command = ["git", "archive", f"--format={fmt}", f"--prefix={name}/", sha]
    return f"{name}.{fmt}", FORMATS[fmt], _chunks(command, repo)


def _neutralise_attributes(repo: Path) -> None:
    """Make `repo`'s info/attributes NEUTRAL_ATTRIBUTES, in one rename (exports may race)."""
    info = repo / ".git" / "info"
    target = info / "attributes"
    if target.is_file() and target.read_text() == NEUTRAL_ATTRIBUTES:
        return
    info.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=info, prefix=".attributes-")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(NEUTRAL_ATTRIBUTES)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _chunks(command: list[str], repo: Path) -> Iterator[bytes]:
    # git starts when the first chunk is wanted: an answer to HEAD, never read, starts nothing.
    process = subprocess.Popen(command, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        while chunk := process.stdout.read1(_CHUNK):
            yield chunk
    finally:
        process.stdout.close()
        if process.poll() is None:
            process.kill()  # the download was cut off: git need not finish
        process.wait()
