"""Many workers rendering the same new page at once: every view answers, none is a 500.

Eight clients at once on one public wiki are a crowd by the host's turns (app/wiki/turns.py):
some may be told 429 with Retry-After. They come back as told, and every view ends in the page.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from app.core.store import Store
from app.core.wikis import create_wiki

pytestmark = pytest.mark.stack

OWNER = ("did:plc:raceowner", "race-owner.test")
HOST = "race-views.localhost"


@pytest.fixture(scope="module")
def token(stack):
    store = Store(stack.settings.database_url)
    store.upsert_user(*OWNER)
    create_wiki(stack.settings, store, "race-views", OWNER[0], public=True)
    _, secret = store.create_token("race-views", OWNER[0], "editor")
    store.close()
    return secret


def view(stack, url: str) -> list[int]:
    """GET `url`, coming back after each 429 as told; return every status seen."""
    return [answer.status_code for answer in stack.get_as_told("otterwiki", HOST, url)]


def test_first_views_of_a_new_page_at_once_never_fail(stack, token):
    statuses = []
    for n in range(8):
        path = f"Fresh{n}"
        with stack.client("otterwiki", host=HOST) as client:
            created = client.put(
                f"/api/v1/pages/{path}",
                json={"content": f"# Fresh {n}\n\n## Part\n\nText.\n"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert created.status_code == 201

        with ThreadPoolExecutor(max_workers=8) as pool:
            for seen in pool.map(lambda url: view(stack, url), [f"/{path}"] * 8):
                assert seen[-1] == 200, seen
                statuses += seen
    assert set(statuses) <= {200, 429}
