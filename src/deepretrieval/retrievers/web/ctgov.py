"""ClinicalTrials.gov through its v2 API (``/studies``, NCT ids only), for literature-search rewards.

The original DeepRetrieval code sent ``query.term`` unencoded with ``pageSize=1000`` and followed
``nextPageToken`` to 3,000 ids, without a date limit. This client sends the same search (``query.term``,
``fields=NCTId``, ``pageSize`` up to 1,000, ``countTotal=true`` for the match count, paging by
``pageToken``), encoded by httpx, paced, retried, checked (:func:`read_studies`), cached.

Date limits use the API's Essie filter ``filter.advanced=AREA[StudyFirstPostDate]RANGE[start,end]``
(``MIN``/``MAX`` for an open end): a trial first posted after a review's date cannot have been in it.
``date_field`` selects another date (e.g. ``StudyFirstSubmitDate``, ``StartDate``).

ClinicalTrials.gov publishes no rate limit; the default here is 10 requests/s per process
(``requests_per_second`` changes it)."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from functools import partial
from typing import Any

from deepretrieval.retrievers.base import DateRange
from deepretrieval.retrievers.web.search_api import (
    Fetched,
    InvalidAnswer,
    SearchApiRetriever,
    SearchApiSettings,
    answer_count,
    answer_ids,
    json_body,
    parse_date,
    query_words,
)

DEFAULT_URL = "https://clinicaltrials.gov/api/v2"
DEFAULT_RATE = 10.0  # no published limit; polite default
MAX_PAGE_SIZE = 1000  # the API's largest page
NCT_ID = re.compile(r"NCT[0-9]{8}")
# Essie operators and area names: AREA[Condition], RANGE[MIN,MAX], SEARCH[Location](...), ...
_SYNTAX = re.compile(r"\b(?:AREA|RANGE|SEARCH|EXPANSION|COVERAGE|MISSING|TILT)\[[^\]]*\]|\b(?:MISSING)\b")


@dataclass(frozen=True)
class CTGovSettings(SearchApiSettings):
    """ClinicalTrials.gov client settings."""

    engine_url: str = DEFAULT_URL  # API root; the client appends /studies
    page_size: int = MAX_PAGE_SIZE
    date_field: str = "StudyFirstPostDate"  # the study date a DateRange limits

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(
                f"page_size must be 1..{MAX_PAGE_SIZE} (the API's largest page), got {self.page_size}"
            )
        if not re.fullmatch(r"[A-Za-z]+", self.date_field):
            raise ValueError(f"date_field must be a ClinicalTrials.gov field name, got {self.date_field!r}")


def _iso(text: str, *, end: bool) -> str:
    """``YYYY[/MM[/DD]]`` -> ``YYYY-MM-DD``; a partial end date means its last day."""
    year, month, day = parse_date(text)
    month = month or (12 if end else 1)
    day = day or (calendar.monthrange(year, month)[1] if end else 1)
    return f"{year:04d}-{month:02d}-{day:02d}"


class CTGovRetriever(SearchApiRetriever):
    """``search(queries, k, dates=...)`` over ``/studies``: NCT ids in the API's order, ``total`` = the
    API's ``totalCount``."""

    kind = "ctgov"
    id_pattern = NCT_ID

    def __init__(self, settings: CTGovSettings | None = None, **options: object):
        """``settings``, or the same as keyword options (how the retriever registry opens engines)."""
        if settings is not None and options:
            raise ValueError("give ClinicalTrials.gov settings or keyword options, not both")
        settings = settings or CTGovSettings.from_options(options)
        super().__init__(
            settings, secret=None, requests_per_second=settings.requests_per_second or DEFAULT_RATE
        )
        self.settings: CTGovSettings = settings
        self.url = settings.engine_url.rstrip("/") + "/studies"
        self.fingerprint = f"ctgov:{self.url}:v2:fields=NCTId;date_field={settings.date_field}"

    @staticmethod
    def analyze(text: str) -> list[str]:
        """Lower-cased words of a query without AND/OR/NOT and without Essie operators."""
        return query_words(text, _SYNTAX)

    def _params(self, query: str, k: int, dates: DateRange | None) -> dict[str, str]:
        params = {
            "query.term": query,
            "fields": "NCTId",
            "pageSize": str(min(k, self.settings.page_size)),
            "countTotal": "true",
        }
        if dates is not None:
            start = _iso(dates.start, end=False) if dates.start else "MIN"
            end = _iso(dates.end, end=True) if dates.end else "MAX"
            params["filter.advanced"] = f"AREA[{self.settings.date_field}]RANGE[{start},{end}]"
        return params

    def _cache_request(self, query: str, k: int, dates: DateRange | None) -> dict[str, Any]:
        return {"url": self.url, "params": self._params(query, k, dates), "depth": k}

    def _fetch(self, query: str, k: int, dates: DateRange | None) -> Fetched:
        params = self._params(query, k, dates)
        ids: list[str] = []
        total: int | None = None
        token: str | None = None
        while len(ids) < k:
            page_params = params if token is None else {**params, "pageToken": token}
            read = partial(self._parse, page_size=int(params["pageSize"]), first_page=token is None)
            page_ids, count, token = self._call("GET", self.url, page_params, read)
            total = count if total is None else total
            ids.extend(page_ids)
            if not token:  # read_studies refuses a token after an empty page: this loop always ends
                break
        assert total is not None  # read_studies refuses a first page without totalCount
        return Fetched(list(dict.fromkeys(ids))[:k], total)

    def _parse(
        self, response: Any, *, page_size: int, first_page: bool
    ) -> tuple[list[str], int | None, str | None]:
        return read_studies(json_body(response, self.kind), page_size, first_page=first_page)


