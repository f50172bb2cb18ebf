"""A local Boolean search engine over a literature collection, on tantivy: PubMed and Ovid syntax in,
documents matching the Boolean query out, ranked by BM25, with the match count as ``Ranking.total``.

Files of an index version (published and verified by ``storage.index_store``): tantivy's segment files and
``meta.json``, and ``ids.json`` (the document id of every row). Title and abstract are indexed apart,
each twice (stemmed and exact, see ``compile``), with the publication date when the corpus has one.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import tantivy
from pydantic import field_validator
from tqdm import tqdm

from deepretrieval.retrievers.base import DateRange, IndexedRetriever, Ranking, RetrieverSettings
from deepretrieval.retrievers.boolean.approximate import NOTHING, Core, approximate
from deepretrieval.retrievers.boolean.collection import records
from deepretrieval.retrievers.boolean.compile import EXACT, Compiler
from deepretrieval.retrievers.boolean.parse import parse_query
from deepretrieval.retrievers.boolean.syntax import (
    WILDCARDS,
    Limits,
    ParseError,
    QueryError,
    Strategy,
    normalize_date,
)
from deepretrieval.retrievers.corpus import Corpus
from deepretrieval.retrievers.storage.index_store import IndexVersion, IndexWriter, load_index

IDS = "ids.json"
TEXT_FIELDS = ("title", "abstract")
MIN_QUERIES_PER_THREAD = 4
_EXACT_ANALYZER = "dr_exact"
_BRACKETS = re.compile(r"\[[^\]]*\]")


class BooleanSettings(RetrieverSettings):
    """What decides the index contents: ``stemmer``, the Snowball language of the stemmed title and
    abstract fields (``None`` indexes exact words only)."""

    stemmer: str | None = "english"

    @field_validator("stemmer")
    @classmethod
    def _known_stemmer(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                _analyzer(value)
            except ValueError:
                raise ValueError("unknown stemmer; use a Snowball language such as 'english'") from None
        return value


@dataclass(frozen=True)
class QueryOptions:
    """How queries are read (they change results, not the index; given to ``load``):

    - ``syntax``: ``pubmed``, ``ovid``, or ``auto`` (Ovid when the text carries more of Ovid's markers than
      of PubMed's; see :func:`~deepretrieval.retrievers.boolean.parse.detect_syntax`);
    - ``headings``: MeSH headings are searched as a ``phrase`` of their words in title/abstract, or
      ``ignore``\\ d (they then match nothing);
    - ``max_expansions``: index terms one truncated or wildcard word expands to (the most frequent ones);
    - ``max_terms``: index terms one query may use in all, expansions included (more: a bad query).
    """

    syntax: Literal["auto", "pubmed", "ovid"] = "auto"
    headings: Literal["phrase", "ignore"] = "phrase"
    max_expansions: int = 600
    max_terms: int = 100_000

    def __post_init__(self) -> None:
        if self.syntax not in ("auto", "pubmed", "ovid"):
            raise ValueError(f"syntax must be auto, pubmed or ovid, got {self.syntax!r}")
        if self.headings not in ("phrase", "ignore"):
            raise ValueError(f"headings must be phrase or ignore, got {self.headings!r}")
        for name in ("max_expansions", "max_terms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


class BooleanRetriever(IndexedRetriever):
    """PubMed- and Ovid-syntax Boolean search over a tantivy index of titles and abstracts."""

    kind: ClassVar[str] = "boolean"
    settings_type: ClassVar[type[RetrieverSettings]] = BooleanSettings
    runtime_options = frozenset({"threads", "syntax", "headings", "max_expansions", "max_terms", "verify"})
    lists_all_matches = True

    def __init__(
        self,
        version: IndexVersion,
        index: tantivy.Index,
        ids: list[str],
        options: QueryOptions,
        threads: int | None,
        limits: Limits,
    ):
        self.index_dir = version.root
        self.settings = version.settings(BooleanSettings)
        self.options = options
        self.limits = limits
        self.corpus_fingerprint: str = version.manifest["corpus"]["fingerprint"]
        self.dated_documents: int = version.info["dated_documents"]
        payload = json.dumps({"index": version.manifest["fingerprint"], "options": asdict(options)})
        self.fingerprint = hashlib.sha256(payload.encode()).hexdigest()[:16]  # the options change results
        self.threads = max(1, threads or os.cpu_count() or 1)
        self._ids = ids
        self._index = index
        self._exact, self._stemmed = _register_analyzers(index, self.settings.stemmer)
        self._searcher = index.searcher()
        self._compiler = Compiler(
            index.schema,
            self._searcher,
            self._exact,
            self._stemmed,
            max_expansions=options.max_expansions,
            max_terms=options.max_terms,
        )
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # ---- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        index_dir: str | Path,
        settings: BooleanSettings | None = None,
        *,
        show_progress: bool = True,
        **runtime: Any,
    ) -> BooleanRetriever:
        """Index ``corpus`` (titles, abstracts and dates are read back from its file), publish the index in
        ``index_dir`` (see ``storage.index_store``) and load it with the ``runtime`` options of :meth:`load`."""
        settings = settings or BooleanSettings()
        writer = IndexWriter(index_dir, cls.kind)
        with writer:
            dated = _write_index(corpus, writer.folder, settings.stemmer, show_progress)
            (writer.folder / IDS).write_text(json.dumps(corpus.ids, ensure_ascii=False), encoding="utf-8")
            for hidden in writer.folder.glob(".*"):  # tantivy's lock and bookkeeping files: not index data
                hidden.unlink()
            writer.publish(
                corpus,
                settings=settings.model_dump(),
                fingerprint=_fingerprint(settings, corpus.fingerprint),
                info={"tantivy": importlib.metadata.version("tantivy"), "dated_documents": dated},
            )
            return cls.load(index_dir, **runtime)

    @classmethod
    def load(
        cls,
        index_dir: str | Path,
        *,
        threads: int | None = None,
        syntax: Literal["auto", "pubmed", "ovid"] = "auto",
        headings: Literal["phrase", "ignore"] = "phrase",
        max_expansions: int = 600,
        max_terms: int = 100_000,
        verify: bool = False,
    ) -> BooleanRetriever:
        """Open the published index in ``index_dir``: ``threads`` search a batch, the other options say how
        queries are read (:class:`QueryOptions`); ``verify`` also checks every file's checksum."""
        options = QueryOptions(syntax, headings, max_expansions, max_terms)

        def open_files(version: IndexVersion) -> BooleanRetriever:
            ids = version.read_json(IDS)
            if not isinstance(ids, list) or len(ids) != version.documents:
                raise version.fail(f"{IDS} does not list the {version.documents} documents")
            try:
                index = tantivy.Index.open(str(version.folder))
            except ValueError as err:
                raise version.fail(f"tantivy cannot open it ({err})") from None
            retriever = cls(version, index, ids, options, threads, Limits())
            if retriever._searcher.num_docs != version.documents:
                held = retriever._searcher.num_docs
                retriever.close()
                raise version.fail(f"tantivy holds {held} documents, the manifest {version.documents}")
            return retriever

        return load_index(index_dir, cls.kind, open_files, verify=verify)

    def close(self) -> None:
        """Release the index; the retriever cannot search afterwards."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._searcher = None
        self._index = None

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def has_dates(self) -> bool:
        """Whether the collection has publication dates (date limits need them)."""
        return self.dated_documents > 0

    # ---- queries ---------------------------------------------------------------------------------

    def parse(self, query: str) -> Strategy:
        """The query as the engine reads it; raises :class:`ParseError` saying why when it does not parse."""
        return parse_query(query, self.options.syntax, self.limits)

    def explain(self, query: str) -> Core:
        """What the query becomes on this collection, every approximation applied."""
        return approximate(self.parse(query), has_dates=self.has_dates, headings=self.options.headings)

    def query_errors(self, queries: Sequence[str]) -> list[str | None]:
        """The parser's (or the query compiler's) message for each query that cannot be searched: it does
        not parse, names an unknown field tag, nests too deep, or expands to too many index terms."""
        errors: list[str | None] = []
        for query in queries:
            try:
                tree = self.explain(query)
                if tree is not NOTHING:
                    self._compiler.compile(tree, None)
            except QueryError as err:
                errors.append(str(err))
            else:
                errors.append(None)
        return errors

    def search(
        self, queries: Sequence[str], k: int, *, dates: Sequence[DateRange | None] | None = None
    ) -> list[Ranking]:
        """The top ``k`` documents matching each Boolean query, by BM25, with ``total`` the number of
        documents that match. A query that does not parse, or is too large, gets an empty ranking with
        total 0. Identical (query, dates) pairs are searched once; a batch runs on ``threads`` threads.
        ``dates`` (one per query) limit publication dates; the index must have dates for a non-empty one."""
        if self._searcher is None:
            raise RuntimeError("this BooleanRetriever is closed")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if dates is not None and len(dates) != len(queries):
            raise ValueError(
                f"dates must give one range (or None) per query: {len(dates)} for {len(queries)}"
            )
        bounds = [self._bounds(d) for d in dates] if dates is not None else [None] * len(queries)
        k = min(k, len(self._ids))  # tantivy sizes its top-k collector by k
        unique = list(dict.fromkeys(zip(queries, bounds)))
        if len(unique) >= 2 * MIN_QUERIES_PER_THREAD and self.threads > 1:
            found = list(self._executor().map(lambda pair: self._search_one(*pair, k), unique))
        else:
            found = [self._search_one(query, limit, k) for query, limit in unique]
        by_pair = dict(zip(unique, found))
        return [by_pair[pair] for pair in zip(queries, bounds)]

    def _search_one(self, query: str, dates: tuple[int, int] | None, k: int) -> Ranking:
        try:
            if not isinstance(query, str):
                raise QueryError(f"a query must be text, got {type(query).__name__}")
            tree = self.explain(query)
            compiled = None if tree is NOTHING else self._compiler.compile(tree, dates)
        except QueryError:
            return _empty()
        if compiled is None:
            return _empty()
        try:
            result = self._searcher.search(compiled, k, count=True)
            rows = self._searcher.fast_field_values("row", [address for _, address in result.hits])
        except ValueError as err:  # tantivy could not run it: an engine failure, not a verdict on the query
            return Ranking.failure(f"tantivy search failed: {err}")
        scores = np.fromiter((score for score, _ in result.hits), dtype=np.float32, count=len(result.hits))
        return Ranking([self._ids[row] for row in rows], scores, total=result.count)

    def _bounds(self, limit: DateRange | None) -> tuple[int, int] | None:
        if limit is None or (limit.start is None and limit.end is None):
            return None
        if not self.has_dates:
            raise ValueError(
                f"index {self.index_dir} has no publication dates (its corpus has no metadata.pub_date or "
                f"date); search it without date limits, or build it from a corpus with dates"
            )
        try:
            low = int(normalize_date(limit.start, end=False).replace("/", "")) if limit.start else 0
            high = int(normalize_date(limit.end, end=True).replace("/", "")) if limit.end else 99_999_999
        except ParseError as err:
            raise ValueError(f"bad date range {limit}: {err}") from None
        return low, high

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="boolean-search")
            return self._pool

    # ---- documents and terms ---------------------------------------------------------------------

    def text(self, doc_id: str) -> str:
        """The document's title and abstract."""
        if self._searcher is None:
            raise RuntimeError("this BooleanRetriever is closed")
        found = self._searcher.search(tantivy.Query.term_query(self._index.schema, "id", doc_id), 1)
        if not found.hits:
            raise KeyError(f"unknown document id {doc_id!r}")
        stored = self._searcher.doc(found.hits[0][1])
        parts = [(stored.get_first(name + EXACT) or "") for name in TEXT_FIELDS]
        return " ".join(part for part in parts if part)

    def analyze(self, text: str) -> list[str]:
        """The index terms a query searches (stemmed words, wildcard words lower-cased as written), for
        the repetition guard; operators, field tags and line numbers are not terms. Text that does not
        parse is analysed as plain words with its bracketed tags removed."""
        try:
            words = self.parse(text).words()
        except QueryError:
            words = [w for w in _BRACKETS.sub(" ", text).split() if w not in ("AND", "OR", "NOT")]
        analyzer = self._stemmed or self._exact
        terms: list[str] = []
        for word in words:
            if any(char in WILDCARDS for char in word):
                terms.append(word.lower())
            else:
                terms.extend(analyzer.analyze(word))
        return terms


