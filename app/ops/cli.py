"""The `robot` command: set up, run and administer one instance from the shell."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from app.core.atproto_identity import check_handle
from app.core.atproto_identity import check_user_did
from app.core.atproto_identity import member_account
from app.core.errors import BadRequest
from app.core.errors import ConfigError
from app.core.errors import Conflict
from app.core.errors import RobotError
from app.core.platform import Platform
from app.core.platform import init_instance
from app.core.schema import ROLES
from app.core.settings import Settings
from app.core.store import Store
from app.ops import launcher

T = TypeVar("T")
ROLE = click.Choice(list(reversed(ROLES)))


@contextmanager
def _platform() -> Iterator[Platform]:
    """The instance named by the environment, which `robot init` must have created."""
    platform = Platform.load(Settings.from_env())
    try:
        yield platform
    finally:
        platform.store.close()


def _known_user(platform: Platform, did: str) -> None:
    """Raise a ClickException saying how to add `did` when it is not a user of this instance."""
    if not did.startswith("did:"):
        raise click.ClickException(
            f"{did!r} is not a DID: a DID starts with 'did:' (did:plc:... or did:web:...); "
            "`robot user list` shows the users"
        )
    if platform.store.find_user(did) is None:
        raise click.ClickException(
            f"unknown user {did!r}: add them first with "
            f"`robot user add --did {did} --handle HANDLE`"
        )


def _known_wiki(platform: Platform, slug: str) -> None:
    """Raise a ClickException pointing to `robot wiki list` when there is no wiki `slug`."""
    if platform.store.find_wiki(slug) is None:
        raise click.ClickException(f"no wiki named {slug!r}: `robot wiki list` shows the wikis")


def _of_wiki(slug: str, read: Callable[[Store, str], list[T]]) -> list[T]:
    """What `read(store, slug)` lists of an existing wiki; an unknown one says what to do."""
    with _platform() as platform:
        _known_wiki(platform, slug)
        return read(platform.store, slug)


def _size(size_bytes: int) -> str:
    """Bytes for a person: 512 B, 3.4 KB, 12.0 MB (powers of 1024)."""
    amount = float(size_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{size_bytes} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def _when(stamp: int | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """robot: a multi-tenant Otterwiki platform. Configuration comes from the environment."""


@cli.command("init")
def init_command() -> None:
    """Create the data dir, platform DB and keys (idempotent)."""
    settings = Settings.from_env()
    for line in init_instance(settings) or ["already initialised"]:
        click.echo(line)
    click.echo(f"instance ready in {settings.data_dir}")


@cli.command("run")
def run_command() -> None:
    """Run the four services under supervisord in the foreground.

    Ctrl-C (or SIGTERM) stops everything.
    """
    settings = Settings.from_env()
    init_instance(settings)
    # Refuse before the banner: a newcomer must not read URLs that will not answer.
    launcher.preflight(settings)
    click.echo(launcher.banner(settings))
    sys.stdout.flush()
    launcher.exec_supervisord(settings)


@cli.command(
    "ctl", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def ctl_command(args: tuple[str, ...]) -> None:
    """Run supervisorctl for this instance.

    For example: robot ctl status, robot ctl restart api, robot ctl pid otterwiki.
    """
    launcher.exec_supervisorctl(Settings.from_env(), args)


@cli.command("check")
def check_command() -> None:
    """Exit 0 only if all four services answer /healthz with 200."""
    problems = launcher.check_health(Settings.from_env())
    for program, problem in problems.items():
        click.echo(f"{program:10} {'ok' if problem is None else 'FAIL ' + problem}")
    if any(problems.values()):
        sys.exit(1)


@cli.group("user")
def user_group() -> None:
    """Platform users (keyed by ATProto DID)."""


@user_group.command("add")
@click.option("--did", required=True, help="the user's ATProto DID (did:plc:... or did:web:...)")
@click.option("--handle", required=True, help="the user's handle, e.g. alice.bsky.social")
def user_add_command(did: str, handle: str) -> None:
    """Add a user, or update the handle of an existing one.

    The DID must be one a user may have (app.core.atproto_identity.check_user_did: a did:plc,
    or a did:web naming a bare host) and the handle one sign-in would take (the Handle spec's
    syntax, no reserved top-level domain such as .example; stored lower-case): a handle
    holding '<' was stored and made every commit of its user a 500 (twenty-fifth review);
    did:key, a did:web with a path, and a second DID with a handle already held were stored
    (twenty-sixth). A handle names one account: one another DID holds is refused (the same DID
    may set its own again); sign-in, which verifies handles, moves a handle between accounts.
    Anything else exits 1 with the reason, storing nothing.
    """
    handle = handle.strip().lower()
    check_user_did(did)
    check_handle(handle)
    with _platform() as platform:
        try:
            user = platform.store.upsert_user(did, handle)
        except Conflict as error:
            raise click.ClickException(
                f"{error.message}; `robot user list` shows who has it"
            ) from None
    click.echo(f"user {user.did} ({user.handle})")


@user_group.command("list")
def user_list_command() -> None:
    """List every user: DID, handle, when added."""
    with _platform() as platform:
        users = platform.store.list_users()
    for user in users:
        click.echo(f"{user.did:40} {user.handle:30} added {_when(user.created_at)}")


@cli.group("wiki")
def wiki_group() -> None:
    """Wikis: create, list, delete."""


@wiki_group.command("create")
@click.argument("slug")
@click.option("--owner", required=True, help="DID of the owning user (made admin)")
@click.option("--name", default=None, help="display name (default: from the slug)")
@click.option("--public", is_flag=True, help="anyone may read (default: members only)")
def wiki_create_command(slug: str, owner: str, name: str | None, public: bool) -> None:
    """Create a wiki with a git repo and a Home page."""
    from app.core.wikis import create_wiki

    with _platform() as platform:
        _known_user(platform, owner)
        wiki = create_wiki(platform.settings, platform.store, slug, owner, name, public)
    click.echo(f"created wiki {wiki.slug} ({wiki.display_name}) owned by {wiki.owner_did}")
    click.echo(platform.settings.wiki_url(wiki.slug))


@wiki_group.command("list")
def wiki_list_command() -> None:
    """List every wiki: access, owner, pages, size, last change, display name; and a wiki whose
    slug can no longer name one (reserved since it was made), as not served, saying why."""
    from app.core.slugs import slug_problem

    with _platform() as platform:
        wikis = platform.store.list_wikis()
    for wiki in wikis:
        access = "public" if wiki.is_public else "private"
        problem = slug_problem(wiki.slug)
        click.echo(
            f"{wiki.slug:30} {access:8} {wiki.owner_did:40} {wiki.page_count:>6} pages "
            f"{_size(wiki.size_bytes):>9}  changed {_when(wiki.last_change_at)}  "
            f"{wiki.display_name}" + (f"  [NOT SERVED: {problem}]" if problem else "")
        )


@wiki_group.command("delete")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="confirm: the wiki and its history are removed")
def wiki_delete_command(slug: str, yes: bool) -> None:
    """Delete a wiki, its repo and its wiki.db."""
    from app.core.wikis import delete_wiki

    if not yes:
        raise click.UsageError(f"deleting {slug!r} removes its pages and history; add --yes")
    with _platform() as platform:
        delete_wiki(platform.settings, platform.store, slug)
    click.echo(f"deleted wiki {slug}")


@cli.group("member")
def member_group() -> None:
    """Who may use a wiki, and with which role."""


@member_group.command("add")
@click.argument("slug")
@click.option("--user", "person", required=True, help="the member's handle or DID")
@click.option("--role", required=True, type=ROLE)
def member_add_command(slug: str, person: str, role: str) -> None:
    """Add a member to a wiki by handle or DID, or change their role.

    A handle (or an unknown DID) is verified through ATProto, as the management API does; the
    person need not have signed in yet.
    """
    with _platform() as platform:
        _known_wiki(platform, slug)
        try:
            did, handle = member_account(
                person, platform.atproto_network(), platform.store.find_user
            )
        except BadRequest as error:
            raise click.ClickException(_member_hint(person, error.message)) from None
        member, _ = platform.store.add_member(slug, did, handle, role)
    click.echo(f"{member.did} ({member.handle}) is {member.role} of {slug}")


def _member_hint(person: str, problem: str) -> str:
    """What to do when `robot member add --user PERSON` names no account."""
    if person.strip().startswith("did:"):
        return (
            f"unknown user {person!r}: {problem}; add them with "
            f"`robot user add --did {person} --handle HANDLE`"
        )
    return f"{problem}; --user takes a handle or a DID (a DID starts with 'did:')"


@member_group.command("remove")
@click.argument("slug")
@click.option("--user", "did", required=True, help="the member's DID")
def member_remove_command(slug: str, did: str) -> None:
    """Remove a member from a wiki (their tokens for it stop working)."""
    with _platform() as platform:
        _known_wiki(platform, slug)
        if platform.store.role_of(slug, did) is None:
            raise click.ClickException(
                f"{did!r} is not a member of {slug!r}: `robot member list {slug}` shows who is"
            )
        platform.store.remove_member(slug, did)
    click.echo(f"removed {did} from {slug}")


@member_group.command("list")
@click.argument("slug")
def member_list_command(slug: str) -> None:
    """List a wiki's members: DID, handle, role, when added, and who has not signed in yet."""
    for member in _of_wiki(slug, Store.list_members):
        pending = "" if member.signed_in else " (not signed in yet)"
        click.echo(
            f"{member.did:40} {member.handle:30} {member.role:7} added "
            f"{_when(member.created_at)}{pending}"
        )


