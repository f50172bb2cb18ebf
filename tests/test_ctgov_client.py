"""The ClinicalTrials.gov v2 client against the stand-in /studies server over loopback: token paging,
date filter, encoding, faults, cache, offline mode, configurable rate."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from _literature_helpers import N_DOCS, TOPICS, nct, write_corpus
from deepretrieval.retrievers.base import DateRange
from deepretrieval.retrievers.web.client import RetryableError
from deepretrieval.retrievers.web.ctgov import CTGovRetriever, CTGovSettings, read_studies
from deepretrieval.retrievers.web.search_api import OFFLINE_MISS
from standin import Fault, StandIn, peak_rate


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("ctgov-corpus"), id_of=nct)


@pytest.fixture
def standin(corpus: Path):
    with StandIn("ctgov", corpus) as server:
        yield server


@pytest.fixture(autouse=True)
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPRETRIEVAL_OFFLINE", raising=False)


def settings_for(standin: StandIn, tmp_path: Path, **overrides) -> CTGovSettings:
    fast = {
        "backoff_s": 0.05,
        "backoff_cap_s": 0.2,
        "timeout_s": 2.0,
        "attempts": 4,
        "requests_per_second": 100.0,
    }
    return CTGovSettings(
        engine_url=standin.engine_url, cache_dir=str(tmp_path / "cache"), **{**fast, **overrides}
    )


def test_token_paging_returns_the_pages_in_order(standin: StandIn, tmp_path: Path) -> None:
    with CTGovRetriever(settings_for(standin, tmp_path, page_size=7)) as client:
        ranking = client.search(["study"], 20)[0]
        asthma = client.search(["asthma"], 100)[0]
    assert ranking.doc_ids == [nct(i) for i in range(20)] and ranking.total == N_DOCS
    assert (
        asthma.doc_ids == [nct(i) for i in range(N_DOCS) if TOPICS[i % 3] == "asthma"] and asthma.total == 20
    )
    first = [e["params"] for e in standin.requests[:3]]
    assert [p["pageSize"] for p in first] == ["7"] * 3 and "pageToken" not in first[0]
    assert first[1]["pageToken"] != first[2]["pageToken"]
    assert {(p["fields"], p["countTotal"]) for p in first} == {("NCTId", "true")}
    assert len(standin.requests) == 3 + 3  # 20 asthma trials in pages of 7


def test_date_limits_use_the_advanced_filter(standin: StandIn, tmp_path: Path) -> None:
    dates = [DateRange(end="2019/02/13"), DateRange(start="2015"), DateRange("2016/02", "2016/02")]
    with CTGovRetriever(settings_for(standin, tmp_path)) as client:
        client.search(["asthma"] * 3, 5, dates=dates)
    with CTGovRetriever(settings_for(standin, tmp_path, date_field="StudyFirstSubmitDate")) as client:
        client.search(["asthma"], 5, dates=[DateRange(end="2019")])
    assert {e["params"]["filter.advanced"] for e in standin.requests} == {
        "AREA[StudyFirstPostDate]RANGE[MIN,2019-02-13]",
        "AREA[StudyFirstPostDate]RANGE[2015-01-01,MAX]",
        "AREA[StudyFirstPostDate]RANGE[2016-02-01,2016-02-29]",
        "AREA[StudyFirstSubmitDate]RANGE[MIN,2019-12-31]",
    }


def test_essie_queries_reach_the_server_unchanged(standin: StandIn, tmp_path: Path) -> None:
    queries = [
        '(AREA[Condition]"asthma" OR AREA[BriefTitle](study)) AND NOT melasma',
        "asthma & w5x #2 + 50% = ?",
        "naïve ☃ – β-agonist",
    ]
    with CTGovRetriever(settings_for(standin, tmp_path)) as client:
        rankings = client.search(queries, 5)
    assert not any(r.failed for r in rankings)
    assert sorted(e["params"]["query.term"] for e in standin.requests) == sorted(queries)


@pytest.mark.parametrize(
    "fault",
    [
        Fault("429", retry_after=0.2),
        Fault("500"),
        Fault("drop"),
        Fault("malformed"),
        Fault("slow", delay_s=2.5),
    ],
    ids=lambda f: f.kind + ("+Retry-After" if f.retry_after else ""),
)
def test_faults_are_retried_or_reported(standin: StandIn, tmp_path: Path, fault: Fault) -> None:
    standin.set_faults([replace(fault, first=1), replace(fault, match="melasma")])
    with CTGovRetriever(settings_for(standin, tmp_path, timeout_s=0.5, attempts=3)) as client:
        asthma, melasma = client.search(["asthma", "melasma"], 5)
    assert not asthma.failed and asthma.doc_ids == [nct(i) for i in range(2, 15, 3)]
    assert melasma.failed and melasma.doc_ids == [] and "gave up after 3 attempts" in melasma.error


def test_a_refused_request_fails_at_once(standin: StandIn, tmp_path: Path) -> None:
    wrong = replace(settings_for(standin, tmp_path), engine_url=standin.url + "/api/v1")
    with CTGovRetriever(wrong) as client:
        ranking = client.search(["asthma"], 5)[0]
    assert ranking.failed and "HTTP 404" in ranking.error and len(standin.requests) == 1


def test_cache_and_offline_mode(standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = ["asthma", "study", "asthma", ""]
    with CTGovRetriever(settings_for(standin, tmp_path)) as client:
        first = client.search(batch, 30)
    assert len(standin.requests) == 2 and first[3].doc_ids == [] and first[3].total == 0
    monkeypatch.setenv("DEEPRETRIEVAL_OFFLINE", "1")
    with CTGovRetriever(settings_for(standin, tmp_path)) as client:
        again = client.search(batch, 30)
        missing = client.search(["melasma"], 30)[0]
    assert [r.doc_ids for r in again] == [r.doc_ids for r in first] and again[1].total == N_DOCS
    assert missing.error == OFFLINE_MISS and len(standin.requests) == 2


def test_the_rate_is_configurable(standin: StandIn, tmp_path: Path) -> None:
    with CTGovRetriever(settings_for(standin, tmp_path, requests_per_second=4)) as client:
        rankings = client.search([f"w{i}x" for i in range(12)], 5)
    assert [r.doc_ids for r in rankings] == [[nct(i)] for i in range(12)]
    assert peak_rate(e["t"] for e in standin.requests) <= 4


def test_settings_and_contract(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="page_size must be 1..1000"):
        CTGovSettings(page_size=5000)
    with pytest.raises(ValueError, match="unknown CTGovSettings key"):
        CTGovSettings.from_options({"pageSize": 10})
    with pytest.raises(ValueError, match="date_field"):
        CTGovSettings(date_field="Study First]")
    with CTGovRetriever(CTGovSettings(cache_dir=str(tmp_path))) as client:
        assert client.kind == "ctgov"
        assert (
            client.fingerprint
            == "ctgov:https://clinicaltrials.gov/api/v2/studies:v2:fields=NCTId;date_field=StudyFirstPostDate"
        )
        with pytest.raises(NotImplementedError):
            client.text("NCT00000001")
    words = CTGovRetriever.analyze(
        'AREA[Condition]"Asthma" AND AREA[StartDate]RANGE[2015-01-01,MAX] OR inhaler'
    )
    assert words == ["asthma", "inhaler"]


def _page(ids: list[object], **fields: object) -> str:
    """A /studies page in the API's shape (as recorded) holding ``ids``, with ``fields`` beside them."""
    studies = [{"protocolSection": {"identificationModule": {"nctId": i}}} for i in ids]
    return json.dumps({"studies": studies, **fields})


