"""Otterwiki's static files, answered by the gateway without Otterwiki's app (in process)."""

import pytest
from werkzeug.test import Client

from app.core.platform import Platform
from app.core.platform import init_instance
from app.core.settings import Settings
from app.core.wikis import create_wiki

CSS = "/static/css/otterwiki.css"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = Settings.from_env(
        {"ROBOT_DATA_DIR": str(tmp_path_factory.mktemp("static")), "MULTI_TENANT": "true"}
    )
    init_instance(settings)
    platform = Platform.load(settings)
    platform.store.upsert_user("did:plc:static", "static.test")
    create_wiki(settings, platform.store, "alpha", "did:plc:static")
    from app.wsgi import create_app

    app = create_app(settings)
    yield Client(app)
    app.tenancy.close()
    platform.store.close()


def get(client, path, **kwargs):
    return client.open(path, base_url="http://alpha.localhost", buffered=True, **kwargs)


def test_a_file_comes_with_validators_and_otterwikis_security_headers(client):
    response = get(client, CSS)
    assert response.status_code == 200 and response.mimetype == "text/css"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["ETag"] and response.headers["Last-Modified"]


def test_a_matching_etag_gets_304(client):
    etag = get(client, CSS).headers["ETag"]
    assert get(client, CSS, headers={"If-None-Match": etag}).status_code == 304


@pytest.mark.parametrize("path", ["/static/nope.css", "/static/../server.py", "/static/%2e%2e/x"])
def test_what_is_not_a_static_file_gets_otterwikis_404(client, path):
    assert get(client, path).status_code == 404


def test_other_methods_reach_no_page_under_static(client):
    # A POST matches Otterwiki's page rule, not the static one; under /static/ nothing but the
    # platform's files answers (app.wiki.routes.SCRIPT_PATH), so it is refused, and no file
    # is sent.
    response = get(client, CSS, method="POST")
    assert response.status_code == 404 and get(client, CSS).data[:200] not in response.data


def test_an_unknown_host_gets_no_file(client):
    response = client.get(CSS, base_url="http://nowiki.localhost", buffered=True)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("path", "starts"),
    [
        ("/static/mathjax/tex-chtml.js", b"/* robot: MathJax safe extension on"),
        ("/static/robot/handlers.js", None),
    ],
)
def test_the_files_the_platform_changes_come_from_memory_with_validators(client, path, starts):
    response = get(client, path)
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert starts is None or response.data.startswith(starts)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    etag = response.headers["ETag"]
    assert get(client, path, headers={"If-None-Match": etag}).status_code == 304
    assert get(client, path, method="HEAD").data == b""


def test_the_favicon_is_otterwikis_file_for_anyone_on_a_private_wiki(client):
    # A browser asks for it beside every page, signed in or not: no sign-in redirect, no turn.
    response = get(client, "/favicon.ico")
    assert response.status_code == 200 and response.mimetype == "image/vnd.microsoft.icon"
    assert response.data[:4] == b"\x00\x00\x01\x00"
    assert client.get("/favicon.ico", base_url="http://nowiki.localhost").status_code == 404


SAFE_START = b"/* robot: MathJax safe extension on"


@pytest.mark.parametrize(
    "path",
    [
        "/static/mathjax/tex-chtml.js",
        "/static/mathjax//tex-chtml.js",
        "/static//mathjax/tex-chtml.js",
        "//static/mathjax/tex-chtml.js",
        "/static/./mathjax/tex-chtml.js",
        "/static/mathjax/./tex-chtml.js",
        "/static/css/../mathjax/tex-chtml.js",
        "/static/%6dathjax/tex-chtml.js",
        "/static/mathjax%2ftex-chtml.js",
        "//static/mathjax/./tex-chtml.js",
        "//static/css/..%2fmathjax/tex-chtml.js",
        "//static/mathjax%2f.%2ftex-chtml.js",
        "/%2fstatic/mathjax/tex-chtml.js",
    ],
)
def test_every_spelling_of_mathjax_gets_the_safe_configuration(client, path):
    """Twenty-first review: `mathjax//tex-chtml.js` served the package file, unconfigured."""
    response = get(client, path)
    assert response.status_code < 500
    assert response.status_code != 200 or response.data.startswith(SAFE_START)