def read_studies(body: Any, page_size: int, *, first_page: bool) -> tuple[list[str], int | None, str | None]:
    """A /studies page asked for with ``pageSize=page_size&countTotal=true`` -> (NCT ids, totalCount on
    the first page else None, nextPageToken or None).

    An answer whose content cannot be right raises :class:`InvalidAnswer` (retried). The rules, which
    the recorded real pages keep (``tests/test_ctgov_client.py``): every study has an NCT id, none twice,
    at most ``page_size`` of them; the first page carries ``totalCount`` (asked for), a non-negative
    integer: no smaller than the page, equal to it when no ``nextPageToken`` follows, larger when one
    does; a ``nextPageToken`` is a non-empty string and never follows an empty page."""
    try:
        studies = body["studies"]
        if not isinstance(studies, list):
            raise TypeError
        found = [s["protocolSection"]["identificationModule"]["nctId"] for s in studies]
    except (KeyError, TypeError):
        raise InvalidAnswer(
            "/studies answered without studies[].protocolSection.identificationModule.nctId"
        ) from None
    try:
        ids = answer_ids(found, "studies", NCT_ID, "an NCT id")
        token = body.get("nextPageToken")
        if token is not None and (not isinstance(token, str) or not token):
            raise InvalidAnswer(f"nextPageToken {token!r:.40} is not a non-empty string")
        total = _check_page(ids, body.get("totalCount"), token, page_size, first_page)
    except InvalidAnswer as err:
        raise InvalidAnswer(f"/studies answer is invalid: {err}") from None
    return ids, total, token


def _check_page(
    ids: list[str], count: Any, token: str | None, page_size: int, first_page: bool
) -> int | None:
    """The page's totalCount (None after the first page), checked against its studies and token."""
    n = len(ids)
    if n > page_size:
        raise InvalidAnswer(f"{n} studies on a page of pageSize {page_size}")
    if token is not None and not n:
        raise InvalidAnswer("a page of no studies, yet a nextPageToken")
    if not first_page:
        return None
    if count is None:
        raise InvalidAnswer("no totalCount on the first page, though countTotal=true was asked")
    total = answer_count(count, "totalCount")
    if n > total:
        raise InvalidAnswer(f"{n} studies on a page, more than totalCount {total}")
    if token is None and n < total:
        raise InvalidAnswer(f"totalCount {total} but {n} studies and no nextPageToken")
    if token is not None and n == total:
        raise InvalidAnswer(f"totalCount {total} and all {n} studies on the first page, yet a nextPageToken")
    return total
