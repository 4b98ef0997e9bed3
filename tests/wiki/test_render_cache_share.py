"""One owner's renders cannot push other owners' out of the shared render cache (review 54).

The cache evicts the least recently stored entries past its size: one owner storing renders of
new pages (or, before, of new spellings of one page) emptied it of every other wiki in ~20 s.
Each owner's entries now hold at most OWNER_SHARE of it.
"""

from __future__ import annotations

import pytest

from app.core.wikis import create_wiki
from app.wiki.otterwiki.render import _cache_for
from tests.wiki.instance import in_process
from tests.wiki.test_render import put
from tests.wiki.test_render import view

VICTIM = ("did:plc:cache-victim", "cache-victim.test")
FLOODER = ("did:plc:cache-flooder", "cache-flooder.test")


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    """Public wikis `kept` (VICTIM's) and `flood` (FLOODER's) over a render cache of 2 MiB."""
    made = in_process(
        tmp_path_factory.mktemp("share"), [VICTIM, FLOODER], ROBOT_RENDER_CACHE_MB="2"
    )
    made.tokens = {}
    for slug, owner in (("kept", VICTIM), ("flood", FLOODER)):
        create_wiki(made.settings, made.platform.store, slug, owner[0], public=True)
        made.tokens[slug] = made.platform.store.create_token(slug, owner[0], "editor")[1]
    yield made
    made.app.tenancy.close()
    made.platform.store.close()


def test_one_owner_storing_many_renders_keeps_the_others(wiki):
    pages = {
        f"Kept {number}": f"# Kept {number}\n\n" + "Some *kept* text. " * 400 for number in range(3)
    }
    for name, content in pages.items():
        put(wiki, "kept", name, content)
        assert view(wiki, "kept", f"/{name}")[1] == "miss"
    # More than the whole cache in renders of new pages, each its own entry of ~40 KB.
    for number in range(60):
        put(wiki, "flood", f"Flood {number}", f"# Flood {number}\n\n" + f"word{number} " * 6_000)
        response, renders = view(wiki, "flood", f"/Flood%20{number}")
        assert (response.status_code, renders) == (200, "miss")
        # Review 56: past its share an owner loses its oldest renders, not all of them (an
        # anonymous reader of old revisions emptied the owner's whole cache).
        if number:
            assert view(wiki, "flood", f"/Flood%20{number - 1}")[1] == "hit", number
    for name in pages:
        assert view(wiki, "kept", f"/{name}")[1] == "hit", name
    cache = _cache_for(wiki.settings)
    assert cache.volume() <= cache.size_limit
    latest = [view(wiki, "flood", f"/Flood%20{number}")[1] for number in range(56, 60)]
    assert latest == ["hit"] * 4


def test_many_tiny_entries_of_one_owner_take_no_more_than_its_share(tmp_path):
    """Review 59: an entry's count was its pickled value alone, while each tiny render (a
    preview's) takes ~300 bytes more in the cache (row, key, tag, indexes): an owner of many
    held 3.4 times its share. Counted whole, its entries grow the cache by at most its share,
    and another owner's stay."""
    from types import SimpleNamespace

    import diskcache
    from flask import Flask
    from flask import g

    from app.wiki.otterwiki.render import OWNER_SHARE
    from app.wiki.otterwiki.render import keep

    cache = diskcache.Cache(
        str(tmp_path), size_limit=2**20, eviction_policy="least-recently-stored", tag_index=True
    )
    owner = lambda did: SimpleNamespace(wiki=SimpleNamespace(owner_did=did))  # noqa: E731
    with Flask(__name__).test_request_context():
        g.tenant = owner(VICTIM[0])
        for number in range(30):  # within its own share
            keep(cache, f"kept {number}", ("miss", (f"<p>{number}</p>" + "v" * 1000, [], {})))
        before = cache.volume()
        g.tenant = owner(FLOODER[0])
        for number in range(6000):
            keep(cache, f"{number:064}", ("miss", ("<p>x</p>\n", [], {})))
        grown = cache.volume() - before
    assert grown <= cache.size_limit * OWNER_SHARE, grown
    assert all(cache.get(f"kept {number}") is not None for number in range(30))
    cache.close()