@pytest.mark.parametrize(
    "path",
    [
        "/static/mathjax/tex-svg.js",
        "/static/mathjax/tex-mml-chtml.js",
        "/static/mathjax/mml-chtml.js",
        "/static/mathjax/tex-chtml-nofont.js",
        "/static/mathjax/core.js",
        "/static/mathjax/startup.js",
        "/static/mathjax//tex-svg.js",
        "/static/./mathjax/loader.js",
        "//static/mathjax/tex-svg.js",
        "/%2fstatic/mathjax/tex-svg.js",
        "//static/mathjax/core.js",
        "///static/mathjax/startup.js",
        "//static/css/..%2fmathjax/tex-mml-svg.js",
    ],
)
def test_mathjax_components_without_the_safe_configuration_are_not_served(client, path):
    response = get(client, path)
    assert response.status_code in (302, 308, 404) and b"MathJax" not in response.data


def test_what_mathjax_loads_by_itself_is_still_served(client):
    assert get(client, "/static/mathjax/ui/safe.js").status_code == 200


BUILT_AND_PACKAGE = ["/static/robot/handlers.js", "/static/mathjax/tex-chtml.js", CSS]


@pytest.mark.parametrize("path", BUILT_AND_PACKAGE)
@pytest.mark.parametrize("ranges", ["bytes=5-1", "bytes=999999999-", "bytes=-0", "bytes=0-9"])
def test_a_range_gets_the_whole_file_from_memory_as_from_the_package(client, path, ranges):
    """Twenty-first review: werkzeug's 416 escaped the gateway as a 500 with a traceback.
    Twenty-second: some Range forms got 416 from the files built in memory and 200 from
    package files. Both now answer as SharedDataMiddleware does: the whole file."""
    whole = get(client, path)
    response = get(client, path, headers={"Range": ranges})
    assert response.status_code == 200 and response.data == whole.data


CONDITIONALS = [
    {"If-None-Match": '"other", {etag}'},
    {"If-None-Match": "*"},
    {"If-None-Match": '"other", *'},
    {"If-None-Match": '"other"'},
    {"If-Match": '"other"'},
    {"If-Match": "{etag}"},
    {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"},
    {"If-Modified-Since": "Thu, 01 Jan 2099 00:00:00 GMT"},
    {"If-Range": '"other"', "Range": "bytes=0-9"},
    {"If-Match": "*"},
    {"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"},
    {"If-Unmodified-Since": "Thu, 01 Jan 2099 00:00:00 GMT"},
]
# RFC 9110 13.1.1 and 13.1.4: a false If-Match, or else If-Unmodified-Since, is 412.
PRECONDITIONS = [
    ({"If-Match": '"other"'}, 412),
    ({"If-Match": "{etag}"}, 200),
    ({"If-Match": "*"}, 200),
    ({"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}, 412),
    ({"If-Unmodified-Since": "Thu, 01 Jan 2099 00:00:00 GMT"}, 200),
]


@pytest.mark.parametrize("path", BUILT_AND_PACKAGE[:2])
@pytest.mark.parametrize("conditions", CONDITIONALS)
def test_conditionals_get_the_same_answers_from_memory_as_from_the_package(
    client, path, conditions
):
    """Twenty-second review: a wrong If-Match got 412 with the whole body, and an
    If-None-Match list holding * got 200, from the files built in memory only: now both
    are answered by SharedDataMiddleware."""

    def answer(path: str) -> tuple[int, int]:
        etag = get(client, path).headers["ETag"]
        headers = {name: value.replace("{etag}", etag) for name, value in conditions.items()}
        response = get(client, path, headers=headers)
        return response.status_code, response.data == get(client, path).data

    assert answer(path) == answer(CSS)
    if "{etag}" in conditions.get("If-None-Match", "") or conditions.get("If-None-Match") == "*":
        assert answer(path)[0] == 304
    for preconditions, status in PRECONDITIONS:
        if preconditions == conditions:
            assert answer(path)[0] == status, conditions


@pytest.mark.parametrize(
    ("path", "status", "starts"),
    [
        ("/static/mathjax/tex-chtml.js", 200, SAFE_START),
        ("/static/mathjax/./tex-chtml.js", 200, SAFE_START),
        ("/static/robot/handlers.js", 200, None),
        (CSS, 200, None),
        ("/static/mathjax/tex-svg.js", 404, None),
        ("/static/mathjax//core.js", 404, None),
        ("/static/nope.css", 404, None),
    ],
)
def test_otterwikis_own_static_view_serves_what_the_gateway_serves(client, path, status, starts):
    """The diff re-read after the twenty-second review: Otterwiki's static view, reached
    when a request goes to its app, knew only the changed MathJax component, and would have
    served the withheld ones. It now runs the gateway's static app."""
    otterwiki = client.application.tenancy.app.test_client()
    response = otterwiki.get(path)
    assert response.status_code == status, path
    assert starts is None or response.get_data().startswith(starts)
    assert status != 200 or response.headers["ETag"] == get(client, path).headers["ETag"]
    response.close()
