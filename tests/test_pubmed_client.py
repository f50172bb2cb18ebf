"""The PubMed client against the stand-in esearch server over loopback: rate, key secrecy, cache,
faults, encoding, dates, paging, offline mode."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import diskcache
import pytest

from _literature_helpers import N_DOCS, TOPICS, files_containing, pmid, write_corpus
from deepretrieval.retrievers.base import DateRange
from deepretrieval.retrievers.web.client import RetryableError
from deepretrieval.retrievers.web.pubmed import PubMedRetriever, PubMedSettings, read_esearch
from deepretrieval.retrievers.web.search_api import OFFLINE_MISS, ResponseCache
from standin import Fault, StandIn, peak_rate


def expected(topic: str) -> list[str]:
    """The stand-in's answer for a topic word: newest (highest) PMID first."""
    return [pmid(i) for i in reversed(range(N_DOCS)) if TOPICS[i % 3] == topic]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("pubmed-corpus"))


@pytest.fixture
def standin(corpus: Path):
    """A stand-in without NCBI's rate limit, for tests of everything but the rate (clients run fast)."""
    with StandIn("pubmed", corpus, limits=None) as server:
        yield server


@pytest.fixture
def ncbi(corpus: Path):
    """A stand-in answering 429 above NCBI's limits, as NCBI does."""
    with StandIn("pubmed", corpus) as server:
        yield server


@pytest.fixture(autouse=True)
def no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NCBI_API_KEY", "NCBI_EMAIL", "DEEPRETRIEVAL_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


def settings_for(standin: StandIn, tmp_path: Path, **overrides) -> PubMedSettings:
    fast = {
        "backoff_s": 0.05,
        "backoff_cap_s": 0.2,
        "timeout_s": 2.0,
        "attempts": 4,
        "requests_per_second": 100.0,
    }
    return PubMedSettings(
        engine_url=standin.engine_url, cache_dir=str(tmp_path / "cache"), **{**fast, **overrides}
    )


def test_rate_without_key_stays_under_three_per_second(ncbi: StandIn, tmp_path: Path) -> None:
    queries = [f"w{i}x" for i in range(30)]
    with PubMedRetriever(settings_for(ncbi, tmp_path, requests_per_second=None)) as client:
        rankings = client.search(queries, 10)
    assert [r.doc_ids for r in rankings] == [[pmid(i)] for i in range(30)]
    log = ncbi.requests
    assert len(log) == 30 and {e["status"] for e in log} == {200}
    assert peak_rate(e["t"] for e in log) <= 3
    assert not any(e["key_sent"] for e in log)
    assert {e["params"]["tool"] for e in log} == {"deepretrieval"}


