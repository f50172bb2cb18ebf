"""``deepretrieval eval``: several policies on one task split, one table, significance against a baseline.

``--policy original,untrained,untrained@no-reasoning,runs/x/final,openai:gpt-4o`` evaluates each in turn
(see :mod:`deepretrieval.policies` for the spec strings), prints the table (rows = policies, columns =
the task's metrics and the format-valid rate) with ``†`` where a policy differs significantly from the
baseline (:mod:`deepretrieval.significance`), and with ``--out DIR`` writes ``results.json``,
``results.md``, ``per_query/<policy>.jsonl`` (generated text, parsed answer, metrics of every query) and
``generations/<policy>.jsonl``, the log an interrupted evaluation resumes from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

DEFAULT_BASELINE = "original"


def _key_value(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with a YAML value (``metrics=[ndcg@10]``, ``depth=100``, ``template=keywords``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_eval_args(ev: argparse.ArgumentParser) -> None:
    ev.add_argument("--task", required=True, help="beir | demo | evidence | literature | sql")
    ev.add_argument("--data", default=None, help="data folder (BEIR folder, SQuAD file, Spider/BIRD folder)")
    ev.add_argument("--split", default=None, help="default: the task's own (test for BEIR, dev for Spider)")
    ev.add_argument(
        "--policy",
        default="original",
        help="comma-separated: original | gold | expert | feedback | untrained | MODEL_DIR_OR_HF_ID | openai:MODEL | "
        "predictions:FILE, each optionally with @no-reasoning or @reasoning (default: original)",
    )
    ev.add_argument(
        "--baseline",
        default=None,
        help="the policy the others are tested against (default: original when listed, else the first)",
    )
    ev.add_argument("--retriever", default=None, help="retriever kind (default bm25)")
    ev.add_argument("--index", default=None, help="prebuilt index folder (else built and cached)")
    ev.add_argument(
        "--engine",
        choices=sorted(ENGINES),
        default=None,
        help="literature search engine: local (Boolean engine over the folder's corpus), pubmed, ctgov",
    )
    ev.add_argument(
        "--engine-url",
        default=None,
        help="search API base URL (mirror, proxy or stand-in), e.g. https://eutils.ncbi.nlm.nih.gov/entrez/eutils",
    )
    ev.add_argument(
        "--endpoint",
        default=None,
        help="search an index of a retrieval service (`deepretrieval serve-retriever`), e.g. "
        "http://host:8000; --index then names the served index",
    )
    ev.add_argument("--metrics", default=None, help="comma-separated, e.g. ndcg@10,recall@100,mrr@10")
    ev.add_argument("--dialect", default=None, help="sql: spider | bird (default: detected)")
    ev.add_argument(
        "--sql-compat",
        choices=["keep_distinct", "official"],
        default=None,
        help="sql: keep_distinct (default; Spider's evaluator with --keep_distinct) or official (its default "
        "verdicts: DISTINCT removed before executing)",
    )
    ev.add_argument(
        "--option",
        dest="options",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="a task option, e.g. --option template=keywords (repeatable)",
    )
    ev.add_argument(
        "--reasoning",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="prompt for <think> reasoning (default: as each policy was trained, else yes); a policy's "
        "@reasoning / @no-reasoning suffix wins",
    )
    ev.add_argument(
        "--template", default=None, help="prompt template (default: the policy's, else the task's)"
    )
    ev.add_argument(
        "--query-mode",
        choices=["rewrite", "expand"],
        default=None,
        help="rewrite: the policy's query replaces the original; expand: appended to it (default: the policy's)",
    )
    ev.add_argument("--limit", type=_positive_int, default=None, help="only the first N examples")
    ev.add_argument("--max-new-tokens", type=_positive_int, default=256, help="generation length cap")
    ev.add_argument("--batch-size", type=_positive_int, default=64, help="prompts per generation call")
    ev.add_argument("--openai-base-url", default=None, help="OpenAI-compatible endpoint (or OPENAI_BASE_URL)")
    ev.add_argument("--openai-concurrency", type=_positive_int, default=8, help="requests in flight")
    ev.add_argument("--openai-retries", type=int, default=5, help="retries of a failing request")
    ev.add_argument(
        "--openai-cache", default=None, help="completion cache folder (default: <cache>/completions)"
    )
    ev.add_argument("--resamples", type=_positive_int, default=10_000, help="significance test resamples")
    ev.add_argument("--seed", type=int, default=0, help="significance test seed")
    ev.add_argument(
        "--out",
        default=None,
        help="folder for results.json, results.md, per-query files and the generation logs it resumes from",
    )


def run_eval(args: argparse.Namespace) -> int:
    from deepretrieval.config import TaskConfig
    from deepretrieval.policies import parse_policy_spec
    from deepretrieval.tasks import load_task

    specs = [parse_policy_spec(text) for text in args.policy.split(",")]
    labels = [spec.text for spec in specs]
    duplicated = sorted({label for label in labels if labels.count(label) > 1})
    if duplicated:
        raise ValueError(f"--policy lists {duplicated[0]!r} twice")
    baseline = args.baseline or (DEFAULT_BASELINE if DEFAULT_BASELINE in labels else labels[0])
    if baseline not in labels:
        raise ValueError(f"--baseline {baseline!r} is not one of the --policy entries: {', '.join(labels)}")
    out = _output_folder(args.out) if args.out else None
    loaded = _prepare(specs, args)  # a bad file, model or endpoint setting fails before any work
    options = dict(args.options)
    if args.metrics:
        options["metrics"] = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if args.dialect:
        options["dialect"] = args.dialect
    if args.sql_compat:
        options["compat"] = args.sql_compat
    task = load_task(
        TaskConfig(name=args.task, data=args.data, options=options), retriever=_retriever_config(args)
    )
    try:
        results = _evaluate_all(task, specs, loaded, args, out)
        examples = task.examples(results[0].split)
    finally:
        task.close()
    comparison = _compare(results, baseline, list(task.metrics), args) if len(results) > 1 else None
    from deepretrieval.evaluate import format_table, markdown_report

    print(format_table(results, comparison))
    for result in results:
        if result.failures:
            print(
                f"warning: {result.policy}: {len(result.failures)} examples could not be scored (left out of "
                f"the means); first: {next(iter(result.failures.values()))}",
                file=sys.stderr,
            )
    if out is not None:
        command = command_line(args)
        _write_outputs(out, results, comparison, examples, command)
        _write_text(out / "results.md", markdown_report(results, comparison, command))
        print(f"wrote {out / 'results.json'}, {out / 'results.md'} and {out / 'per_query'}/", file=sys.stderr)
    return 0


ENGINES = {"local": "boolean", "pubmed": "pubmed", "ctgov": "ctgov"}


def _retriever_config(args: argparse.Namespace):
    """The retriever the flags ask for (None: the task's default): a kind with its index, a literature
    engine, or an index of a retrieval service."""
    from deepretrieval.config import RetrieverConfig

    if args.engine and args.retriever:
        raise ValueError("give --engine (literature search) or --retriever, not both")
    kind = ENGINES.get(args.engine, args.engine) if args.engine else args.retriever
    if args.endpoint:  # a retrieval service; --index names one of its indexes
        if kind not in (None, "remote") or args.engine_url:
            raise ValueError(
                "--endpoint searches a retrieval service: drop --retriever/--engine/--engine-url"
            )
        service = {"endpoint": args.endpoint} | ({"index": args.index} if args.index else {})
        return RetrieverConfig(kind="remote", options=service)
    if kind or args.index or args.engine_url:
        engine_options = {"engine_url": args.engine_url} if args.engine_url else {}
        return RetrieverConfig(kind=kind, index=args.index, options=engine_options)
    return None


def _policy_options(args: argparse.Namespace) -> dict[str, object]:
    return {
        "max_new_tokens": args.max_new_tokens,
        "base_url": args.openai_base_url,
        "concurrency": args.openai_concurrency,
        "max_retries": args.openai_retries,
        "cache": args.openai_cache,
    }


def _prepare(specs, args: argparse.Namespace) -> dict[str, object]:
    """Open the cheap policies (baselines, files, endpoints) and check that every model can be had; the
    models themselves load one at a time, when their turn comes."""
    from deepretrieval.default_model import resolve_model
    from deepretrieval.policies import load_policy

    loaded: dict[str, object] = {}
    for spec in specs:
        if _is_local_model(spec.base):
            resolve_model(None if spec.base == "untrained" else spec.base)
        elif spec.base not in loaded and spec.base != "feedback":  # feedback reads the task: opened later
            loaded[spec.base] = load_policy(spec.base, name=spec.text, **_policy_options(args))
    return loaded


def _evaluate_all(task, specs, loaded: dict[str, object], args: argparse.Namespace, out: Path | None) -> list:
    """Evaluate every spec in order; a model named by several specs (variants) is loaded once."""
    from deepretrieval.evaluate import evaluate
    from deepretrieval.policies import load_policy

    results = []
    for index, spec in enumerate(specs):
        if spec.base == "feedback" and spec.base not in loaded:
            from deepretrieval.policies.baselines import Feedback

            loaded[spec.base] = Feedback(task)
        if spec.base not in loaded:
            loaded[spec.base] = load_policy(spec.base, name=spec.text, **_policy_options(args))
        policy = loaded[spec.base]
        results.append(
            evaluate(
                task,
                policy,  # type: ignore[arg-type]
                args.split,
                reasoning=spec.reasoning if spec.reasoning is not None else args.reasoning,
                template=args.template,
                query_mode=args.query_mode,
                limit=args.limit,
                batch_size=args.batch_size,
                label=spec.text,
                log_path=out / "generations" / f"{slug(spec.text)}.jsonl" if out else None,
            )
        )
        if all(later.base != spec.base for later in specs[index + 1 :]):  # free the model early
            from deepretrieval.policies.openai import OpenAIPolicy

            done = loaded.pop(spec.base)
            if isinstance(done, OpenAIPolicy):
                done.close()  # its HTTP session and completion cache
    return results


def _is_local_model(base: str) -> bool:
    return base not in ("original", "gold", "expert", "feedback") and not base.startswith(
        ("openai:", "predictions:")
    )


def _compare(results, baseline: str, metrics: list[str], args: argparse.Namespace):
    from deepretrieval.significance import compare

    per_query = {r.policy: r.per_query for r in results}
    return compare(per_query, baseline, metrics, resamples=args.resamples, seed=args.seed)


def slug(label: str) -> str:
    """A file name for a policy label (``runs/x/final`` -> ``runs_x_final-1a2b3c``), unique per label."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_.")[:60] or "policy"
    return f"{readable}-{hashlib.sha256(label.encode()).hexdigest()[:6]}"


