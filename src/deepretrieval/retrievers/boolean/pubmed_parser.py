"""PubMed query syntax -> :class:`~deepretrieval.retrievers.boolean.syntax.Strategy`.

What PubMed does, and what this parser does with it (see docs/boolean-engine.md):

- ``AND``, ``OR``, ``NOT`` (upper case) are processed left to right with no precedence ("PubMed processes
  Boolean connectors in a left-to-right sequence", NLM PubMed tutorial); parentheses nest. Adjacent
  untagged words are ANDed; PubMed's stopwords among them (``the``, ``of``, ``for``..., and lower-case
  ``and``/``or``/``not``) are ignored, as PubMed ignores them.
- ``words[tag]``: the words before a tag (back to an operator, parenthesis or quote) are one phrase in
  that field; ``"a b"[tiab:~N]`` is proximity (at most N words between, any order); a tag after a
  parenthesised group applies to its untagged terms; an unknown tag is a parse error naming the known ones.
- ``#N`` refers to line N of a multi-line strategy; the last line is the query. Lines that never refer
  to each other are one query wrapped over lines, and are read joined.
- Leniency, for strategies pasted from reviews: curly quotes are straight quotes, a quote without its
  partner is dropped, ``AND``/``OR`` at the very start or any operator at the very end of an expression
  is dropped, ``AND NOT`` reads as ``NOT``, and a trailing hit-count note (``Total references = 1551``)
  is removed.
"""

from __future__ import annotations

import re

from deepretrieval.retrievers.boolean.syntax import (
    And,
    DateLimit,
    Heading,
    Limits,
    Near,
    Node,
    Not,
    Or,
    ParseError,
    Ref,
    Strategy,
    Subheading,
    Term,
    Token,
    TokenCursor,
    check_strategy,
    combine,
    normalize_date,
    normalize_quotes,
    split_lines,
)

TEXT_TAGS: dict[str, tuple[str, ...]] = {
    "tiab": ("ti", "ab"),
    "title/abstract": ("ti", "ab"),
    "ti": ("ti",),
    "title": ("ti",),
    "ab": ("ab",),
    "abstract": ("ab",),
    "tw": ("tw",),
    "text word": ("tw",),
    "text words": ("tw",),
    "all": ("all",),
    "all fields": ("all",),
    "au": ("au",),
    "author": ("au",),
    "1au": ("au",),
    "lastau": ("au",),
    "fau": ("au",),
    "full author name": ("au",),
    "pt": ("pt",),
    "publication type": ("pt",),
    "la": ("la",),
    "language": ("la",),
    "nm": ("nm",),
    "substance name": ("nm",),
    "supplementary concept": ("nm",),
    "ot": ("ot",),
    "other term": ("ot",),
    "sb": ("sb",),
    "subset": ("sb",),
    "filter": ("sb",),
    "ta": ("ta",),
    "journal": ("ta",),
    "ad": ("ad",),
    "affiliation": ("ad",),
    "edat": ("ed",),
    "crdt": ("ed",),
    "mhda": ("ed",),
    "date - entry": ("ed",),
    "date - create": ("ed",),
}
HEADING_TAGS = {"mh", "mesh", "mesh terms", "majr", "mesh major topic"}
SUBHEADING_TAGS = {"sh", "subheading", "mesh subheading"}
DATE_TAGS = {"dp", "pdat", "publication date", "date - publication"}
KNOWN_TAGS = set(TEXT_TAGS) | HEADING_TAGS | SUBHEADING_TAGS | DATE_TAGS
# PubMed's stopword list (PubMed Help, "Stopwords"): not indexed, ignored in untagged text. Lower-case
# "or" and "not" join them: PubMed's operators are upper case.
STOPWORDS = frozenset(
    """a about again all almost also although always among an and another any are as at be because been
    before being between both but by can could did do does done due during each either enough especially
    etc for found from further had has have having here how however i if in into is it its itself just kg
    km made mainly make may mg might ml mm most mostly must nearly neither no nor not obtained of often on
    or our overall perhaps pmid quite rather really regarding seem seen several should show showed shown
    shows significantly since so some such than that the their theirs them then there therefore these
    they this those through thus to upon use used using various very was we were what when which while
    with within without would""".split()  # noqa: SIM905 - a word list reads best as words
)
_OPERATORS = {"AND", "OR", "NOT"}
_LINE_REFERENCE = re.compile(r"#\d")
_COUNT_NOTE = re.compile(
    r"\s*(?:total\s+)?(?:references|records|results|citations|hits)\s*[=:]\s*[\d,]+\s*$", re.IGNORECASE
)


