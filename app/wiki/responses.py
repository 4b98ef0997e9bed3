"""The wiki service's own answers: small HTML pages for browsers, JSON errors for the API."""

from __future__ import annotations

import json
from html import escape

from werkzeug.wrappers import Response

from app.core.csp import page_policy
from app.core.csp import security_headers
from app.core.errors import RobotError
from app.core.errors import error_body
from app.core.errors import error_headers

API_PREFIX = "/api/v1"

_TITLES = {
    400: "Bad request",
    401: "Sign-in required",
    403: "No access",
    404: "Not found",
    405: "Not allowed",
    408: "Request timeout",
    409: "Busy",
    413: "Too large",
    414: "Address too long",
    416: "Range not satisfiable",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Unavailable",
    507: "Out of space",
}

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>{head}
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;
color:#222}}h1{{font-size:1.4rem}}a{{color:#0b5cad}}</style></head>
<body><h1>{title}</h1><p>{message}</p>{extra}</body>
</html>
"""


# The gateway's own pages run no script at all.
_HEADERS = security_headers(page_policy())


def _answer(body: str, status: int, **options) -> Response:
    """A Response that nobody caches, under the platform's policy (app/core/csp.py)."""
    response = Response(body, status=status, **options)
    response.headers.update(_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    return response


def is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def html_page(
    status: int,
    message: str,
    link: tuple[str, str] | None = None,
    reload_after: int | None = None,
    resend: list[tuple[str, str]] | None = None,
) -> Response:
    """Return a small HTML page saying `message`, optionally with one link (url, text); with
    `reload_after` (seconds), one that loads itself again then (a meta refresh, no script);
    with `resend`, the (name, value) fields of a refused form post, in a form that posts them
    again to the same address (resend_form)."""
    extra = head = ""
    if link:
        extra = f'<p><a href="{escape(link[0])}">{escape(link[1])}</a></p>'
    if reload_after is not None:
        head = f'\n<meta http-equiv="refresh" content="{int(reload_after)}">'
        extra += f"<p>This page loads itself again in {int(reload_after)} s.</p>"
    if resend is not None:
        extra += resend_form(resend)
    title = _TITLES.get(status, "Error")
    body = _PAGE.format(title=escape(title), message=escape(message), extra=extra, head=head)
    return _answer(body, status, content_type="text/html; charset=utf-8")


def resend_form(fields: list[tuple[str, str]]) -> str:
    """HTML of a form holding `fields` (name, value), that posts them again to the page's own
    address (a form without `action`): a save refused for a busy wiki (429, 503) lost the
    text the editor had posted, as the editor's page is gone and a reload would not post it.
    The text (`content`) shows in a read-only box; the rest (the CSRF token, the revision the
    edit began from, the commit message) rides hidden, so a save sent again still meets
    Otterwiki's checks and its conflict detection. Every value is escaped."""
    inputs = []
    for name, value in fields:
        if name == "content":
            # The newline after <textarea> is dropped by the parser, not the text's own first.
            inputs.append(
                f'<textarea name="{escape(name)}" rows="12" readonly '
                f'style="width:100%">\n{escape(value)}</textarea>'
            )
        else:
            inputs.append(f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">')
    return (
        "<p>Nothing was saved. What you sent is kept below: send it again in a moment.</p>"
        f'<form method="post">{"".join(inputs)}<p><button type="submit">Send again</button>'
        "</p></form>"
    )


def json_error(error: RobotError) -> Response:
    response = _answer(json.dumps(error_body(error)), error.status, content_type="application/json")
    response.headers.update(error_headers(error))
    if error.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def error_response(
    error: RobotError,
    path: str,
    method: str = "GET",
    resend: list[tuple[str, str]] | None = None,
) -> Response:
    """Answer `error` as JSON under /api/v1/ and as a small HTML page everywhere else, with its
    Retry-After when it has one. A page a browser asked for with GET or HEAD then loads itself
    again after those seconds: a member's tabs opened at once, some refused 429, fill in
    instead of staying error pages (eighteenth review). A form post refused so, whose fields
    are given (`resend`), gets them back in a form that sends them again (resend_form)."""
    if is_api_path(path):
        response = json_error(error)
    else:
        again = error.retry_after if method in ("GET", "HEAD") else None
        kept = resend if error.retry_after is not None and method == "POST" else None
        response = html_page(error.status, error.message, reload_after=again, resend=kept)
        response.headers.update(error_headers(error))
    return response


def redirect(location: str) -> Response:
    return _answer("", 302, headers={"Location": location})


def text_response(status: int, text: str) -> Response:
    return _answer(text + "\n", status, content_type="text/plain; charset=utf-8")