def _output_folder(path: str) -> Path:
    """Check the output folder before any work is done."""
    out = Path(path)
    if out.suffix == ".json" and not out.is_dir():
        raise ValueError(f"--out takes a folder (results.json and results.md are written in it), got {out}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"--out {out}: {parent} is a file, not a folder")
    return out


def _write_outputs(out: Path, results, comparison, examples, command: str) -> None:
    originals = {ex.id: ex.original for ex in examples}
    summaries = []
    for result in results:
        name = f"per_query/{slug(result.policy)}.jsonl"
        lines = []
        for query_id, answer in result.answers.items():
            record = {"id": query_id, "original": originals.get(query_id)}
            if query_id in result.completions:
                record["completion"] = result.completions[query_id]
            record["answer"] = answer
            if result.reasons:
                record["format"] = result.reasons[query_id]
            record["metrics"] = result.per_query.get(query_id)
            if query_id in result.failures:
                record["failure"] = result.failures[query_id]
            lines.append(json.dumps(record, ensure_ascii=False))
        _write_text(out / name, "\n".join(lines) + "\n")
        summaries.append(
            {
                "policy": result.policy,
                "metrics": result.metrics,
                "format_ok": result.format_ok,
                "queries": len(result.per_query),
                "failures": len(result.failures),
                "groups": result.groups,
                "reasoning": result.reasoning if result.reasons else None,  # models only
                "template": result.template,
                "query_mode": result.query_mode,
                "seconds": round(result.seconds, 2),
                "per_query": name,
            }
        )
    payload = {
        "task": results[0].task,
        "split": results[0].split,
        "command": command,
        "policies": summaries,
        "significance": comparison.to_json() if comparison is not None else None,
    }
    _write_text(out / "results.json", json.dumps(payload, indent=1) + "\n")


def _write_text(path: Path, text: str) -> None:
    """Write atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


FLAGS: Sequence[tuple[str, str]] = (
    ("--task", "task"),
    ("--data", "data"),
    ("--split", "split"),
    ("--policy", "policy"),
    ("--baseline", "baseline"),
    ("--retriever", "retriever"),
    ("--index", "index"),
    ("--engine", "engine"),
    ("--engine-url", "engine_url"),
    ("--endpoint", "endpoint"),
    ("--metrics", "metrics"),
    ("--dialect", "dialect"),
    ("--sql-compat", "sql_compat"),
    ("--template", "template"),
    ("--query-mode", "query_mode"),
    ("--limit", "limit"),
    ("--openai-base-url", "openai_base_url"),
)


def command_line(args: argparse.Namespace) -> str:
    """The ``deepretrieval eval`` command that reproduces this evaluation, for the Markdown report: the
    flags that decide the figures (not the ones that only change speed: batch size, concurrency, cache)."""
    words = ["deepretrieval", "eval"]
    for flag, attr in FLAGS:
        if getattr(args, attr) is not None:
            words += [flag, str(getattr(args, attr))]
    if args.reasoning is not None:
        words.append("--reasoning" if args.reasoning else "--no-reasoning")
    for key, value in args.options:
        plain = isinstance(value, str) and yaml.safe_load(value) == value
        words += ["--option", f"{key}={value if plain else json.dumps(value)}"]
    if args.max_new_tokens != 256:
        words += ["--max-new-tokens", str(args.max_new_tokens)]
    if args.resamples != 10_000 or args.seed != 0:
        words += ["--resamples", str(args.resamples), "--seed", str(args.seed)]
    if args.out is not None:
        words += ["--out", str(args.out)]
    return shlex.join(words)
