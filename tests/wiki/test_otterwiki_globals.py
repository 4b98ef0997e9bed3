"""Pin every Otterwiki module global that holds the app, the db or the storage.

app/wiki/otterwiki/ repoints these three objects per request. A new Otterwiki release that adds
a holder (or makes a second storage) changes this set: re-check app/wiki/otterwiki/tenancy.py
before updating it.
"""

import sys

import pytest

KNOWN = {
    ("otterwiki.auth", "app"),
    ("otterwiki.auth", "db"),
    ("otterwiki.backlinks", "app"),
    ("otterwiki.backlinks", "storage"),
    ("otterwiki.cli", "app"),
    ("otterwiki.cli", "db"),
    ("otterwiki.helper", "app"),
    ("otterwiki.helper", "db"),
    ("otterwiki.helper", "storage"),
    ("otterwiki.models", "db"),
    ("otterwiki.pageindex", "app"),
    ("otterwiki.pageindex", "storage"),
    ("otterwiki.preferences", "app"),
    ("otterwiki.preferences", "db"),
    ("otterwiki.remote", "app"),
    ("otterwiki.server", "app"),
    ("otterwiki.server", "db"),
    ("otterwiki.server", "storage"),
    ("otterwiki.sidebar", "app"),
    ("otterwiki.sidebar", "storage"),
    ("otterwiki.sitemap", "app"),
    ("otterwiki.sitemap", "storage"),
    ("otterwiki.tools", "app"),
    ("otterwiki.tools", "db"),
    ("otterwiki.tools", "storage"),
    ("otterwiki.views", "app"),
    ("otterwiki.wiki", "app"),
    ("otterwiki.wiki", "db"),
    ("otterwiki.wiki", "storage"),
}


@pytest.fixture
def server(platform):
    from app.wiki.otterwiki import boot_otterwiki

    return boot_otterwiki(platform.settings)


def _holders():
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy
    from otterwiki.gitstorage import GitStorage

    found = {}
    for module_name, module in list(sys.modules.items()):
        if module_name != "otterwiki" and not module_name.startswith("otterwiki."):
            continue
        for attr, value in vars(module).items():
            if isinstance(value, GitStorage | SQLAlchemy | Flask):
                found[(module_name, attr)] = value
    return found


def test_the_set_of_global_holders_is_known(server):
    assert set(_holders()) == KNOWN


def test_every_holder_shares_the_one_object_tenancy_repoints(server):
    originals = {"app": server.app, "db": server.db, "storage": server.storage}
    for (_module, attr), value in _holders().items():
        assert value is originals[attr]


def test_repository_manager_holds_the_shared_storage(server):
    import otterwiki.repomgmt

    assert otterwiki.repomgmt.repo_manager.storage is server.storage
