"""The query AST shared by the PubMed and Ovid parsers: what the searcher wrote, before any approximation.

Words keep their spelling; truncation and wildcards use one notation whatever the source syntax:
``*`` any run of characters, ``?`` zero or one character, ``#`` exactly one character (Ovid's ``$`` is
``*``, its ``$N`` is N ``?``). Field codes are Ovid's two-letter ones (``ti``, ``ab``, ``tw``, ``mp``,
``au``...; PubMed's tags map onto them, untagged PubMed text is ``all``). A multi-line strategy is a
:class:`Strategy` whose lines may refer to earlier lines with :class:`Ref`; its query is the last line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

WILDCARDS = "*?#"
_DATE = re.compile(r"^(\d{4})(?:[/.-](\d{1,2})(?:[/.-](\d{1,2}))?)?$")


class QueryError(ValueError):
    """A query that cannot be run as written (it does not parse, or it is too large or too broad). The
    engine answers such a query with an empty ranking whose total is 0: it is the query's fault."""


class ParseError(QueryError):
    """Query text that is not valid in the syntax it was read as; the message says where and why."""


@dataclass(frozen=True)
class Term:
    """Words searched as a phrase (one word: a plain term) in the given fields."""

    words: tuple[str, ...]
    fields: tuple[str, ...] = ("all",)


@dataclass(frozen=True)
class Heading:
    """A MeSH heading (``exp X/``, ``X/``, ``*X/``, ``X[mh]``), with its subheadings if any."""

    name: str
    explode: bool = True
    major: bool = False
    subheadings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subheading:
    """A free-floating MeSH subheading (PubMed ``us[sh]``)."""

    name: str


@dataclass(frozen=True)
class Near:
    """Operands within ``max_between`` words of each other (in written order when ``ordered``):
    Ovid ``adjN`` is ``max_between = N - 1`` in any order, PubMed ``"a b"[tiab:~N]`` is ``N``."""

    operands: tuple[Node, ...]
    max_between: int
    ordered: bool = False


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """``left NOT right``: documents of ``left`` without those of ``right``."""

    left: Node
    right: Node


@dataclass(frozen=True)
class Limit:
    """A restriction on record attributes (language, species, publication type...), as written."""

    what: str


@dataclass(frozen=True)
class DateLimit:
    """Publication dates ``YYYY/MM/DD`` inclusive; either end may be open."""

    start: str | None = None
    end: str | None = None


@dataclass(frozen=True)
class Ref:
    """A reference to an earlier line of the strategy (1-based)."""

    line: int


Node = Term | Heading | Subheading | Near | And | Or | Not | Limit | DateLimit | Ref


@dataclass(frozen=True)
class Strategy:
    """A parsed search: its lines (a one-line query has one), the last line being the query."""

    lines: tuple[Node, ...]
    syntax: str = field(default="pubmed", compare=False)

    def query(self) -> Node:
        """The last line with every line reference replaced by the line it names."""
        resolved: list[Node] = []
        for line in self.lines:
            resolved.append(_substitute(line, resolved))
        return resolved[-1]

    def words(self) -> list[str]:
        """Every searched word of every line, in order (headings included, syntax excluded)."""
        found: list[str] = []
        for line in self.lines:
            _collect_words(line, found)
        return found


@dataclass(frozen=True)
class Limits:
    """Bounds on what one query may cost: characters, nesting depth (parentheses within a line, and the
    whole query once line references are expanded), and leaves once line references are expanded (a
    strategy whose lines refer to each other can grow exponentially)."""

    max_chars: int = 50_000
    max_depth: int = 64
    max_leaves: int = 5_000


@dataclass(frozen=True)
class Token:
    """One lexed piece of a query line: its kind (each parser names its own: ``word``, ``op``, ``(``...),
    its text and the column it starts at (for error messages)."""

    kind: str
    text: str
    column: int


class TokenCursor:
    """The position of a recursive-descent parser in one line's tokens; both syntaxes' parsers extend it."""

    def __init__(self, tokens: list[Token], number: int, limits: Limits):
        self.tokens = tokens
        self.pos = 0
        self.number = number
        self.limits = limits

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token