def test_rate_with_key_stays_under_ten_and_the_key_never_leaks(
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    secret = f"key-{uuid.uuid4().hex}"
    monkeypatch.setenv("NCBI_API_KEY", secret)
    monkeypatch.setenv("NCBI_EMAIL", "dev@example.org")
    caplog.set_level(logging.DEBUG)
    # retries (logged) and one query that fails for good (its message goes into the ranking)
    faults = [Fault("429", first=2), Fault("500", match="w7x")]
    queries = [f"w{i}x" for i in range(40)]
    ncbi = StandIn("pubmed", corpus, faults=faults, log_path=tmp_path / "server.jsonl")
    with ncbi, PubMedRetriever(settings_for(ncbi, tmp_path, requests_per_second=None)) as client:
        rankings = client.search(queries, 10)
        shown = [repr(client), client.fingerprint, repr(client.settings), str(client.stats)]
    failed = [r for r in rankings if r.failed]
    assert len(failed) == 1 and rankings[7].failed and "HTTP 500" in rankings[7].error
    assert [r.doc_ids for i, r in enumerate(rankings) if i != 7] == [[pmid(i)] for i in range(40) if i != 7]
    assert {e["key_sha256"] for e in ncbi.requests} == {hashlib.sha256(secret.encode()).hexdigest()}
    assert {e["params"]["email"] for e in ncbi.requests} == {"dev@example.org"}
    assert peak_rate(e["t"] for e in ncbi.requests) <= 10
    assert not [e for e in ncbi.requests if e["status"] == 429 and not e["fault"]]  # never over NCBI's limit

    out, err = capfd.readouterr()
    assert "retry" in caplog.text  # the log was really captured
    for text in [out, err, caplog.text, *shown, *(r.error for r in failed)]:
        assert secret not in text
    assert (tmp_path / "cache").is_dir() and (tmp_path / "server.jsonl").is_file()
    assert files_containing(tmp_path, secret) == []


def test_a_batch_goes_out_in_parallel(
    standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NCBI_API_KEY", "parallel-key")
    standin.set_faults([Fault("slow", delay_s=0.4)])
    with PubMedRetriever(settings_for(standin, tmp_path)) as client:
        rankings = client.search([f"w{i}x" for i in range(20)], 5)
    assert not any(r.failed for r in rankings)
    assert standin.max_in_flight >= 2


def test_two_clients_share_one_rate_limit(ncbi: StandIn, tmp_path: Path) -> None:
    clients = [
        PubMedRetriever(settings_for(ncbi, tmp_path / str(n), requests_per_second=None)) for n in range(2)
    ]
    results: dict[int, list] = {}

    def run(n: int) -> None:
        results[n] = clients[n].search([f"w{i}x" for i in range(n * 8, n * 8 + 8)], 5)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert [r.doc_ids for n in range(2) for r in results[n]] == [[pmid(i)] for i in range(16)]
    assert len(ncbi.requests) == 16 and peak_rate(e["t"] for e in ncbi.requests) <= 3


def test_a_second_batch_makes_no_request(standin: StandIn, tmp_path: Path) -> None:
    batch = ["asthma", "melasma", "asthma", "w3x", "melasma", "asthma study"]
    with PubMedRetriever(settings_for(standin, tmp_path)) as client:
        first = client.search(batch, 50)
        assert len(standin.requests) == 4  # duplicates are searched once
        again = client.search(batch, 50)
        assert len(standin.requests) == 4 and client.stats.cache_hits == 4
    with PubMedRetriever(settings_for(standin, tmp_path)) as reopened:  # persistent, not in memory
        third = reopened.search(batch, 50)
        assert len(standin.requests) == 4
        reopened.search(["asthma"], 5)  # a different depth is a different request
        assert len(standin.requests) == 5
    assert [r.doc_ids for r in first] == [r.doc_ids for r in again] == [r.doc_ids for r in third]
    assert first[0].doc_ids == expected("asthma") and first[0].total == 20 and third[0].total == 20
    assert list(first[0].scores) == sorted(first[0].scores, reverse=True)


FAULTS = {
    "429 + Retry-After": Fault("429", retry_after=0.2),
    "429": Fault("429"),
    "500": Fault("500"),
    "malformed JSON": Fault("malformed"),
    "dropped connection": Fault("drop"),
    "slow": Fault("slow", delay_s=2.5),
}


@pytest.mark.parametrize("name", FAULTS)
def test_transient_faults_are_retried(standin: StandIn, tmp_path: Path, name: str) -> None:
    standin.set_faults([replace(FAULTS[name], first=2)])
    with PubMedRetriever(settings_for(standin, tmp_path, timeout_s=0.5)) as client:
        ranking = client.search(["asthma"], 50)[0]
        assert client.stats.retries == 2
    assert not ranking.failed and ranking.doc_ids == expected("asthma")
    assert [e["fault"] for e in standin.requests] == [FAULTS[name].kind] * 2 + [None]


@pytest.mark.parametrize("name", FAULTS)
def test_persistent_faults_become_failures_that_are_not_cached(
    standin: StandIn, tmp_path: Path, name: str
) -> None:
    standin.set_faults([replace(FAULTS[name], match="asthma")])
    settings = settings_for(standin, tmp_path, timeout_s=0.5, attempts=2)
    with PubMedRetriever(settings) as client:
        rankings = client.search(["asthma", "melasma"], 50)
        assert rankings[0].failed and rankings[0].doc_ids == [] and "gave up" in rankings[0].error
        assert not rankings[1].failed and rankings[1].doc_ids == expected("melasma")
        assert len(standin.requests) == 3
        client.search(["asthma", "melasma"], 50)  # the failure is asked again, the success is cached
        assert [e["params"]["term"] for e in standin.requests[3:]] == ["asthma", "asthma"]


def test_retry_after_is_honoured(standin: StandIn, tmp_path: Path) -> None:
    standin.set_faults([Fault("429", first=1, retry_after=1.0)])
    with PubMedRetriever(settings_for(standin, tmp_path)) as client:
        assert client.search(["melasma"], 5)[0].doc_ids == expected("melasma")[:5]
    refused, accepted = standin.requests
    assert accepted["t"] - refused["t"] >= 1.0


def test_a_refused_request_fails_at_once(standin: StandIn, tmp_path: Path) -> None:
    wrong = replace(settings_for(standin, tmp_path), engine_url=standin.url + "/eutils")
    with PubMedRetriever(wrong) as client:
        ranking = client.search(["asthma"], 5)[0]
    assert ranking.failed and "HTTP 404" in ranking.error and len(standin.requests) == 1


BOOLEAN_QUERIES = [
    '("asthma"[MeSH Terms] OR asthma[tiab]) AND study',
    "#1 AND #2 & w3x",
    "asthma + study = 100% (w4x)",
    "naïve café – β-lactam ≥ 2 ☃",
    "aspergill*[tiab] NOT rat?",
    "line one\nline two\ttab",
]


def test_boolean_queries_reach_the_server_unchanged(standin: StandIn, tmp_path: Path) -> None:
    with PubMedRetriever(settings_for(standin, tmp_path, cache=False)) as client:
        rankings = client.search(BOOLEAN_QUERIES, 5)
    assert not any(r.failed for r in rankings)
    assert sorted(e["params"]["term"] for e in standin.requests) == sorted(BOOLEAN_QUERIES)
    assert rankings[1].doc_ids == [pmid(3)]  # "#1", "#2" are phrases not found; "&" is text, not a parameter


def test_date_limits_reach_the_server(standin: StandIn, tmp_path: Path) -> None:
    dates = [DateRange(end="2010/07/07"), DateRange(start="2001", end="2002/06"), None, DateRange()]
    with PubMedRetriever(settings_for(standin, tmp_path)) as client:
        client.search(["asthma"] * 4, 5, dates=dates)
        sent = {(e["params"].get("mindate"), e["params"].get("maxdate")) for e in standin.requests}
        assert {e["params"].get("datetype") for e in standin.requests} == {"pdat", None}
        assert sent == {("1800/01/01", "2010/07/07"), ("2001", "2002/06"), (None, None)}
        assert len(standin.requests) == 3  # no limit and an empty range are the same search
        with pytest.raises(ValueError, match="is not YYYY, YYYY/MM or YYYY/MM/DD"):
            client.search(["asthma"], 5, dates=[DateRange(end="2010-07-07")])
        with pytest.raises(ValueError, match="not a calendar date"):
            client.search(["asthma"], 5, dates=[DateRange(end="2010/02/30")])
        with pytest.raises(ValueError, match="starts after it ends"):
            client.search(["asthma"], 5, dates=[DateRange("2011/01/01", "2010/12/31")])
        with pytest.raises(ValueError, match="one per query"):
            client.search(["asthma", "melasma"], 5, dates=[None])


def test_paging_returns_the_pages_in_order(standin: StandIn, tmp_path: Path) -> None:
    with PubMedRetriever(settings_for(standin, tmp_path, page_size=7)) as client:
        ranking = client.search(["study"], 20)[0]
        everything = client.search(["study"], 100)[0]
    everyone = [pmid(i) for i in reversed(range(N_DOCS))]
    assert ranking.doc_ids == everyone[:20] and ranking.total == 60
    assert everything.doc_ids == everyone and everything.total == 60
    pages = [(e["params"]["retstart"], e["params"]["retmax"]) for e in standin.requests]
    assert pages[:3] == [("0", "7"), ("7", "7"), ("14", "6")]
    assert len(pages) == 3 + 9  # the deep search stops at the count: 60 ids in pages of 7


def test_offline_mode_reads_the_cache_only(
    standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PubMedRetriever(settings_for(standin, tmp_path, offline=True)) as client:
        missing = client.search(["asthma"], 5)[0]
    assert missing.failed and missing.error == OFFLINE_MISS and standin.requests == []
    with PubMedRetriever(settings_for(standin, tmp_path)) as client:
        online = client.search(["asthma"], 5)[0]
    monkeypatch.setenv("DEEPRETRIEVAL_OFFLINE", "1")
    with PubMedRetriever(settings_for(standin, tmp_path)) as client:
        cached, other = client.search(["asthma", "melasma"], 5)
    assert cached.doc_ids == online.doc_ids and cached.total == 20
    assert other.error == OFFLINE_MISS and len(standin.requests) == 1


def test_phrases_not_found_and_empty_queries_are_results(standin: StandIn, tmp_path: Path) -> None:
    with PubMedRetriever(settings_for(standin, tmp_path)) as client:
        partial, unknown, empty, blank = client.search(["asthma zzqq", "zzqq", "", "  \n"], 50)
    assert not partial.failed and partial.doc_ids == expected("asthma")  # NCBI searches without zzqq
    assert not unknown.failed and unknown.doc_ids == [] and unknown.total == 0
    assert empty.doc_ids == blank.doc_ids == [] and empty.total == 0 and not empty.failed
    assert sorted(e["params"]["term"] for e in standin.requests) == ["asthma zzqq", "zzqq"]


def test_settings_and_contract(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown PubMedSettings key.*'retmax'.*valid keys: engine_url"):
        PubMedSettings.from_options({"retmax": 100})
    assert PubMedSettings.from_options({"sort": "relevance"}).sort == "relevance"
    with pytest.raises(ValueError, match="PubMedSettings.page_size must be int, got '10'"):
        PubMedSettings.from_options({"page_size": "10"})
    with pytest.raises(ValueError, match=re.escape("requests_per_second must be float | None, got True")):
        PubMedSettings(requests_per_second=True)
    with pytest.raises(ValueError, match="page_size must be 1..10000"):
        PubMedSettings(page_size=20_000)
    with pytest.raises(ValueError, match="engine_url must be an http"):
        PubMedSettings(engine_url="eutils.ncbi.nlm.nih.gov")
    with pytest.raises(ValueError, match="offline mode answers from the cache, but cache=False"):
        PubMedRetriever(PubMedSettings(cache=False, offline=True))
    base = PubMedSettings(cache_dir=str(tmp_path))
    with (
        PubMedRetriever(base, api_key="secret-1") as a,
        PubMedRetriever(replace(base, sort="relevance")) as b,
    ):
        assert "secret-1" not in a.fingerprint and a.kind == "pubmed"
        assert a.fingerprint.startswith("pubmed:https://eutils.ncbi.nlm.nih.gov/entrez/eutils/esearch.fcgi")
        assert a.fingerprint != b.fingerprint
        with pytest.raises(ValueError, match="first 9999 ids"):
            a.search(["asthma"], 10_000)
        with pytest.raises(ValueError, match="positive integer"):
            a.search(["asthma"], 0)
        with pytest.raises(NotImplementedError, match="ids only"):
            a.text("123")
    words = PubMedRetriever.analyze('("Aspergillus"[MeSH] OR aspergill*[tiab]) AND Galactomannan NOT rat')
    assert words == ["aspergillus", "aspergill", "galactomannan", "rat"]


_WRITER = """
import sys
from deepretrieval.retrievers.web.search_api import Fetched, ResponseCache
cache = ResponseCache(sys.argv[1])
ids = [str(n) for n in range(3000)]
i = 0
while True:
    request = {"url": "u", "params": {"term": f"q{i}"}, "depth": 3000}
    cache.put(ResponseCache.key(request), Fetched(ids, i), request)
    i += 1
    if i == 20:
        print("written", flush=True)
"""


def test_the_cache_survives_a_kill_mid_write(tmp_path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path / "cache")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert writer.stdout.readline().strip() == "written"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    with diskcache.Cache(str(tmp_path / "cache")) as store:
        keys = list(store.iterkeys())
    cache = ResponseCache(tmp_path / "cache")
    assert len(keys) >= 20
    entries = [cache.get(key) for key in keys]
    assert all(e is not None and len(e.ids) == 3000 for e in entries)
    assert sorted(e.total for e in entries) == list(range(len(keys)))
    cache.close()


def _esearch(**result: object) -> str:
    """An esearch JSON body in NCBI's shape (as recorded), with ``result`` as its esearchresult."""
    return json.dumps({"header": {"type": "esearch", "version": "0.3"}, "esearchresult": result})


INVALID = {
    "negative count": (
        _esearch(count="-5", retmax="0", retstart="0", idlist=[]),
        "count '-5' is not a non-negative integer",
    ),
    "ids that are not PMIDs": (
        _esearch(count="2", retmax="2", retstart="0", idlist=[None, {"a": 1}]),
        "idlist[0] is None, not a PMID",
    ),
    "a count with too few ids": (
        _esearch(count="500", retmax="2", retstart="0", idlist=["20002", "20005"]),
        "count 500 from retstart 0 with retmax 50 means 50 ids, the idlist has 2",
    ),
    "ids without a count": (
        _esearch(count="0", retmax="5", retstart="0", idlist=[pmid(i) for i in range(5)]),
        "count 0 from retstart 0 with retmax 50 means 0 ids, the idlist has 5",
    ),
    "a repeated id": (
        _esearch(count="2", retmax="2", retstart="0", idlist=["20002", "20002"]),
        "idlist repeats 20002",
    ),
    "another retstart": (
        _esearch(count="20", retmax="20", retstart="20", idlist=expected("asthma")),
        "retstart '20' answers a request for retstart 0",
    ),
    "a count that is not a number": (
        _esearch(count=True, retmax="0", retstart="0", idlist=[]),
        "count True is not a non-negative integer",
    ),
}


@pytest.mark.parametrize("name", INVALID)
def test_inconsistent_answers_are_retried_then_failures(standin: StandIn, tmp_path: Path, name: str) -> None:
    body, reason = INVALID[name]
    standin.set_faults([Fault("body", match="asthma", body=body)])
    with PubMedRetriever(settings_for(standin, tmp_path, attempts=3)) as client:
        asthma, melasma = client.search(["asthma", "melasma"], 50)
        assert asthma.failed and asthma.doc_ids == [] and asthma.total is None
        assert f"pubmed: esearch answer is invalid: {reason}; gave up after 3 attempts" == asthma.error
        assert not melasma.failed and melasma.doc_ids == expected("melasma")
        assert [e["params"]["term"] for e in standin.requests].count("asthma") == 3  # retried like a 5xx
        standin.set_faults([])
        again = client.search(["asthma"], 50)[0]  # the failure was not cached: asked again, now answered
    assert again.doc_ids == expected("asthma") and again.total == 20


def test_one_inconsistent_answer_is_retried(standin: StandIn, tmp_path: Path) -> None:
    standin.set_faults([Fault("body", first=1, body=INVALID["a count with too few ids"][0])])
    with PubMedRetriever(settings_for(standin, tmp_path)) as client:
        ranking = client.search(["asthma"], 50)[0]
        assert client.stats.retries == 1 and client.stats.failures == 0
    assert ranking.doc_ids == expected("asthma") and ranking.total == 20


def test_every_recorded_esearch_body_is_accepted(shared_data: Path) -> None:
    """The rules hold for every real JSON answer recorded (1,005 GeneGPT + 3 biomcp bodies): an id list as
    long as the count, retstart and retmax allow."""
    folder = shared_data / "literature" / "api-samples" / "pubmed-esearch"
    if not folder.is_dir():
        pytest.skip(f"recorded esearch bodies not found at {folder}")
    rows = [
        json.loads(line)
        for name in ("genegpt_esearch.jsonl", "biomcp_pubmed_esearch.jsonl")
        for line in (folder / name).read_text().splitlines()
    ]
    checked = 0
    for row in rows:
        if row.get("format") == "xml":
            continue
        query = dict(parse_qsl(urlsplit(row["url"]).query))
        retstart, retmax = int(query.get("retstart", 0)), int(query.get("retmax", 20))
        ids, count = read_esearch(json.loads(row["body"]), retstart, retmax)
        assert len(ids) == min(retmax, max(0, count - retstart))
        checked += 1
    assert checked == 1008
    errors = folder / "errors"
    ids, count = read_esearch(json.loads((errors / "esearch_phrase_not_found.json").read_bytes()), 0, 20)
    assert (ids, count) == ([], 0)
    with pytest.raises(RetryableError, match="Empty Term in the request"):
        read_esearch(json.loads((errors / "esearch_empty_term.json").read_bytes()), 0, 20)
    with pytest.raises(RetryableError, match="esearch answered without an esearchresult: API rate limit"):
        read_esearch(json.loads((errors / "http429_rate_limit_documented.json").read_bytes()), 0, 20)


def test_cached_answers_that_could_not_be_answers_are_fetched_again(standin: StandIn, tmp_path: Path) -> None:
    """A cache written before answers were checked may hold what a bad answer left: such an entry is
    dropped when read, and the query asked again."""
    batch = ["asthma", "melasma", "zzqq"]
    with PubMedRetriever(settings_for(standin, tmp_path)) as client:
        client.search(batch, 50)
    damage = {"asthma": (["None", "{'a': 1}"], 2), "melasma": (expected("melasma"), -5)}
    with diskcache.Cache(str(tmp_path / "cache")) as store:
        for key in list(store.iterkeys()):
            entry = json.loads(store[key])
            entry["ids"], entry["total"] = damage.get(entry["request"]["params"]["term"], (entry["ids"], 0))
            store[key] = json.dumps(entry)
    with PubMedRetriever(settings_for(standin, tmp_path)) as client:
        asthma, melasma, unknown = client.search(batch, 50)
        assert client.stats.cache_hits == 1  # the empty result of zzqq is a possible answer: kept
    assert asthma.doc_ids == expected("asthma") and (asthma.total, melasma.total) == (20, 20)
    assert unknown.doc_ids == [] and len(standin.requests) == 3 + 2
