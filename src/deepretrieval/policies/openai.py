"""A policy behind any OpenAI-compatible chat-completions endpoint (``openai:MODEL``): the seed's zero-shot
API baselines, a vLLM or llama.cpp server, or our own ``deepretrieval serve``.

The key comes from ``OPENAI_API_KEY`` and is only ever sent as a header: never logged, never part of a cache
key. Completions are cached on disk keyed by (base URL, model, messages, sampling settings), so rerunning an
evaluation costs no request; a completion that kept failing is returned as a :class:`GenerationFailure`
(and never cached), so it is reported instead of being judged as a bad answer.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import diskcache
import httpx

from deepretrieval.paths import cache_dir
from deepretrieval.policies.base import GenerationFailure
from deepretrieval.prompting import Prompting
from deepretrieval.retrievers.web.client import HttpClient, RequestFailed, Retry, retryable

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRIED_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
FATAL_STATUS = {401: "check OPENAI_API_KEY", 403: "check OPENAI_API_KEY", 404: "check the base URL and model"}


class OpenAIError(ValueError):
    """The endpoint refuses every request (bad key, unknown model or URL): retrying cannot help."""


class OpenAIPolicy:
    """Chat messages in, completions out, through ``POST {base_url}/chat/completions``.

    Up to ``concurrency`` requests are in flight at once (threads sharing one connection pool). A request
    that times out, cannot connect, or gets 408 / 409 / 429 / 5xx is retried up to ``max_retries`` times
    with exponential backoff and full jitter (``backoff_s * 2**attempt``, capped at ``max_backoff_s``), and
    at least the server's ``Retry-After`` when it sends one (the loop of ``retrievers.web.client``); a
    request whose pauses would add up to more than ``max_retries * max_backoff_s`` is given up.
    """

    card = None  # an API model is prompted as the caller says

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        max_retries: int = 5,
        timeout_s: float = 120.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        temperature: float = 0.0,
        cache: str | Path | None = None,
        name: str | None = None,
    ) -> None:
        if not model:
            raise ValueError("openai:MODEL needs a model name, e.g. openai:gpt-4o-mini")
        if concurrency < 1 or max_retries < 0:
            raise ValueError("openai policy: concurrency must be >= 1, max_retries >= 0")
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"OpenAI base URL must start with http:// or https://, got {self.base_url!r}")
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if not key and self.base_url == DEFAULT_BASE_URL:
            raise ValueError("openai:MODEL against api.openai.com needs OPENAI_API_KEY in the environment")
        self.name = name or f"openai:{model}"
        self.concurrency = concurrency
        self.temperature = temperature
        self._client = HttpClient(
            self.name,
            # pauses in all at most what max_retries capped backoffs add up to: a far Retry-After is a failure
            Retry(max_retries + 1, backoff_s, max_backoff_s, max_wait_s=max_retries * max_backoff_s),
            timeout_s=timeout_s,
            concurrency=concurrency,
            headers={"Authorization": f"Bearer {key}"} if key else {},
            secret=key or None,
        )
        self._cache = diskcache.Cache(str(Path(cache) if cache else cache_dir() / "completions"))

    @property
    def stats(self) -> dict[str, int]:
        """Requests made, retries, completions served from the cache, completions that failed."""
        return self._client.stats.as_dict()

    @property
    def fingerprint(self) -> str:
        return self._digest({"base_url": self.base_url, "model": self.model, "temperature": self.temperature})

    def _digest(self, payload: dict) -> str:
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def complete(
        self, prompts: Sequence[list[dict[str, str]]], prompting: Prompting
    ) -> list[str | GenerationFailure]:
        """One completion per prompt, in order; cached ones cost no request. A chat endpoint renders the
        messages itself and cannot continue a prefilled assistant turn, so a prefill is refused."""
        if prompting.prefill:
            raise ValueError(
                f"{self.name}: a chat endpoint cannot start its answer with a prefill ({prompting.prefill!r}); "
                "set prompting.prefill to ''"
            )
        sampling = {"temperature": self.temperature, "max_tokens": prompting.max_new_tokens}
        keys = [
            self._digest({"base_url": self.base_url, "model": self.model, "messages": m, **sampling})
            for m in prompts
        ]
        results: list[str | GenerationFailure | None] = [self._cache.get(key) for key in keys]
        self._client.stats.add("cache_hits", sum(r is not None for r in results))
        todo = [i for i, r in enumerate(results) if r is None]
        if todo:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(todo))) as pool:
                futures = {pool.submit(self._request, prompts[i], sampling): i for i in todo}
                for future in as_completed(futures):  # cached as each arrives: an interruption loses none
                    i = futures[future]
                    results[i] = future.result()
                    if isinstance(results[i], str):
                        self._cache.set(keys[i], results[i])  # failures are never cached
        return results  # type: ignore[return-value]

    def _request(
        self, messages: list[dict[str, str]], sampling: dict[str, float | int]
    ) -> str | GenerationFailure:
        body = {"model": self.model, "messages": messages, **sampling}
        try:
            return self._client.request("POST", f"{self.base_url}/chat/completions", self._read, json=body)
        except RequestFailed as err:
            self._client.stats.add("failures")
            return GenerationFailure(f"{err.problem} after {err.attempts} attempts")

    def _read(self, response: httpx.Response) -> str | GenerationFailure:
        status = response.status_code
        if status == 200:
            return self._content(response)
        if status in FATAL_STATUS:
            raise OpenAIError(
                f"{self.base_url}/chat/completions answered {status} for model {self.model!r}: {FATAL_STATUS[status]}"
            )
        if status in RETRIED_STATUS:
            raise retryable(response, f"HTTP {status}")
        # not retried (e.g. 400): the endpoint says why
        raise RequestFailed(f"HTTP {status} ({' '.join(response.text.split())[:200]})")

    def _content(self, response: httpx.Response) -> str | GenerationFailure:
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return GenerationFailure("the endpoint's answer is not a chat.completion object")
        return content if isinstance(content, str) else GenerationFailure("the completion has no text")

    def close(self) -> None:
        self._client.close()
        self._cache.close()
