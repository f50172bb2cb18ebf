"""Ovid MEDLINE search strategies -> :class:`~deepretrieval.retrievers.boolean.syntax.Strategy`.

One search per line; lines are numbered from 1 (blank lines do not count) and combined by number
(``1 or 2``, ``or/1-19``, ``and/6,49``). Within a line (see docs/boolean-engine.md):

- adjacent words are a phrase (``Active compression.mp.``); ``or``/``and``/``not`` in any case are
  operators, processed left to right; ``adj`` is a phrase in written order, ``adjN`` at most N-1 words
  apart in any order, and binds tighter than the Boolean operators;
- ``.ti.``, ``.ab.``, ``.ti,ab.``, ``.tw.``, ``.mp.`` ... after a term or a parenthesised group give its
  fields (the final ``.`` may be missing); an untagged term is ``.mp.``;
- ``X/``, ``exp X/``, ``*X/``, ``X/di, pa`` are MeSH headings (explode, major topic, subheadings);
  ``humans.sh.`` is the heading Humans;
- truncation ``$`` (any ending), ``$N`` (at most N more characters), ``*`` as ``$``; wildcards ``#``
  (exactly one character) and ``?`` (zero or one);
- ``limit N to ...``: ``yr="2005 -Current"`` is a publication-date limit, anything else a :class:`Limit`;
- bracketed notes that Ovid prints after a line (``[mp=title, abstract, ...]``, ``[Diagnostic Use]``)
  are dropped.
"""

from __future__ import annotations

import re

from deepretrieval.retrievers.boolean.syntax import (
    And,
    DateLimit,
    Heading,
    Limit,
    Limits,
    Near,
    Node,
    Not,
    Or,
    ParseError,
    Ref,
    Strategy,
    Term,
    Token,
    TokenCursor,
    check_strategy,
    combine,
    normalize_date,
    normalize_quotes,
    split_lines,
)

# Ovid's two-letter field codes (a suffix made of other letters is part of the word)
_CODES = "ti ab tw mp ot kw sh hw nm rn au ed dp yr pt la jn jw ui ep ez da fs mh tx ds ps rs"
FIELD_CODES = frozenset(_CODES.split())
_COMBINE = re.compile(r"^\s*(or|and)\s*/\s*(.*?)\s*$", re.IGNORECASE)
_LIMIT = re.compile(r"^\s*limit\s+(\d+)\s+to\s+(.+?)\s*$", re.IGNORECASE)
_YEARS = re.compile(r'^\(?\s*yr\s*=\s*"?\s*(\d{4})\s*(-\s*(\d{4}|current)?)?\s*"?\s*\)?$', re.IGNORECASE)
_SUFFIX = re.compile(r"\.([a-z]{2,3}(?:,[a-z]{2,3})*)\.?$", re.IGNORECASE)
_SUBHEADINGS = re.compile(r"[a-z]{2}(?:\s*,\s*[a-z]{2})*\b", re.IGNORECASE)
_ADJ = re.compile(r"^adj(\d*)$", re.IGNORECASE)
_LIMITED_TRUNCATION = re.compile(r"\$(\d)")


def parse_ovid(text: str, limits: Limits | None = None) -> Strategy:
    """Parse an Ovid MEDLINE strategy; raises :class:`ParseError` with a one-line reason."""
    limits = limits or Limits()
    lines = split_lines(normalize_quotes(text), limits)
    parsed = [_parse_line(_strip_notes(line), number, limits) for number, line in enumerate(lines, 1)]
    return check_strategy(parsed, limits, "ovid")


def _strip_notes(line: str) -> str:
    """Drop ``[...]`` outside quotes (Ovid's field lists and subheading names)."""
    out: list[str] = []
    quoted = False
    depth = 0
    for char in line:
        if char == '"' and depth == 0:
            quoted = not quoted
        if not quoted and char == "[":
            depth += 1
        elif not quoted and char == "]" and depth:
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)


