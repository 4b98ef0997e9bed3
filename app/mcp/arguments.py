"""Short, plain answers to tool calls with bad arguments, for every tool in one place.

FastMCP validates `tools/call` arguments against the tool's signature with pydantic and, left
alone, answers a bad call with pydantic's dump ("1 validation error for call[read_page] ...
For further information visit https://errors.pydantic.dev/..."). MCP 2025-06-18 and later
(server/tools, "Error Handling") count input validation errors as tool execution errors: a
result with `isError: true` the model can read and correct itself from, not a protocol error.
So `ArgumentErrors` turns each failure into one ToolError whose text names the argument and
what it must be, e.g. "Invalid arguments for read_page: argument 'path' must be a string;
unknown argument 'x'". The input itself is never echoed (it may be huge or junk).
"""

from __future__ import annotations

from fastmcp.exceptions import ToolError
from fastmcp.exceptions import ValidationError
from fastmcp.server.middleware import Middleware
from pydantic import ValidationError as PydanticValidationError

# pydantic error type -> what the argument must be (or a whole sentence, for "{name}" forms).
_MUST_BE = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "float_type": "a number",
    "float_parsing": "a number",
    "dict_type": "an object",
    "list_type": "a list",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "greater than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}


def _name(loc: tuple) -> str:
    """The argument an error is about: its top-level name (a nested spot is that argument's)."""
    return str(loc[0]) if loc else "arguments"


def describe(detail: dict) -> str:
    """Return a short sentence for one pydantic error `detail` (from `errors()`) of a tool call."""
    kind, name, ctx = detail["type"], _name(detail.get("loc", ())), detail.get("ctx") or {}
    if kind in ("missing", "missing_argument", "missing_keyword_only_argument"):
        return f"missing required argument '{name}'"
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        return f"unknown argument '{name}'"
    if kind in _MUST_BE:
        return f"argument '{name}' must be {_MUST_BE[kind]}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"argument '{name}' must be {words} {ctx.get(key)}"
    if kind == "string_too_short":
        least = ctx.get("min_length", 1)
        if least == 1:
            return f"argument '{name}' must not be empty"
        return f"argument '{name}' must be at least {least} characters"
    if kind == "literal_error":
        return f"argument '{name}' must be one of {ctx.get('expected')}"
    if kind == "string_too_long":
        return f"argument '{name}' must be at most {ctx.get('max_length')} characters"
    # Anything else: pydantic's one-line message, which never holds the input.
    return f"argument '{name}': {detail.get('msg', 'is not valid')}"


def problem_text(tool: str, error: PydanticValidationError) -> str:
    """Return the short text for a call of `tool` whose arguments failed with `error`.

    Each argument is named once (a value that fails several union arms is one problem).
    """
    sentences = []
    for detail in error.errors(include_url=False, include_context=True, include_input=False):
        sentence = describe(detail)
        if sentence not in sentences:
            sentences.append(sentence)
    return f"Invalid arguments for {tool}: " + "; ".join(sentences)


class ArgumentErrors(Middleware):
    """FastMCP middleware: a tool call's argument validation error becomes a short ToolError.

    A ToolError is sent as the call's result with `isError: true` and its text as given, even
    under `mask_error_details`.
    """

    async def on_call_tool(self, context, call_next):
        try:
            return await call_next(context)
        except (ValidationError, PydanticValidationError) as error:
            cause = error if isinstance(error, PydanticValidationError) else error.__cause__
            if not isinstance(cause, PydanticValidationError):
                raise
            raise ToolError(problem_text(context.message.name, cause)) from None
