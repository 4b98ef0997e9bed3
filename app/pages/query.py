"""The wiki's search query syntax, parsed into a safe SQLite FTS5 MATCH expression.

Syntax (case-insensitive; accents are ignored, so "cafe" finds "café"):

- `retro friday`      every word must appear in the page (text or name), in any order;
- `"retro on friday"` a quoted phrase: these words next to each other, in this order; a quote
                      left open is closed at the end of the query;
- `retro*`            a prefix: any word starting with "retro" (retro, retrospective);
- `retro OR review`   either word (OR in capitals, between two terms; binds tighter than the
                      implicit AND, so `team retro OR review` is team AND (retro OR review));
- `-draft`            exclusion: pages containing "draft" are left out (needs a word to find);
                      `-"first draft"` leaves out pages with that phrase;
- `AND` in capitals between words is allowed and changes nothing (all words must appear anyway).

Everything else is literal text: FTS5's own syntax (column filters `name:`, `NEAR`, `^`, `+`,
parentheses, AND/NOT) never reaches MATCH. Each term is re-emitted as an FTS5 string of its
words alone (letters and digits; punctuation separates words, as the index's unicode61
tokenizer does), so `e-mail` is the phrase "e mail" and `a:b` the phrase "a b".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.core.errors import BadRequest

MAX_QUERY_CHARS = 200
# Distinct terms (words, phrases, prefixes; found or excluded) a query may hold. Ranking a page
# costs about its matches times the terms: 66 words of one letter over a page of that letter
# (131 characters) spent 30 s of a worker's CPU (review 34). Repeats count once.
MAX_QUERY_TERMS = 10
# What the unicode61 tokenizer keeps as word characters, near enough: letters, digits, marks.
_WORD = re.compile(r"[^\W_]+")
# A quoted phrase, maybe excluded (closed or running to the end), or a run of anything but
# space and quotes.
_TOKEN = re.compile(r'(-?)"([^"]*)(?:"|$)|([^\s"]+)')

SYNTAX_HELP = (
    'Query syntax: words (all must appear, any order); "a quoted phrase"; word* for a prefix; '
    "OR between two words for either; -word to leave out pages with that word; "
    f"AND is implied; at most {MAX_QUERY_TERMS} terms. "
    "Case and accents are ignored; other punctuation is not an operator."
)


@dataclass(frozen=True)
class Term:
    """One thing to find: its words, whether the last one is a prefix, and whether excluded."""

    words: tuple[str, ...]
    prefix: bool = False
    exclude: bool = False

    def fts(self) -> str:
        """This term as an FTS5 phrase string: `"w1 w2"`, with `*` after it for a prefix."""
        # Words hold no quotes (they are letters and digits), so the string cannot be escaped.
        return '"' + " ".join(self.words) + '"' + ("*" if self.prefix else "")


def _term(text: str, quoted: bool, excluded: bool) -> Term | None:
    exclude = excluded or (not quoted and text.startswith("-"))
    prefix = text.endswith("*") and not quoted
    words = tuple(_WORD.findall(text.lower()))
    if not words:
        return None
    return Term(words, prefix=prefix, exclude=exclude)


def parse(query: object) -> list[list[Term]]:
    """Parse a search query into groups to AND together, each a list of terms to OR.

    `query` is the user's text (see the module docstring for the syntax). Returns e.g.
    `[[Term(("team",))], [Term(("retro",)), Term(("review",))]]` for `team retro OR review`;
    excluded terms come as one-term groups with `exclude=True`.
    A term repeated in a group, and a group repeated, count once (`a a OR a` is `a`).
    Raises BadRequest when the query is not a string, is empty or longer than MAX_QUERY_CHARS,
    has no words at all (only punctuation), only excludes, or holds more than
    MAX_QUERY_TERMS distinct terms.
    """
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("search query q is empty. " + SYNTAX_HELP)
    if len(query) > MAX_QUERY_CHARS:
        raise BadRequest(f"search query is longer than {MAX_QUERY_CHARS} characters")
    groups: list[list[Term]] = []
    joining = False  # the previous token was OR, and a term stood before it
    for match in _TOKEN.finditer(query):
        minus, phrase, bare = match.groups()
        if bare == "AND":
            continue  # what a term list means anyway
        if bare == "OR":
            joining = bool(groups) and not groups[-1][0].exclude
            continue
        quoted = phrase is not None
        term = _term(phrase if quoted else bare, quoted, excluded=bool(minus))
        if term is None:
            continue  # only punctuation: nothing the index could hold
        if joining and not term.exclude:
            groups[-1].append(term)
        else:
            groups.append([term])
        joining = False
    if not groups:
        raise BadRequest(
            "search query has no words to search for (punctuation, AND and OR are not words)"
        )
    if all(group[0].exclude for group in groups):
        raise BadRequest("search query only excludes words (-word); give a word to find")
    # Terms are frozen dataclasses: equal when they find the same.
    unique = list({tuple(dict.fromkeys(group)): None for group in groups})
    if len({term for group in unique for term in group}) > MAX_QUERY_TERMS:
        raise BadRequest(
            f"search query holds more than {MAX_QUERY_TERMS} different terms; use fewer "
            'words, or "a quoted phrase" for words that belong together'
        )
    return [list(group) for group in unique]


def to_fts(groups: list[list[Term]]) -> str:
    """Return the FTS5 MATCH expression for parsed `groups` (see `parse`).

    Found groups are ANDed, the terms of a group ORed; excluded terms follow as `NOT`.
    """
    found = [g for g in groups if not g[0].exclude]
    excluded = [g[0] for g in groups if g[0].exclude]
    expression = " AND ".join("(" + " OR ".join(t.fts() for t in g) + ")" for g in found)
    for term in excluded:
        expression = f"({expression}) NOT {term.fts()}"
    return expression


def any_fts(groups: list[list[Term]], words: bool = False) -> str:
    """Return an FTS5 MATCH expression for any one of the found (not excluded) terms of
    `groups` (see `parse`), e.g. `"team" OR "retro" OR "review"`; with `words`, for any one
    of their words (a prefix term's last word stays a prefix).

    A piece of a page may hold only some of the terms that the whole page holds: this finds
    and marks them there (app.pages.fulltext cuts snippets from such pieces).
    """
    terms = [term for group in groups if not group[0].exclude for term in group]
    if words:
        terms = [
            Term((word,), prefix=term.prefix and at == len(term.words) - 1)
            for term in terms
            for at, word in enumerate(term.words)
        ]
    return " OR ".join(dict.fromkeys(term.fts() for term in terms))


def compile_query(query: object) -> str:
    """Parse `query` and return its safe FTS5 MATCH expression; BadRequest as `parse`."""
    return to_fts(parse(query))
