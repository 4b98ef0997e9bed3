"""Thumbnails of attachments: made of readable images of a sane size, else the file as it is.

Each hostile attachment once answered 500 with a traceback (a text file named .png, a PNG cut
short, a bare GIF header, a decompression bomb, a size of 0).
"""

from __future__ import annotations

import io
import zlib
from types import SimpleNamespace

import PIL.Image
import pytest
from werkzeug.test import Client

from app.core.wikis import create_wiki
from app.wiki.otterwiki.errors import THUMBNAIL_MAX
from app.wiki.otterwiki.errors import THUMBNAIL_MAX_PIXELS
from app.wiki.otterwiki.render import RENDER_HEADER
from tests.wiki.instance import in_process

OWNER = ("did:plc:thumbowner", "thumb-owner.test")
WIKI = "thumbs"


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    PIL.Image.new(mode, (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height black pixels: small on disk, huge decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def scan_bomb(scans: int) -> bytes:
    """A small progressive JPEG with its last scan repeated `scans` times: libjpeg decodes
    each over the whole image (8,000 over 4000 x 4000 pixels cost 9 s; review 41)."""
    buffer = io.BytesIO()
    PIL.Image.new("L", (64, 64), 128).save(buffer, format="JPEG", progressive=True)
    data = buffer.getvalue()
    scan = data[data.rindex(b"\xff\xda") : -2]  # its header and data, up to the end marker
    return data[:-2] + scan * scans + data[-2:]


def encoded(format: str) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.new("RGB", (64, 64), "white").save(buffer, format=format)
    return buffer.getvalue()


GOOD = png(400, 300)
PROGRESSIVE = scan_bomb(0)  # a progressive JPEG as cameras and encoders make them
# X PixMap: Pillow reads it but has no writer for it.
XPM = b"""/* XPM */
static char *x[] = {
"2 2 1 1",
"a c #ff0000",
"aa",
"aa"
};
"""
# Hostile attachments: (name, bytes), each served as it is instead of a thumbnail.
HOSTILE = {
    "text.png": b"this is not an image\n",
    "cut.png": GOOD[: len(GOOD) // 2],
    "header.gif": b"GIF89a",
    "empty.jpg": b"",
    "broken.png": GOOD[:40] + b"\xff" * 64 + GOOD[104:],
    "bomb.png": bomb_png(8000, 8000),  # 64 M pixels, over THUMBNAIL_MAX_PIXELS
    "flat-bomb.png": bomb_png(6000, 5000),  # 30 M pixels, in a few kilobytes
    "pixmap.png": XPM,
    "scans.jpg": scan_bomb(500),  # Pillow reads it whole, past JPEG_MAX_SCANS
    # Formats decoded in one native call no signal stops (JPEG 2000: 4.5 s a size at 3500 x
    # 3500, review 42), which browsers do not show anyway.
    "picture.jp2": encoded("JPEG2000"),
    "picture.tiff": encoded("TIFF"),
}


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    instance = in_process(tmp_path_factory.mktemp("thumbnails"), users=[OWNER])
    store = instance.platform.store
    create_wiki(instance.settings, store, WIKI, OWNER[0])
    token = store.create_token(WIKI, OWNER[0], "editor")[1]
    world = SimpleNamespace(app=instance.app, token=token)
    for name, data in {"good.png": GOOD, "progressive.jpg": PROGRESSIVE, **HOSTILE}.items():
        stored = get(world, f"/api/v1/pages/Home/attachments/{name}", "PUT", data=data)
        assert stored.status_code in (200, 201), stored.text
    yield world
    instance.app.tenancy.close()
    store.close()


def get(world, path: str, method: str = "GET", **kwargs):
    return Client(world.app).open(
        path,
        method=method,
        base_url=f"http://{WIKI}.localhost",
        headers={"Authorization": f"Bearer {world.token}"},
        buffered=True,
        **kwargs,
    )


@pytest.mark.parametrize("size", [None, 1, 80, THUMBNAIL_MAX])
def test_a_readable_image_gets_a_thumbnail(wiki, size):
    answer = get(wiki, "/Home/t/good.png" + (f"/{size}" if size else ""))
    assert answer.status_code == 200 and answer.mimetype == "image/png"
    image = PIL.Image.open(io.BytesIO(answer.data))
    assert max(image.size) == min(size or 80, 400)


def test_a_progressive_jpeg_of_a_few_scans_gets_a_thumbnail(wiki):
    answer = get(wiki, "/Home/t/progressive.jpg/32")
    assert answer.status_code == 200 and answer.mimetype == "image/jpeg"
    assert PIL.Image.open(io.BytesIO(answer.data)).size == (32, 32)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_an_attachment_that_gives_no_thumbnail_is_sent_as_it_is(wiki, name):
    answer = get(wiki, f"/Home/t/{name}")
    assert answer.status_code == 200, answer.text
    assert answer.data == HOSTILE[name]
    assert "Content-Security-Policy" in answer.headers  # as Otterwiki sends the file itself


def test_the_bomb_is_over_the_pixel_limit():
    assert 8000 * 8000 > THUMBNAIL_MAX_PIXELS


@pytest.mark.parametrize("size", [0, THUMBNAIL_MAX + 1, 10**9])
def test_a_thumbnail_size_out_of_range_is_404(wiki, size):
    answer = get(wiki, f"/Home/t/good.png/{size}")
    assert answer.status_code == 404 and "1 to" in answer.text


# The page view resizes an attachment too: ?thumbnail[=size], ?size, ?width, ?height; the size
# each gives the 400 x 300 image.
RESIZES = {
    "thumbnail": (80, 60),
    "thumbnail=80": (80, 60),
    "size=80": (80, 60),
    "width=80": (80, 60),
    "height=60": (80, 60),
    "width=80&height=50": (80, 50),
}


@pytest.mark.parametrize("query", sorted(RESIZES))
def test_the_page_view_resizes_a_readable_image(wiki, query):
    answer = get(wiki, f"/Home/good.png?{query}")
    assert answer.status_code == 200 and answer.mimetype == "image/png"
    assert PIL.Image.open(io.BytesIO(answer.data)).size == RESIZES[query]


@pytest.mark.parametrize("query", sorted(RESIZES))
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_the_page_view_sends_an_image_it_cannot_resize_as_it_is(wiki, name, query):
    answer = get(wiki, f"/Home/{name}?{query}")
    assert answer.status_code == 200, answer.text
    assert answer.data == HOSTILE[name]


# Images one side of which, resized to THUMBNAIL_MAX with the other in proportion, is huge.
LOPSIDED = {
    "wide.png": (png(30000, 100), "height=1024"),  # once 5 s and 1.5 GB (review 48)
    "tall.png": (png(100, 30000), "width=1024"),
    "line.png": (png(5_000_000, 1, "1"), "height=1024"),  # once a 500 (OverflowError)
    "column.png": (png(1, 5_000_000, "1"), "width=1000"),
    # Both sides given: one of them upscaled (1 x 24,999,999 at 1024 x 1024: 4 s, 1.9 GB).
    "stalk.png": (png(1, 2_000_000, "1"), "width=1024&height=1024"),
    "small.png": (png(40, 30), "width=400&height=300"),  # the browser scales it up itself
    "narrow.png": (png(40, 30), "width=80"),
    # Shrunk, but along a side past RESIZE_MAX_SIDE (1 x 24,999,999 at 1 x 1024: 3.5 s, review 51).
    "needle.png": (png(1, 2_000_000, "1"), "width=1&height=1024"),
    "thread.png": (png(2_000_000, 1, "1"), "width=1024&height=1"),
}


@pytest.mark.parametrize("name", sorted(LOPSIDED))
def test_a_resize_that_would_upscale_sends_the_image_as_it_is(wiki, name):
    data, query = LOPSIDED[name]
    stored = get(wiki, f"/api/v1/pages/Home/attachments/{name}", "PUT", data=data)
    assert stored.status_code in (200, 201), stored.text
    answer = get(wiki, f"/Home/{name}?{query}")
    assert answer.status_code == 200, answer.text
    assert answer.data == data
    assert "over-budget" not in answer.headers.get(RENDER_HEADER, "")  # not tried, not stopped
    small = get(wiki, f"/Home/{name}?thumbnail=80")  # shrinks: made as always
    assert small.status_code == 200 and max(PIL.Image.open(io.BytesIO(small.data)).size) <= 80


@pytest.mark.parametrize(
    "query",
    [
        "width=16000&height=16000",  # once 8 s and 1.6 GB of memory, for anyone
        "width=0",
        "width=-5",
        "height=0&width=10",
        "size=0",
        "thumbnail=0",
        "thumbnail=-1",
        f"width={THUMBNAIL_MAX + 1}",
        f"height={10**9}",
        f"size={THUMBNAIL_MAX}&width={THUMBNAIL_MAX + 1}",
    ],
)
def test_the_page_view_refuses_a_size_out_of_range(wiki, query):
    answer = get(wiki, f"/Home/good.png?{query}")
    assert answer.status_code == 404 and "1 to" in answer.text, answer.text


def test_a_file_by_its_path_takes_no_turn_and_a_thumbnail_without_one_is_the_file(wiki, tmp_path):
    """Twenty-fifth review: Otterwiki's page view sends a file named by its path (how pages
    embed images; the attachments list asks `?thumbnail`s of it), and each took a turn: one
    member opening a page of 10 images had 8 refused 429. With every turn and waiting place
    of the owner taken, a file by its path is sent, and a thumbnail is the file itself."""
    import fcntl
    import os

    from app.wiki.turns import OWNER as OWNER_POOL

    gateway = wiki.app
    folder = gateway.settings.owner_turns_dir(OWNER[0]) / OWNER_POOL
    folder.mkdir(parents=True, exist_ok=True)
    held = []
    try:
        for n in range(gateway.turns.turns):
            for name in (f"turn-{n}.lock", f"wait-{n}.lock"):
                fd = os.open(folder / name, os.O_RDONLY | os.O_CREAT, 0o640)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append(fd)
        assert get(wiki, "/Home").status_code == 429  # a page view computes: it needs a turn
        for path in ("/Home/good.png", "/Home/good.png?thumbnail", "/Home/good.png?size=40"):
            response = get(wiki, path)
            assert response.status_code == 200 and response.data == GOOD, path
    finally:
        for fd in held:
            os.close(fd)
    thumbnail = get(wiki, "/Home/good.png?thumbnail")
    assert thumbnail.status_code == 200
    assert PIL.Image.open(io.BytesIO(thumbnail.data)).size[0] <= 80  # a turn was free
