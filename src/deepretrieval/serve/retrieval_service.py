"""The retrieval service: published indexes loaded once, searched over HTTP by every training or evaluation
process that shares them (``deepretrieval serve-retriever``; the client is ``retrievers.web.remote``).

Endpoints (JSON in and out; errors are ``{"detail": message}`` with a 4xx status):

- ``POST /search`` ``{"queries": [...], "k": N, "index": name?, "text": false, "dates": [...]?,
  "columns": false}`` -> ``{"index", "fingerprint", "results": [{"hits": [{"doc_id", "score"(, "text")}],
  "total"}]}``; with ``"columns": true`` each result is ``{"doc_ids": [...], "scores": [...], "total"}``
  (what the client asks for: built straight from the ranking's arrays, no object per hit).
- ``POST /texts`` ``{"ids": [...], "index"?}`` -> ``{"texts": [...]}``
- ``POST /analyze`` ``{"texts": [...], "index"?}`` -> ``{"terms": [[...]]}``
- ``GET /indexes`` (name, kind, fingerprints, documents, bytes on disk, settings, analyser, batching) and
  ``GET /health``.

Concurrent searches of one index are batched (:class:`~deepretrieval.batching.Batcher`): one worker
thread per index gathers the requests that arrive within a short window into one batched, deduplicated
``search`` call (the BM25 scorer is itself multi-threaded). Nothing is cached per request, so the
server's memory stays flat under load; the indexes are memory-mapped. The queue of each index is bounded
(``max_pending_queries``: 503 with Retry-After), each search has a deadline (``request_timeout_s``: 504),
the searches of a client that disconnected are dropped, a body that stops arriving gets 408
(:mod:`deepretrieval.serve.http`), and on SIGTERM / SIGINT queued searches are answered 503 at once.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from deepretrieval.batching import Batcher, DeadlineExceeded, QueueFull, Stopped
from deepretrieval.retrievers import open_retriever
from deepretrieval.retrievers.base import DateRange, Ranking, Retriever
from deepretrieval.retrievers.registry import known_kinds
from deepretrieval.retrievers.storage.index_store import MANIFEST, BadIndexError
from deepretrieval.serve import http

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Beyond these a search answer (in hits; a hit with its text weighs TEXT_WEIGHT) or a request body is
# handled in a worker thread rather than on the event loop (about 50 ms of work on a 2-core machine).
INLINE_HITS, TEXT_WEIGHT, INLINE_BODY_BYTES = 100_000, 50, 2**20
_KIND_PREFIX = re.compile(r"([a-z][a-z0-9_-]*):(.+)")


@dataclass(frozen=True)
class ServiceLimits:
    """What one request may ask for, and how searches are coalesced."""

    max_queries: int = 4096  # queries (or ids, or texts) per request
    max_k: int = 10_000
    max_query_chars: int = 10_000
    max_body_bytes: int = 32 * 2**20
    max_pending_queries: int = 65_536  # queued for one index before requests are refused with 503
    batch_window_ms: float = 2.0  # how long the first request of a batch waits for others to join
    max_batch_queries: int = 4096  # queries per coalesced search
    request_timeout_s: float = 60.0  # how long a search may wait for its turn (then a 504)
    body_timeout_s: float = 10.0  # the longest pause inside a request body (then a 408)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"service limit {name} must be a non-negative number, got {value!r}")
        if min(self.max_queries, self.max_k, self.max_query_chars, self.max_batch_queries) < 1:
            raise ValueError("max_queries, max_k, max_query_chars and max_batch_queries must be >= 1")
        if min(self.request_timeout_s, self.body_timeout_s) <= 0:
            raise ValueError("request_timeout_s and body_timeout_s must be positive")


@dataclass(frozen=True)
class IndexSpec:
    """One ``--index`` argument: ``DIR``, ``NAME=DIR`` or ``NAME=KIND:DIR``."""

    name: str
    path: Path
    kind: str | None = None

    @classmethod
    def parse(cls, text: str) -> IndexSpec:
        name, sep, rest = text.partition("=")
        if not sep:
            name, rest = Path(text).resolve().name, text
        if not _NAME.fullmatch(name):
            raise ValueError(
                f"index name {name!r} (from --index {text}) must be letters, digits, '.', '_' or '-'; "
                "name it explicitly with --index NAME=DIR"
            )
        kind = None
        match = _KIND_PREFIX.fullmatch(rest)
        if match and match.group(1) in known_kinds():
            kind, rest = match.groups()
        return cls(name, Path(rest), kind)


def _manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((path / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise BadIndexError(
            f"{path} holds no deepretrieval index (no {MANIFEST}); build one with "
            f"`deepretrieval index build --corpus CORPUS --out {path}`"
        ) from None
    except ValueError:
        raise BadIndexError(f"{path / MANIFEST} is not valid JSON; rebuild the index") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("kind"), str):
        raise BadIndexError(f"{path / MANIFEST} names no index kind; rebuild the index")
    return manifest


@dataclass(frozen=True)
class SearchJob:
    """One request's searches, waiting to be coalesced with others of the same index."""

    queries: list[str]
    k: int
    dates: list[DateRange | None] | None


