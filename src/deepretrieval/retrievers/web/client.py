"""One HTTP client for every engine searched over the network (PubMed, ClinicalTrials.gov, the retrieval
service) and for OpenAI-compatible policies: a process-wide rate limiter, and ONE retry loop with
exponential backoff and full jitter that honours Retry-After.

The loop knows transport failures (a timeout, a dropped or refused connection: retried); what an answer
means is the caller's ``read(response)``: it returns the result, raises :class:`RetryableError` for an
answer worth asking again for (429, 5xx, a body that is not the API's JSON), or raises anything else to
stop at once (:class:`RequestFailed` for a request the server refuses as sent). A secret given to the
client (an API key) is replaced by ``***`` in its log lines and errors.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

log = logging.getLogger(__name__)

# Network jitter can bunch requests that left the client a full window apart; NCBI counts arrivals, so
# the limiter keeps this much extra distance between request i and request i+N.
JITTER_MARGIN_S = 0.15

T = TypeVar("T")


# --------------------------------------------------------------------------- rate limiting


class RateLimiter:
    """At most ``max_requests`` request starts in any ``window_s``-second window, for every thread.

    A sliding log of the last ``max_requests`` start times, stamped when a caller is let through (under
    the lock, while it runs): a caller waits until the oldest of them is ``window_s`` old. Stamping the
    moment of passage, not a slot reserved in advance, keeps a thread that wakes late from bunching
    up with the next window's requests."""

    def __init__(self, max_requests: int, window_s: float):
        if max_requests < 1 or window_s <= 0:
            raise ValueError(f"a rate limit needs max_requests >= 1 and window_s > 0, got {max_requests}")
        self.max_requests = max_requests
        self.window_s = window_s
        self._starts: deque[float] = deque()
        self._ready = threading.Condition()

    @classmethod
    def per_second(cls, requests_per_second: float, margin_s: float = JITTER_MARGIN_S) -> RateLimiter:
        """``requests_per_second`` as N requests per N/rate seconds (N >= 1), plus the jitter margin."""
        if requests_per_second <= 0:
            raise ValueError(f"requests_per_second must be > 0, got {requests_per_second}")
        burst = max(1, int(requests_per_second))
        return cls(burst, burst / requests_per_second + margin_s)

    @property
    def rate(self) -> float:
        return self.max_requests / self.window_s

    def tighten(self, other: RateLimiter) -> None:
        """Adopt ``other``'s limit when it is stricter (two clients asked for the same host and key)."""
        with self._ready:
            if other.rate < self.rate:
                self.max_requests, self.window_s = other.max_requests, other.window_s

    def acquire(self) -> None:
        """Block until this caller may start a request."""
        with self._ready:
            while True:
                now = time.monotonic()
                while self._starts and now - self._starts[0] >= self.window_s:
                    self._starts.popleft()
                if len(self._starts) < self.max_requests:
                    self._starts.append(now)
                    return
                self._ready.wait(self._starts[0] + self.window_s - now)