def _analyzer(stemmer: str | None) -> tantivy.TextAnalyzer:
    """Split on non-alphanumerics, drop tokens over 40 bytes, lower-case, fold accents, maybe stem."""
    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
    )
    return (builder.filter(tantivy.Filter.stemmer(stemmer)) if stemmer else builder).build()


def _register_analyzers(
    index: tantivy.Index, stemmer: str | None
) -> tuple[tantivy.TextAnalyzer, tantivy.TextAnalyzer | None]:
    """The exact and stemmed analysers, registered under the names the schema uses (tantivy keeps
    analysers in memory only: every opening of the index registers them again)."""
    exact = _analyzer(None)
    index.register_tokenizer(_EXACT_ANALYZER, exact)
    if not stemmer:
        return exact, None
    stemmed = _analyzer(stemmer)
    index.register_tokenizer(_stem_analyzer(stemmer), stemmed)
    return exact, stemmed


def _stem_analyzer(stemmer: str) -> str:
    return f"dr_stem_{stemmer}"


def _schema(stemmer: str | None) -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", tokenizer_name="raw", index_option="basic")
    for name in TEXT_FIELDS:
        if stemmer:
            builder.add_text_field(name, tokenizer_name=_stem_analyzer(stemmer), index_option="position")
        builder.add_text_field(
            name + EXACT, stored=True, tokenizer_name=_EXACT_ANALYZER, index_option="position"
        )
    builder.add_unsigned_field("row", fast=True)
    builder.add_integer_field("date", indexed=True, fast=True)
    return builder.build()


