"""``deepretrieval eval``: several policies on one task split, one table, significance against a baseline.

The flags are aliases of run-config keys (``--split`` is ``task.eval_split``, ``--policy`` is
``eval.policies``...), so ``eval --config run.yaml --set KEY=VALUE`` reads the same schema as ``train``
and any key a YAML can set (a BM25 ``k1``, a dense model) can be set here. Order: the config file, then
the flags, then ``--option`` and ``--set``.

``--policy original,untrained,untrained@no-reasoning,runs/x/final,openai:gpt-4o`` evaluates each in turn
(see :mod:`deepretrieval.policies`), prints the table with ``†`` where a policy differs significantly from
the baseline, and with ``--out DIR`` writes ``results.json``, ``results.md``, ``per_query/<policy>.jsonl``,
``runs/<policy>.run`` (TREC run files), ``plots/*.png`` and ``generations/<policy>.jsonl`` (the log an
interrupted evaluation resumes from).

Exit status 1 (after the table and the files) when a policy had no example judged, or more failed examples
than ``--max-failures``: a mean over what happened to succeed must not pass for a result.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from deepretrieval.cli._options import Alias, add_set, comma_list, given, key_value, positive_int

ENGINES = {"local": "boolean", "pubmed": "pubmed", "ctgov": "ctgov"}
ALIASES = (
    Alias(
        "--task",
        "task.name",
        "beir | demo | evidence | literature | sql (default: the --config file's; required without one)",
    ),
    Alias(
        "--data",
        "task.data",
        "data folder or file (BEIR folder, SQuAD file, Spider/BIRD folder; default: the --config file's, none for demo)",
    ),
    Alias("--split", "task.eval_split", "the split to evaluate (default: the task's own: test, else dev)"),
    Alias(
        "--policy",
        "eval.policies",
        "comma-separated: original | gold | expert | feedback | untrained | MODEL_DIR_OR_HF_ID | "
        "openai:MODEL | predictions:FILE, each optionally with @no-reasoning or @reasoning (default: original)",
        type=comma_list,
    ),
    Alias(
        "--baseline",
        "eval.baseline",
        "the policy the others are tested against (default: original, else the first)",
    ),
    Alias("--retriever", "retriever.kind", "retriever kind (default: the task's, bm25 for most)"),
    Alias("--index", "retriever.index", "prebuilt index folder (default: built from the corpus and cached)"),
    Alias(
        "--engine",
        "retriever.kind",
        "literature search engine: local (Boolean engine over the folder's corpus), pubmed, ctgov (default: local)",
        choices=sorted(ENGINES),
    ),
    Alias(
        "--engine-url",
        "retriever.options.engine_url",
        "search API base URL: a mirror, proxy or stand-in (default: the engine's public API)",
    ),
    Alias(
        "--endpoint",
        "retriever.options.endpoint",
        "search an index of a retrieval service (`deepretrieval serve-retriever`), e.g. http://host:8000; "
        "--index then names the served index (default: none, search in this process)",
    ),
    Alias(
        "--metrics",
        "task.options.metrics",
        "comma-separated: ndcg@10, recall@100, mrr@10, hits@20, P@5, or any ir_measures measure (map, RR, "
        "Judged@10...) (default: the task's, ndcg@10,recall@100 for beir)",
        type=comma_list,
    ),
    Alias(
        "--prompting",
        "prompting.preset",
        "a prompting preset, e.g. seed:pubmed: the paper's prompt, prefill and format rules for that dataset "
        "(default: the policy's card; DeepRetrieval/* checkpoints have built-in ones)",
    ),
    Alias("--template", "prompting.template", "prompt template (default: the policy's, else the task's)"),
    Alias(
        "--reasoning",
        "prompting.reasoning",
        "prompt for <think> reasoning (default: as each policy was trained, else no); a policy's "
        "@reasoning / @no-reasoning suffix wins",
        boolean=True,
    ),
    Alias(
        "--query-mode",
        "prompting.query_mode",
        "rewrite: the policy's query replaces the original; expand: appended to it (default: the policy's)",
        choices=("rewrite", "expand"),
    ),
    Alias(
        "--max-new-tokens",
        "prompting.max_new_tokens",
        "generation cap (default: the policy's, else 256 with reasoning, 64 without)",
        type=positive_int,
    ),
    Alias("--limit", "eval.limit", "only the first N examples (default: all)", type=positive_int),
    Alias("--batch-size", "eval.batch_size", "prompts per generation call (default 64)", type=positive_int),
    Alias(
        "--openai-base-url", "eval.openai.base_url", "OpenAI-compatible endpoint (default: OPENAI_BASE_URL)"
    ),
    Alias(
        "--openai-concurrency", "eval.openai.concurrency", "requests in flight (default 8)", type=positive_int
    ),
    Alias("--openai-retries", "eval.openai.retries", "retries of a failing request (default 5)", type=int),
    Alias("--openai-cache", "eval.openai.cache", "completion cache folder (default: <cache>/completions)"),
    Alias("--resamples", "eval.resamples", "significance test resamples (default 10000)", type=positive_int),
    Alias("--seed", "eval.seed", "significance test seed (default 0)", type=int),
    Alias(
        "--max-failures",
        "eval.max_failures",
        "most examples per policy that may fail to be judged (a search or endpoint that kept failing) "
        "before eval exits 1 (default: no limit; a policy with no judged example always exits 1)",
        type=int,
    ),
    Alias(
        "--out",
        "eval.out",
        "folder for results.json, results.md, per-query files, TREC run files (runs/), plots and the "
        "generation logs it resumes from (default: none, print the table only)",
    ),
)
SPEED_ONLY = frozenset({"--batch-size", "--openai-concurrency", "--openai-cache"})
"""Flags that change how fast an evaluation runs, not its figures (left out of the reproducing command)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=None,
        help="a run config YAML, overridden by the flags and --set (default: none, the flags alone)",
    )
    for alias in ALIASES:
        alias.add(parser)
    parser.add_argument(
        "--option",
        dest="options",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="a task option, e.g. --option dialect=bird (repeatable) [task.options.KEY]",
    )
    add_set(parser)


