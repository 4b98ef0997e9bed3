import pytest

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