class ServedIndex:
    """One loaded index, its public description and its search worker."""

    def __init__(self, spec: IndexSpec, limits: ServiceLimits):
        manifest = _manifest(spec.path)
        kind = spec.kind or manifest["kind"]
        self.name = spec.name
        self.retriever: Retriever = open_retriever(kind, index_dir=spec.path, show_progress=False)
        self.searcher: Batcher[SearchJob, list[Ranking]] = Batcher(
            self._search_batch,
            window_s=limits.batch_window_ms / 1000,
            max_size=limits.max_batch_queries,
            size=lambda job: len(job.queries),
            name=f"search-{spec.name}",
            max_pending=limits.max_pending_queries,
            timeout_s=limits.request_timeout_s,
        )
        if manifest.get("fingerprint") != self.retriever.fingerprint:  # republished meanwhile
            manifest = _manifest(spec.path)
        self.info: dict[str, Any] = {
            "name": spec.name,
            "kind": kind,
            "fingerprint": self.retriever.fingerprint,
            "corpus_fingerprint": self.retriever.corpus_fingerprint,
            "documents": manifest.get("corpus", {}).get("documents"),
            "bytes": sum(entry.get("size", 0) for entry in manifest.get("files", {}).values()),
            "settings": manifest.get("settings", {}),
            "version": manifest.get("version"),
            "path": str(spec.path.resolve()),
            # "local": a client analyses text itself with the kind's analyzer(settings), as this index does
            "analyzer": "local" if self.retriever.local_analyzer else "remote",
        }

    def _search_batch(self, jobs: list[SearchJob]) -> list[list[Ranking] | Exception]:
        """Coalesced jobs -> one deduplicated ``search`` per distinct k; jobs with date limits alone."""
        results: list[list[Ranking] | Exception | None] = [None] * len(jobs)
        by_k: dict[int, list[int]] = defaultdict(list)
        for i, job in enumerate(jobs):
            if job.dates is None:
                by_k[job.k].append(i)
                continue
            try:
                results[i] = self.retriever.search(job.queries, job.k, dates=job.dates)
            except Exception as err:  # noqa: BLE001 - this request's answer; the others go on
                results[i] = err
        for k, members in by_k.items():
            unique = list(dict.fromkeys(query for i in members for query in jobs[i].queries))
            try:
                found = dict(zip(unique, self.retriever.search(unique, k)))
            except Exception as err:  # noqa: BLE001 - these requests' answer; other k go on
                for i in members:
                    results[i] = err
                continue
            for i in members:
                results[i] = [found[query] for query in jobs[i].queries]
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self.searcher.close()
        self.retriever.close()


