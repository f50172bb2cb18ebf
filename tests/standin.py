"""Stand-in PubMed (E-utilities ``esearch.fcgi``) and ClinicalTrials.gov (API v2 ``/studies``) servers,
for tests and offline demos: real HTTP on a local port, answering from a BEIR-style collection.

    python tests/standin.py --engine pubmed --data DIR --port 8001 [--faults 429:first=3]

What is faithful (checked against the recorded bodies in ``literature/api-samples``): the esearch JSON
(``header``, ``esearchresult`` with string ``count``/``retmax``/``retstart``, ``idlist``,
``translationset``, ``querytranslation``; ``errorlist.phrasesnotfound`` for words no document has, which
are then left out of the search as NCBI does; ``warninglist.phrasesignored`` for stop words; the
``ERROR`` bodies for an empty term and for ``retstart`` > 9998), NCBI's rate limit (more than 3 requests
in a second without ``api_key``, 10 with one, get HTTP 429 with NCBI's body), and the v2 page
(``studies[].protocolSection.identificationModule.nctId``, ``totalCount`` on the first page only,
``nextPageToken``; HTTP 400 with a plain-text body for an unknown parameter).

What is not PubMed: the search is all-terms-match over title + abstract (field tags and AND/OR/NOT are
dropped, so OR and NOT read as AND); PubMed ids come newest (highest PMID) first, NCT ids in ascending
order; date limits (``mindate``/``maxdate``, ``filter.advanced``) are recorded but not applied, because
the local collections carry no dates.

Every request is recorded (time, method, parameters with the key replaced by ``***``, whether a key was
sent and its SHA-256, the status and any injected fault) for tests of rate and caching. Faults
(``Fault``) inject 429s with or without Retry-After, 500s, slow answers, malformed JSON, connections
dropped mid-response and answers with a given body (well-formed JSON whose content is wrong: a negative
count, ids that are not ids), for the first N matching requests or with a seeded probability."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import re
import signal
import socket
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import chain
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from deepretrieval.retrievers.corpus import load_corpus

ENGINES = ("pubmed", "ctgov")
BASE_PATHS = {"pubmed": "/entrez/eutils", "ctgov": "/api/v2"}
NCBI_LIMITS = (3, 10)  # requests per second without / with an API key
FAULT_KINDS = ("429", "500", "slow", "malformed", "drop", "body")
HEADER = {"type": "esearch", "version": "0.3"}
# Bodies as recorded (api-samples/pubmed-esearch/errors); the retstart one is not valid JSON on purpose.
EMPTY_TERM_ERROR = (
    "Search Backend failed: An error occurred while processing request. Details: Empty Term in the request"
)
RETSTART_BODY = (
    '{"header":{"type":"esearch","version":"0.3"},"esearchresult":{"ERROR":"Search Backend failed: Exception:\n'
    "'retstart' cannot be larger than 9998. For PubMed, ESearch can only retrieve the first 9,999 records "
    'matching the query."}}'
)
PUBMED_STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "due", "for", "from", "has", "have", "in", "into", "is",
    "it", "its", "not", "of", "on", "or", "that", "the", "their", "this", "to", "was", "were", "which", "with",
})  # fmt: skip
CTGOV_PARAMS = {"format", "query.term", "fields", "countTotal", "pageSize", "pageToken", "filter.advanced"}
CTGOV_UNSUPPORTED = {
    "query.cond", "query.intr", "query.titles", "query.outc", "query.spons", "query.lead", "query.id",
    "query.patient", "query.locn", "filter.overallStatus", "filter.geo", "filter.ids", "filter.synonyms",
    "postFilter.overallStatus", "postFilter.geo", "postFilter.ids", "postFilter.advanced",
    "postFilter.synonyms", "aggFilters", "geoDecay", "sort", "markupFormat",
}  # fmt: skip
_TAGS = re.compile(r"\[[^\]]*\]")
_ESSIE = re.compile(r"\b(?:AREA|RANGE|SEARCH|EXPANSION|COVERAGE|MISSING|TILT)\[[^\]]*\]")
_WORD = re.compile(r"\w+")


# --------------------------------------------------------------------------- collection


class Collection:
    """A BEIR folder's documents with an inverted index (word -> sorted document positions) for
    all-terms-match search. Positions follow the result order: ids descending (newest PMID first) or
    ascending."""

    def __init__(self, ids: Sequence[str], texts: Sequence[str], *, newest_first: bool = True):
        numeric = all(i.isdigit() for i in ids)
        order = sorted(
            range(len(ids)), key=lambda i: int(ids[i]) if numeric else ids[i], reverse=newest_first
        )
        self.ids = [ids[i] for i in order]
        words = [set(_WORD.findall(texts[i].lower())) for i in order]
        # Postings as one array grouped by word (a stable sort keeps each group's positions ascending):
        # a few seconds for 27k abstracts, where a dict of Python lists takes several times longer.
        self._vocab: dict[str, int] = {}
        word_ids = np.fromiter(
            (self._vocab.setdefault(w, len(self._vocab)) for w in chain.from_iterable(words)), dtype=np.int32
        )
        positions = np.repeat(np.arange(len(words), dtype=np.int32), [len(w) for w in words])
        grouped = np.argsort(word_ids, kind="stable")
        self._positions = positions[grouped]
        self._bounds = np.searchsorted(word_ids[grouped], np.arange(len(self._vocab) + 1))

    @classmethod
    def load(cls, path: str | Path, *, newest_first: bool = True) -> Collection:
        corpus = load_corpus(path)
        return cls(corpus.ids, corpus.texts, newest_first=newest_first)

    def __len__(self) -> int:
        return len(self.ids)

    def has(self, word: str) -> bool:
        return word.lower() in self._vocab

    def _posting(self, word: str) -> np.ndarray:
        index = self._vocab.get(word.lower())
        if index is None:
            return np.empty(0, np.int32)
        return self._positions[self._bounds[index] : self._bounds[index + 1]]

    def match(self, words: Iterable[str]) -> np.ndarray:
        """Positions of the documents holding every word (all documents when there are none)."""
        postings = sorted((self._posting(w) for w in words), key=len)
        if not postings:
            return np.arange(len(self.ids), dtype=np.int32)
        found = postings[0]
        for other in postings[1:]:
            found = np.intersect1d(found, other, assume_unique=True)
        return found


# --------------------------------------------------------------------------- faults


@dataclass
class Fault:
    """One injected failure. It fires on the first ``first`` requests it matches, or with
    ``probability`` (seeded), or on every request it matches when neither is given; ``match`` limits it
    to requests whose search term contains that text. ``body``: HTTP 200 with this JSON text instead of
    the real answer."""

    kind: Literal["429", "500", "slow", "malformed", "drop", "body"]
    first: int | None = None
    probability: float | None = None
    match: str | None = None
    retry_after: float | None = None  # 429: send Retry-After with this many seconds
    delay_s: float = 5.0  # slow: wait this long, then answer normally
    body: str = ""  # body: the answer's text
    fired: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; choose one of {', '.join(FAULT_KINDS)}")
        if self.probability is not None and not 0 <= self.probability <= 1:
            raise ValueError(f"fault probability must be in [0, 1], got {self.probability}")

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """``KIND[:first=N][:p=P][:match=TEXT][:retry_after=S][:delay=S][:body=TEXT]``, e.g.
        ``429:first=3:retry_after=1`` or ``body:first=1:body={"esearchresult":{"count":"-5"}}`` (``body=``
        comes last: the rest of the spec is the body)."""
        spec, _, body = spec.partition(":body=")
        kind, *options = spec.split(":")
        names = {
            "first": "first",
            "p": "probability",
            "match": "match",
            "retry_after": "retry_after",
            "delay": "delay_s",
        }
        values: dict[str, Any] = {}
        for option in options:
            name, _, value = option.partition("=")
            if name not in names or not value:
                raise ValueError(
                    f"bad fault option {option!r} in {spec!r}; use {', '.join(names)} as name=value"
                )
            if name == "match":
                values["match"] = value
            else:
                try:
                    values[names[name]] = int(value) if name == "first" else float(value)
                except ValueError:
                    raise ValueError(
                        f"fault option {name} needs a number, got {value!r} in {spec!r}"
                    ) from None
        return cls(kind, **values, body=body)  # type: ignore[arg-type]


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    delay_s: float = 0.0


def _json(payload: Any, status: int = 200, newline: bool = True) -> Reply:
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False) + ("\n" if newline else "")
    return Reply(status, text.encode())


def _text(message: str, status: int) -> Reply:
    return Reply(status, message.encode(), "text/plain; charset=UTF-8")


def peak_rate(times: Iterable[float], window_s: float = 1.0) -> int:
    """The largest number of the given request times that fall in any window of ``window_s`` seconds."""
    ordered = sorted(times)
    peak, start = 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window_s:
            start += 1
        peak = max(peak, end - start + 1)
    return peak


# --------------------------------------------------------------------------- the server


class StandIn:
    """A stand-in search API on ``http://host:port``; ``engine_url`` is what a client is given.

    ``limits`` is (requests/s without a key, with a key) above which requests get 429; "default" means
    NCBI's (3, 10) for pubmed and none for ctgov."""

    def __init__(
        self,
        engine: str,
        data: str | Path | Collection,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Sequence[Fault] = (),
        seed: int = 0,
        limits: tuple[int, int] | Literal["default"] | None = "default",
        log_path: str | Path | None = None,
    ):
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        self.engine = engine
        self.collection = (
            data if isinstance(data, Collection) else Collection.load(data, newest_first=engine == "pubmed")
        )
        self.limits = (NCBI_LIMITS if engine == "pubmed" else None) if limits == "default" else limits
        self.faults = list(faults)
        self.max_in_flight = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._log_file = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
        self._arrivals: dict[str, deque[float]] = defaultdict(deque)
        self._in_flight = 0
        self._server = _Server((host, port), _Handler)
        self._server.standin = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def engine_url(self) -> str:
        return self.url + BASE_PATHS[self.engine]

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of the request log, in the order the requests were answered (``t``: arrival time)."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def set_faults(self, faults: Sequence[Fault]) -> None:
        with self._lock:
            self.faults = list(faults)

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._log_file is not None:
            self._log_file.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- one request

    def respond(self, method: str, path: str, params: dict[str, str], client: str) -> Reply:
        """Decide the answer to one request and record it."""
        key = params.get("api_key")
        entry: dict[str, Any] = {
            "t": time.time(),
            "method": method,
            "path": path,
            "params": {name: ("***" if name == "api_key" else value) for name, value in params.items()},
            "key_sent": key is not None,
            "key_sha256": hashlib.sha256(key.encode()).hexdigest() if key is not None else None,
            "fault": None,
        }
        with self._lock:
            reply = self._rate_limited(key, client)
            if reply is None:
                fault = self._pick_fault(params.get("term", params.get("query.term", "")))
                if fault is not None:
                    entry["fault"] = fault.kind
                    reply = self._fault_reply(fault)
        if reply is None or reply.delay_s:
            answer = self._answer(path, params)
            reply = answer if reply is None else Reply(**{**answer.__dict__, "delay_s": reply.delay_s})
        entry["status"] = reply.status
        with self._lock:
            self._log.append(entry)
            if self._log_file is not None:
                self._log_file.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self._log_file.flush()
        return reply

    def _rate_limited(self, key: str | None, client: str) -> Reply | None:
        if self.limits is None:
            return None
        limit = self.limits[1] if key else self.limits[0]
        arrivals = self._arrivals[key or client]
        now = time.monotonic()
        arrivals.append(now)
        while now - arrivals[0] >= 1.0:
            arrivals.popleft()
        if len(arrivals) <= limit:
            return None
        # NCBI's two recorded shapes: with a key, and without one (the client's IP under "api-key").
        body = {"error": "API rate limit exceeded", "count": str(len(arrivals))}
        if not key:
            body = {
                "error": "API rate limit exceeded",
                "api-key": client,
                "count": str(len(arrivals)),
                "limit": str(limit),
            }
        return _json(body, 429, newline=False)

    def _pick_fault(self, term: str) -> Fault | None:
        for fault in self.faults:
            if fault.match is not None and fault.match not in term:
                continue
            if fault.first is not None and fault.fired >= fault.first:
                continue
            if fault.probability is not None and self._random.random() >= fault.probability:
                continue
            fault.fired += 1
            return fault
        return None

    def _fault_reply(self, fault: Fault) -> Reply:
        if fault.kind == "429":
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return Reply(429, b'{"error":"API rate limit exceeded","count":"11"}', headers=headers)
        if fault.kind == "500":
            return Reply(500, b"<html><body><h1>500 Internal Server Error</h1></body></html>", "text/html")
        if fault.kind == "malformed":
            return Reply(200, b'{"header":{"type":"esearch","version":"0.3"},"esearchresult":{"count":"1')
        if fault.kind == "drop":
            return Reply(200, b'{"header":{"type":"esearch","version":"0.3"},"esearch', drop=True)
        if fault.kind == "body":
            return Reply(200, fault.body.encode())
        return Reply(200, b"", delay_s=fault.delay_s)  # slow: the real answer, late

    def _answer(self, path: str, params: dict[str, str]) -> Reply:
        if self.engine == "pubmed" and path == BASE_PATHS["pubmed"] + "/esearch.fcgi":
            return self._esearch(params)
        if self.engine == "ctgov" and path == BASE_PATHS["ctgov"] + "/studies":
            return self._studies(params)
        return _text(f"no such resource: {path}", 404)

    # ---- PubMed esearch

    def _esearch(self, params: dict[str, str]) -> Reply:
        if params.get("db", "pubmed") != "pubmed":
            return _json(
                {"header": HEADER, "esearchresult": {"ERROR": f"Invalid db name specified: {params['db']}"}}
            )
        if params.get("retmode") != "json":
            return _text("the stand-in answers retmode=json only", 400)
        try:
            retstart = int(params.get("retstart", "0"))
            retmax = min(int(params.get("retmax", "20")), 10_000)
        except ValueError:
            return _text("retstart and retmax must be integers", 400)
        if retstart > 9998:
            return Reply(200, RETSTART_BODY.encode())
        term = params.get("term", "")
        if not term.strip():
            return _json({"header": HEADER, "esearchresult": {"ERROR": EMPTY_TERM_ERROR}}, newline=False)
        searched, ignored, missing = [], [], []
        for word in _WORD.findall(_TAGS.sub(" ", term)):
            if word in ("AND", "OR", "NOT"):
                continue
            target = (
                ignored
                if word.lower() in PUBMED_STOPWORDS
                else searched
                if self.collection.has(word)
                else missing
            )
            if word not in target:
                target.append(word)
        if not searched:
            missing = missing or [term]
            result: dict[str, Any] = {"count": "0", "retmax": "0", "retstart": str(retstart), "idlist": []}
            result.update(
                translationset=[],
                querytranslation="(" + " AND ".join(f"{w}[All Fields]" for w in missing) + ")",
                errorlist={"phrasesnotfound": missing, "fieldsnotfound": []},
                warninglist={
                    "phrasesignored": ignored,
                    "quotedphrasesnotfound": [],
                    "outputmessages": ["No items found."],
                },
            )
            return _json({"header": HEADER, "esearchresult": result})
        found = self.collection.match(searched)
        page = [self.collection.ids[p] for p in found[retstart : retstart + max(retmax, 0)]]
        result = {
            "count": str(len(found)),
            "retmax": str(len(page)),
            "retstart": str(retstart),
            "idlist": page,
        }
        result.update(translationset=[], querytranslation=" AND ".join(f"{w}[All Fields]" for w in searched))
        if missing:
            result["errorlist"] = {"phrasesnotfound": missing, "fieldsnotfound": []}
        if ignored:
            result["warninglist"] = {
                "phrasesignored": ignored,
                "quotedphrasesnotfound": [],
                "outputmessages": [],
            }
        return _json({"header": HEADER, "esearchresult": result})

    # ---- ClinicalTrials.gov /studies

    def _studies(self, params: dict[str, str]) -> Reply:
        for name in params:
            if name in CTGOV_UNSUPPORTED:
                return _text(f"`{name}` is not supported by the stand-in", 400)
            if name not in CTGOV_PARAMS:
                return _text(f"`{name}` is unknown parameter", 400)
        if params.get("format", "json") != "json":
            return _text("the stand-in answers format=json only", 400)
        try:
            page_size = min(int(params.get("pageSize", "10")), 1000)
        except ValueError:
            return _text(f"`pageSize` must be an integer, got {params['pageSize']!r}", 400)
        term = params.get("query.term", "")
        words = [w for w in _WORD.findall(_ESSIE.sub(" ", term)) if w not in ("AND", "OR", "NOT")]
        digest = hashlib.sha256(term.encode()).hexdigest()[:12]
        offset = 0
        if "pageToken" in params:
            offset = self._token_offset(params["pageToken"], digest)
            if offset is None:
                return _text("`pageToken` is invalid for this query", 400)
        found = self.collection.match(words)
        page = found[offset : offset + max(page_size, 0)]
        payload: dict[str, Any] = {
            "studies": [
                {"protocolSection": {"identificationModule": {"nctId": self.collection.ids[p]}}} for p in page
            ]
        }
        if offset == 0 and params.get("countTotal", "false").lower() == "true":
            payload["totalCount"] = len(found)
        if offset + len(page) < len(found) and len(page):
            token = json.dumps({"o": offset + len(page), "q": digest}).encode()
            payload["nextPageToken"] = base64.urlsafe_b64encode(token).decode().rstrip("=")
        return _json(payload, newline=False)

    @staticmethod
    def _token_offset(token: str, digest: str) -> int | None:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            return int(decoded["o"]) if decoded["q"] == digest else None
        except (ValueError, KeyError, TypeError):
            return None

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    standin: StandIn


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs
    timeout = 60  # idle keep-alive connections are closed after this long
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._handle(self.rfile.read(length))

    def _handle(self, body: bytes) -> None:
        standin = self.server.standin
        standin._enter()
        try:
            split = urlsplit(self.path)
            params = dict(parse_qsl(split.query, keep_blank_values=True))
            if body:
                params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            reply = standin.respond(self.command, split.path, params, self.client_address[0])
            if reply.delay_s:
                time.sleep(reply.delay_s)
            self._send(reply)
        except (TimeoutError, ConnectionError):
            self.close_connection = True  # the client gave up (e.g. its timeout on a slow answer)
        finally:
            standin._leave()

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body) * (4 if reply.drop else 1)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)
        self.wfile.flush()
        if reply.drop:  # promised more than was sent, then hang up mid-response
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/standin.py", description=__doc__.split("\n")[0])
    parser.add_argument("--engine", choices=ENGINES, required=True)
    parser.add_argument("--data", required=True, help="a BEIR folder (corpus.jsonl) or a corpus JSONL file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed at start)")
    parser.add_argument(
        "--faults", nargs="*", default=[], metavar="SPEC", help="e.g. 429:first=3:retry_after=1 500:p=0.1"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of probabilistic faults")
    parser.add_argument(
        "--limits", type=int, nargs=2, metavar=("NO_KEY", "WITH_KEY"), help="429 above these requests/s"
    )
    parser.add_argument("--no-limits", action="store_true", help="never answer 429 for rate")
    parser.add_argument("--log", help="append every request as a JSON line to this file")
    args = parser.parse_args(argv)
    try:
        faults = [Fault.parse(spec) for spec in args.faults]
        limits = None if args.no_limits else tuple(args.limits) if args.limits else "default"
        standin = StandIn(
            args.engine, args.data, host=args.host, port=args.port, faults=faults, seed=args.seed,
            limits=limits, log_path=args.log,  # type: ignore[arg-type]
        )  # fmt: skip
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with standin:
        print(
            f"stand-in {args.engine}: {len(standin.collection)} documents at {standin.engine_url}", flush=True
        )
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