@cli.group("token")
def token_group() -> None:
    """Wiki tokens for API and MCP clients."""


@token_group.command("create")
@click.argument("slug")
@click.option("--user", "did", required=True, help="DID of the member the token acts for")
@click.option("--role", required=True, type=ROLE, help="at most the member's own role")
@click.option("--label", default="", help="a note to recognise the token by")
def token_create_command(slug: str, did: str, role: str, label: str) -> None:
    """Create a token; its secret is printed once, alone on the last line."""
    with _platform() as platform:
        _known_wiki(platform, slug)
        _known_user(platform, did)
        if platform.store.role_of(slug, did) is None:
            raise click.ClickException(
                f"{did!r} is not a member of {slug!r}: add them first with "
                f"`robot member add {slug} --user {did} --role {role}`"
            )
        token, secret = platform.store.create_token(slug, did, role, label)
    click.echo(f"token {token.id} for {token.user_did} in {token.wiki_slug} as {token.role}")
    click.echo("the secret below is shown only now; it is stored as a hash:")
    click.echo(secret)


@token_group.command("list")
@click.argument("slug")
def token_list_command(slug: str) -> None:
    """List a wiki's tokens (never their secrets)."""
    for token in _of_wiki(slug, Store.list_tokens):
        state = "revoked" if token.revoked_at else "live"
        click.echo(
            f"{token.id}  {token.user_did:30} {token.role:7} {state:8} "
            f"created {_when(token.created_at)}  used {_when(token.last_used_at)}  {token.label}"
        )


