"""Rewrite Otterwiki's template sources so they need no inline script the CSP would refuse.

Otterwiki's (trusted) templates carry inline event handlers (`onclick="otterwiki_editor.bold()"`)
and inline `<script>` blocks. Once, when a template is loaded, each handler becomes declarative
attributes that `static/handlers.js` binds by event delegation:

    onclick="return otterwiki.toggle_pagename_prefix('pagename','{{prefix}}')"
    -> data-robot-onclick="otterwiki.toggle_pagename_prefix" data-robot-onclick-return=""
       data-robot-onclick-arg0="s:pagename" data-robot-onclick-arg1="s:{{prefix}}"

Arguments are separate attributes, so a Jinja value is only ever a string argument, never code
(in Otterwiki's own `'{{prefix}}'` an HTML-escaped quote decodes back into a quote and ends the
string). Inline `<script>` blocks get this response's nonce. A handler this module does not
understand raises `UnknownHandler`: a test walks every template, so a new one in an Otterwiki
upgrade is caught before it ships broken.
"""

from __future__ import annotations

import re

# What a handler may call: any function of Otterwiki's own two objects, and these few others
# (the page globals of editor.html and sidebar_preferences.html). handlers.js keeps the same.
CALLABLE_OBJECTS = frozenset({"otterwiki", "otterwiki_editor"})
CALLABLE_FUNCTIONS = frozenset(
    {
        "halfmoon.toggleSidebar",
        "halfmoon.toggleDarkMode",
        "confirm",
        "navigator.clipboard.writeText",
        "cmOpenSearch",
        "cmOpenReplace",
        "addPageRow",
        "cloneRow",
        "deleteRow",
    }
)
# Events handlers.js listens for.
EVENTS = frozenset({"click", "change", "input", "focus"})
# Handlers that are statements rather than one call: each is a named action in handlers.js.
ACTIONS = {
    "this.setSelectionRange(this.value.length,this.value.length);": "caret-end",
    "this.value = this.value.replace(/[^0-9]/g, '')": "digits-only",
    "window.location.href = this.checked ? this.dataset.urlSideBySide : this.dataset.urlInline;": (
        "follow-checked-url"
    ),
}
# Values from the event's context a handler may pass (handlers.js resolves them).
CONTEXT_VALUES = frozenset({"this", "event", "this.checked", "event.target.checked"})

# One handler attribute; its value may hold Jinja expressions with double quotes inside.
_HANDLER_RE = re.compile(r"""\son([a-z]+)="((?:\{\{.*?\}\}|[^"{]|\{(?!\{))*)\"""", re.S)
_CALL_RE = re.compile(r"(return\s+)?([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)\((.*)\)\s*;?")
_ARG_RE = re.compile(
    r"""\s*(?:'(?P<s>(?:\{\{.*?\}\}|[^'\\{]|\{(?!\{))*)'"""
    r"""|(?P<n>-?\d+(?:\.\d+)?)|(?P<b>true|false)|(?P<v>[A-Za-z_.]+))\s*(?:,|$)"""
)
_INLINE_SCRIPT_RE = re.compile(r"<script\b(?![^>]*\bsrc=)")
NONCE_ATTRIBUTE = ' nonce="{{ csp_nonce() }}"'
TRUSTED_ATTRIBUTE = ' data-robot-nonce="{{ csp_nonce() }}"'


class UnknownHandler(ValueError):
    """An inline handler this module cannot turn into declarative attributes."""


def _arguments(event: str, text: str) -> list[str]:
    values, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _ARG_RE.match(text, position)
        if not match or match.end() == position:
            raise UnknownHandler(f"on{event}: cannot read the arguments {text!r}")
        if match["s"] is not None:
            values.append("s:" + match["s"])
        elif match["n"] is not None:
            values.append("n:" + match["n"])
        elif match["b"] is not None:
            values.append("b:" + match["b"])
        elif match["v"] in CONTEXT_VALUES:
            values.append("v:" + match["v"])
        else:
            raise UnknownHandler(f"on{event}: {match['v']!r} is not a known value")
        position = match.end()
    return values


def declarative(event: str, code: str) -> str:
    """The `data-robot-on<event>…` attributes (with a leading space) replacing `on<event>=code`.

    Raises UnknownHandler for an event handlers.js does not listen for, or code that is neither
    a known statement (ACTIONS) nor one call of an allowed function with literal arguments.
    """
    if event not in EVENTS:
        raise UnknownHandler(f"on{event} is not an event handlers.js listens for")
    name = f"data-robot-on{event}"
    if code.strip() in ACTIONS:
        return f' {name}="@{ACTIONS[code.strip()]}"'
    call = _CALL_RE.fullmatch(code.strip())
    if not call:
        raise UnknownHandler(f"on{event}: {code!r} is not one function call")
    returns, path, arguments = call.groups()
    owner, _, function = path.rpartition(".")
    if path not in CALLABLE_FUNCTIONS and (owner not in CALLABLE_OBJECTS or not function):
        raise UnknownHandler(f"on{event}: {path} is not an allowed function")
    attributes = [f' {name}="{path}"']
    if returns:
        attributes.append(f' {name}-return=""')
    for index, value in enumerate(_arguments(event, arguments)):
        attributes.append(f' {name}-arg{index}="{value}"')
    return "".join(attributes)


def rewrite_template(source: str) -> str:
    """Otterwiki template `source` with handlers made declarative and inline scripts nonced.

    Raises UnknownHandler (see `declarative`) for a handler it cannot rewrite.
    """
    # The response's nonce on every element with a handler: handlers.js runs only those, so
    # markup that reaches the DOM some other way (mermaid builds labels in the browser) cannot
    # borrow a handler, as it cannot know the nonce. No template element has two handlers.
    source = _HANDLER_RE.sub(lambda m: declarative(m[1], m[2]) + TRUSTED_ATTRIBUTE, source)
    return _INLINE_SCRIPT_RE.sub("<script" + NONCE_ATTRIBUTE, source)