def _parse_line(line: str, number: int, limits: Limits) -> Node:
    if match := _COMBINE.match(line):
        refs = [Ref(n) for n in _numbers(match[2], number)]
        return combine(Or if match[1].lower() == "or" else And, list(refs))
    if match := _LIMIT.match(line):
        return combine(And, [Ref(int(match[1])), _limit(match[2])])
    tokens = _lex(line, number)
    if not tokens:
        raise ParseError(f"line {number} has no search terms")
    parser = _Parser(tokens, number, limits)
    node = parser.expression(depth=0)
    if parser.peek() is not None:
        token = parser.peek()
        raise ParseError(f"line {number}: unexpected {token.text!r} at column {token.column}")
    return _finish(node)


def _numbers(spec: str, number: int) -> list[int]:
    found: list[int] = []
    for part in spec.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.strip().isdigit() or (dash and not high.strip().isdigit()):
            raise ParseError(f"line {number}: {spec!r} is not a list of line numbers")
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise ParseError(f"line {number}: range {part.strip()} runs backwards")
        found.extend(range(first, last + 1))
    return found


def _limit(spec: str) -> Node:
    """``yr="2005 -Current"`` (or ``yr=2005``, ``yr="2001-2005"``) is a date limit; the rest is kept."""
    spec = spec.strip()
    if match := _YEARS.match(spec):
        first, dash, last = match[1], match[2], match[3]
        end = first if not dash else (last if last and last.isdigit() else None)
        return DateLimit(normalize_date(first, end=False), normalize_date(end, end=True) if end else None)
    return Limit(spec.strip('"').strip())


def _lex(line: str, number: int) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(line):
        char = line[i]
        if char.isspace():
            i += 1
        elif char in "()":
            tokens.append(Token(char, char, i))
            i += 1
        elif char == '"':
            close = line.find('"', i + 1)
            if close < 0:  # a quote without its partner is dropped
                i += 1
                continue
            tokens.append(Token("quote", line[i + 1 : close], i))
            i = close + 1
        elif char == "/":
            tokens.append(Token("slash", "", i))
            i += 1
            if match := _SUBHEADINGS.match(line, i):
                tokens[-1] = Token("slash", match[0], i - 1)
                i = match.end()
        else:
            start = i
            while i < len(line) and not line[i].isspace() and line[i] not in '()"/':
                i += 1
            _word_tokens(line[start:i], start, tokens)
    return tokens


def _word_tokens(word: str, column: int, tokens: list[Token]) -> None:
    """One lexed word: an operator, or a word possibly carrying a field suffix (``Diagnos$.mp.``)."""
    suffix = _SUFFIX.search(word)
    if suffix and all(code.lower() in FIELD_CODES for code in suffix[1].split(",")):
        base = word[: suffix.start()]
        if base:
            tokens.append(Token("word", base, column))
        tokens.append(Token("suffix", suffix[1].lower(), column + suffix.start()))
        return
    lowered = word.lower()
    if lowered in ("or", "and", "not"):
        tokens.append(Token("op", lowered, column))
    elif _ADJ.match(word):
        tokens.append(Token("adj", lowered, column))
    else:
        tokens.append(Token("word", word, column))


