"""The base of search-API retrievers (PubMed, ClinicalTrials.gov): batched search over an HTTP API on the
shared client (``client``), a persistent response cache, date ranges and query words. An engine module
only knows its URL, its parameters and its response shape (``_cache_request`` and ``_fetch``).

Guarantees the reward path relies on: ``search`` never raises for anything the network or the server
does (a query that cannot be searched after the retries becomes ``Ranking.failure``); an answer is scored
only when its content is possible (every id is one of the engine's ids, once; the match count is a
non-negative integer consistent with the number of ids on the page: :class:`InvalidAnswer` otherwise,
retried like a 5xx); failures are never cached, and a cached entry is checked the same way when read; a
secret (API key) never reaches a cache key, a cache file, a log line or an error message."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
from abc import abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar, get_args, get_type_hints

import httpx
import numpy as np

from deepretrieval.paths import cache_dir as default_cache_root
from deepretrieval.retrievers.base import DateRange, Ranking, Retriever
from deepretrieval.retrievers.web.client import (
    HttpClient,
    RequestFailed,
    Retry,
    RetryableError,
    retryable,
    shared_limiter,
)

log = logging.getLogger(__name__)

OFFLINE_ENV = "DEEPRETRIEVAL_OFFLINE"
OFFLINE_MISS = "offline: not in cache"
USER_AGENT = "deepretrieval (search-API client; python-httpx)"
_DIGITS = re.compile(r"[0-9]+")
_DATE = re.compile(r"^(\d{4})(?:/(\d{2})(?:/(\d{2}))?)?$")
_WORD = re.compile(r"\w+")
_BOOLEAN_OPERATORS = frozenset({"and", "or", "not"})

T = TypeVar("T")


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class SearchApiSettings:
    """What every search-API retriever shares. Engine settings subclass this with their own defaults."""

    engine_url: str = ""
    requests_per_second: float | None = None  # None: the engine's published (or default) limit
    concurrency: int = 16  # requests in flight at once (threads); the limiter still caps the rate
    timeout_s: float = 30.0
    attempts: int = 6  # tries per request before the query becomes a failure
    backoff_s: float = 0.5  # first backoff ceiling; doubles per retry (full jitter below it)
    backoff_cap_s: float = 16.0
    max_wait_s: float = 120.0  # total backoff per request before giving up
    cache: bool = True
    cache_dir: str | Path | None = None  # None: <deepretrieval cache>/api/<engine>
    cache_size_gb: float = 8.0  # ~35 KB per 3,000-id query; the least recently stored go first past this
    offline: bool = False  # cache only; also set by DEEPRETRIEVAL_OFFLINE=1

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for setting in fields(self):
            value = getattr(self, setting.name)
            if not _fits(value, hints[setting.name]):
                raise ValueError(
                    f"{type(self).__name__}.{setting.name} must be "
                    f"{getattr(hints[setting.name], '__name__', hints[setting.name])}, got {value!r}"
                )
        if not self.engine_url.startswith(("http://", "https://")):
            raise ValueError(f"engine_url must be an http(s) URL, got {self.engine_url!r}")
        if self.requests_per_second is not None and self.requests_per_second <= 0:
            raise ValueError(f"requests_per_second must be > 0, got {self.requests_per_second}")
        if self.concurrency < 1 or self.attempts < 1:
            raise ValueError(
                f"concurrency and attempts must be >= 1, got {self.concurrency}, {self.attempts}"
            )
        if min(self.timeout_s, self.backoff_s, self.backoff_cap_s, self.max_wait_s) < 0:
            raise ValueError("timeout_s, backoff_s, backoff_cap_s and max_wait_s must be >= 0")
        if self.cache_size_gb <= 0:
            raise ValueError(f"cache_size_gb must be > 0, got {self.cache_size_gb}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        """Build from a config mapping; an unknown key is an error that lists the valid ones."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} key(s) {unknown}; valid keys: {', '.join(names)}")
        return cls(**options)


