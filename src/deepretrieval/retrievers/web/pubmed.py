"""PubMed through NCBI E-utilities ``esearch`` (ids only, JSON), for literature-search rewards.

Matches the parameters of the original DeepRetrieval reward code (``db=pubmed``, up to 3,000 ids, no
``sort`` so esearch's own default order, ``datetype=pdat`` with the review date as ``maxdate``) and fixes
what it got wrong: the term is form-encoded by httpx instead of pasted into the URL, requests are paced at
NCBI's limits (3/s, 10/s with ``NCBI_API_KEY``) across all threads of the process, failures are retried
and then reported as failures (never as an empty result), answers are checked before they are scored
(:func:`read_esearch`), and cached on disk.

Requests are POSTed (E-utilities accept POST with the same parameters, as Biopython's Entrez does for long
queries): a policy's Boolean query can be longer than a URL may be, and the API key then never appears
in a URL, so neither httpx's request log nor a proxy's access log can leak it."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from functools import partial
from typing import Any

from deepretrieval.retrievers.base import DateRange
from deepretrieval.retrievers.web.client import RetryableError
from deepretrieval.retrievers.web.search_api import (
    Fetched,
    InvalidAnswer,
    SearchApiRetriever,
    SearchApiSettings,
    answer_count,
    answer_ids,
    json_body,
    query_words,
)

log = logging.getLogger(__name__)

DEFAULT_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
API_KEY_ENV = "NCBI_API_KEY"
EMAIL_ENV = "NCBI_EMAIL"
RATE_WITHOUT_KEY = 3.0  # NCBI's published limits, requests per second
RATE_WITH_KEY = 10.0
MAX_RETMAX = 10_000  # esearch's largest page
MAX_RECORDS = 9_999  # "'retstart' cannot be larger than 9998": PubMed serves only the first 9,999 ids
# NCBI needs mindate and maxdate together; an open end of a DateRange becomes the usual catch-all bound.
OPEN_START, OPEN_END = "1800/01/01", "3000/12/31"
_SYNTAX = re.compile(r"\[[^\]]*\]")  # field tags: [tiab], [MeSH Terms], [dp], ...
PMID = re.compile(r"[1-9][0-9]{0,9}")  # a positive integer, as NCBI writes it (no sign, no leading zero)


@dataclass(frozen=True)
class PubMedSettings(SearchApiSettings):
    """PubMed client settings. The API key is not a setting: it comes from ``$NCBI_API_KEY`` (or the
    client's ``api_key`` argument) so that it is never written into a config, a manifest or a result."""

    engine_url: str = DEFAULT_URL  # E-utilities base; the client appends /esearch.fcgi
    page_size: int = 3000  # retmax per request; deeper k pages with retstart
    sort: str | None = None  # None: esearch's default order (the original code's); or "relevance", ...
    tool: str = "deepretrieval"
    email: str | None = None  # None: $NCBI_EMAIL when set

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.page_size <= MAX_RETMAX:
            raise ValueError(
                f"page_size must be 1..{MAX_RETMAX} (esearch's retmax limit), got {self.page_size}"
            )


class PubMedRetriever(SearchApiRetriever):
    """``search(queries, k, dates=...)`` over esearch: PMIDs best first in esearch's order, ``total`` =
    esearch's ``count``. Date ranges become ``datetype=pdat&mindate=..&maxdate=..``."""

    kind = "pubmed"
    id_pattern = PMID

    def __init__(
        self, settings: PubMedSettings | None = None, *, api_key: str | None = None, **options: object
    ):
        """``settings``, or the same as keyword options (how the retriever registry opens engines:
        ``open_retriever("pubmed", engine_url=...)``); unknown options are one-line errors."""
        if settings is not None and options:
            raise ValueError("give PubMed settings or keyword options, not both")
        settings = settings or PubMedSettings.from_options(options)
        api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        rate = settings.requests_per_second or (RATE_WITH_KEY if api_key else RATE_WITHOUT_KEY)
        if rate > (RATE_WITH_KEY if api_key else RATE_WITHOUT_KEY):
            log.warning("pubmed: %.1f requests/s is above NCBI's published limit", rate)
        super().__init__(settings, secret=api_key, requests_per_second=rate)
        self.settings: PubMedSettings = settings
        self.url = settings.engine_url.rstrip("/") + "/esearch.fcgi"
        self._fixed: dict[str, str] = {"db": "pubmed", "retmode": "json"}
        if settings.sort:
            self._fixed["sort"] = settings.sort
        self._fixed["tool"] = settings.tool
        email = settings.email or os.environ.get(EMAIL_ENV)
        if email:
            self._fixed["email"] = email
        self.fingerprint = f"pubmed:{self.url}:esearch-json:db=pubmed;sort={settings.sort or 'default'}"

    @staticmethod
    def analyze(text: str) -> list[str]:
        """Lower-cased words of a PubMed query without AND/OR/NOT and without field tags."""
        return query_words(text, _SYNTAX)

    def _check_k(self, k: int) -> None:
        super()._check_k(k)
        if k > MAX_RECORDS:
            raise ValueError(
                f"PubMed esearch serves at most the first {MAX_RECORDS} ids of a query; got k={k}"
            )

    def _params(self, query: str, dates: DateRange | None, retstart: int, retmax: int) -> dict[str, str]:
        params = {**self._fixed, "term": query, "retstart": str(retstart), "retmax": str(retmax)}
        if dates is not None:
            params.update(datetype="pdat", mindate=dates.start or OPEN_START, maxdate=dates.end or OPEN_END)
        return params

    def _cache_request(self, query: str, k: int, dates: DateRange | None) -> dict[str, Any]:
        first = self._params(query, dates, 0, min(k, self.settings.page_size))
        return {"url": self.url, "params": first, "depth": k}

    def _fetch(self, query: str, k: int, dates: DateRange | None) -> Fetched:
        ids: list[str] = []
        total: int | None = None
        retstart = 0
        while retstart < k:
            retmax = min(self.settings.page_size, k - retstart)
            params = self._params(query, dates, retstart, retmax)
            if self._secret:
                params["api_key"] = self._secret
            page_ids, count = self._call(
                "POST", self.url, params, partial(self._parse, retstart=retstart, retmax=retmax)
            )
            total = count if total is None else total
            ids.extend(page_ids[:retmax])
            retstart += retmax
            if len(page_ids) < retmax or retstart >= count:
                break
        return Fetched(list(dict.fromkeys(ids))[:k], total or 0)

    def _parse(self, response: Any, *, retstart: int, retmax: int) -> tuple[list[str], int]:
        return read_esearch(json_body(response, self.kind), retstart, retmax)


def read_esearch(body: Any, retstart: int, retmax: int) -> tuple[list[str], int]:
    """An esearch JSON answer to a request from ``retstart`` for ``retmax`` ids -> (PMIDs, count).

    A phrase NCBI did not find is a normal answer (NCBI searches without it). Retried
    (:class:`RetryableError`): a body without an ``esearchresult`` (a rate-limit body), an ``ERROR`` body
    ("Search Backend failed: ..."), and (:class:`InvalidAnswer`) an answer whose content cannot be right.
    The rules, which every recorded real answer keeps (``tests/test_pubmed_client.py``): ``count`` is a
    non-negative integer (the number of matches); ``idlist`` holds PMIDs, none twice, exactly as many as
    the count leaves from ``retstart`` up to ``retmax`` (and the first 9,999 records that esearch
    serves); ``retstart`` and ``retmax``, when echoed, are the request's start and the list's length."""
    result = body.get("esearchresult") if isinstance(body, dict) else None
    if not isinstance(result, dict):
        shown = str(body.get("error") if isinstance(body, dict) and "error" in body else body)[:200]
        raise RetryableError(f"esearch answered without an esearchresult: {shown}")
    if "ERROR" in result:
        raise RetryableError(f"esearch error: {str(result['ERROR'])[:300]}")
    if "count" not in result or "idlist" not in result:
        raise InvalidAnswer("esearch answer is invalid: it has no count and idlist")
    try:
        count = answer_count(result["count"], "count")
        ids = answer_ids(result["idlist"], "idlist", PMID, "a PMID")
        expected = min(retmax, max(0, min(count, MAX_RECORDS) - retstart))
        if len(ids) != expected:
            raise InvalidAnswer(
                f"count {count} from retstart {retstart} with retmax {retmax} means {expected} ids, "
                f"the idlist has {len(ids)}"
            )
        if "retstart" in result and answer_count(result["retstart"], "retstart") != retstart:
            raise InvalidAnswer(
                f"retstart {result['retstart']!r:.40} answers a request for retstart {retstart}"
            )
        if "retmax" in result and answer_count(result["retmax"], "retmax") != len(ids):
            raise InvalidAnswer(f"retmax {result['retmax']!r:.40} for an idlist of {len(ids)}")
    except InvalidAnswer as err:
        raise InvalidAnswer(f"esearch answer is invalid: {err}") from None
    if "errorlist" in result or "warninglist" in result:
        log.debug("esearch notes: %s", {k: result.get(k) for k in ("errorlist", "warninglist")})
    return ids, count