INVALID = {
    "ids that are not NCT ids": (_page([None, "NCT123"], totalCount=2), "studies[0] is None, not an NCT id"),
    "a negative totalCount": (_page([], totalCount=-3), "totalCount -3 is not a non-negative integer"),
    "a totalCount with too few studies": (
        _page([nct(2), nct(5)], totalCount=500),
        "totalCount 500 but 2 studies and no nextPageToken",
    ),
    "studies beyond the totalCount": (
        _page([nct(i) for i in range(5)], totalCount=0),
        "5 studies on a page, more than totalCount 0",
    ),
    "more studies than asked for": (
        _page([nct(i) for i in range(6)], totalCount=20),
        "6 studies on a page of pageSize 5",
    ),
    "a repeated id": (_page([nct(2), nct(2)], totalCount=2), f"studies repeats {nct(2)}"),
    "no totalCount": (_page([nct(2)]), "no totalCount on the first page, though countTotal=true was asked"),
    "a token with nothing left": (
        _page([nct(2)], totalCount=1, nextPageToken="abc"),
        "totalCount 1 and all 1 studies on the first page, yet a nextPageToken",
    ),
}


@pytest.mark.parametrize("name", INVALID)
def test_inconsistent_pages_are_retried_then_failures(standin: StandIn, tmp_path: Path, name: str) -> None:
    body, reason = INVALID[name]
    standin.set_faults([Fault("body", match="asthma", body=body)])
    with CTGovRetriever(settings_for(standin, tmp_path, attempts=3)) as client:
        asthma, melasma = client.search(["asthma", "melasma"], 5)
        assert asthma.failed and asthma.doc_ids == [] and asthma.total is None
        assert asthma.error == f"ctgov: /studies answer is invalid: {reason}; gave up after 3 attempts"
        assert not melasma.failed and melasma.doc_ids == [nct(i) for i in range(1, 15, 3)]
        assert [e["params"]["query.term"] for e in standin.requests].count("asthma") == 3
        standin.set_faults([])
        again = client.search(["asthma"], 5)[0]  # not cached: asked again
    assert again.doc_ids == [nct(i) for i in range(2, 15, 3)] and again.total == 20


def test_every_recorded_search_page_is_accepted(shared_data: Path) -> None:
    """The rules hold for the real /studies pages recorded (7 search pages, first and later ones)."""
    folder = shared_data / "literature" / "api-samples" / "ctgov-v2"
    if not folder.is_dir():
        pytest.skip(f"recorded ClinicalTrials.gov pages not found at {folder}")
    checked = 0
    for line in (folder / "requests.jsonl").read_text().splitlines():
        row = json.loads(line)
        if not row["file"].startswith("pages/search_"):
            continue
        query = dict(parse_qsl(urlsplit(row["request"]).query))
        body = json.loads((folder / row["file"]).read_bytes())
        ids, total, token = read_studies(body, int(query["pageSize"]), first_page="pageToken" not in query)
        assert len(ids) == row["n_studies"] and total == row["totalCount"]
        assert (token is not None) == row["has_nextPageToken"]
        checked += 1
    assert checked == 7
    with pytest.raises(RetryableError, match="a page of no studies, yet a nextPageToken"):
        read_studies({"studies": [], "nextPageToken": "x"}, 5, first_page=False)
