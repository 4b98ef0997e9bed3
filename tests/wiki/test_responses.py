"""The wiki service's own error answers: Retry-After on every channel, and a browser's refused
page that loads itself again."""

from html.parser import HTMLParser

import pytest

from app.core.errors import NotFound
from app.core.errors import TooManyRequests
from app.core.errors import Unavailable
from app.wiki.responses import error_response

REFUSALS = [
    TooManyRequests("this wiki is answering as many of your requests as it may", retry_after=1),
    Unavailable("the wiki is busy with another edit; try again in a moment", retry_after=2),
]


@pytest.mark.parametrize("error", REFUSALS, ids=["429", "503"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_browsers_refused_page_loads_itself_again_after_retry_after(error, method):
    """Eighteenth review: a member opening three tabs at once got a bare 429 page in one of
    them, which stayed an error page. It now reloads after Retry-After, without a script."""
    response = error_response(error, "/Home", method)
    body = response.get_data(as_text=True)
    assert response.status_code == error.status
    assert response.headers["Retry-After"] == str(error.retry_after)
    assert f'<meta http-equiv="refresh" content="{error.retry_after}">' in body
    assert "<script" not in body


@pytest.mark.parametrize("error", REFUSALS, ids=["429", "503"])
def test_a_refused_form_post_or_api_call_is_never_reloaded(error):
    """A reload would send a GET where a form was posted (its text lost on a page that looks
    like success), and API clients read Retry-After themselves."""
    for path, method in (("/Home/save", "POST"), ("/api/v1/pages/Home", "GET")):
        response = error_response(error, path, method)
        assert response.headers["Retry-After"] == str(error.retry_after)
        assert 'http-equiv="refresh"' not in response.get_data(as_text=True)


def test_an_error_without_retry_after_neither_reloads_nor_says_when():
    response = error_response(NotFound("there is no such page"), "/Nope", "GET")
    assert "Retry-After" not in response.headers
    assert 'http-equiv="refresh"' not in response.get_data(as_text=True)


class FormFields(HTMLParser):
    """The (name, value) fields of a page's forms, as a browser would send them."""

    def __init__(self):
        super().__init__()
        self.fields, self._area = [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input":
            self.fields.append((attrs["name"], attrs.get("value", "")))
        elif tag == "textarea":
            self._area = [attrs["name"], ""]

    def handle_data(self, data):
        if self._area is not None:
            self._area[1] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            name, text = self._area
            self.fields.append((name, text[1:] if text.startswith("\n") else text))
            self._area = None


HOSTILE_FIELDS = [
    ("csrf_token", 'tok"en><script>alert(1)</script>'),
    ("content", "\nfirst line after a blank\n</textarea><img src=x onerror=alert(1)>\n&amp; done"),
    ("commit", 'message with "quotes" & <b>tags</b>'),
    ("revision", "0123abcd"),
]


@pytest.mark.parametrize("error", REFUSALS, ids=["429", "503"])
def test_a_refused_form_post_gets_its_fields_back_to_send_again(error):
    """Eighteenth review: a save refused for a busy wiki lost the text the editor posted. The
    page holds every field, escaped, in a form that posts them again to the same address."""
    response = error_response(error, "/Home/save", "POST", HOSTILE_FIELDS)
    body = response.get_data(as_text=True)
    assert '<form method="post">' in body and "Send again" in body
    assert "<script" not in body and "<img" not in body and "</textarea><img" not in body
    form = FormFields()
    form.feed(body)
    assert sorted(form.fields) == sorted(HOSTILE_FIELDS)


def test_fields_come_back_only_to_a_post_refused_for_now():
    for error, method in ((REFUSALS[0], "GET"), (NotFound("no such page"), "POST")):
        body = error_response(error, "/Home/save", method, HOSTILE_FIELDS).get_data(as_text=True)
        assert "<form" not in body and "csrf_token" not in body
    api = error_response(REFUSALS[1], "/api/v1/pages/Home", "POST", HOSTILE_FIELDS)
    assert "csrf_token" not in api.get_data(as_text=True)
