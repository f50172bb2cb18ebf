"""The RL loop is right, not just busy: GRPO must raise the mean reward of a tiny random-init model, clearly.

The collection is built so that one word in the query retrieves the relevant document: every training
query contains "fever", only the relevant document does, and the other documents hold the other words the
tiny model can emit. A completion is rewarded by the real pipeline (parse, BM25, NDCG@10, format terms);
starting from the model's random choice among ten tokens, the mean reward must rise within a few dozen steps
by several times its own step-to-step noise, for two seeds.

The margin is computed from each run's data: the mean reward of the last steps minus that of the first
steps, against the standard deviation of the first steps' rewards. With the advantage sign flipped, the
completion mask inverted or shifted by one token, or the rewards shuffled against their samples, the same
runs end with every completion malformed (mean reward -2), far below this margin (numbers in issue #8).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from _index_helpers import task_index
from _train_helpers import write_tiny_model
from deepretrieval.config import parse_config
from deepretrieval.report import read_metrics
from deepretrieval.train.grpo import train

WORD = "fever"  # in every training query and in the relevant document only
OTHER_WORDS = ("laptop", "piano", "garden")  # each in one irrelevant document
UNSEEN_WORDS = ("violin", "banana", "rocket", "castle")  # in no document: they retrieve nothing
QUERY_TAILS = ("please", "now", "help", "today")
STEPS, FIRST, LAST = 48, 5, 10
MARGIN = 3.0  # the rise must exceed this many standard deviations of the first steps' mean rewards


def write_one_word_collection(folder: Path) -> Path:
    """A BEIR folder: four training queries "fever <tail>", all judged relevant to the one "fever" document."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    documents = {"relevant": f"{WORD} lorem ipsum dolor"}
    documents |= {f"other-{word}": f"{word} lorem ipsum dolor" for word in OTHER_WORDS}
    documents |= {f"filler-{i}": "ipsum dolor sit amet" for i in range(4)}
    with (folder / "corpus.jsonl").open("w") as out:
        for doc_id, text in documents.items():
            out.write(json.dumps({"_id": doc_id, "title": "", "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as out:
        for i, tail in enumerate(QUERY_TAILS):
            out.write(json.dumps({"_id": f"q{i}", "text": f"{WORD} {tail}"}) + "\n")
    qrels = "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\trelevant\t1\n" for i in range(len(QUERY_TAILS)))
    for split in ("train", "test"):
        (folder / "qrels" / f"{split}.tsv").write_text(qrels)
    return folder


def reward_curve(root: Path, seed: int) -> list[dict]:
    """Train the tiny model for STEPS GRPO steps (4 prompts x 8 completions a step); the logged steps."""
    data = write_one_word_collection(root / "data")
    # </answer> a little likelier than a word and end-of-turn rarer, generation ending at </answer>: about
    # half the first completions are well-formed, and one in ten contains the word.
    model = write_tiny_model(
        root / "model",
        seed=seed,
        words=(WORD, *OTHER_WORDS, *UNSEEN_WORDS),
        close_bias=0.2,
        eos_bias=-0.5,
        stop_at_close=True,
    )
    raw = {
        "task": {
            "name": "beir",
            "data": str(data),
            "options": {"metrics": ["ndcg@10"]},
        },
        "retriever": {"index": task_index("beir", data, root / "index")},
        "model": str(model),
        "prompting": {"template": "keywords", "reasoning": False, "prefill": "<answer>"},
        "rl": {
            "num_generations": 8,
            "per_device_train_batch_size": 32,
            "max_completion_length": 6,
            "learning_rate": 5e-4,
            "beta": 0.0,
            "temperature": 1.0,
            "max_steps": STEPS,
            "seed": seed,
        },
        "logging": {"backend": "none"},
        "checkpointing": {"save_steps": 10 * STEPS, "keep": 1},
        "output_dir": str(root / "run"),
    }
    return read_metrics(train(parse_config(raw)))


@pytest.mark.parametrize("seed", [0, 1])
def test_grpo_raises_the_mean_reward_far_above_its_noise(tmp_path, seed):
    steps = reward_curve(tmp_path, seed)
    assert [s["step"] for s in steps] == list(range(1, STEPS + 1))
    rewards = [s["reward"] for s in steps]
    first, last = rewards[:FIRST], rewards[-LAST:]
    gain = statistics.mean(last) - statistics.mean(first)
    noise = statistics.stdev(first)
    curve = " ".join(f"{r:.2f}" for r in rewards)
    assert gain > MARGIN * noise, f"gain {gain:.3f} <= {MARGIN} x noise {noise:.3f}; rewards: {curve}"
    # the reward rose because the policy retrieves the relevant document, not through the format terms alone
    ndcg = [s["task/ndcg@10"] for s in steps]
    assert statistics.mean(ndcg[-LAST:]) > statistics.mean(ndcg[:FIRST]) + 0.5, ndcg
