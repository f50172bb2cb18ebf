"""``RemoteRetriever`` (kind ``remote``): an index served by ``deepretrieval serve-retriever``, searched over
HTTP as if it were loaded in this process.

It is a drop-in replacement for the served index: same rankings (ids, float32 scores, totals), same
``fingerprint`` (so caches and run manifests cannot tell them apart) and the same ``analyze``, computed
locally with the served kind's analyser and settings when the kind declares ``local_analyzer`` (BM25
does), since the reward's repetition guard calls it once per answer. Transient failures (no connection,
a timeout, 5xx, 503 busy) are retried by the shared client (``web.client``: backoff, jitter); queries that
still cannot be searched get ``Ranking.failure`` (the reward leaves such samples out). A request the
service refuses (4xx) is a caller error and raises ``ValueError`` with the service's message.

Open it as ``open_retriever("remote", endpoint="http://host:8000", index="scifact")`` or, in a run config,
``retriever: {kind: remote, options: {endpoint: "http://host:8000"}}``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from deepretrieval.retrievers.base import DateRange, Ranking, Retriever
from deepretrieval.retrievers.corpus import corpus_fingerprint
from deepretrieval.retrievers.registry import retriever_class
from deepretrieval.retrievers.storage.index_store import IndexMismatchError
from deepretrieval.retrievers.web.client import GaveUp, HttpClient, Retry, RetryableError

logger = logging.getLogger(__name__)

BACKOFF_CAP_S = 8.0
RETRY_STATUSES = frozenset({500, 502, 503, 504})
OPTIONS = ("endpoint", "index", "timeout_s", "retries", "backoff_s", "batch_size")


class ServiceUnavailable(ConnectionError):
    """The retrieval service could not be reached or kept failing after the retries."""


class RemoteRetriever(Retriever):
    """Search, texts and analysis of one index of a retrieval service.

    ``index`` names the served index (optional when the service serves one); ``batch_size`` is the most
    queries sent in one request (also bounded by the service's own limits, read at connection);
    ``retries`` is how many times a failed request is repeated. ``corpus`` (a task's collection, passed
    by ``open_retriever``) makes the connection check that the served index was built from it.
    ``kind`` is the served index's kind (``bm25``...), so that tasks treat the remote index like a local
    one; the registry kind of this class is ``remote``."""

    takes_corpus = True

    def __init__(
        self,
        endpoint: str | None = None,
        index: str | None = None,
        *,
        timeout_s: float = 60.0,
        retries: int = 4,
        backoff_s: float = 0.5,
        batch_size: int = 1024,
        corpus: str | Path | None = None,
        **unknown: object,
    ):
        if unknown:
            raise ValueError(
                f"unknown remote retriever option {min(unknown)!r}; options: {', '.join(OPTIONS)}"
            )
        if endpoint is None:
            raise ValueError("the remote retriever needs the service's endpoint, e.g. http://host:8000")
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"remote retriever: endpoint must be an http(s) URL, got {endpoint!r}")
        _check_number("timeout_s", timeout_s, minimum=0.0, integer=False, strict=True)
        _check_number("retries", retries, minimum=0, integer=True)
        _check_number("backoff_s", backoff_s, minimum=0.0, integer=False)
        _check_number("batch_size", batch_size, minimum=1, integer=True)
        if index is not None and not isinstance(index, str):
            raise ValueError(f"remote retriever: index must be a served index's name, got {index!r}")
        self.endpoint = endpoint.rstrip("/")
        self._http = HttpClient(
            f"retrieval service {self.endpoint}",
            Retry(retries + 1, backoff_s, BACKOFF_CAP_S),
            timeout_s=timeout_s,
        )
        try:
            described = self._request("GET", "/indexes")
            try:
                self._bind(described, index, corpus)
            except (KeyError, TypeError, AttributeError):
                raise ValueError(
                    f"{self.endpoint} does not answer GET /indexes as a deepretrieval retrieval service does "
                    "(`deepretrieval serve-retriever`); check the endpoint"
                ) from None
        except BaseException:
            self._http.close()
            raise
        self.batch_size = min(batch_size, self.limits["max_queries"])

    def _bind(self, described: dict[str, Any], index: str | None, corpus: str | Path | None) -> None:
        served = {info["name"]: info for info in described["indexes"]}
        names = ", ".join(repr(name) for name in served)
        if index is None:
            if len(served) != 1:
                raise ValueError(
                    f"the retrieval service at {self.endpoint} serves {names}: choose one (index)"
                )
            index = next(iter(served))
        if index not in served:
            raise ValueError(
                f"the retrieval service at {self.endpoint} serves no index {index!r}; it serves {names}"
            )
        info = served[index]
        self.index = index
        self.info = info
        self.limits: dict[str, int] = described["limits"]
        self.kind = info["kind"]
        self.fingerprint: str = info["fingerprint"]
        self.corpus_fingerprint: str | None = info["corpus_fingerprint"]
        self.documents: int | None = info["documents"]
        self._analyze = self._local_analyzer(info)
        if corpus is not None:
            wanted = corpus_fingerprint(corpus)
            if wanted != self.corpus_fingerprint:
                raise IndexMismatchError(
                    f"index {index!r} of the retrieval service at {self.endpoint} was built from another corpus "
                    f"than {corpus} (corpus fingerprint {str(self.corpus_fingerprint)[:12]}, not {wanted[:12]}); "
                    "serve an index of this corpus"
                )

    @staticmethod
    def _local_analyzer(info: dict[str, Any]) -> Callable[[Sequence[str]], list[list[str]]] | None:
        if info.get("analyzer") != "local":
            return None
        cls = retriever_class(info["kind"])
        return cls.analyzer(cls.settings_type(**info["settings"]))

    def __len__(self) -> int:
        return self.documents or 0

    # ---- the Retriever protocol

    def search(
        self, queries: Sequence[str], k: int, *, dates: Sequence[DateRange | None] | None = None
    ) -> list[Ranking]:
        """Top-``k`` documents for every query, as the served index ranks them, in as few requests as the
        batch size allows. Queries the service cannot take (longer than its limit) and queries of a
        request that kept failing get ``Ranking.failure``."""
        if isinstance(queries, str):
            raise TypeError("search takes a sequence of queries, not one string")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be >= 1, got {k!r}")
        if k > self.limits["max_k"]:
            raise ValueError(
                f"k={k} is over the retrieval service's limit of {self.limits['max_k']}; "
                "restart it with a larger --max-k"
            )
        if dates is not None and len(dates) != len(queries):
            raise ValueError(
                f"dates must give one range (or None) per query: {len(dates)} for {len(queries)}"
            )
        rankings: list[Ranking | None] = [None] * len(queries)
        sendable = []
        for i, query in enumerate(queries):
            if len(query) > self.limits["max_query_chars"]:
                rankings[i] = Ranking.failure(
                    f"query of {len(query)} characters is over the retrieval service's limit of "
                    f"{self.limits['max_query_chars']}"
                )
            else:
                sendable.append(i)
        wire = {i: _wire(queries[i]) for i in sendable}
        for chunk in self._chunks([wire[i] for i in sendable], sendable):
            payload: dict[str, Any] = {"queries": [wire[i] for i in chunk], "k": k, "index": self.index}
            payload["columns"] = True
            if dates is not None:
                payload["dates"] = [_date_json(dates[i]) for i in chunk]
            try:
                answer = self._request("POST", "/search", payload, check=_search_answer_check(len(chunk), k))
            except ServiceUnavailable as err:
                logger.warning("%s", err)
                for i in chunk:
                    rankings[i] = Ranking.failure(str(err))
                continue
            self._check_fingerprint(answer)
            for i, result in zip(chunk, answer["results"], strict=True):
                rankings[i] = Ranking(
                    result["doc_ids"], np.asarray(result["scores"], dtype=np.float32), total=result["total"]
                )
        return rankings  # type: ignore[return-value]

    def text(self, doc_id: str) -> str:
        return self.texts([doc_id])[0]

    def texts(self, doc_ids: Sequence[str]) -> list[str]:
        """Texts of many documents, in batched requests; ``KeyError`` names an unknown id."""
        texts: list[str] = []
        for start in range(0, len(doc_ids), self.batch_size):
            ids = list(doc_ids[start : start + self.batch_size])
            texts.extend(
                self._request("POST", "/texts", {"ids": ids, "index": self.index}, missing=KeyError)["texts"]
            )
        return texts

    def analyze(self, text: str) -> list[str]:
        return self.analyze_many([text])[0]

    def analyze_many(self, texts: Sequence[str]) -> list[list[str]]:
        """Analysed locally when the served kind can (``local_analyzer``), else in batched requests."""
        if self._analyze is not None:
            return self._analyze(texts)
        terms: list[list[str]] = []
        for start in range(0, len(texts), self.batch_size):
            wired = [_wire(text) for text in texts[start : start + self.batch_size]]
            terms += self._request("POST", "/analyze", {"texts": wired, "index": self.index})["terms"]
        return terms

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"RemoteRetriever({self.endpoint}, index={self.index!r}, fingerprint={self.fingerprint})"

    # ---- machinery

    def _chunks(self, queries: list[str], positions: list[int]) -> list[list[int]]:
        """``positions`` split into requests of at most ``batch_size`` queries and at most half the
        service's body limit (JSON-escaped sizes; the rest of the body is small)."""
        budget = self.limits["max_body_bytes"] // 2
        chunks: list[list[int]] = []
        size = 0
        for query, position in zip(queries, positions):
            cost = len(orjson.dumps(query)) + 1
            if not chunks or len(chunks[-1]) >= self.batch_size or size + cost > budget:
                chunks.append([])
                size = 0
            chunks[-1].append(position)
            size += cost
        return chunks

    def _check_fingerprint(self, answer: dict[str, Any]) -> None:
        if answer.get("fingerprint") != self.fingerprint:
            raise IndexMismatchError(
                f"the retrieval service at {self.endpoint} now serves another index as {self.index!r} "
                f"(fingerprint {answer.get('fingerprint')}, connected to {self.fingerprint}); open the "
                "retriever again to use it"
            )

    def _request(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        missing: type = ValueError,
        check: Callable[[Any], None] | None = None,
    ) -> dict[str, Any]:
        """One call, retried on transient failures; a refusal (4xx) raises ``missing`` for 404 and
        ``ValueError`` otherwise, with the service's message. ``check`` raises ``RetryableError`` for an
        answer that cannot be used (retried like a 5xx, then a failure with its reason)."""

        def read(response: Any) -> dict[str, Any]:
            status = response.status_code
            if status in RETRY_STATUSES:
                raise RetryableError(f"HTTP {status}: {_detail(response)}")
            if status >= 400:
                refused = missing if status == 404 else ValueError
                raise refused(
                    f"the retrieval service at {self.endpoint} refused {method} {path} "
                    f"(HTTP {status}): {_detail(response)}"
                )
            try:
                answer = orjson.loads(response.content)
            except ValueError:
                raise RetryableError(f"HTTP {status} with a body that is not JSON") from None
            if check is not None:
                check(answer)
            return answer

        send: dict[str, Any] = {}
        if payload is not None:
            send = {"content": orjson.dumps(payload), "headers": {"content-type": "application/json"}}
        try:
            return self._http.request(method, self.endpoint + path, read, **send)
        except GaveUp as err:
            raise ServiceUnavailable(
                f"retrieval service {self.endpoint} unavailable for {method} {path} after {err.attempts} "
                f"attempts ({err.problem}); is `deepretrieval serve-retriever` running there?"
            ) from None


def _search_answer_check(queries: int, k: int) -> Callable[[Any], None]:
    """A check of a ``POST /search`` answer: one result per query, each at most ``k`` distinct string ids
    with as many finite scores and a total (when the engine counts) no smaller than the ids. A proxy, a cache or a service of
    another version that garbles an answer must fail the search, never be scored as its ranking."""

    def check(answer: Any) -> None:
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != queries:
            got = len(results) if isinstance(results, list) else "no list of"
            raise RetryableError(f"inconsistent answer: {got} results for {queries} queries")
        for n, result in enumerate(results):
            problem = _ranking_problem(result, k)
            if problem:
                raise RetryableError(f"inconsistent answer: result {n} {problem}")

    return check


def _ranking_problem(result: Any, k: int) -> str | None:
    """What is wrong with one served ranking, or None."""
    if not isinstance(result, dict):
        return "is not an object"
    ids, scores, total = result.get("doc_ids"), result.get("scores"), result.get("total")
    if not isinstance(ids, list) or not all(isinstance(doc_id, str) for doc_id in ids):
        return "has document ids that are not strings"
    if len(ids) > k or len(set(ids)) != len(ids):
        return f"has {len(ids)} ids ({len(set(ids))} distinct) for k={k}"
    numbers = isinstance(scores, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in scores
    )
    if not numbers or len(scores) != len(ids):
        return "has scores that are not one finite number per id"
    if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < len(ids)):
        return f"has a total of {total!r} for {len(ids)} ids"  # None: a ranking engine does not count
    return None


def _wire(text: str) -> str:
    """``text`` as JSON can carry it: lone surrogates (not Unicode text, but a decoder may leave them in a
    completion) become U+FFFD, which no analyser counts as part of a word either."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def _detail(response: Any) -> str:
    try:
        return str(orjson.loads(response.content)["detail"])
    except (ValueError, KeyError, TypeError):
        return " ".join(response.text.split())[:300]


def _date_json(dates: DateRange | None) -> dict[str, str | None] | None:
    return None if dates is None else {"start": dates.start, "end": dates.end}


def _check_number(name: str, value: object, *, minimum: float, integer: bool, strict: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kinds)
        or value < minimum
        or (strict and value == minimum)
    ):
        bound = f"> {minimum}" if strict else f">= {minimum}"
        raise ValueError(
            f"remote retriever: {name} must be {'an integer' if integer else 'a number'} {bound}, got {value!r}"
        )