def combine(kind: type[And | Or], operands: list[Node]) -> Node:
    """``And``/``Or`` of the operands, flattening nested nodes of the same kind; one operand is itself."""
    flat: list[Node] = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, kind) else (operand,))
    return flat[0] if len(flat) == 1 else kind(tuple(flat))


def check_strategy(lines: list[Node], limits: Limits, syntax: str) -> Strategy:
    """Validate line references (earlier lines only), and the size and depth of each line once the
    lines it refers to are put in place (tantivy recurses over nested queries: its stack overflows near
    a thousand levels)."""
    if not lines:
        raise ParseError("empty query")
    measured: list[tuple[int, int, type | None]] = []
    for number, line in enumerate(lines, start=1):
        size, depth, kind = _measure(line, measured, number)
        if size > limits.max_leaves:
            raise ParseError(
                f"line {number} expands to {size} search terms once line references are followed; "
                f"the limit is {limits.max_leaves}"
            )
        if depth > limits.max_depth:
            raise ParseError(
                f"line {number} nests {depth} levels deep once line references are followed; "
                f"the limit is {limits.max_depth}"
            )
        measured.append((size, depth, kind))
    return Strategy(tuple(lines), syntax)


def _measure(
    node: Node, lines: list[tuple[int, int, type | None]], number: int
) -> tuple[int, int, type | None]:
    """Leaves, nesting depth and root kind (``And``/``Or``, else ``None``) of ``node`` with line
    references expanded; an ``And`` inside an ``And`` (or ``Or`` in ``Or``) is flattened, so adds no depth."""
    if isinstance(node, Ref):
        if not 1 <= node.line < number:
            raise ParseError(f"line {number} refers to line {node.line}, which is not an earlier line")
        return lines[node.line - 1]
    children = (node.left, node.right) if isinstance(node, Not) else getattr(node, "operands", ())
    if not children:
        return 1, 1, None
    kind = type(node) if isinstance(node, (And, Or)) else None
    measured = [_measure(child, lines, number) for child in children]
    depth = 1 + max(d - 1 if kind is not None and k is kind else d for _, d, k in measured)
    return sum(size for size, _, _ in measured), depth, kind


def _substitute(node: Node, resolved: list[Node]) -> Node:
    if isinstance(node, Ref):
        return resolved[node.line - 1]
    if isinstance(node, (And, Or)):
        return combine(type(node), [_substitute(child, resolved) for child in node.operands])
    if isinstance(node, Near):
        return Near(tuple(_substitute(c, resolved) for c in node.operands), node.max_between, node.ordered)
    if isinstance(node, Not):
        return Not(_substitute(node.left, resolved), _substitute(node.right, resolved))
    return node


def _collect_words(node: Node, found: list[str]) -> None:
    if isinstance(node, Term):
        found.extend(node.words)
    elif isinstance(node, (Heading, Subheading)):
        found.extend(node.name.split())
    elif isinstance(node, (And, Or, Near)):
        for child in node.operands:
            _collect_words(child, found)
    elif isinstance(node, Not):
        _collect_words(node.left, found)
        _collect_words(node.right, found)


_CURLY_DOUBLE = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u00ab": '"'})


def normalize_quotes(text: str) -> str:
    """Curly and angle double quotes read as straight ones (a strategy pasted from a word processor)."""
    return text.translate(_CURLY_DOUBLE)


def split_lines(text: str, limits: Limits) -> list[str]:
    """Non-blank lines of a query, after the length check (blank lines are not search lines)."""
    if len(text) > limits.max_chars:
        raise ParseError(f"query is {len(text)} characters long; the limit is {limits.max_chars}")
    return [line for line in text.splitlines() if line.strip()]


def normalize_date(value: str, *, end: bool) -> str:
    """``YYYY``, ``YYYY/MM`` or ``YYYY/MM/DD`` (also with ``-`` or ``.``) -> ``YYYY/MM/DD``; a missing
    month or day is the first of the period for a start and the last for an end."""
    match = _DATE.match(value.strip())
    if not match:
        raise ParseError(f"date {value!r} is not YYYY, YYYY/MM or YYYY/MM/DD")
    year, month, day = int(match[1]), int(match[2] or (12 if end else 1)), int(match[3] or (31 if end else 1))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise ParseError(f"date {value!r} has no such month or day")
    return f"{year:04d}/{month:02d}/{day:02d}"
