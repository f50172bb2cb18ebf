"""What shortens GRPO's generation on a CPU: the quickstart's own generate call (its prompts, model, sampling
settings, group shape and precision) against the variants one could switch on, in one run.

Every batch is what TRL hands ``model.generate`` in a quickstart step: ``prompts`` distinct prompts, each
repeated for its group of ``group`` samples, left-padded, sampled at temperature 1 for up to
``max_completion_length`` new tokens. Arms run interleaved on the same batches under the same seed
(``--repeats`` rounds of ``--batches`` batches), so machine load falls on all alike:

- ``generate``: ``model.generate`` as TRL calls it (SDPA attention, dynamic cache, no compilation);
- ``shared-prefill``: each distinct prompt prefilled once and its cache repeated to its group
  (``train/shared_prompt.py``; what ``rl.share_prompt_forward`` now switches on in training too);
- ``static-cache``: ``cache_implementation="static"`` (TRL's ``cache_implementation`` setting);
- ``eager-attention``: the model loaded with ``attn_implementation="eager"`` instead of SDPA;
- ``compiled`` (with ``--compile``): static cache and transformers' automatic ``torch.compile`` of decoding;
  its first call (the compilation) is reported apart.

Per arm: median seconds per batch, the ratio to ``generate`` (>1 is faster), new tokens per batch, and
whether its tokens equal ``generate``'s under the same seed.

    python benchmarks/generation_cpu.py [--batches 4] [--repeats 3] [--compile] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, CompileConfig, GenerationConfig

from deepretrieval.config import RunConfig
from deepretrieval.default_model import resolve_model
from deepretrieval.files import write_json
from deepretrieval.prompting import run_prompting
from deepretrieval.train.data import build_task, prompt_dataset, training_examples
from deepretrieval.train.precision import resolve_precision
from deepretrieval.train.quickstart import quickstart_config
from deepretrieval.train.shared_prompt import generate_with_shared_prefill


def batches(count: int) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], AutoTokenizer, RunConfig]:
    """``count`` generate inputs in TRL's layout from the quickstart's training prompts, the tokenizer and
    the run config."""
    config = quickstart_config(Path(tempfile.mkdtemp()))
    task = build_task(config)
    prompting = run_prompting(config, task)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(config.model))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows = prompt_dataset(
        task,
        training_examples(task, config),
        tokenizer,
        prompting,
        max_prompt_tokens=config.rl.max_prompt_length,
    )["prompt"]
    task.close()
    group = config.rl.num_generations
    prompts = config.rl.per_device_train_batch_size // group
    out = []
    for index in range(count):
        texts = [rows[(index * prompts + i) % len(rows)] for i in range(prompts) for _ in range(group)]
        encoded = tokenizer(
            texts, add_special_tokens=False, padding=True, padding_side="left", return_tensors="pt"
        )
        out.append((encoded["input_ids"], encoded["attention_mask"]))
    return out, tokenizer, config


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=4, help="distinct batches per round")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the batches")
    parser.add_argument("--compile", action="store_true", help="add the compiled-decoding arm (minutes)")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()

    inputs, tokenizer, config = batches(args.batches)
    precision = resolve_precision(config.rl.precision)
    autocast = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if precision.used == "bf16"
        else contextlib.nullcontext
    )
    path = resolve_model(config.model)
    sdpa = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    eager = AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    settings = {
        "max_new_tokens": config.rl.max_completion_length,
        "do_sample": True,
        "temperature": config.rl.temperature,
        "top_p": 1.0,
        "top_k": 0,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    plain = GenerationConfig(**settings, disable_compile=True)
    static = GenerationConfig(**settings, cache_implementation="static", disable_compile=True)
    arms: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "generate": lambda ids, mask: sdpa.generate(
            input_ids=ids, attention_mask=mask, generation_config=plain
        ),
        "shared-prefill": lambda ids, mask: generate_with_shared_prefill(
            sdpa, sdpa.generate, ids, mask, generation_config=plain
        ),
        "static-cache": lambda ids, mask: sdpa.generate(
            input_ids=ids, attention_mask=mask, generation_config=static
        ),
        "eager-attention": lambda ids, mask: eager.generate(
            input_ids=ids, attention_mask=mask, generation_config=plain
        ),
    }
    first_call: dict[str, float] = {}
    if args.compile:
        compile_config = CompileConfig()
        compile_config._compile_all_devices = True  # transformers compiles on GPUs only unless told
        compiled_config = GenerationConfig(
            **settings, cache_implementation="static", compile_config=compile_config
        )
        arms["compiled"] = lambda ids, mask: sdpa.generate(
            input_ids=ids, attention_mask=mask, generation_config=compiled_config
        )

    print(
        f"{len(inputs)} batches of {inputs[0][0].size(0)} rows ({config.rl.num_generations} per prompt), "
        f"prompts padded to {statistics.median(ids.size(1) for ids, _ in inputs):.0f} tokens, up to "
        f"{config.rl.max_completion_length} new; precision {precision.used}; {torch.get_num_threads()} threads"
    )
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    tokens: dict[str, list[int]] = {name: [] for name in arms}
    same: dict[str, bool] = dict.fromkeys(arms, True)
    with torch.no_grad(), autocast():
        for name, arm in arms.items():  # warm-up (and, for ``compiled``, the compilation)
            started = time.perf_counter()
            arm(*inputs[0])
            first_call[name] = time.perf_counter() - started
        for _ in range(args.repeats):
            for index, (ids, mask) in enumerate(inputs):
                reference = None
                for name, arm in arms.items():
                    torch.manual_seed(index)
                    started = time.perf_counter()
                    out = arm(ids, mask)
                    seconds[name].append(time.perf_counter() - started)
                    new = out[:, ids.size(1) :]
                    tokens[name].append(int((new != tokenizer.pad_token_id).sum()))
                    if reference is None:
                        reference = out
                    else:
                        same[name] &= out.shape == reference.shape and bool(torch.equal(out, reference))

    base = statistics.median(seconds["generate"])
    figures = {}
    print(
        f"\n{'arm':<16} {'s/batch':>8} {'speedup':>8} {'tokens':>7} {'same tokens':>12} {'first call s':>13}"
    )
    for name in arms:
        median = statistics.median(seconds[name])
        figures[name] = {
            "seconds_per_batch": round(median, 4),
            "speedup_vs_generate": round(base / median, 3),
            "new_tokens_per_batch": statistics.mean(tokens[name]),
            "same_tokens_as_generate": same[name],
            "first_call_s": round(first_call[name], 2),
        }
        print(
            f"{name:<16} {median:8.3f} {base / median:7.2f}x {statistics.mean(tokens[name]):7.1f} "
            f"{same[name]!s:>12} {first_call[name]:13.2f}"
        )
    if args.json:
        write_json(
            args.json,
            {
                "batches": len(inputs),
                "repeats": args.repeats,
                "rows_per_batch": inputs[0][0].size(0),
                "precision": precision.used,
                "threads": torch.get_num_threads(),
                "arms": figures,
            },
        )


if __name__ == "__main__":
    main()
