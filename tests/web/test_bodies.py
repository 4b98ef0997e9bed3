"""A request's body is received whole, and held to the service's cap, before any lock or turn."""

from __future__ import annotations

import io
import logging
import threading
import time

import pytest

from app.core.errors import BadRequest
from app.core.errors import PayloadTooLarge
from app.web.bodies import IN_MEMORY
from app.web.bodies import SlowPlaces
from app.web.bodies import receive_body

CAP = 4096


class Unreadable(io.RawIOBase):
    def read(self, size=-1):
        raise AssertionError("the body was read")


def environ(body: bytes | io.RawIOBase, **headers) -> dict:
    stream = body if isinstance(body, io.RawIOBase) else io.BytesIO(body)
    return {
        "REQUEST_METHOD": "POST",
        "wsgi.input": stream,
        "wsgi.input_terminated": True,
        **headers,
    }


@pytest.mark.parametrize("headers", [{}, {"CONTENT_LENGTH": "0"}, {"CONTENT_LENGTH": "x"}])
def test_a_request_without_a_body_is_left_alone(headers):
    request = environ(Unreadable(), **headers)
    assert receive_body(request, CAP) is None and isinstance(request["wsgi.input"], Unreadable)


@pytest.mark.parametrize(
    "headers",
    [{"CONTENT_LENGTH": "12"}, {"HTTP_TRANSFER_ENCODING": "chunked"}],
    ids=["length", "chunked"],
)
def test_a_body_is_received_whole_with_its_exact_length(headers):
    request = environ(b"content=hi!!", **headers)
    with receive_body(request, CAP) as body:
        assert request["wsgi.input"] is body and body.read() == b"content=hi!!"
    assert request["CONTENT_LENGTH"] == "12" and "HTTP_TRANSFER_ENCODING" not in request


def test_a_big_body_waits_in_a_file_not_in_memory():
    size = IN_MEMORY + 1
    with receive_body(environ(b"x" * size, CONTENT_LENGTH=str(size)), 2 * IN_MEMORY) as body:
        assert body._rolled and len(body.read()) == size


def test_a_body_declared_over_the_cap_is_refused_unread():
    with pytest.raises(PayloadTooLarge) as refused:
        receive_body(environ(Unreadable(), CONTENT_LENGTH=str(CAP + 1)), CAP)
    assert refused.value.extra["max_bytes"] == CAP


@pytest.mark.parametrize("size", [CAP + 1, 10 * CAP])
def test_a_chunked_body_over_the_cap_is_refused_not_cut(size):
    with pytest.raises(PayloadTooLarge):
        receive_body(environ(b"x" * size, HTTP_TRANSFER_ENCODING="chunked"), CAP)


def test_a_body_at_the_cap_is_taken():
    with receive_body(environ(b"x" * CAP, CONTENT_LENGTH=str(CAP)), CAP) as body:
        assert len(body.read()) == CAP


def test_a_body_that_ends_early_is_a_bad_request():
    with pytest.raises(BadRequest) as refused:
        receive_body(environ(b"short", CONTENT_LENGTH="100"), CAP)
    assert "5 of 100 bytes" in refused.value.message


class Broken(io.RawIOBase):
    """A chunked body gunicorn cannot parse: its reader raises (InvalidChunkSize...)."""

    def __init__(self, error: Exception):
        self.error = error

    def read(self, size=-1):
        raise self.error


@pytest.mark.parametrize("error", [ValueError("bad chunk size"), OSError("no more data")])
def test_a_body_that_cannot_be_read_is_a_bad_request(error):
    with pytest.raises(BadRequest) as refused:
        receive_body(environ(Broken(error), HTTP_TRANSFER_ENCODING="chunked"), CAP)
    assert "could not be read" in refused.value.message


def test_slow_body_places_fill_up_and_free_again(tmp_path):
    slow = SlowPlaces(tmp_path / "bodies", places=2)
    first, second = slow.take(), slow.take()
    assert first is not None and second is not None
    assert slow.take() is None  # every place taken
    first.free()
    first.free()  # freeing twice changes nothing
    again = slow.take()
    assert again is not None
    assert slow.take() is None
    for place in (second, again):
        place.free()


def test_a_pool_holds_one_slow_place_at_a_time(tmp_path):
    """Fifth and sixth reviews: slow readers of one crowd took every place, and the owner's
    own download begun then was cut. A pool holds one place; others still find theirs."""
    slow = SlowPlaces(tmp_path / "slow", places=3)
    crowd, owner = tmp_path / "owner-dir", tmp_path / "owner-dir" / "owner"
    held = slow.take(crowd, visitor=True)
    assert held is not None
    assert slow.take(crowd, visitor=True) is None  # the crowd's second slow reader
    mine = slow.take(owner)
    assert mine is not None
    held.free()
    assert slow.take(crowd, visitor=True) is not None  # its place came back


