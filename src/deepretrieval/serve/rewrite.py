"""The query-rewriting API: a policy rewrites users' queries, optionally searching an index with them.

:class:`Rewriter` prompts a policy as ``prompting.resolve`` decides (explicit choices, else the policy
card, else the defaults: an untrained model gets the ``classic_ir`` template without reasoning) and parses
the completion through the training parser; a malformed completion falls back to the original query and
says so. :func:`create_app` serves it over HTTP (FastAPI):

* ``POST /rewrite``: ``{"query": ...}`` or ``{"queries": [...]}``, optional ``"search": {"index", "k"}``;
* ``POST /v1/chat/completions``: OpenAI-compatible (messages in, a ``chat.completion`` out), so any OpenAI
  client, including :class:`deepretrieval.policies.openai.OpenAIPolicy`, can use the model;
* ``GET /health``: the model, prompting, indexes, limits and the batch sizes formed so far.

Requests arriving together share one generation call (:class:`deepretrieval.batching.Batcher`). The
server does not get stuck: the queue is bounded (``max_queue`` queries; beyond it a 503 with Retry-After),
a request not taken up by its deadline gets a 504 (``timeout_s``), a client that disconnects has its
queued queries dropped and, once nobody waits for a running batch, its generation stops between two
tokens (:mod:`deepretrieval.serve.http`); on SIGTERM / SIGINT in-flight requests are answered 503 at once.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the request models from the endpoint
# annotations at runtime, and those models are built inside create_app (their limits are its arguments).
import asyncio
import math
import time
import uuid
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from deepretrieval.answers import AnswerParser, Guards
from deepretrieval.config import PromptingConfig
from deepretrieval.policies.base import Completion, CompletionPolicy, GenerationFailure
from deepretrieval.prompting import Prompting, resolve
from deepretrieval.retrievers.base import Retriever
from deepretrieval.tasks.retrieval import feedback_block, opening_words

SNIPPET_WORDS = 30


@dataclass(frozen=True)
class Rewrite:
    """One rewritten query. ``note`` says why the original was kept (a malformed completion)."""

    original: str
    query: str
    format_ok: bool
    completion: str
    note: str | None = None


class Rewriter:
    """A completion policy prompted to rewrite search queries, with the parse-and-guard path of training."""

    def __init__(
        self,
        policy: CompletionPolicy,
        prompting: PromptingConfig | None = None,
        *,
        guards: Guards | None = None,
        feedback_from: Retriever | None = None,
    ) -> None:
        card = policy.card
        if card is not None and card.task == "sql":
            raise ValueError(
                f"policy {policy.name} was trained on text-to-SQL; the rewrite API serves search-query policies"
            )
        self.policy = policy
        self.prompting: Prompting = resolve(prompting, card.prompting if card else None)
        self.parse = AnswerParser(self.prompting, answer_key="query", guards=guards)
        if self.prompting.feedback and feedback_from is None:
            raise ValueError(
                f"policy {policy.name} reads the top {self.prompting.feedback} results of each query (trained "
                "with feedback): give an index to read them from (rewrite --search DIR, serve --index NAME=DIR)"
            )
        self.feedback_from = feedback_from

    def describe(self) -> dict[str, Any]:
        return self.prompting.to_json()

    def messages(self, query: str) -> list[dict[str, str]]:
        fields = {"query": query}
        if self.prompting.feedback and self.feedback_from is not None:
            count, words = self.prompting.feedback, self.prompting.feedback_words
            (ranking,) = self.feedback_from.search([query], count)
            fields["feedback"] = feedback_block(
                opening_words(self.feedback_from.texts(ranking.doc_ids), words)
            )
        return self.prompting.messages(fields)

    def finish(self, original: str, completion: str | GenerationFailure) -> Rewrite:
        """The parsed rewrite of one completion; the original query when it is malformed."""
        if isinstance(completion, GenerationFailure):
            return Rewrite(
                original, original, False, "", f"generation failed ({completion.reason}): kept the original"
            )
        parsed = self.parse(completion)
        if not parsed.format_ok:
            note = f"malformed completion ({parsed.reason}): kept the original query"
            return Rewrite(original, original, False, completion, note)
        query = f"{original} {parsed.answer}" if self.prompting.query_mode == "expand" else parsed.answer
        return Rewrite(original, query, True, completion)

    def rewrite(self, queries: Sequence[str]) -> list[Rewrite]:
        """Rewrite ``queries`` in one generation call (no batcher: the command line)."""
        completions = self.policy.complete([self.messages(q) for q in queries], self.prompting)
        return [self.finish(q, c) for q, c in zip(queries, completions)]


def hits_json(retriever: Retriever, rankings: Sequence[Sequence[Any]]) -> list[list[dict[str, Any]]]:
    """Hits with id, score and the first words of the document."""
    return [
        [
            {
                "id": hit.doc_id,
                "score": round(float(hit.score), 4),
                "text": snippet(retriever.text(hit.doc_id)),
            }
            for hit in ranking
        ]
        for ranking in rankings
    ]


def snippet(text: str, words: int = SNIPPET_WORDS) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" ..." if len(parts) > words else "")


@dataclass(frozen=True)
class Limits:
    """Input limits; anything beyond is a 4xx with a message naming the limit."""

    max_query_chars: int = 2000
    max_queries: int = 64
    max_body_bytes: int = 1_000_000
    max_messages: int = 64
    max_message_chars: int = 100_000
    max_k: int = 1000
    max_tokens: int = 2048
    body_timeout_s: float = 10.0  # the longest pause inside a request body (then a 408)


def create_app(
    rewriter: Rewriter,
    *,
    indexes: Mapping[str, Retriever] | None = None,
    limits: Limits = Limits(),
    max_batch: int = 32,
    max_wait_ms: float = 10.0,
    max_queue: int | None = None,
    timeout_s: float = 60.0,
    model_name: str | None = None,
) -> Any:
    """The FastAPI app over an already loaded policy (the model loads once, before serving).

    ``max_queue``: queries that may wait for generation (default ``2 * max_batch``, at least one request's
    ``limits.max_queries``); ``timeout_s``: how long a request may wait for its generation to start (one
    under way is waited for). ``app.state.batcher.close(abort=True)`` (what ``serve`` does on SIGTERM)
    answers in-flight requests 503."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, HTTPException, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from deepretrieval.batching import Batcher, DeadlineExceeded, QueueFull, Stopped
    from deepretrieval.policies.hf import HFPolicy
    from deepretrieval.serve.http import ClientWatch

    indexes = dict(indexes or {})
    policy = rewriter.policy
    served_name = model_name or policy.name
    max_queue = max(2 * max_batch, limits.max_queries) if max_queue is None else max_queue
    if max_queue < limits.max_queries:
        raise ValueError(
            f"a queue of {max_queue} queries could never take a request of {limits.max_queries}: "
            "raise --max-queue"
        )
    # A local model can stop between two tokens once nobody waits for its batch (its clients left, the
    # server is shutting down); others (an API) finish the call they are in.
    stoppable = {"should_stop": lambda: batcher.stopping()} if isinstance(policy, HFPolicy) else {}

    def generate(items: Sequence[tuple[list[dict[str, str]], Hashable]]) -> list[str | GenerationFailure]:
        prompts = [prompt for prompt, _ in items]
        max_tokens, temperature = items[0][1]  # type: ignore[misc]  # a batch shares its sampling settings
        prompting = (
            rewriter.prompting
            if max_tokens is None
            else replace(rewriter.prompting, max_new_tokens=max_tokens)
        )
        sampling = {} if temperature is None else {"temperature": temperature}
        return policy.complete(prompts, prompting, **sampling, **stoppable)  # type: ignore[call-arg]

    batcher: Batcher[tuple[list[dict[str, str]], Hashable], str | GenerationFailure] = Batcher(
        generate,
        window_s=max_wait_ms / 1000,
        max_size=max_batch,
        key=lambda item: item[1],
        name="generation",
        max_pending=max_queue,
        timeout_s=timeout_s,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        await asyncio.to_thread(batcher.close, 30)

    app = FastAPI(title="deepretrieval query rewriting", lifespan=lifespan)
    app.state.batcher, app.state.rewriter = batcher, rewriter
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(ClientWatch, body_timeout_s=limits.body_timeout_s)

    def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
        kind = "invalid_request_error" if status < 500 else "server_error"
        body = {"error": {"message": message, "type": kind, "code": status}}
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for item in exc.errors()[:3]:
            where = ".".join(str(p) for p in item["loc"] if p != "body") or "body"
            problems.append(f"{where}: {item['msg']}")
        return error(422, "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)  # FastAPI's HTTPException and the router's 404/405
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), exc.headers)

    class Search(BaseModel):
        model_config = ConfigDict(extra="forbid")
        index: str
        k: int = Field(10, ge=1, le=limits.max_k)

    class RewriteBody(BaseModel):
        model_config = ConfigDict(extra="forbid")
        query: str | None = Field(None, min_length=1, max_length=limits.max_query_chars)
        queries: list[str] | None = Field(None, min_length=1, max_length=limits.max_queries)
        search: Search | None = None

    class Message(BaseModel):
        role: Literal["system", "user", "assistant"]
        content: str = Field(max_length=limits.max_message_chars)

    class ChatBody(BaseModel):
        model_config = ConfigDict(extra="allow")  # clients send top_p, seed, user...: accepted, not used
        model: str | None = None
        messages: list[Message] = Field(min_length=1, max_length=limits.max_messages)
        max_tokens: int | None = Field(None, ge=1, le=limits.max_tokens)
        max_completion_tokens: int | None = Field(None, ge=1, le=limits.max_tokens)
        temperature: float | None = Field(None, ge=0, le=2)
        n: int = 1
        stream: bool = False

    async def generated(prompts: list[list[dict[str, str]]], key: Hashable) -> list[Any]:
        """The completions; a full queue is a 503 with Retry-After, a passed deadline a 504."""
        try:
            return await batcher.gather([(prompt, key) for prompt in prompts])
        except QueueFull as full:
            wait = math.ceil(full.retry_after_s)
            raise HTTPException(
                503,
                f"the server is busy ({batcher.pending} of {max_queue} queries queued): retry after {wait} s",
                headers={"Retry-After": str(wait)},
            ) from None
        except DeadlineExceeded:
            raise HTTPException(
                504,
                f"not taken up within the server's {timeout_s:g} s deadline (it is overloaded): retry later",
                headers={"Retry-After": str(math.ceil(batcher.drain_s()))},
            ) from None
        except Stopped:
            raise HTTPException(503, "the server is shutting down", headers={"Retry-After": "5"}) from None
        except Exception as err:  # noqa: BLE001 - the generation itself failed: a 500, said plainly
            raise HTTPException(500, f"generation failed: {type(err).__name__}: {err}") from None

    @app.post("/rewrite")
    async def rewrite(body: RewriteBody) -> dict[str, Any]:
        if (body.query is None) == (body.queries is None):
            raise HTTPException(422, 'give either "query" (a string) or "queries" (a list of strings)')
        queries = [body.query] if body.query is not None else list(body.queries or [])
        for i, query in enumerate(queries):
            if not query.strip() or len(query) > limits.max_query_chars:
                raise HTTPException(
                    422, f"queries[{i}] must be 1 to {limits.max_query_chars} characters of text"
                )
        retriever = None
        if body.search is not None:
            retriever = indexes.get(body.search.index)
            if retriever is None:
                known = ", ".join(indexes) or "none (start the server with --index NAME=DIR)"
                raise HTTPException(404, f"unknown index {body.search.index!r}; served indexes: {known}")
        completions = await generated([rewriter.messages(q) for q in queries], (None, None))
        rewrites = [rewriter.finish(q, c) for q, c in zip(queries, completions)]
        details = [asdict(r) for r in rewrites]
        if retriever is not None and body.search is not None:
            k = body.search.k
            rankings = await run_in_threadpool(retriever.search, [r.query for r in rewrites], k)
            hits = await run_in_threadpool(hits_json, retriever, rankings)
            for detail, found in zip(details, hits):
                detail["hits"] = found
        if body.query is not None:
            return details[0]
        return {"queries": [r.query for r in rewrites], "results": details}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatBody) -> dict[str, Any]:
        if body.n != 1:
            raise HTTPException(422, "n must be 1: the server returns one completion per request")
        if body.stream:
            raise HTTPException(422, "stream=true is not supported; send stream=false")
        messages = [{"role": m.role, "content": m.content} for m in body.messages]
        key = (body.max_completion_tokens or body.max_tokens, body.temperature)
        (completion,) = await generated([messages], key)
        if isinstance(completion, GenerationFailure):
            raise HTTPException(500, f"generation failed: {completion.reason}")
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": served_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": str(completion)},
                    "finish_reason": "length"
                    if isinstance(completion, Completion) and completion.truncated
                    else "stop",
                }
            ],
        }

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": served_name,
            "prompting": rewriter.describe(),
            "indexes": sorted(indexes),
            "limits": asdict(limits),
            "batching": _batching(batcher.stats()),
        }

    return app


def _batching(stats: dict[str, Any]) -> dict[str, Any]:
    """The batcher's stats under the names ``/health`` has always used."""
    names = {
        "busy_s": "generation_s",
        "max_size": "max_batch",
        "window_ms": "max_wait_ms",
        "max_pending": "max_queue",
    }
    return {names.get(key, key): value for key, value in stats.items()}


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413, whether announced by Content-Length
    or streamed in chunks (counted as it is read)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from fastapi import HTTPException

        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_json(send, 413, f"request body over the limit of {self.max_bytes} bytes")
            return
        received = 0

        async def limited() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, f"request body over the limit of {self.max_bytes} bytes")
            return message

        await self.app(scope, limited, send)


async def _send_json(send: Any, status: int, message: str) -> None:
    import json

    body = json.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "code": status}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