class RequestError(Exception):
    """A request the service refuses: answered with ``status`` and ``{"detail": message}`` (and a
    Retry-After header when ``retry_after_s`` is given)."""

    def __init__(self, status: int, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = None if retry_after_s is None else {"Retry-After": str(math.ceil(retry_after_s))}


class RetrievalService:
    """The loaded indexes and the request handling, independent of the web framework."""

    def __init__(self, specs: Sequence[IndexSpec], limits: ServiceLimits | None = None):
        if not specs:
            raise ValueError("serve at least one index: --index DIR (or NAME=DIR, NAME=KIND:DIR)")
        names = [spec.name for spec in specs]
        duplicate = next((name for name in names if names.count(name) > 1), None)
        if duplicate:
            raise ValueError(f"two indexes are named {duplicate!r}; name them with --index NAME=DIR")
        self.limits = limits or ServiceLimits()
        self._answering = asyncio.Semaphore(1)
        self.indexes: dict[str, ServedIndex] = {}
        try:
            for spec in specs:
                self.indexes[spec.name] = ServedIndex(spec, self.limits)
        except BaseException:
            self.close()
            raise

    def describe(self) -> dict[str, Any]:
        """``GET /indexes``: each index with its batching so far (searches, dropped, queued)."""
        indexes = [index.info | {"batching": index.searcher.stats()} for index in self.indexes.values()]
        return {"indexes": indexes, "limits": asdict(self.limits)}

    def index(self, name: object) -> ServedIndex:
        if name is None:
            if len(self.indexes) == 1:
                return next(iter(self.indexes.values()))
            raise RequestError(400, f'this service serves {self._names()}: name one with "index"')
        if not isinstance(name, str) or name not in self.indexes:
            raise RequestError(404, f"unknown index {name!r}; this service serves {self._names()}")
        return self.indexes[name]

    def _names(self) -> str:
        return ", ".join(repr(name) for name in self.indexes)

    async def search(self, body: dict[str, Any]) -> bytes:
        """``POST /search``: validate, queue for the index's worker, answer (JSON) from the rankings."""
        _known_fields(body, ("queries", "k", "index", "text", "dates", "columns"))
        served = self.index(body.get("index"))
        queries = self._strings(body, "queries", self.limits.max_query_chars)
        k = body.get("k")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= self.limits.max_k:
            raise RequestError(400, f"k must be an integer from 1 to {self.limits.max_k}, got {k!r}")
        with_text, columns = _flag(body, "text"), _flag(body, "columns")
        dates = _dates(body.get("dates"), len(queries))
        rankings = await self._searched(served, SearchJob(queries, k, dates))

        def answer() -> dict[str, Any]:
            texts = _texts_of(served.retriever, rankings) if with_text else None
            results = [
                _result(ranking, texts[i] if texts else None, columns) for i, ranking in enumerate(rankings)
            ]
            return {"index": served.name, "fingerprint": served.retriever.fingerprint, "results": results}

        if len(queries) * k * (TEXT_WEIGHT if with_text else 1) <= INLINE_HITS:
            return orjson.dumps(answer())  # a few milliseconds: a thread would cost more than it saves
        # A big answer is built and serialised in a worker thread, one at a time. Off the event loop:
        # 2,000 queries at k=1000 are 2 million hits, and a loop busy with them notices no disconnect and
        # starts no other request. One at a time: building is Python under the GIL (two at once are no
        # faster) and two such answers double the memory peak; one whose client left while it waited for
        # its turn is never built.
        async with self._answering:
            return await asyncio.to_thread(lambda: orjson.dumps(answer()))

    async def _searched(self, served: ServedIndex, job: SearchJob) -> list[Ranking]:
        """The job's rankings from the index's worker; its queue and deadline refusals as 503 / 504."""
        searcher = served.searcher
        try:
            (rankings,) = await searcher.gather([job])
        except QueueFull as full:
            queued = f"{searcher.pending} queries"
            raise RequestError(
                503, f"index {served.name!r} has too many queued searches ({queued}); retry shortly",
                full.retry_after_s,
            ) from None  # fmt: skip
        except DeadlineExceeded:
            deadline = f"{searcher.timeout_s:g} s"
            raise RequestError(
                504, f"not taken up within the service's {deadline} deadline (it is overloaded); retry later",
                searcher.drain_s(),
            ) from None  # fmt: skip
        except Stopped:
            raise RequestError(503, "the retrieval service is shutting down", 5) from None
        except ValueError as err:  # the retriever refused the request (e.g. date limits it cannot apply)
            raise RequestError(400, str(err)) from None
        return rankings

    async def texts(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /texts``: document texts by id (404 naming the first unknown id)."""
        _known_fields(body, ("ids", "index"))
        served = self.index(body.get("index"))
        ids = self._strings(body, "ids", self.limits.max_query_chars)

        def read() -> list[str]:
            try:
                return [served.retriever.text(doc_id) for doc_id in ids]
            except KeyError as err:
                raise RequestError(404, str(err.args[0] if err.args else err)) from None

        return {"index": served.name, "texts": await asyncio.to_thread(read)}

    async def analyze(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /analyze``: the index's analysed terms of each text."""
        _known_fields(body, ("texts", "index"))
        served = self.index(body.get("index"))
        texts = self._strings(body, "texts", self.limits.max_query_chars)
        terms = await asyncio.to_thread(served.retriever.analyze_many, texts)
        return {"index": served.name, "terms": terms}

    def _strings(self, body: dict[str, Any], field: str, max_chars: int) -> list[str]:
        values = body.get(field)
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise RequestError(400, f"{field!r} must be a list of strings")
        if len(values) > self.limits.max_queries:
            raise RequestError(
                413, f"{len(values)} {field} in one request; the limit is {self.limits.max_queries}: split it"
            )
        longest = max(values, key=len, default="")
        if len(longest) > max_chars:
            raise RequestError(
                413, f"an entry of {field!r} has {len(longest)} characters; the limit is {max_chars}"
            )
        return values

    def abort(self) -> None:
        """Answer every queued and running search 503 now (the server is shutting down)."""
        for index in self.indexes.values():
            index.searcher.close(0, abort=True)

    def close(self) -> None:
        for index in self.indexes.values():
            index.close()


def _known_fields(body: dict[str, Any], fields: Sequence[str]) -> None:
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise RequestError(400, f"unknown field {unknown[0]!r}; fields: {', '.join(fields)}")


def _flag(body: dict[str, Any], field: str) -> bool:
    value = body.get(field, False)
    if not isinstance(value, bool):
        raise RequestError(400, f"{field!r} must be true or false, got {value!r}")
    return value


def _dates(raw: object, count: int) -> list[DateRange | None] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) != count:
        raise RequestError(
            400, f"'dates' must be a list with one entry (null or a range) per query ({count})"
        )
    ranges: list[DateRange | None] = []
    for entry in raw:
        if entry is None:
            ranges.append(None)
        elif (
            isinstance(entry, dict)
            and set(entry) <= {"start", "end"}
            and all(value is None or isinstance(value, str) for value in entry.values())
        ):
            ranges.append(DateRange(entry.get("start"), entry.get("end")))
        else:
            raise RequestError(
                400, f"a date range is null or {{'start': 'YYYY/MM/DD', 'end': ...}}, got {entry!r}"
            )
    return ranges


def _texts_of(retriever: Retriever, rankings: list[Ranking]) -> list[list[str]]:
    return [[retriever.text(doc_id) for doc_id in ranking.doc_ids] for ranking in rankings]


def _result(ranking: Ranking, texts: list[str] | None, columns: bool) -> dict[str, Any]:
    scores = ranking.scores.tolist()  # float32 -> float is exact, and so is its JSON round trip
    if columns:
        result: dict[str, Any] = {"doc_ids": ranking.doc_ids, "scores": scores, "total": ranking.total}
        if texts is not None:
            result["texts"] = texts
        return result
    hits = [{"doc_id": doc_id, "score": score} for doc_id, score in zip(ranking.doc_ids, scores)]
    if texts is not None:
        for hit, text in zip(hits, texts):
            hit["text"] = text
    return {"hits": hits, "total": ranking.total}


async def _json_body(request: Request, limit: int) -> dict[str, Any]:
    """The request's JSON object, refused before parsing when the body is over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise RequestError(413, f"request body of {declared} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    data = b"".join(chunks)
    try:  # a big body (32 MiB at most) is parsed off the event loop
        body = (
            orjson.loads(data) if size <= INLINE_BODY_BYTES else await asyncio.to_thread(orjson.loads, data)
        )
    except ValueError as err:
        raise RequestError(400, f"request body is not valid JSON ({err})") from None
    if not isinstance(body, dict):
        raise RequestError(400, f"request body must be a JSON object, got {type(body).__name__}")
    return body


def create_app(service: RetrievalService) -> FastAPI:
    """The FastAPI application over ``service`` (closed when the application shuts down)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        await asyncio.to_thread(service.close)

    app = FastAPI(title="deepretrieval retrieval service", lifespan=lifespan)
    app.add_middleware(http.ClientWatch, body_timeout_s=service.limits.body_timeout_s)

    @app.exception_handler(RequestError)
    async def refused(_request: Request, err: RequestError) -> JSONResponse:
        return JSONResponse({"detail": err.message}, status_code=err.status, headers=err.headers)

    def answer(payload: dict[str, Any] | bytes) -> Response:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        return Response(body, media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        return answer({"status": "ok", "indexes": list(service.indexes)})

    @app.get("/indexes")
    async def indexes() -> Response:
        return answer(service.describe())

    @app.post("/search")
    async def search(request: Request) -> Response:
        return answer(await service.search(await _json_body(request, service.limits.max_body_bytes)))

    @app.post("/texts")
    async def texts(request: Request) -> Response:
        return answer(await service.texts(await _json_body(request, service.limits.max_body_bytes)))

    @app.post("/analyze")
    async def analyze(request: Request) -> Response:
        return answer(await service.analyze(await _json_body(request, service.limits.max_body_bytes)))

    return app


def serve(
    specs: Sequence[IndexSpec],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    limits: ServiceLimits | None = None,
    log_level: str = "warning",
) -> None:
    """Load the indexes, bind ``host:port`` (0: any free port) and serve until SIGTERM / SIGINT. The
    address is printed on stdout as ``retrieval service on http://HOST:PORT`` once the socket listens."""
    service = RetrievalService(specs, limits)
    try:
        sock = http.listen(host, port)
    except OSError:
        service.close()
        raise
    bound = sock.getsockname()[1]
    names = ", ".join(f"{name} ({index.info['kind']})" for name, index in service.indexes.items())
    print(f"retrieval service on http://{host}:{bound} serving {names}", flush=True)
    http.run(create_app(service), sock, on_shutdown=service.abort, log_level=log_level)