def _fits(value: object, hint: Any) -> bool:
    """Whether a setting's value has its declared type (``X | None`` unions; an int is a float)."""
    for kind in get_args(hint) or (hint,):
        if kind is type(None) and value is None:
            return True
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return True
        if kind is int and isinstance(value, bool):
            continue
        if isinstance(kind, type) and isinstance(value, kind):
            return True
    return False


class InvalidAnswer(RetryableError):
    """A well-formed answer whose content cannot be right (an id that is not one of the engine's, a
    negative count, more or fewer ids than the count allows): asked again like a 5xx, then the query's
    failure with this reason."""


def answer_count(value: Any, name: str) -> int:
    """A count in an answer: a non-negative integer, as a JSON number or a string of digits (NCBI)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    raise InvalidAnswer(f"{name} {value!r:.60} is not a non-negative integer")


def answer_ids(values: Any, name: str, id_pattern: re.Pattern[str], what: str) -> list[str]:
    """The ids of an answer: a list of strings that each match ``id_pattern`` (``what`` names one such
    id in the error: "a PMID"), none repeated."""
    if not isinstance(values, list):
        raise InvalidAnswer(f"{name} is {type(values).__name__}, not a list of ids")
    for position, value in enumerate(values):
        if not isinstance(value, str) or not id_pattern.fullmatch(value):
            raise InvalidAnswer(f"{name}[{position}] is {value!r:.60}, not {what}")
    if len(set(values)) != len(values):
        repeated = next(value for value, n in Counter(values).items() if n > 1)
        raise InvalidAnswer(f"{name} repeats {repeated}")
    return values


@dataclass(frozen=True)
class Fetched:
    """One query's result as an engine returns it: ids best first, and the engine's match count."""

    ids: list[str]
    total: int


# --------------------------------------------------------------------------- dates and query words


def parse_date(text: str) -> tuple[int, int | None, int | None]:
    """``YYYY``, ``YYYY/MM`` or ``YYYY/MM/DD`` (NCBI's formats) as (year, month, day); a clear error
    for anything else, including dates that do not exist."""
    match = _DATE.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"date {text!r} is not YYYY, YYYY/MM or YYYY/MM/DD")
    year, month, day = (int(g) if g else None for g in match.groups())
    try:
        dt.date(year, month or 1, day or 1)
    except ValueError:
        raise ValueError(f"date {text!r} is not a calendar date") from None
    return year, month, day


def check_date_range(dates: DateRange) -> None:
    """Both ends parse and the start is not after the end."""
    ends = [parse_date(d) for d in (dates.start, dates.end) if d is not None]
    if len(ends) == 2 and (ends[0][0], ends[0][1] or 1, ends[0][2] or 1) > (
        ends[1][0],
        ends[1][1] or 12,
        ends[1][2] or 31,
    ):
        raise ValueError(f"date range starts after it ends: {dates.start} > {dates.end}")


def query_words(text: str, syntax: re.Pattern[str]) -> list[str]:
    """Lower-cased ``\\w+`` words of a query, without Boolean operators and without what ``syntax``
    matches (field tags, engine operators)."""
    words = _WORD.findall(syntax.sub(" ", text).lower())
    return [w for w in words if w not in _BOOLEAN_OPERATORS]


# --------------------------------------------------------------------------- cache


class ResponseCache:
    """Persistent query -> (ids, total) store on ``diskcache`` (SQLite: every write is one transaction,
    so a process killed mid-write leaves the previous state, never a torn entry). Keys are digests of the
    full request description, which never holds a secret. Entries are checked on load (types, a
    non-negative total, ids that match ``id_pattern`` and are not repeated: what an answer is checked
    for); a damaged one is dropped and fetched again. Past ``size_gb`` the least recently stored entries
    are evicted."""

    def __init__(
        self, directory: str | Path, size_gb: float = 8.0, id_pattern: re.Pattern[str] | None = None
    ):
        import diskcache

        self.directory = Path(directory)
        self._store = diskcache.Cache(str(self.directory), size_limit=int(size_gb * 2**30))
        # every id followed by a newline: one regex pass over an entry's 3,000 ids instead of 3,000 calls
        self._ids = re.compile(rf"(?:(?:{id_pattern.pattern})\n)*") if id_pattern is not None else None

    @staticmethod
    def key(request: Mapping[str, Any]) -> str:
        return hashlib.sha256(json.dumps(request, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def get(self, key: str) -> Fetched | None:
        raw = self._store.get(key)
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
            ids, total = entry["ids"], entry["total"]
            if not (
                isinstance(ids, list)
                and all(isinstance(i, str) for i in ids)
                and isinstance(total, int)
                and not isinstance(total, bool)
            ):
                raise ValueError("wrong types")
            if total < 0 or len(set(ids)) != len(ids):
                raise ValueError("a negative total or repeated ids")
            if self._ids is not None:
                lines = "\n".join(ids) + "\n" if ids else ""
                if lines.count("\n") != len(ids) or not self._ids.fullmatch(lines):
                    raise ValueError("ids that are not the engine's")
        except (ValueError, KeyError, TypeError) as err:
            log.warning("dropping a damaged cache entry in %s (%s)", self.directory, err)
            self._store.delete(key)
            return None
        return Fetched(ids, total)

    def put(self, key: str, fetched: Fetched, request: Mapping[str, Any]) -> None:
        self._store.set(key, json.dumps({"request": request, "ids": fetched.ids, "total": fetched.total}))

    def close(self) -> None:
        self._store.close()


# --------------------------------------------------------------------------- the retriever


def ranking_of(fetched: Fetched) -> Ranking:
    """APIs give no scores: rank-based, descending (-1, -2, ...)."""
    return Ranking(
        list(fetched.ids), -np.arange(1, len(fetched.ids) + 1, dtype=np.float32), total=fetched.total
    )


class SearchApiRetriever(Retriever):
    """Batched search over an HTTP API. Subclasses set ``kind`` and implement ``_cache_request`` (the
    full request a query makes, secrets left out) and ``_fetch`` (the engine's paging, calling
    ``_call`` for each page)."""

    kind: ClassVar[str]
    id_pattern: ClassVar[re.Pattern[str]]  # what an id of the engine looks like

    def __init__(self, settings: SearchApiSettings, *, secret: str | None, requests_per_second: float):
        self.settings = settings
        self.offline = settings.offline or os.environ.get(OFFLINE_ENV, "").lower() in ("1", "true", "yes")
        self._secret = secret
        self._cache: ResponseCache | None = None
        if settings.cache:
            directory = settings.cache_dir or default_cache_root() / "api" / self.kind
            self._cache = ResponseCache(directory, settings.cache_size_gb, self.id_pattern)
        elif self.offline:
            raise ValueError(f"{self.kind}: offline mode answers from the cache, but cache=False; enable it")
        self._client = HttpClient(
            self.kind,
            Retry(settings.attempts, settings.backoff_s, settings.backoff_cap_s, settings.max_wait_s),
            timeout_s=settings.timeout_s,
            concurrency=settings.concurrency,
            limiter=shared_limiter(settings.engine_url, secret, requests_per_second),
            headers={"User-Agent": USER_AGENT},
            secret=secret,
        )
        self.stats = self._client.stats

    # ---- engine hooks

    @abstractmethod
    def _cache_request(self, query: str, k: int, dates: DateRange | None) -> dict[str, Any]:
        """The full request ``query`` makes (secrets left out): the response cache's key."""

    @abstractmethod
    def _fetch(self, query: str, k: int, dates: DateRange | None) -> Fetched:
        """The engine's answer to ``query``, paged with :meth:`_call`."""

    def _check_k(self, k: int) -> None:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")

    # ---- public API

    def search(
        self, queries: Sequence[str], k: int, *, dates: Sequence[DateRange | None] | None = None
    ) -> list[Ranking]:
        """Top-``k`` ids for every query, best first; duplicates are searched once, cached queries not
        at all, the rest concurrently under the shared rate limit. A query that cannot be searched gets
        ``Ranking.failure(reason)``; an empty query gets an empty ranking (total 0) without a request."""
        self._check_k(k)
        if isinstance(queries, str):
            raise TypeError("search takes a sequence of queries, not one string")
        if dates is None:
            dates = [None] * len(queries)
        if len(dates) != len(queries):
            raise ValueError(f"dates has {len(dates)} entries for {len(queries)} queries; give one per query")
        for limits in dates:
            if limits is not None:
                check_date_range(limits)
        # an empty range is no limit: same search, same cache entry
        pairs = [(q, d if d is not None and (d.start or d.end) else None) for q, d in zip(queries, dates)]
        results: dict[tuple[str, DateRange | None], Ranking] = {}
        todo: list[tuple[tuple[str, DateRange | None], dict[str, Any], str]] = []
        for pair in dict.fromkeys(pairs):
            query, limits = pair
            if not isinstance(query, str):
                raise TypeError(f"queries must be strings, got {type(query).__name__}")
            if not query.strip():
                results[pair] = ranking_of(Fetched([], 0))
                continue
            request = self._cache_request(query, k, limits)
            key = ResponseCache.key(request)
            cached = self._cache.get(key) if self._cache is not None else None
            if cached is not None:
                self.stats.add("cache_hits")
                results[pair] = ranking_of(cached)
            elif self.offline:
                results[pair] = Ranking.failure(OFFLINE_MISS)
            else:
                todo.append((pair, request, key))
        if todo:
            workers = min(self.settings.concurrency, len(todo))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=self.kind) as pool:
                rankings = pool.map(lambda item: self._search_one(item[0], k, item[1], item[2]), todo)
                for (pair, _, _), ranking in zip(todo, rankings):
                    results[pair] = ranking
        return [results[pair] for pair in pairs]

    def text(self, doc_id: str) -> str:
        raise NotImplementedError(
            f"{self.kind} search returns document ids only, not texts; read texts from a local corpus"
        )

    def close(self) -> None:
        self._client.close()
        if self._cache is not None:
            self._cache.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fingerprint})"

    # ---- machinery

    def _search_one(
        self, pair: tuple[str, DateRange | None], k: int, request: dict[str, Any], key: str
    ) -> Ranking:
        query, limits = pair
        try:
            fetched = self._fetch(query, k, limits)
        except RequestFailed as err:
            self.stats.add("failures")
            return Ranking.failure(self._client.redact(str(err)))
        if self._cache is not None:
            self._cache.put(key, fetched, request)
        return ranking_of(fetched)

    def _call(self, method: str, url: str, params: Mapping[str, str], parse: Callable[[Any], T]) -> T:
        """One request (GET with query parameters, POST form-encoded), rate-limited and retried by the
        client: 429, 5xx, timeouts, dropped connections and bodies ``parse`` cannot use (it raises
        ``RetryableError``) are retried; other 4xx and 3xx answers fail at once."""
        send = {"params": params} if method == "GET" else {"data": params}
        return self._client.request(method, url, lambda response: parse(self._accepted(response)), **send)

    def _accepted(self, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status == 429:
            raise retryable(response, "rate limited (HTTP 429)")
        if status >= 500:
            raise retryable(response, f"server error (HTTP {status})")
        if 300 <= status < 400:
            where = response.headers.get("Location", "?")
            raise RequestFailed(
                f"{self.kind}: the server redirects (HTTP {status}) to {where}; set engine_url to it"
            )
        if status >= 400:
            body = " ".join(response.text.split())[:300]
            raise RequestFailed(f"{self.kind}: the server refused the request (HTTP {status}): {body}")
        return response


def json_body(response: Any, kind: str) -> Any:
    """The response's JSON; a body that does not parse (truncated, HTML from a proxy) is retryable."""
    try:
        return json.loads(response.content)
    except ValueError:
        raise RetryableError(
            f"{kind} answered HTTP {response.status_code} with a body that is not JSON"
        ) from None
