"""A local Boolean search engine over a literature collection, on tantivy: PubMed and Ovid syntax in,
documents matching the Boolean query out, ranked by BM25, with the match count as ``Ranking.total``.

Index layout (``index_dir``): ``deepretrieval_boolean.json`` names the generation folder that holds the
tantivy index and the document ids. A build writes a new generation folder, then replaces the manifest
with ``os.replace``: a reader sees the old index or the new one, never a mix, and files it has open are
never rewritten. The generation a build replaces is kept (a reader may still use it); older ones go.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import tantivy
from tqdm import tqdm

from deepretrieval.retrievers.base import DateRange, Ranking
from deepretrieval.retrievers.boolean.approximate import NOTHING, Core, approximate
from deepretrieval.retrievers.boolean.collection import corpus_file, read_records
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

MANIFEST = "deepretrieval_boolean.json"
FORMAT = 1
IDS = "ids.json"
TEXT_FIELDS = ("title", "abstract")
MIN_QUERIES_PER_THREAD = 4
_EXACT_ANALYZER = "dr_exact"


@dataclass(frozen=True)
class BooleanSettings:
    """Analysis (fixed when the index is built) and query handling (may change when loading).

    - ``stemmer``: Snowball language of the stemmed title/abstract fields; ``None`` indexes exact words only.
    - ``syntax``: how queries are read: ``pubmed``, ``ovid``, or ``auto`` (Ovid when the text carries more of
      Ovid's markers than of PubMed's; see :func:`~deepretrieval.retrievers.boolean.parse.detect_syntax`).
    - ``headings``: MeSH headings are searched as a ``phrase`` of their words in title/abstract, or
      ``ignore``d (they then match nothing).
    - ``max_expansions``: index terms one truncated or wildcard word may expand to (the most frequent ones).
    - ``max_terms``: index terms one query may use in all (expansions included); more is a bad query.
    - ``max_query_chars``, ``max_depth``, ``max_leaves``: longest query text, deepest nesting (parentheses,
      and line references once expanded), and most search terms once line references are expanded;
      beyond them a query is a bad query.
    """

    stemmer: str | None = "english"
    syntax: Literal["auto", "pubmed", "ovid"] = "auto"
    headings: Literal["phrase", "ignore"] = "phrase"
    max_expansions: int = 600
    max_terms: int = 100_000
    max_query_chars: int = 50_000
    max_depth: int = 64
    max_leaves: int = 5_000

    INDEX_FIELDS: ClassVar[tuple[str, ...]] = ("stemmer",)

    def __post_init__(self) -> None:
        if self.syntax not in ("auto", "pubmed", "ovid"):
            raise ValueError(f"syntax must be auto, pubmed or ovid, got {self.syntax!r}")
        if self.headings not in ("phrase", "ignore"):
            raise ValueError(f"headings must be phrase or ignore, got {self.headings!r}")
        for name in ("max_expansions", "max_terms", "max_query_chars", "max_depth", "max_leaves"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.stemmer is not None:
            try:
                tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(
                    tantivy.Filter.stemmer(self.stemmer)
                ).build()
            except ValueError:
                raise ValueError(
                    f"unknown stemmer {self.stemmer!r}; use a Snowball language such as 'english'"
                ) from None

    @property
    def limits(self) -> Limits:
        return Limits(max_chars=self.max_query_chars, max_depth=self.max_depth, max_leaves=self.max_leaves)


class BooleanRetriever:
    """PubMed- and Ovid-syntax Boolean search over a tantivy index of titles and abstracts."""

    kind = "boolean"

    def __init__(self, index_dir: Path, manifest: dict, settings: BooleanSettings, threads: int | None):
        generation = index_dir / manifest["generation"]
        self.index_dir = index_dir
        self.settings = settings
        self.corpus_fingerprint: str = manifest["corpus_sha256"]
        self.dated_documents: int = manifest["dated_documents"]
        self.fingerprint = _fingerprint(settings, self.corpus_fingerprint)
        self.threads = max(1, threads or os.cpu_count() or 1)
        self._ids: list[str] = json.loads((generation / IDS).read_text())
        self._index = tantivy.Index.open(str(generation))
        exact, stemmed = _register_analyzers(self._index, settings.stemmer)
        self._exact = exact
        self._stemmed = stemmed
        self._searcher = self._index.searcher()
        self._compiler = Compiler(
            self._index.schema,
            self._searcher,
            exact,
            stemmed,
            max_expansions=settings.max_expansions,
            max_terms=settings.max_terms,
        )
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # ---- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        corpus_path: str | Path,
        index_dir: str | Path,
        settings: BooleanSettings | None = None,
        *,
        show_progress: bool = True,
    ) -> BooleanRetriever:
        """Index the BEIR-style JSONL corpus (a file, or a folder holding ``corpus.jsonl``) into
        ``index_dir`` and open it. A previous index there stays readable until the new one is published."""
        settings = settings or BooleanSettings()
        source = corpus_file(corpus_path)
        index_dir = Path(index_dir)
        index_dir.mkdir(parents=True, exist_ok=True)
        name = f"gen-{uuid.uuid4().hex[:12]}"
        staging = index_dir / f".{name}.partial"
        staging.mkdir()
        try:
            documents, dated, ids_sha, corpus_sha = _write_index(
                source, staging, settings.stemmer, show_progress
            )
            os.replace(staging, index_dir / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        manifest = {
            "format": FORMAT,
            "kind": cls.kind,
            "generation": name,
            "settings": asdict(settings),
            "documents": documents,
            "dated_documents": dated,
            "ids_sha256": ids_sha,
            "corpus_sha256": corpus_sha,
            "corpus_path": str(source.resolve()),
            "tantivy": importlib.metadata.version("tantivy"),
        }
        previous = _generation_in(index_dir)
        partial = index_dir / f".{MANIFEST}.{name}.partial"
        partial.write_text(json.dumps(manifest, indent=2))
        os.replace(partial, index_dir / MANIFEST)
        for folder in index_dir.glob("gen-*"):
            if folder.name not in (name, previous):
                shutil.rmtree(folder, ignore_errors=True)
        return cls.load(index_dir, settings)

    @classmethod
    def load(
        cls, index_dir: str | Path, settings: BooleanSettings | None = None, *, threads: int | None = None
    ) -> BooleanRetriever:
        """Open an index written by :meth:`build`, checking it is whole. ``settings`` may change how
        queries are handled, not how the index was analysed (that needs a rebuild)."""
        index_dir = Path(index_dir)
        manifest = _read_manifest(index_dir)
        built = BooleanSettings(**manifest["settings"])
        settings = settings or built
        for name in BooleanSettings.INDEX_FIELDS:
            if getattr(settings, name) != getattr(built, name):
                raise ValueError(
                    f"{index_dir} was built with {name}={getattr(built, name)!r}, not "
                    f"{getattr(settings, name)!r}; rebuild it with those settings"
                )
        try:
            retriever = cls(index_dir, manifest, settings, threads)
        except (OSError, ValueError) as err:
            raise ValueError(f"{index_dir}: the tantivy index cannot be opened ({err}); {_REBUILD}") from None
        held = retriever._searcher.num_docs
        if len(retriever._ids) != manifest["documents"] or held != manifest["documents"]:
            retriever.close()
            raise ValueError(
                f"{index_dir} is torn: the manifest lists {manifest['documents']} documents but the index "
                f"holds {held}; {_REBUILD}"
            )
        return retriever

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
        return parse_query(query, self.settings.syntax, self.settings.limits)

    def explain(self, query: str) -> Core:
        """What the query becomes on this collection, every approximation applied."""
        return approximate(self.parse(query), has_dates=self.has_dates, headings=self.settings.headings)

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
                f"{len(queries)} queries but {len(dates)} date ranges; give one per query (or None)"
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
                f"{self.index_dir} has no publication dates (its corpus has no metadata.pub_date or date); "
                f"search it without date limits, or build it from a corpus with dates"
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


_REBUILD = "rebuild it with BooleanRetriever.build(corpus, index_dir)"


_BRACKETS = re.compile(r"\[[^\]]*\]")


def _register_analyzers(index: tantivy.Index, stemmer: str | None) -> tuple:
    def analyzer(stem: str | None) -> tantivy.TextAnalyzer:
        builder = (
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(40))
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.ascii_fold())
        )
        return (builder.filter(tantivy.Filter.stemmer(stem)) if stem else builder).build()

    exact = analyzer(None)
    index.register_tokenizer(_EXACT_ANALYZER, exact)
    stemmed = None
    if stemmer:
        stemmed = analyzer(stemmer)
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


def _write_index(
    source: Path, folder: Path, stemmer: str | None, show_progress: bool
) -> tuple[int, int, str, str]:
    """Index every record into ``folder`` (one indexing thread: the same corpus always gives the same
    segments, so ties rank the same); write the id list. Returns the number of documents and of dated
    ones, and the sha256 of the id list and of the corpus bytes indexed."""
    index = tantivy.Index(_schema(stemmer), path=str(folder))
    _register_analyzers(index, stemmer)
    writer = index.writer(heap_size=256_000_000, num_threads=1)
    ids: list[str] = []
    dated = 0
    corpus_digest = hashlib.sha256()
    records = read_records(source, corpus_digest.update)
    for row, record in enumerate(tqdm(records, disable=not show_progress, desc="indexing")):
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
        ids.append(record.doc_id)
    if not ids:
        raise ValueError(f"{source}: no documents")
    writer.commit()
    writer.wait_merging_threads()
    payload = json.dumps(ids).encode()
    (folder / IDS).write_bytes(payload)
    return len(ids), dated, hashlib.sha256(payload).hexdigest(), corpus_digest.hexdigest()


def _generation_in(index_dir: Path) -> str | None:
    try:
        return json.loads((index_dir / MANIFEST).read_text()).get("generation")
    except (OSError, ValueError, AttributeError):
        return None


def _read_manifest(index_dir: Path) -> dict:
    path = index_dir / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{index_dir} is not a Boolean index (no {MANIFEST}); {_REBUILD}")
    try:
        manifest = json.loads(path.read_text())
        generation = index_dir / manifest["generation"]
        ids_sha = manifest["ids_sha256"]
        keys_ok = all(
            key in manifest for key in ("settings", "documents", "dated_documents", "corpus_sha256")
        )
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path} is torn or not a Boolean index manifest; {_REBUILD}") from None
    if manifest.get("format") != FORMAT or manifest.get("kind") != BooleanRetriever.kind or not keys_ok:
        raise ValueError(
            f"{path} has format {manifest.get('format')!r}, this version reads format {FORMAT}; {_REBUILD}"
        )
    ids_file = generation / IDS
    if not ids_file.is_file() or hashlib.sha256(ids_file.read_bytes()).hexdigest() != ids_sha:
        raise ValueError(f"{index_dir}: the index files do not match {MANIFEST} (torn or edited); {_REBUILD}")
    return manifest


def _fingerprint(settings: BooleanSettings, corpus_sha: str) -> str:
    payload = json.dumps(
        {
            "kind": BooleanRetriever.kind,
            "format": FORMAT,
            "tantivy": importlib.metadata.version("tantivy"),
            "settings": {f.name: getattr(settings, f.name) for f in fields(settings)},
        },
        sort_keys=True,
    )
    return hashlib.sha256(f"{payload}|{corpus_sha}".encode()).hexdigest()[:16]


def _empty() -> Ranking:
    return Ranking([], np.empty(0, dtype=np.float32), total=0)
