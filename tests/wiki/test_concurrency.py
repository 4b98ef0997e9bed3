"""Many workers rendering the same new page at once: every view answers, none is a 500."""

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


def view(stack, url: str) -> int:
    with stack.client("otterwiki", host=HOST) as client:
        return client.get(url).status_code


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
            statuses += list(pool.map(lambda url: view(stack, url), [f"/{path}"] * 8))
    assert set(statuses) == {200}