class _Parser(TokenCursor):  # token kinds: "(", ")", "quote", "word", "op", "adj", "slash", "suffix"
    """Recursive descent over one line: Boolean operators left to right, ``adj`` binding tighter."""

    def fail(self, what: str) -> ParseError:
        token = self.peek()
        where = f"at column {token.column}" if token else "at the end of the line"
        return ParseError(f"line {self.number}: {what} {where}")

    def expression(self, depth: int) -> Node:
        if depth > self.limits.max_depth:
            raise ParseError(f"line {self.number}: parentheses nested deeper than {self.limits.max_depth}")
        node = self.proximity(depth)
        while (token := self.peek()) is not None and token.kind == "op":
            self.take()
            right = self.proximity(depth)
            if token.text == "not":
                node = Not(node, right)
            else:
                node = combine(And if token.text == "and" else Or, [node, right])
        return node

    def proximity(self, depth: int) -> Node:
        operands = [self.primary(depth)]
        operator = None
        while (token := self.peek()) is not None and token.kind == "adj":
            if operator is not None and token.text != operator:
                operands = [self._near(operands, operator)]
            operator = self.take().text
            operands.append(self.primary(depth))
        return operands[0] if operator is None else self._near(operands, operator)

    @staticmethod
    def _near(operands: list[Node], operator: str) -> Node:
        digits = _ADJ.match(operator)[1]
        if not digits:
            return Near(tuple(operands), 0, ordered=True)
        return Near(tuple(operands), max(int(digits) - 1, 0), ordered=False)

    def primary(self, depth: int) -> Node:
        token = self.peek()
        if token is None:
            raise self.fail("a search term is missing")
        if token.kind == "(":
            self.take()
            inner = self.expression(depth + 1)
            if self.peek() is None or self.peek().kind != ")":
                raise self.fail(f"'(' at column {token.column} is not closed")
            self.take()
            suffix = self._suffix()
            return inner if suffix is None else _retag(inner, suffix)
        explode = False
        if token.kind == "word" and token.text.lower() == "exp":
            self.take()
            explode = True
        words: list[str] = []
        quoted: list[bool] = []
        while (token := self.peek()) is not None and token.kind in ("word", "quote"):
            words.append(self.take().text)
            quoted.append(token.kind == "quote")
        if not words:
            raise self.fail("a search term is missing")
        if (token := self.peek()) is not None and token.kind == "slash":
            self.take()
            return _heading(words, explode, token.text)
        if explode:
            raise self.fail("'exp' must precede a subject heading ending in '/'")
        suffix = self._suffix()
        if len(words) == 1 and not quoted[0] and words[0].isdigit() and suffix is None:
            return Ref(int(words[0]))
        term = Term(tuple(_pattern(w) for text in words for w in text.split() if _is_word(w)), ())
        if not term.words:
            raise self.fail("a search term has no letters or digits")
        return term if suffix is None else _retag(term, suffix)

    def _suffix(self) -> tuple[str, ...] | None:
        token = self.peek()
        if token is None or token.kind != "suffix":
            return None
        return tuple(self.take().text.split(","))


def _is_word(word: str) -> bool:
    """Punctuation on its own is not a word; a wildcard is (it is rejected later, with its reason)."""
    return any(char.isalnum() or char in "$*?#" for char in word)


def _pattern(word: str) -> str:
    """Ovid truncation in the shared notation: ``$N`` -> N ``?``, ``$`` -> ``*``."""
    return _LIMITED_TRUNCATION.sub(lambda m: "?" * int(m[1]), word).replace("$", "*")


def _heading(words: list[str], explode: bool, subheadings: str) -> Heading:
    name = " ".join(words).strip()
    major = name.startswith("*")
    codes = tuple(code.strip().lower() for code in subheadings.split(",") if code.strip())
    return Heading(name.lstrip("*").strip(), explode=explode, major=major, subheadings=codes)


def _retag(node: Node, fields: tuple[str, ...]) -> Node:
    """A field suffix after a term or group applies to its terms that have none; ``.sh.`` makes
    headings of them."""
    if isinstance(node, Term) and not node.fields:
        text = tuple(f for f in fields if f != "sh")
        heading = Heading(" ".join(node.words), explode=False) if "sh" in fields else None
        if heading is None:
            return Term(node.words, text)
        return heading if not text else Or((heading, Term(node.words, text)))
    if isinstance(node, (And, Or)):
        return type(node)(tuple(_retag(child, fields) for child in node.operands))
    if isinstance(node, Near):
        return Near(tuple(_retag(child, fields) for child in node.operands), node.max_between, node.ordered)
    if isinstance(node, Not):
        return Not(_retag(node.left, fields), _retag(node.right, fields))
    return node


def _finish(node: Node) -> Node:
    """Untagged terms search Ovid's default multi-purpose fields (``.mp.``)."""
    return _retag(node, ("mp",))
