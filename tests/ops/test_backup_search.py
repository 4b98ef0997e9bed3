"""Backups leave the full-text index out (derived from git); a restored wiki's search works."""

from otterwiki.gitstorage import GitStorage

from app.core.settings import Settings
from app.ops.backup import backup
from app.ops.backup import restore
from app.pages.search import search
from app.pages.storage import Pages


def test_restore_without_the_index_rebuilds_it_on_the_first_search(wikis, tmp_path):
    settings = wikis.settings
    pages = Pages(GitStorage(str(settings.repo_path("alpha"))))
    pages.write("Kept", "the ocelot survives a restore\n", ("robot", "robot@localhost"))
    assert search(pages, "ocelot", 5, settings.search_index_path("alpha"))[0]["path"] == "Kept"
    backup(settings, tmp_path / "bk")
    assert not list((tmp_path / "bk").rglob("search.db*"))
    elsewhere = Settings.from_env({"ROBOT_DATA_DIR": str(tmp_path / "elsewhere")})
    restore(elsewhere, tmp_path / "bk")
    restored = Pages(GitStorage(str(elsewhere.repo_path("alpha"))))
    index = elsewhere.search_index_path("alpha")
    assert not index.exists()
    assert [hit["path"] for hit in search(restored, "ocelot", 5, index)] == ["Kept"]
