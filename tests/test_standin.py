"""The stand-in PubMed / ClinicalTrials.gov servers: recorded shapes, NCBI's rate limit, faults, the log."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from _literature_helpers import nct, write_corpus
from standin import Collection, Fault, StandIn, peak_rate


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("standin-corpus"))


@pytest.fixture(scope="module")
def samples(shared_data: Path) -> Path:
    path = shared_data / "literature" / "api-samples"
    if not path.is_dir():
        pytest.skip(f"recorded API samples not found at {path}")
    return path


_HTTP = httpx.Client()  # one client for the module: httpx.get() builds a new one (and TLS context) per call


def esearch(standin: StandIn, **params: str) -> httpx.Response:
    return _HTTP.get(
        standin.engine_url + "/esearch.fcgi", params={"db": "pubmed", "retmode": "json", **params}
    )


def test_esearch_error_bodies_are_the_recorded_ones(corpus: Path, samples: Path) -> None:
    errors = samples / "pubmed-esearch" / "errors"
    with StandIn("pubmed", corpus, limits=None) as standin:
        assert (
            esearch(standin, term="CDDG1").content == (errors / "esearch_phrase_not_found.json").read_bytes()
        )
        assert esearch(standin, term="").content == (errors / "esearch_empty_term.json").read_bytes()
        over = esearch(standin, term="study", retstart="9999")
        assert over.content == (errors / "esearch_retstart_over_9998.txt").read_bytes()
        with pytest.raises(ValueError):
            over.json()  # NCBI's raw newline inside a JSON string: the body does not parse


def test_esearch_answers_in_the_recorded_pubmed_shape(corpus: Path, samples: Path) -> None:
    recorded = [
        json.loads(json.loads(line)["body"])
        for line in (samples / "pubmed-esearch" / "biomcp_pubmed_esearch.jsonl").read_text().splitlines()
    ]
    plain = next(r for r in recorded if "errorlist" not in r["esearchresult"])
    with_missing = next(r for r in recorded if "errorlist" in r["esearchresult"])
    with StandIn("pubmed", corpus, limits=None) as standin:
        body = esearch(standin, term="asthma[tiab] AND study", retmax="5").json()
        assert body["header"] == plain["header"]
        assert list(body["esearchresult"]) == list(plain["esearchresult"])
        result = body["esearchresult"]
        assert all(isinstance(result[k], str) for k in ("count", "retmax", "retstart"))
        assert (result["count"], result["retmax"], len(result["idlist"])) == ("20", "5", 5)

        # A word no document has is reported and left out, as NCBI does: the rest is still searched.
        partial = esearch(standin, term="asthma zzqq", retmax="100").json()["esearchresult"]
        assert list(partial) == list(with_missing["esearchresult"])
        assert partial["errorlist"] == {"phrasesnotfound": ["zzqq"], "fieldsnotfound": []}
        assert (
            partial["idlist"]
            == esearch(standin, term="asthma", retmax="100").json()["esearchresult"]["idlist"]
        )

        ignored = esearch(standin, term="asthma due to study").json()["esearchresult"]
        assert ignored["warninglist"]["phrasesignored"] == ["due", "to"]


def test_esearch_pages_newest_first(corpus: Path) -> None:
    with StandIn("pubmed", corpus, limits=None) as standin:
        whole = esearch(standin, term="study", retmax="100").json()["esearchresult"]
        first = esearch(standin, term="study", retmax="25").json()["esearchresult"]
        rest = esearch(standin, term="study", retstart="25", retmax="100").json()["esearchresult"]
    assert whole["count"] == "60" and len(whole["idlist"]) == 60
    assert whole["idlist"] == sorted(whole["idlist"], key=int, reverse=True)
    assert first["idlist"] + rest["idlist"] == whole["idlist"]
    assert rest["retstart"] == "25" and rest["retmax"] == "35"


def test_ncbi_rate_limit_answers_429_with_ncbi_bodies(corpus: Path) -> None:
    with StandIn("pubmed", corpus) as standin, httpx.Client() as client:
        url = standin.engine_url + "/esearch.fcgi"
        keyless = [
            client.get(url, params={"db": "pubmed", "retmode": "json", "term": "asthma"}) for _ in range(6)
        ]
        keyed = [
            client.post(url, data={"db": "pubmed", "retmode": "json", "term": "asthma", "api_key": "k1"})
            for _ in range(13)
        ]
    assert [r.status_code for r in keyless[:3]] == [200] * 3 and keyless[-1].status_code == 429
    assert keyless[-1].json() == {
        "error": "API rate limit exceeded",
        "api-key": "127.0.0.1",
        "count": "6",
        "limit": "3",
    }
    assert [r.status_code for r in keyed[:10]] == [200] * 10 and keyed[-1].status_code == 429
    assert keyed[-1].json() == {"error": "API rate limit exceeded", "count": "13"}


def test_ctgov_pages_follow_the_recorded_shape(tmp_path: Path, samples: Path) -> None:
    recorded = json.loads((samples / "ctgov-v2" / "pages" / "search_phelan_limit5_20260811.json").read_text())
    follow = json.loads((samples / "ctgov-v2" / "pages" / "search_phelan_next_20260811.json").read_text())
    folder = write_corpus(tmp_path / "trials", id_of=nct)
    with StandIn("ctgov", folder) as standin, httpx.Client() as client:
        url = standin.engine_url + "/studies"
        params = {"query.term": "study", "fields": "NCTId", "pageSize": "25", "countTotal": "true"}
        pages = [client.get(url, params=params).json()]
        while "nextPageToken" in pages[-1]:
            pages.append(client.get(url, params={**params, "pageToken": pages[-1]["nextPageToken"]}).json())
        whole = client.get(url, params={**params, "pageSize": "1000"}).json()
    assert list(pages[0]) == list(recorded)  # studies, totalCount, nextPageToken
    assert list(pages[1]) == list(follow)  # totalCount only on the first page
    assert [len(p["studies"]) for p in pages] == [25, 25, 10] and "nextPageToken" not in pages[-1]
    ids = [s["protocolSection"]["identificationModule"]["nctId"] for p in pages for s in p["studies"]]
    assert ids == [s["protocolSection"]["identificationModule"]["nctId"] for s in whole["studies"]]
    assert ids == sorted(ids) and len(set(ids)) == 60 and whole["totalCount"] == 60


def test_ctgov_unknown_parameter_is_a_plain_text_400(tmp_path: Path, samples: Path) -> None:
    recorded = (samples / "ctgov-v2" / "errors" / "http400_unknown_parameter.txt").read_bytes()
    with StandIn("ctgov", write_corpus(tmp_path / "trials")) as standin:
        answer = httpx.get(standin.engine_url + "/studies", params={"query.term": "x", "filter.phase": "2"})
    assert answer.status_code == 400 and answer.content == recorded
    assert answer.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("spec", "check"),
    [
        ("429:first=1:retry_after=2", lambda r: r.status_code == 429 and r.headers["Retry-After"] == "2"),
        ("429:first=1", lambda r: r.status_code == 429 and "Retry-After" not in r.headers),
        ("500:first=1", lambda r: r.status_code == 500),
        ("malformed:first=1", lambda r: r.status_code == 200 and not _parses(r.content)),
        (
            'body:first=1:body={"esearchresult":{"count":"-5"}}',
            lambda r: r.json()["esearchresult"]["count"] == "-5",
        ),
    ],
)
def test_faults_fire_on_the_first_requests_then_stop(corpus: Path, spec: str, check) -> None:
    with StandIn("pubmed", corpus, faults=[Fault.parse(spec)], limits=None) as standin:
        first, second = esearch(standin, term="asthma"), esearch(standin, term="asthma")
    assert check(first)
    assert second.status_code == 200 and second.json()["esearchresult"]["count"] == "20"
    assert [e["fault"] for e in standin.requests] == [spec.split(":")[0], None]


def _parses(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def test_dropped_connection_and_slow_answer(corpus: Path) -> None:
    faults = [Fault("drop", match="drop"), Fault("slow", match="slow", delay_s=1.0)]
    with StandIn("pubmed", corpus, faults=faults, limits=None) as standin:
        with pytest.raises(httpx.RemoteProtocolError):
            esearch(standin, term="asthma drop")
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(
                standin.engine_url + "/esearch.fcgi", params={"term": "slow", "retmode": "json"}, timeout=0.2
            )
        assert esearch(standin, term="asthma").status_code == 200  # the server is still fine


def test_probabilistic_faults_repeat_with_the_seed(corpus: Path) -> None:
    def pattern(seed: int) -> list[int]:
        with StandIn(
            "pubmed", corpus, faults=[Fault("500", probability=0.5)], seed=seed, limits=None
        ) as standin:
            return [esearch(standin, term="asthma").status_code for _ in range(16)]

    assert pattern(3) == pattern(3)
    assert {500, 200} == set(pattern(3))


def test_concurrent_requests_are_served_in_parallel(corpus: Path) -> None:
    with StandIn("pubmed", corpus, faults=[Fault("slow", delay_s=0.5)], limits=None) as standin:
        threads = [
            threading.Thread(target=esearch, args=(standin,), kwargs={"term": "asthma"}) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert standin.max_in_flight >= 2 and len(standin.requests) == 4


def test_request_log_redacts_the_key(corpus: Path, tmp_path: Path) -> None:
    secret = "standin-secret-8d1f"
    log_path = tmp_path / "requests.jsonl"
    with StandIn("pubmed", corpus, log_path=log_path) as standin:
        httpx.post(
            standin.engine_url + "/esearch.fcgi",
            data={"retmode": "json", "term": "asthma", "api_key": secret},
        )
        esearch(standin, term='melasma & "w3x"[tiab]')
    first, second = standin.requests
    assert first["params"]["api_key"] == "***" and first["key_sent"]
    assert first["key_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert second["params"]["term"] == 'melasma & "w3x"[tiab]' and not second["key_sent"]
    assert [json.loads(line) for line in log_path.read_text().splitlines()] == [first, second]
    assert secret not in log_path.read_text()


def test_peak_rate_counts_any_window() -> None:
    assert peak_rate([0.0, 0.5, 0.99, 1.0, 1.98]) == 3
    assert peak_rate([]) == 0


def test_fault_specs_are_checked() -> None:
    fault = Fault.parse("429:first=2:retry_after=1.5:match=cancer")
    assert (fault.kind, fault.first, fault.retry_after, fault.match) == ("429", 2, 1.5, "cancer")
    body = Fault.parse('body:first=1:body={"esearchresult": {"count": "-5", "note": "a:b"}}')
    assert (body.kind, body.first, body.body) == (
        "body",
        1,
        '{"esearchresult": {"count": "-5", "note": "a:b"}}',
    )
    with pytest.raises(ValueError, match="unknown fault"):
        Fault.parse("teapot")
    with pytest.raises(ValueError, match="bad fault option"):
        Fault.parse("500:often=yes")
    with pytest.raises(ValueError, match="needs a number"):
        Fault.parse("500:first=two")


def test_command_line_server(corpus: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "log.jsonl"
    command = [
        sys.executable,
        str(Path(__file__).with_name("standin.py")),
        "--engine",
        "ctgov",
        "--data",
        str(corpus),
    ]
    process = subprocess.Popen(
        [*command, "--port", "0", "--log", str(log_path), "--faults", "500:first=1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = process.stdout.readline()
        engine_url = banner.split(" at ")[-1].strip()
        assert banner.startswith("stand-in ctgov: 60 documents at http://127.0.0.1:")
        statuses = [
            httpx.get(engine_url + "/studies", params={"query.term": "w7x"}).status_code for _ in range(2)
        ]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
    assert statuses == [500, 200]
    assert [json.loads(line)["status"] for line in log_path.read_text().splitlines()] == [500, 200]
    bad = subprocess.run([*command, "--faults", "teapot"], check=False, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown fault 'teapot'")


def test_real_clef_collection(shared_data: Path) -> None:
    folder = shared_data / "literature" / "clef-tar-2017"
    if not folder.is_dir():
        pytest.skip(f"CLEF TAR collection not found at {folder}")
    collection = Collection.load(folder)
    assert len(collection) == 27_126
    found = collection.match(["galactomannan", "aspergillosis"])
    ids = [collection.ids[p] for p in found]
    assert 0 < len(ids) < 1000 and ids == sorted(ids, key=int, reverse=True)