def test_visitors_never_take_the_last_slow_place(tmp_path):
    """However many public wikis strangers read slowly, one place stays for members."""
    slow = SlowPlaces(tmp_path / "slow", places=3)
    strangers = [slow.take(tmp_path / f"visitors-{n}", visitor=True) for n in range(4)]
    assert [place is not None for place in strangers] == [True, True, False, False]
    member = slow.take(tmp_path / "members-a")
    assert member is not None
    assert slow.take(tmp_path / "members-b") is None  # now every place is taken
    assert slow.take() is None


def test_one_owners_pools_hold_all_places_but_one_whatever_they_hold_them_for(tmp_path):
    """Twenty-second review: three members trickling uploads to three wikis of one owner
    took every place, and another owner's saves and pushes were refused at once. Now an
    owner's members and owner hold all places but one together: slow bodies, slow sends and
    lock waits (a set of fewer places in the same folder) alike; visitors are not counted."""
    slow = SlowPlaces(tmp_path / "slow", places=3)
    waits = SlowPlaces(tmp_path / "slow", places=2, pool_file="write-wait.lock")
    owner, other = tmp_path / "owner-a", tmp_path / "owner-b"
    uploads = [slow.take(owner / f"members-{n}", owner=owner) for n in range(2)]
    assert all(place is not None for place in uploads)
    assert slow.take(owner / "members-2", owner=owner) is None  # the third wiki's member
    assert waits.take(owner / "members-3", owner=owner) is None  # a lock wait counts too
    theirs = waits.take(other / "owner", owner=other)  # another owner's write may wait
    assert theirs is not None
    theirs.free()
    uploads.pop().free()
    # With one transfer, the owner's lock wait finds its slot, and then the owner is full.
    wait = waits.take(owner / "owner", owner=owner)
    assert wait is not None
    assert slow.take(owner / "members-2", owner=owner) is None
    visitor = slow.take(owner, visitor=True, owner=owner)  # a stranger's slow download
    assert visitor is not None
    for place in (*uploads, wait, visitor):
        place.free()


def test_a_slow_body_goes_on_without_a_place_when_places_cannot_be_made(tmp_path, caplog):
    (tmp_path / "run").write_text("")  # no folder can be made in a file
    with caplog.at_level(logging.WARNING, logger="robot.web"):
        place = SlowPlaces(tmp_path / "run" / "bodies", places=2).take()
    assert place is not None
    place.free()  # holds nothing
    assert "slow transfer without a place" in caplog.text


def hold_as_visitor(slow: SlowPlaces, pool, given_up: threading.Event) -> threading.Thread:
    """A visitor's transfer holding a place, and giving it up when a member asks (as the
    slow-send watcher does, app.wiki.sends)."""
    place = slow.take(pool, visitor=True)
    assert place is not None

    def watch():
        while not place.evicted():
            time.sleep(0.05)
        place.free()
        given_up.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_visitor_gives_its_place_up_to_a_member_who_finds_none(tmp_path):
    """Seventh review: two anonymous slow readers and one account reading its own wiki took
    every place, and an owner's own download was cut. Now a member finding none has a
    visitor's given up."""
    slow = SlowPlaces(tmp_path / "slow", places=3)
    given_up = threading.Event()
    first = hold_as_visitor(slow, tmp_path / "visitors-a", given_up)
    second = hold_as_visitor(slow, tmp_path / "visitors-b", threading.Event())
    stranger = slow.take(tmp_path / "someone-else" / "owner")  # a member of their own wiki
    assert stranger is not None
    owner = slow.take(tmp_path / "owner-dir" / "owner")
    assert owner is not None and given_up.is_set()
    assert slow.take(tmp_path / "visitors-c", visitor=True) is None
    for thread in (first, second):
        thread.join(timeout=0)


def test_members_never_take_each_others_places_and_visitors_never_ask(tmp_path):
    slow = SlowPlaces(tmp_path / "slow", places=2)
    held = [slow.take(tmp_path / f"members-{n}") for n in range(2)]
    assert all(place is not None for place in held)
    assert slow.take(tmp_path / "members-x") is None
    assert not list((tmp_path / "slow").glob("*.evict"))  # no visitor to ask
    for place in held:
        place.free()
    visitor = slow.take(tmp_path / "visitors", visitor=True)
    member = slow.take(tmp_path / "members-0")
    assert visitor is not None and member is not None
    assert slow.take(tmp_path / "visitors-2", visitor=True) is None
    assert not list((tmp_path / "slow").glob("*.evict"))  # a visitor asks no one