def _write_index(corpus: Corpus, folder: Path, stemmer: str | None, show_progress: bool) -> int:
    """Index every document into ``folder`` with one indexing thread (the same corpus always gives the
    same segments, so equal scores rank the same). Returns how many documents have a date."""
    index = tantivy.Index(_schema(stemmer), path=str(folder))
    _register_analyzers(index, stemmer)
    writer = index.writer(heap_size=256_000_000, num_threads=1)
    dated = 0
    for row, record in enumerate(tqdm(records(corpus), total=len(corpus), disable=not show_progress)):
        doc = tantivy.Document()
        doc.add_text("id", record.doc_id)
        for name, value in zip(TEXT_FIELDS, (record.title, record.abstract)):
            if stemmer:
                doc.add_text(name, value)
            doc.add_text(name + EXACT, value)
        doc.add_unsigned("row", row)
        if record.date is not None:
            doc.add_integer("date", record.date)
            dated += 1
        writer.add_document(doc)
    writer.commit()
    writer.wait_merging_threads()
    return dated


def _fingerprint(settings: BooleanSettings, corpus_fingerprint: str) -> str:
    payload = json.dumps(
        {
            "kind": BooleanRetriever.kind,
            "tantivy": importlib.metadata.version("tantivy"),
            **settings.model_dump(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(f"{payload}|{corpus_fingerprint}".encode()).hexdigest()[:16]


def _empty() -> Ranking:
    return Ranking([], np.empty(0, dtype=np.float32), total=0)