@token_group.command("revoke")
@click.argument("token_id")
def token_revoke_command(token_id: str) -> None:
    """Revoke a token at once; a token already revoked is an error (nothing changes)."""
    with _platform() as platform:
        token = platform.store.find_token(token_id)
        if token is None:
            raise click.ClickException(
                f"no token {token_id!r}: `robot token list SLUG` shows a wiki's tokens"
            )
        if token.revoked_at is not None:
            raise click.ClickException(
                f"token {token_id} was already revoked on {_when(token.revoked_at)} UTC; "
                "nothing changed"
            )
        token = platform.store.revoke_token(token_id)
    click.echo(f"revoked {token.id} ({token.wiki_slug}, {token.user_did})")


@cli.command("session")
@click.argument("did")
def session_command(did: str) -> None:
    """Print a session JWT for a user.

    Operator power: it signs with the instance's signing key.
    """
    with _platform() as platform:
        settings = platform.settings
        _known_user(platform, did)
        user = platform.store.get_user(did)
        jwt = platform.key.mint_session(
            user.did, user.handle, settings.auth_origin, settings.session_ttl
        )
    click.echo(jwt)


@cli.command("backup")
@click.argument("dest", type=click.Path(path_type=Path))
def backup_command(dest: Path) -> None:
    """Copy robot.db, the keys and every wiki into DEST (new or empty)."""
    from app.ops.backup import backup

    wikis = backup(Settings.from_env(), dest)
    click.echo(f"backed up {len(wikis)} wiki(s) to {dest.absolute()}")


@cli.command("restore")
@click.argument("source", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--force", is_flag=True, help="replace the data this instance already holds")
def restore_command(source: Path, force: bool) -> None:
    """Restore a backup made by `robot backup` (stop robot first)."""
    from app.ops.backup import restore

    settings = Settings.from_env()
    pid = launcher.running_pid(settings)
    if pid is not None:
        raise click.ClickException(f"robot is running (supervisord pid {pid}); stop it first")
    wikis = restore(settings, source, force=force)
    init_instance(settings)
    click.echo(f"restored {len(wikis)} wiki(s) into {settings.data_dir}")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; any expected failure becomes one line on stderr and a non-zero exit."""
    # The store logs why the database did not answer, for services; here the error line says it.
    logging.getLogger("app.core.store").addHandler(logging.NullHandler())
    try:
        cli.main(args=argv, prog_name="robot", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.NoArgsIsHelpError as err:
        click.echo(err.format_message(), err=True)
        sys.exit(err.exit_code)
    except click.Abort:
        click.echo("robot: aborted", err=True)
        sys.exit(1)
    except click.ClickException as err:
        click.echo(f"robot: error: {err.format_message()}", err=True)
        sys.exit(err.exit_code)
    except SQLAlchemyError as err:
        # The driver's own first line says why (refused, bad password ...); never the password.
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        click.echo(f"robot: error: platform database: {reason}", err=True)
        sys.exit(1)
    except (RobotError, ConfigError, OSError) as err:
        reason = getattr(err, "reason", None)
        click.echo(f"robot: error: {err}" + (f" ({reason})" if reason else ""), err=True)
        sys.exit(1)
