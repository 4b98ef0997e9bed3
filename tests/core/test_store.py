import pytest
from sqlalchemy import select

from app.core.database import head_revision
from app.core.errors import BadRequest
from app.core.errors import Conflict
from app.core.errors import NotFound
from app.core.schema import metadata
from app.core.wikis import create_wiki
from app.core.wikis import delete_wiki

# The store's suite: every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_engines


def test_migrate_is_idempotent(store):
    assert store.migrate() == store.schema_version() == head_revision()
    assert store.schema_problem() is None


def test_owner_is_admin(settings, store, users):
    alice, _ = users
    create_wiki(settings, store, "alpha", alice)
    assert store.role_of("alpha", alice) == "admin"


def test_duplicate_wiki_conflicts(settings, store, users):
    create_wiki(settings, store, "alpha", users[0])
    with pytest.raises(Conflict):
        create_wiki(settings, store, "alpha", users[1])


@pytest.mark.parametrize("slug", ["ab", "Alpha", "-abc", "abc-", "a..b", "www", "wiki✓", "x" * 31])
def test_bad_slug_leaves_nothing(settings, store, users, slug):
    with pytest.raises(BadRequest):
        create_wiki(settings, store, slug, users[0])
    assert store.list_wikis() == []
    assert not any(settings.wiki_base.iterdir())


def test_unknown_owner(settings, store):
    with pytest.raises(NotFound):
        create_wiki(settings, store, "alpha", "did:plc:nobody")
    assert store.find_wiki("alpha") is None


def test_delete_removes_row_and_folder(settings, store, users):
    create_wiki(settings, store, "alpha", users[0])
    delete_wiki(settings, store, "alpha")
    assert store.find_wiki("alpha") is None
    assert not settings.wiki_dir("alpha").exists()


def test_token_is_bound_to_its_wiki(settings, store, users):
    alice, _ = users
    create_wiki(settings, store, "alpha", alice)
    create_wiki(settings, store, "beta", alice)
    _, secret = store.create_token("alpha", alice, "editor")
    assert store.authenticate_token(secret, "alpha")[1] == "editor"
    assert store.authenticate_token(secret, "beta") is None


def test_token_role_never_exceeds_membership(settings, store, users):
    alice, bob = users
    create_wiki(settings, store, "alpha", alice)
    store.set_member("alpha", bob, "editor")
    _, secret = store.create_token("alpha", bob, "editor")
    store.set_member("alpha", bob, "viewer")
    assert store.authenticate_token(secret, "alpha")[1] == "viewer"


def test_removed_member_token_dies(settings, store, users):
    alice, bob = users
    create_wiki(settings, store, "alpha", alice)
    store.set_member("alpha", bob, "editor")
    _, secret = store.create_token("alpha", bob, "editor")
    store.remove_member("alpha", bob)
    store.set_member("alpha", bob, "editor")
    assert store.authenticate_token(secret, "alpha") is None


def test_secret_is_stored_only_as_hash(settings, store, users):
    create_wiki(settings, store, "alpha", users[0])
    _, secret = store.create_token("alpha", users[0], "viewer")
    with store.engine.connect() as connection:
        dump = [
            repr(row)
            for table in metadata.sorted_tables
            for row in connection.execute(select(table))
        ]
    assert dump and secret not in "\n".join(dump)
