"""The wiki service's own error answers: Retry-After on every channel, and a browser's refused
page that loads itself again."""

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
