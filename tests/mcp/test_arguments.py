import pytest
from pydantic import Field
from pydantic import TypeAdapter
from pydantic import ValidationError
from pydantic import validate_call

from app.mcp.arguments import describe
from app.mcp.arguments import problem_text


@validate_call(config={"extra": "forbid"})
def tool(path: str, limit: int = Field(default=20, ge=1, le=200), flag: bool = False):
    return path, limit, flag


def failure(**arguments) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        tool(**arguments)
    return caught.value


@pytest.mark.parametrize(
    ("arguments", "text"),
    [
        ({"path": 1}, "argument 'path' must be a string"),
        ({}, "missing required argument 'path'"),
        ({"path": "a", "x": 1}, "unknown argument 'x'"),
        ({"path": "a", "limit": 0}, "argument 'limit' must be at least 1"),
        ({"path": "a", "limit": 10**40}, "argument 'limit' must be at most 200"),
        ({"path": "a", "limit": None}, "argument 'limit' must be an integer"),
        ({"path": "a", "flag": "maybe"}, "argument 'flag' must be true or false"),
    ],
)
def test_each_kind_reads_as_one_plain_sentence(arguments, text):
    assert problem_text("tool", failure(**arguments)) == f"Invalid arguments for tool: {text}"


def test_several_problems_are_joined_and_never_echo_the_input():
    text = problem_text("tool", failure(path={"secret": "x" * 500}, limit=-1, y=2))
    assert text.count(";") == 2 and "secret" not in text and len(text) < 200


def test_an_unmapped_kind_keeps_pydantic_one_line_message():
    try:
        TypeAdapter(list[int]).validate_python("nope")
    except ValidationError as error:
        detail = error.errors(include_url=False)[0]
    assert describe({**detail, "loc": ("items",), "type": "odd"}).startswith("argument 'items': ")