_LIMITERS: dict[tuple[str, str], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_limiter(url: str, secret: str | None, requests_per_second: float) -> RateLimiter:
    """The process-wide limiter for (host, key): every client of the same host with the same key (or
    none) shares one budget, whatever thread or client object it runs in. The key is kept as a digest."""
    host = urlsplit(url).netloc.lower()
    identity = (host, hashlib.sha256(secret.encode()).hexdigest() if secret else "")
    wanted = RateLimiter.per_second(requests_per_second)
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.setdefault(identity, wanted)
    if limiter is not wanted:
        limiter.tighten(wanted)
    return limiter


# --------------------------------------------------------------------------- retries


@dataclass(frozen=True)
class Retry:
    """How a request is retried: ``attempts`` tries in all; before try n+1 a pause drawn uniformly from
    0 to ``min(backoff_cap_s, backoff_s * 2**(n-1))`` (full jitter), at least the server's Retry-After;
    giving up early when the pauses would add up to more than ``max_wait_s``."""

    attempts: int
    backoff_s: float
    backoff_cap_s: float
    max_wait_s: float = math.inf


class RetryableError(Exception):
    """An answer worth asking again for. ``retry_after`` is the server's Retry-After in seconds, when it
    sent one (see :func:`retryable`)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RequestFailed(Exception):
    """The request could not be made: the server refused it as sent, or the retries ran out (:class:`GaveUp`).
    ``problem`` says why; ``attempts`` is how many requests were made."""

    def __init__(self, problem: str, attempts: int = 1):
        super().__init__(problem)
        self.problem = problem
        self.attempts = attempts


class GaveUp(RequestFailed):
    """Every attempt met a transient failure (or the backoff budget ran out); ``problem`` is the last one."""

    def __init__(self, name: str, problem: str, attempts: int, why: str):
        super().__init__(problem, attempts)
        self.message = f"{name}: {problem}; gave up {why}"

    def __str__(self) -> str:
        return self.message


def retryable(response: httpx.Response, problem: str) -> RetryableError:
    """``problem`` as a retryable error carrying the response's Retry-After."""
    return RetryableError(problem, retry_after_seconds(response.headers.get("Retry-After")))


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


@dataclass
class ClientStats:
    """Counters for benchmarks and tests: HTTP attempts made, retries, cache hits, failed queries."""

    requests: int = 0
    retries: int = 0
    cache_hits: int = 0
    failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "cache_hits": self.cache_hits,
            "failures": self.failures,
        }


# --------------------------------------------------------------------------- the client


class HttpClient:
    """An ``httpx`` connection pool (``concurrency`` connections; shared by threads) with the retry loop.
    ``name`` prefixes log lines and errors; ``limiter`` paces every attempt; ``stats`` counts requests and
    retries (callers add their cache hits and failures)."""

    def __init__(
        self,
        name: str,
        retry: Retry,
        *,
        timeout_s: float,
        concurrency: int | None = None,
        limiter: RateLimiter | None = None,
        headers: Mapping[str, str] | None = None,
        secret: str | None = None,
    ):
        self.name = name
        self.retry = retry
        self.timeout_s = timeout_s
        self.stats = ClientStats()
        self._limiter = limiter
        self._secret = secret
        self._random = random.Random()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._http = httpx.Client(
            timeout=timeout_s, limits=limits if concurrency else httpx.Limits(), headers=dict(headers or {})
        )

    def request(self, method: str, url: str, read: Callable[[httpx.Response], T], **send: Any) -> T:
        """``read`` of the answer to one request (``send``: httpx's ``params``, ``data``, ``json``,
        ``content``, ``headers``), rate-limited and retried as the module notes say; raises
        :class:`GaveUp` when the retries run out, and whatever ``read`` raises that is not retryable."""
        retry = self.retry
        waited = 0.0
        for attempt in range(1, retry.attempts + 1):
            if self._limiter is not None:
                self._limiter.acquire()
            self.stats.add("requests")
            try:
                return read(self._http.request(method, url, **send))
            except httpx.TimeoutException:
                problem = RetryableError(f"no answer within {self.timeout_s} s")
            except httpx.RequestError as err:  # dropped or refused connection, undecodable body, ...
                problem = RetryableError(f"connection failed ({type(err).__name__})")
            except RetryableError as err:
                problem = err
            except RequestFailed as err:
                err.attempts = attempt
                raise
            if attempt == retry.attempts:
                break
            delay = self._random.uniform(0, min(retry.backoff_cap_s, retry.backoff_s * 2 ** (attempt - 1)))
            if problem.retry_after is not None:
                delay = max(delay, problem.retry_after)
            if waited + delay > retry.max_wait_s:
                raise GaveUp(
                    self.name, self.redact(str(problem)), attempt, f"(backoff budget of {retry.max_wait_s} s)"
                )
            log.warning("%s: %s; retry %d in %.1f s", self.name, self.redact(str(problem)), attempt, delay)
            self.stats.add("retries")
            time.sleep(delay)
            waited += delay
        raise GaveUp(self.name, self.redact(str(problem)), retry.attempts, f"after {retry.attempts} attempts")

    def redact(self, text: str) -> str:
        """``text`` with the client's secret replaced by ``***``."""
        return text.replace(self._secret, "***") if self._secret else text

    def close(self) -> None:
        self._http.close()
