import re

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from app.core.errors import BadRequest
from app.core.errors import NotFound
from app.pages.text import append_text
from app.pages.text import headings_of
from app.pages.text import replace_span
from app.pages.text import section_of

PAGE = """# Title

intro

## Setup

install it

```sh
# not a heading
```

### Details

fine print

## Usage

run it
"""


def test_section_runs_to_next_heading_of_same_level():
    section = section_of(PAGE, "setup")
    assert section.startswith("## Setup\n")
    assert "# not a heading" in section and "fine print" in section
    assert "Usage" not in section


def test_section_heading_may_include_hashes():
    assert section_of(PAGE, "## Usage") == "## Usage\n\nrun it\n"


def test_missing_section_lists_headings():
    with pytest.raises(NotFound, match="'Setup'"):
        section_of(PAGE, "Nope")


def test_headings_skip_fenced_code():
    assert headings_of(PAGE) == ["Title", "Setup", "Details", "Usage"]


def test_replace_span_once():
    assert replace_span("a b c", "b", "B") == "a B c"


@pytest.mark.parametrize(
    ("old", "error"), [("zzz", NotFound), ("", BadRequest), ("it", BadRequest)]
)
def test_replace_span_absent_empty_or_ambiguous(old, error):
    with pytest.raises(error):
        replace_span(PAGE, old, "x")


@pytest.mark.parametrize(
    ("before", "after"), [("", "new"), ("old\n", "old\n\nnew"), ("old", "old\n\nnew")]
)
def test_append_text(before, after):
    assert append_text(before, "new") == after


# The pattern before review 54, as the reference for what a heading and its title are.
_QUADRATIC_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")


def _reference_headings(content: str) -> list[str]:
    lines = content.splitlines()
    titles = [line for line in lines if not line.lstrip(" \t").startswith(("```", "~~~"))]
    return [m.group(2).strip() for m in map(_QUADRATIC_HEADING.match, titles) if m]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(["#", "##", "#######", " ", "\t", "x", "C#", " #", "\n"])))
def test_headings_and_titles_are_as_before(pieces):
    content = "".join(pieces)
    assert headings_of(content) == _reference_headings(content)


@pytest.mark.parametrize(
    "line",
    [
        "# x" + " " * 200_000 + "y",
        "# x" + " \t#" * 70_000 + "y",
        "#" * 6 + " a" + " #" * 100_000 + " z",
    ],
    ids=["spaces", "blanks-and-hashes", "hashes"],
)
def test_a_long_heading_line_is_read_in_one_pass(line):
    """Review 54: 160 KB of blanks in one heading line cost the old pattern 46 s on the MCP
    server's event loop, in every wiki's MCP calls; this line is read once."""
    (title,) = headings_of(line)
    assert title.endswith(("y", "z")) and section_of(line + "\n\nbody\n", title).endswith("body\n")
    with pytest.raises(NotFound) as missing:
        section_of(line + "\n\nbody\n", "nothing")
    assert len(str(missing.value)) < 300


def test_a_missing_section_names_some_headings_briefly():
    page = "".join(f"## Heading {number} {'long ' * 50}\n\ntext\n\n" for number in range(500))
    with pytest.raises(NotFound) as missing:
        section_of(page, "nothing")
    message = str(missing.value)
    assert "'Heading 0 long" in message and "…'" in message and "and 450 more" in message
    assert "Heading 50 " not in message and len(message) < 6_000