def build_config(args: argparse.Namespace):
    """The run config the flags describe: the ``--config`` file (if any), then the flags, then
    ``--option`` and ``--set``."""
    from deepretrieval.config import parse_config, read_config, set_value

    raw: Any = read_config(args.config) if args.config else {}
    if not isinstance(raw, dict):
        return parse_config(raw, source=args.config)  # says what is wrong with it
    flags = {alias.flag: value for alias, value in given(ALIASES, args)}
    if "--engine" in flags and "--retriever" in flags:
        raise ValueError("give --engine (literature search) or --retriever, not both")
    if "--endpoint" in flags:  # a retrieval service; --index names one of its indexes
        if flags.get("--retriever", "remote") != "remote" or "--engine" in flags or "--engine-url" in flags:
            raise ValueError(
                "--endpoint searches a retrieval service: drop --retriever/--engine/--engine-url"
            )
        set_value(raw, "retriever.kind", "remote")
        if "--index" in flags:
            set_value(raw, "retriever.options.index", flags.pop("--index"))
    for alias, value in given(ALIASES, args):
        if alias.flag in flags:
            set_value(raw, alias.key, ENGINES[value] if alias.flag == "--engine" else value)
    for key, value in args.options:
        set_value(raw, f"task.options.{key}", value)
    return parse_config(raw, args.overrides, source=args.config or "eval flags")


def command_line(args: argparse.Namespace) -> str:
    """The ``deepretrieval eval`` command that reproduces this evaluation, for the Markdown report: the
    config file and every flag that decides the figures (not the ones that only change speed)."""
    words = ["deepretrieval", "eval"]
    if args.config:
        words += ["--config", args.config]
    for alias, value in given(ALIASES, args):
        if alias.flag in SPEED_ONLY:
            continue
        if alias.boolean:
            words.append(alias.flag if value else f"--no-{alias.flag[2:]}")
        else:
            words += [alias.flag, ",".join(value) if isinstance(value, list) else str(value)]
    for key, value in args.options:
        words += ["--option", f"{key}={_yaml(value)}"]
    for assignment in args.overrides:
        words += ["--set", assignment]
    return shlex.join(words)


def _yaml(value: object) -> str:
    import json

    import yaml

    return value if isinstance(value, str) and yaml.safe_load(value) == value else json.dumps(value)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from deepretrieval.evaluation import format_table
    from deepretrieval.evaluation.outputs import check_output_folder, write_outputs
    from deepretrieval.evaluation.suite import evaluate_policies, policy_specs
    from deepretrieval.evaluation.tables import failure_summary
    from deepretrieval.tasks import load_task

    config = build_config(args)
    policy_specs(config)  # a bad list or baseline fails before any work
    out = check_output_folder(config.eval.out) if config.eval.out else None
    task = load_task(config.task, retriever=config.retriever)
    try:
        suite = evaluate_policies(
            config, task, logs=Path(out) / "generations" if out else None, keep_rankings=out is not None
        )
    finally:
        task.close()
    print(format_table(suite.results, suite.comparison))
    for result in suite.results:
        if result.prompting is not None:
            print(f"prompting of {result.policy}: {result.prompting.describe()}")
        if result.failures:
            print(f"warning: {result.policy}: {failure_summary(result)}", file=sys.stderr)
    if out is not None:
        for message in write_outputs(out, suite, command_line(args)):
            print(message, file=sys.stderr)
    problem = suite.failure_problem(config.eval.max_failures)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0
