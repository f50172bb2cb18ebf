"""What a parsed search becomes on a collection of titles and abstracts: every construct the collection
cannot honour exactly is approximated here, in one place, so the rules can be read and tested.

The result is a tree of :class:`Match` (words as a phrase in the title and/or abstract), ``Near`` over
matches, ``And``/``Or``/``Not``, ``DateLimit`` (only when the index has dates), :data:`EVERYTHING` and
:data:`NOTHING`. The rules (docs/boolean-engine.md has the table):

- title/abstract fields are searched as such; every other text field (``tw``, ``mp``, all fields,
  ``ot``, ``nm``, ``rn``...) is searched in title and abstract, the only text the collection has;
- a MeSH heading is its words as a phrase in title or abstract, inverted headings turned round
  (``Kidney Failure, Chronic`` -> "chronic kidney failure"); explosion, major-topic and subheadings
  are dropped; a free-floating subheading, an author, journal or affiliation matches nothing;
- a restriction the collection cannot evaluate (``limit N to english language``, publication types,
  languages, subsets, entry dates, the check tags Humans/Animals/Male/Female, and date limits on an
  index without dates) never removes a document: it matches every document where it restricts (under
  an even number of NOTs) and none where it excludes (under an odd number);
- ``Near`` is distributed over ``Or`` operands (``(a or b) adj3 c`` -> ``a adj3 c or b adj3 c``); an
  operand that is not a word or phrase (an AND, a NOT, a line) turns the proximity into AND.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

from deepretrieval.retrievers.boolean.syntax import (
    And,
    DateLimit,
    Heading,
    Limit,
    Near,
    Node,
    Not,
    Or,
    QueryError,
    Ref,
    Strategy,
    Subheading,
    Term,
    combine,
)

TITLE, ABSTRACT = "title", "abstract"
TEXT_FIELDS: dict[str, tuple[str, ...]] = {"ti": (TITLE,), "ab": (ABSTRACT,)}
NO_SUCH_FIELD = frozenset({"au", "ta", "jn", "jw", "ad", "ui"})
RESTRICTIONS = frozenset({"pt", "la", "sb", "ed", "dp", "yr", "da", "ep", "ez", "fs"})
CHECK_TAGS = frozenset({"humans", "animals", "male", "female"})
MAX_PROXIMITY_COMBINATIONS = 1024


@dataclass(frozen=True)
class Match:
    """Written words (wildcards in the shared notation) as a phrase in any of ``fields``."""

    words: tuple[str, ...]
    fields: tuple[str, ...] = (TITLE, ABSTRACT)


@dataclass(frozen=True)
class _Constant:
    name: str

    def __repr__(self) -> str:
        return self.name


EVERYTHING = _Constant("EVERYTHING")
NOTHING = _Constant("NOTHING")
Core = Match | Near | And | Or | Not | DateLimit | _Constant


def approximate(
    strategy: Strategy, *, has_dates: bool, headings: Literal["phrase", "ignore"] = "phrase"
) -> Core:
    """The searchable tree for ``strategy``'s query. Each line is approximated once per polarity it is
    needed in, in line order (no recursion through line references), and shared where it is referred to."""
    lines = strategy.lines
    needed = {(len(lines), True)}
    for number in range(len(lines), 0, -1):  # references only point to earlier lines
        for positive in (True, False):
            if (number, positive) in needed:
                needed.update(_references(lines[number - 1], positive))
    approximator = _Approximator(has_dates, headings)
    for number, line in enumerate(lines, start=1):
        for positive in (True, False):
            if (number, positive) in needed:
                approximator.memo[(number, positive)] = approximator.visit(line, positive)
    return approximator.memo[(len(lines), True)]


def _references(node: Node, positive: bool) -> list[tuple[int, bool]]:
    """The lines one line refers to, with the polarity each is needed in."""
    if isinstance(node, Ref):
        return [(node.line, positive)]
    if isinstance(node, (And, Or, Near)):
        return [found for child in node.operands for found in _references(child, positive)]
    if isinstance(node, Not):
        return _references(node.left, positive) + _references(node.right, not positive)
    return []


class _Approximator:
    def __init__(self, has_dates: bool, headings: str):
        self.has_dates = has_dates
        self.headings = headings
        self.memo: dict[tuple[int, bool], Core] = {}

    def visit(self, node: Node, positive: bool) -> Core:
        if isinstance(node, Ref):
            return self.memo[(node.line, positive)]
        if isinstance(node, Term):
            return self.term(node, positive)
        if isinstance(node, Heading):
            return self.heading(node, positive)
        if isinstance(node, Subheading):
            return NOTHING
        if isinstance(node, Limit):
            return _restriction(positive)
        if isinstance(node, DateLimit):
            return node if self.has_dates else _restriction(positive)
        if isinstance(node, And):
            return all_of([self.visit(child, positive) for child in node.operands])
        if isinstance(node, Or):
            return any_of([self.visit(child, positive) for child in node.operands])
        if isinstance(node, Not):
            return without(self.visit(node.left, positive), self.visit(node.right, not positive))
        if isinstance(node, Near):
            return self.near(node, positive)
        raise TypeError(f"not a query node: {node!r}")

    def term(self, node: Term, positive: bool) -> Core:
        fields: list[str] = []
        restricted = False
        for code in node.fields:
            if code in NO_SUCH_FIELD:
                continue
            if code in RESTRICTIONS:
                restricted = True
                continue
            for name in TEXT_FIELDS.get(code, (TITLE, ABSTRACT)):
                if name not in fields:
                    fields.append(name)
        if fields:
            return Match(node.words, tuple(sorted(fields, key=(TITLE, ABSTRACT).index)))
        return _restriction(positive) if restricted else NOTHING

    def heading(self, node: Heading, positive: bool) -> Core:
        if node.name.lower() in CHECK_TAGS:
            return _restriction(positive)
        if self.headings == "ignore":
            return NOTHING
        return Match(tuple(uninvert(node.name).split()))

    def near(self, node: Near, positive: bool) -> Core:
        operands = [self.visit(child, positive) for child in node.operands]
        if any(operand is NOTHING for operand in operands):
            return NOTHING
        choices: list[list[Match]] = []
        for operand in operands:
            if isinstance(operand, Match):
                choices.append([operand])
            elif isinstance(operand, Or) and all(isinstance(c, Match) for c in operand.operands):
                choices.append(list(operand.operands))
            else:
                return all_of(operands)
        count = 1
        for options in choices:
            count *= len(options)
        if count > MAX_PROXIMITY_COMBINATIONS:
            raise QueryError(
                f"a proximity expands to {count} word combinations; the limit is {MAX_PROXIMITY_COMBINATIONS}"
            )
        return any_of([_near(combo, node) for combo in itertools.product(*choices)])


def _near(matches: tuple[Match, ...], node: Near) -> Core:
    fields = tuple(f for f in (TITLE, ABSTRACT) if all(f in m.fields for m in matches))
    if not fields:
        return NOTHING
    if node.ordered and node.max_between == 0:  # Ovid's plain adj: one phrase
        return Match(tuple(word for m in matches for word in m.words), fields)
    return Near(tuple(Match(m.words, fields) for m in matches), node.max_between, node.ordered)


def _restriction(positive: bool) -> Core:
    """A restriction the collection cannot evaluate removes nothing (see the module docstring)."""
    return EVERYTHING if positive else NOTHING


def uninvert(heading: str) -> str:
    """MeSH's inverted form in reading order: ``Tomography, X-Ray Computed`` -> ``X-Ray Computed
    Tomography``."""
    parts = [part.strip() for part in heading.split(",") if part.strip()]
    return " ".join(reversed(parts))


def all_of(operands: list[Core]) -> Core:
    if any(operand is NOTHING for operand in operands):
        return NOTHING
    kept = [operand for operand in operands if operand is not EVERYTHING]
    return combine(And, kept) if kept else EVERYTHING


def any_of(operands: list[Core]) -> Core:
    if any(operand is EVERYTHING for operand in operands):
        return EVERYTHING
    kept = [operand for operand in operands if operand is not NOTHING]
    return combine(Or, kept) if kept else NOTHING


def without(left: Core, right: Core) -> Core:
    if left is NOTHING or right is EVERYTHING:
        return NOTHING
    if right is NOTHING:
        return left
    return Not(left, right)