def parse_pubmed(text: str, limits: Limits | None = None) -> Strategy:
    """Parse a PubMed query or multi-line strategy; raises :class:`ParseError` with a one-line reason."""
    limits = limits or Limits()
    lines = [_COUNT_NOTE.sub("", line) for line in split_lines(normalize_quotes(text), limits)]
    if not any(_LINE_REFERENCE.search(line) for line in lines):  # a query wrapped over lines
        lines = [" ".join(lines)] if lines else lines
    parsed = [_parse_line(line, number, limits) for number, line in enumerate(lines, 1)]
    return check_strategy(parsed, limits, "pubmed")


def _parse_line(line: str, number: int, limits: Limits) -> Node:
    tokens = _lex(line)
    if not tokens:
        raise ParseError(f"line {number} has no search terms")
    parser = _Parser(tokens, number, limits)
    node = parser.expression(depth=0)
    if parser.peek() is not None:
        raise ParseError(f"line {number}: unbalanced ')' at column {parser.peek().column}")
    if node is None:
        raise ParseError(f"line {number} has no search terms")
    return _finish(node)


def _lex(line: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(line):
        char = line[i]
        if char.isspace() or char == "]":  # a ']' without its '[' is dropped
            i += 1
        elif char in "()":
            tokens.append(Token(char, char, i))
            i += 1
        elif char == '"':
            close = line.find('"', i + 1)
            if close < 0:  # a quote without its partner is dropped, as PubMed does
                i += 1
                continue
            tokens.append(Token("quote", line[i + 1 : close], i))
            i = close + 1
        elif char == "[":
            close = line.find("]", i + 1)
            if close < 0:
                raise ParseError(f"field tag opened at column {i} is never closed with ']'")
            tokens.append(Token("tag", line[i + 1 : close], i))
            i = close + 1
        else:
            start = i
            while i < len(line) and not line[i].isspace() and line[i] not in '()"[]':
                i += 1
            word = line[start:i]
            if re.fullmatch(r"#\d+", word):
                tokens.append(Token("ref", word[1:], start))
            elif word in _OPERATORS:
                tokens.append(Token("op", word, start))
            else:
                tokens.append(Token("word", word, start))
    return tokens


class _Parser(TokenCursor):  # token kinds: "(", ")", "quote", "tag", "ref", "op", "word"
    """Left-to-right recursive descent over one line's tokens."""

    def expression(self, depth: int) -> Node | None:
        if depth > self.limits.max_depth:
            raise ParseError(f"line {self.number}: parentheses nested deeper than {self.limits.max_depth}")
        while (token := self.peek()) is not None and token.kind == "op":  # a leading AND/OR is dropped
            if token.text == "NOT":
                raise ParseError(f"line {self.number}: NOT at column {token.column} has nothing on its left")
            self.take()
        if token is None or token.kind == ")":
            return None
        node = self.unit(depth)
        while (token := self.peek()) is not None and token.kind != ")":
            operator = "AND"
            if token.kind == "op":
                operator = self.take().text
                following = self.peek()
                if operator == "AND" and following is not None and following.text == "NOT":
                    operator = self.take().text
                    following = self.peek()
                if following is None or following.kind == ")":
                    break  # a trailing operator is dropped
                if following.kind == "op":
                    raise ParseError(
                        f"line {self.number}: operator {following.text} at column {following.column} "
                        f"follows another operator"
                    )
            right = self.unit(depth)
            node = _apply(operator, node, right)
        return node

    def unit(self, depth: int) -> Node | None:
        token = self.take()
        if token.kind == "(":
            inner = self.expression(depth + 1)
            closing = self.peek()
            if closing is None or closing.kind != ")":
                raise ParseError(f"line {self.number}: '(' at column {token.column} is never closed")
            self.take()
            if inner is None:
                raise ParseError(f"line {self.number}: empty parentheses at column {token.column}")
            tag = self._tag()
            return inner if tag is None else _retag(inner, tag)
        if token.kind == ")":
            raise ParseError(f"line {self.number}: unexpected ')' at column {token.column}")
        if token.kind == "ref":
            return Ref(int(token.text))
        if token.kind == "tag":
            raise ParseError(f"line {self.number}: field tag [{token.text}] follows no search term")
        if token.kind == "quote":
            words = _words(token.text)
            if not words:
                raise ParseError(f"line {self.number}: empty phrase at column {token.column}")
            tag = self._tag()
            return Term(tuple(words), ()) if tag is None else _tagged(words, tag)
        words = [token.text]
        while (following := self.peek()) is not None and following.kind == "word":
            words.append(self.take().text)
        tag = self._tag()
        if tag is not None:
            return _tagged(_words(" ".join(words)), tag)
        terms: list[Node] = [
            Term((word,), ()) for word in _words(" ".join(words)) if _bare(word) not in STOPWORDS
        ]
        return combine(And, terms) if terms else None

    def _tag(self) -> str | None:
        token = self.peek()
        if token is None or token.kind != "tag":
            return None
        return self.take().text


def _apply(operator: str, left: Node | None, right: Node | None) -> Node | None:
    if left is None or right is None:
        return left if right is None else right
    if operator == "NOT":
        return Not(left, right)
    return combine(And if operator == "AND" else Or, [left, right])


def _words(text: str) -> list[str]:
    """Words of ``text``: PubMed has no single-character wildcard, so ``?`` and ``#`` separate words;
    punctuation on its own is not a word."""
    return [word for word in text.replace("?", " ").replace("#", " ").split() if _bare(word) or "*" in word]


def _bare(word: str) -> str:
    return re.sub(r"\W|_", "", word.lower())


def _tagged(words: list[str], tag: str) -> Node:
    base, _, modifier = tag.strip().lower().partition(":")
    base = " ".join(base.split())
    modifier = modifier.strip()
    if base in HEADING_TAGS:
        return Heading(
            " ".join(words), explode=modifier != "noexp", major=base in ("majr", "mesh major topic")
        )
    if base in SUBHEADING_TAGS:
        return Subheading(" ".join(words))
    if base in DATE_TAGS:
        return _date_limit(" ".join(words))
    fields = TEXT_TAGS.get(base)
    if fields is None:
        raise ParseError(
            f"unknown field tag [{tag.strip()}]; PubMed tags read here: {', '.join(sorted(KNOWN_TAGS))}"
        )
    if modifier.startswith("~") and len(words) > 1:
        distance = modifier[1:].strip()
        if not distance.isdigit():
            raise ParseError(f"proximity [{tag}] needs a number of words after '~'")
        return Near(tuple(Term((word,), fields) for word in words), int(distance), ordered=False)
    return Term(tuple(words), fields)


def _date_limit(value: str) -> DateLimit:
    start, colon, end = value.partition(":")
    if not colon:
        return DateLimit(normalize_date(start, end=False), normalize_date(start, end=True))
    return DateLimit(normalize_date(start, end=False), normalize_date(end, end=True))


def _retag(node: Node, tag: str) -> Node:
    """A tag after a parenthesised group applies to the group's untagged terms."""
    if isinstance(node, Term) and not node.fields:
        return _tagged(list(node.words), tag)
    if isinstance(node, (And, Or)):
        return type(node)(tuple(_retag(child, tag) for child in node.operands))
    if isinstance(node, Not):
        return Not(_retag(node.left, tag), _retag(node.right, tag))
    return node


def _finish(node: Node) -> Node:
    """Untagged terms search all fields."""
    if isinstance(node, Term) and not node.fields:
        return Term(node.words, ("all",))
    if isinstance(node, (And, Or)):
        return type(node)(tuple(_finish(child) for child in node.operands))
    if isinstance(node, Near):
        return Near(tuple(_finish(child) for child in node.operands), node.max_between, node.ordered)
    if isinstance(node, Not):
        return Not(_finish(node.left), _finish(node.right))
    return node
