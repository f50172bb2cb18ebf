"""The approximated query tree -> one tantivy query.

Each title/abstract field is indexed twice with the same tokenizer (split on non-alphanumerics,
lower-cased, accents folded), so positions agree: ``<field>`` is stemmed (English Snowball by default)
and ``<field>_exact`` is not. Plain words and phrases match the stemmed field; a phrase or proximity
that holds a truncated or wildcard word matches the exact field (truncation applies to words as
written: on stems, ``studi*`` would also find "study", whose stem is "studi"). A wildcard word
expands to the ``max_expansions`` most frequent terms of the field that match it (PubMed long searched
"the first 600 variations of the truncated term"); each expansion scores BM25 like a typed term.
Inside a phrase or proximity, where the other words keep a short pattern precise (``end-st*`` is "end"
then ``st*``), a wildcard word expands to every matching term, up to tantivy's 16,384 per phrase.
Proximity is tantivy's phrase query with slop: see docs/boolean-engine.md.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import tantivy
from cachetools import LRUCache
from tantivy import Occur, Query

from deepretrieval.retrievers.boolean.approximate import EVERYTHING, NOTHING, Core, Match
from deepretrieval.retrievers.boolean.syntax import WILDCARDS, And, DateLimit, Near, Not, Or, QueryError

EXACT = "_exact"
PHRASE_EXPANSIONS = 16_384  # tantivy's RegexPhraseQuery fails beyond this many expanded terms
_WILDCARD_REGEX = {"*": ".*", "?": ".?", "#": "."}


@dataclass(frozen=True)
class Pattern:
    """A truncated or wildcard word: the literal characters before the first wildcard, and the
    regular expression a whole index term must match."""

    prefix: str
    regex: str

    @property
    def is_truncation(self) -> bool:
        return self.regex == re.escape(self.prefix) + ".*"


Token = str | Pattern


class Compiler:
    """Turns approximated trees into tantivy queries over one searcher. Wildcard expansions are cached
    (per field and pattern) across queries; everything else is computed per query."""

    def __init__(
        self,
        schema: tantivy.Schema,
        searcher: tantivy.Searcher,
        exact: tantivy.TextAnalyzer,
        stemmed: tantivy.TextAnalyzer | None,
        *,
        max_expansions: int,
        max_terms: int,
    ):
        self.schema = schema
        self.searcher = searcher
        self.exact = exact
        self.stemmed = stemmed
        self.max_expansions = max_expansions
        self.max_terms = max_terms
        self._expansions: LRUCache = LRUCache(maxsize=50_000)
        self._lock = threading.Lock()

    def compile(self, tree: Core, dates: tuple[int, int] | None = None) -> Query | None:
        """The tantivy query for ``tree`` (``None`` when it can match nothing), within ``dates``
        (inclusive ``YYYYMMDD`` bounds) when given."""
        state = _State(self.max_terms)
        query = self._node(tree, state)
        if query is None or dates is None:
            return query
        return Query.boolean_query([(Occur.Must, query), (Occur.Must, self._dates(*dates))])

    def tokens(self, words: tuple[str, ...]) -> list[Token]:
        """Index tokens of written words: literal tokens as the exact field holds them, and patterns.
        A wildcard alone after punctuation inside a word (``PIB-*``) adds nothing and is dropped."""
        tokens: list[Token] = []
        for word in words:
            if not any(char in WILDCARDS for char in word):
                tokens.extend(self.exact.analyze(word))
                continue
            chunks = re.findall(r"(?:[^\W_]|[*?#])+", word)
            for position, chunk in enumerate(chunks):
                if position and not chunk.strip(WILDCARDS):
                    continue
                tokens.extend(self._chunk(chunk))
        return tokens

    def _chunk(self, chunk: str) -> list[Token]:
        if not any(char in WILDCARDS for char in chunk):
            return list(self.exact.analyze(chunk))
        pieces = [piece for piece in re.split(r"([*?#])", chunk) if piece]
        literal = [piece if piece in WILDCARDS else "".join(self.exact.analyze(piece)) for piece in pieces]
        if literal[0] in WILDCARDS:
            raise QueryError(f"{chunk!r}: truncation and wildcards need at least one leading letter or digit")
        regex = "".join(_WILDCARD_REGEX.get(piece, re.escape(piece)) for piece in literal)
        return [Pattern(literal[0], regex)]

    def expand(self, field: str, pattern: Pattern) -> tuple[str, ...]:
        """The most frequent terms of ``field`` that ``pattern`` matches, at most ``max_expansions``."""
        return self._matching(field, pattern, self.max_expansions)[: self.max_expansions]

    def _matching(self, field: str, pattern: Pattern, cap: int) -> tuple[str, ...]:
        """The terms ``pattern`` matches, most frequent first: at most ``cap + 1`` (more than ``cap`` says
        that the expansion is cut)."""
        key = (field, pattern, cap)
        with self._lock:
            cached = self._expansions.get(key)
        if cached is None:
            if pattern.is_truncation:
                found = self.searcher.terms_with_prefix(field, pattern.prefix, limit=cap + 1)
                cached = tuple(term for term, _ in found)
            else:
                matcher = re.compile(pattern.regex)
                found = self.searcher.terms_with_prefix(field, pattern.prefix)
                cached = tuple(term for term, _ in found if matcher.fullmatch(term))[: cap + 1]
            with self._lock:
                self._expansions[key] = cached
        return cached

    def _node(self, root: Core, state: _State) -> Query | None:
        """Compile bottom-up with an explicit stack (a strategy's lines can nest hundreds deep), each
        shared subtree once."""
        memo = state.memo
        stack = [root]
        while stack:
            node = stack[-1]
            if id(node) in memo:
                stack.pop()
                continue
            children = _children(node)
            pending = [child for child in children if id(child) not in memo]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            memo[id(node)] = self._combine(node, [memo[id(child)] for child in children], state)
        return memo[id(root)]

    def _combine(self, node: Core, parts: list[Query | None], state: _State) -> Query | None:
        """One node's query from its children's (``None``: matches nothing)."""
        if node is EVERYTHING:
            return Query.all_query()
        if node is NOTHING:
            return None
        if isinstance(node, Match):
            return _any([self._match(node, field, state) for field in node.fields])
        if isinstance(node, Near):
            return _any([self._near(node, field, state) for field in node.operands[0].fields])
        if isinstance(node, DateLimit):
            return self._dates(_day(node.start, 0), _day(node.end, 99_999_999))
        if isinstance(node, And):
            return None if any(part is None for part in parts) else _boolean(Occur.Must, parts)
        if isinstance(node, Or):
            return _any(parts)
        if isinstance(node, Not):
            left, right = parts
            if left is None or right is None:
                return left
            return Query.boolean_query([(Occur.Must, left), (Occur.MustNot, right)])
        raise TypeError(f"not an approximated query node: {node!r}")

    def _match(self, node: Match, field: str, state: _State) -> Query | None:
        tokens = self.tokens(node.words)
        if not any(isinstance(token, Pattern) for token in tokens):
            return self._words(field, node.words, state)
        if len(tokens) == 1:
            terms = self.expand(field + EXACT, tokens[0])
            state.spend(len(terms))
            return _any([Query.term_query(self.schema, field + EXACT, term) for term in terms])
        return self._phrase(field, tokens, 0, state)

    def _words(self, field: str, words: tuple[str, ...], state: _State) -> Query | None:
        """A word or phrase without wildcards: stemmed when the index has stems."""
        analyzer = self.stemmed or self.exact
        field = field if self.stemmed else field + EXACT
        tokens = [token for word in words for token in analyzer.analyze(word)]
        state.spend(len(tokens))
        if not tokens:
            return None
        if len(tokens) == 1:
            return Query.term_query(self.schema, field, tokens[0])
        return Query.phrase_query(self.schema, field, tokens)

    def _near(self, node: Near, field: str, state: _State) -> Query | None:
        """Operands as one phrase with slop ``max_between`` per gap, in written order and, unless
        ordered, reversed."""
        operands = [self.tokens(match.words) for match in node.operands]
        if any(not tokens for tokens in operands):
            return None
        slop = node.max_between * (len(operands) - 1)
        orders = [operands] if node.ordered else [operands, operands[::-1]]
        return _any([self._phrase(field, [t for ts in order for t in ts], slop, state) for order in orders])

    def _phrase(self, field: str, tokens: list[Token], slop: int, state: _State) -> Query | None:
        """Two or more tokens in order with ``slop``: stemmed terms when there is no pattern, else exact
        terms, tantivy expanding each pattern's regex."""
        if not any(isinstance(token, Pattern) for token in tokens):
            if self.stemmed:
                tokens = [stem for token in tokens for stem in self.stemmed.analyze(token)]
            else:
                field += EXACT
            state.spend(len(tokens))
            return Query.phrase_query(self.schema, field, tokens, slop)
        field += EXACT
        regexes: list[str] = []
        spent = 0
        for token in tokens:
            if isinstance(token, Pattern):
                terms = self._matching(field, token, PHRASE_EXPANSIONS)
                if not terms:
                    return None
                spent += len(terms)
                # tantivy expands the pattern's own regex to every matching term (an alternation of
                # chosen terms would outgrow its 1,000-state automaton limit)
                regexes.append(token.regex)
            else:
                spent += 1
                regexes.append(re.escape(token))
        if spent > PHRASE_EXPANSIONS:
            raise QueryError(f"a phrase or proximity expands to more than {PHRASE_EXPANSIONS} index terms")
        state.spend(spent)
        return Query.regex_phrase_query(self.schema, field, regexes, slop)

    def _dates(self, low: int, high: int) -> Query:
        return Query.range_query(self.schema, "date", tantivy.FieldType.Integer, low, high)


class _State:
    """Per-query bookkeeping: compiled shared subtrees, and the budget of index terms."""

    def __init__(self, budget: int):
        self.budget = budget
        self.spent = 0
        self.memo: dict[int, Query | None] = {}  # by node id: the tree being compiled holds its nodes

    def spend(self, terms: int) -> None:
        self.spent += terms
        if self.spent > self.budget:
            raise QueryError(f"the query expands to more than {self.budget} index terms")


def _children(node: Core) -> tuple[Core, ...]:
    if isinstance(node, (And, Or)):
        return node.operands
    if isinstance(node, Not):
        return (node.left, node.right)
    return ()  # Match and Near are compiled whole


def _day(value: str | None, default: int) -> int:
    return default if value is None else int(value.replace("/", ""))


def _any(parts: list[Query | None]) -> Query | None:
    kept = [part for part in parts if part is not None]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else _boolean(Occur.Should, kept)


def _boolean(occur: Occur, parts: list[Query]) -> Query:
    return parts[0] if len(parts) == 1 else Query.boolean_query([(occur, part) for part in parts])
