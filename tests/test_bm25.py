"""BM25 on bm25s: build, memory-mapped load, analysis, settings, edge-case queries, index CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bm25s
import pytest
import Stemmer

from deepretrieval.retrievers import BadIndexError, DateRange, IndexedRetriever, SettingsError, open_retriever
from deepretrieval.retrievers.bm25 import BM25Retriever, BM25Settings
from deepretrieval.retrievers.bm25.settings import Analyzer
from deepretrieval.retrievers.corpus import Corpus, CorpusError, load_corpus


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture()
def small_index(tmp_path: Path) -> BM25Retriever:
    corpus = _write(
        tmp_path / "docs.jsonl",
        [
            {
                "id": "a",
                "title": "Myocardial infarction",
                "contents": "Aspirin lowers the risk of myocardial infarction.",
            },
            {"id": "b", "contents": "Hypertension is treated with diuretics and beta blockers."},
            {"id": "c", "contents": "Punctured tyres are repaired with a patch kit."},
        ],
    )
    return BM25Retriever.build(load_corpus(corpus), tmp_path / "index", show_progress=False)


def test_search_ranks_matching_document_first_and_stems(small_index: BM25Retriever) -> None:
    (hits,) = small_index.search(["infarctions aspirin"], k=10)
    assert [h.doc_id for h in hits] == ["a"]  # non-matching documents are not returned
    assert hits[0].score > 0
    assert "Aspirin" in small_index.text("a") and small_index.text("a").startswith("Myocardial infarction")


@pytest.mark.parametrize("query", ["", "   ", "the and of is", "zzzqqq", "x" * 100_000])
def test_degenerate_queries_return_empty_results(small_index: BM25Retriever, query: str) -> None:
    assert small_index.search([query], k=5) == [[]]


def test_huge_query_with_real_terms_still_works(small_index: BM25Retriever) -> None:
    (hits,) = small_index.search(["tyre " * 20_000], k=5)
    assert [h.doc_id for h in hits] == ["c"]


def test_k_larger_than_collection_and_empty_batch(small_index: BM25Retriever) -> None:
    assert len(small_index.search(["aspirin hypertension tyres"], k=1000)[0]) == 3
    assert small_index.search([], k=5) == []


def test_saved_index_loads_memory_mapped_with_identical_hits(
    scifact_bm25: BM25Retriever, scifact_task
) -> None:
    queries = [ex.original for ex in scifact_task.examples("test")[:50]]
    loaded = BM25Retriever.load(scifact_bm25.index_dir, mmap=True)
    assert loaded.memory_mapped and not BM25Retriever.load(scifact_bm25.index_dir, mmap=False).memory_mapped
    assert isinstance(loaded, IndexedRetriever) and loaded.kind == "bm25"
    assert loaded.fingerprint == scifact_bm25.fingerprint
    assert loaded.corpus_fingerprint == scifact_bm25.corpus_fingerprint
    assert loaded.settings == BM25Settings()
    assert loaded.search(queries, 100) == scifact_bm25.search(queries, 100)


def test_fingerprint_depends_on_settings_and_content(tmp_path: Path) -> None:
    records = [{"_id": "1", "text": "alpha beta"}, {"_id": "2", "text": "gamma delta"}]
    corpus = load_corpus(_write(tmp_path / "c.jsonl", records))
    base = BM25Retriever.build(corpus, tmp_path / "i1", show_progress=False).fingerprint
    other_k1 = BM25Retriever.build(
        corpus, tmp_path / "i2", BM25Settings(k1=1.2), show_progress=False
    ).fingerprint
    records[1]["text"] = "gamma epsilon"
    changed = load_corpus(_write(tmp_path / "c2.jsonl", records))
    other_text = BM25Retriever.build(changed, tmp_path / "i3", show_progress=False).fingerprint
    assert len({base, other_k1, other_text}) == 3


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not found"):
        load_corpus(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "1", "text": "ok"}\n{oops\n')
    with pytest.raises(CorpusError, match="bad.jsonl:2"):
        load_corpus(bad)
    with pytest.raises(CorpusError, match="needs an id"):
        load_corpus(_write(tmp_path / "noid.jsonl", [{"text": "x"}]))
    with pytest.raises(BadIndexError, match="no deepretrieval index.*index build"):
        BM25Retriever.load(tmp_path)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"k1": -1}, "k1: Input should be greater than or equal to 0"),
        ({"k1": float("nan")}, "k1: Input should be a finite number"),
        ({"b": float("inf")}, "b: Input should be a finite number"),
        ({"b": 1.5}, "b: Input should be less than or equal to 1"),
        ({"k1": "high"}, "k1: Input should be a valid number"),
        ({"k_1": 1.2}, "unknown key 'k_1' \\(valid: k1, b, method, stemmer, stopwords\\)"),
        ({"method": "bm26"}, "method: Input should be 'lucene'"),
        ({"stemmer": "klingon"}, "unknown stemmer; available: arabic"),
        ({"stopwords": "klingon"}, "unknown stop-word list"),
    ],
)
def test_settings_refuse_bad_values_in_one_line(options: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        BM25Settings(**options)
    assert "\n" not in str(caught.value)


def test_settings_are_frozen_values() -> None:
    settings = BM25Settings(k1=1.2)
    assert settings == BM25Settings(k1=1.2) and hash(settings) == hash(BM25Settings(k1=1.2))
    with pytest.raises(ValueError, match="frozen"):
        settings.k1 = 2.0  # type: ignore[misc]


def test_analyze_gives_the_scored_terms(small_index: BM25Retriever, tmp_path: Path) -> None:
    assert small_index.analyze("The runners are running to the runner") == ["runner", "run", "runner"]
    assert small_index.analyze("Infarctions") == small_index.analyze("infarction") == ["infarct"]
    assert small_index.analyze("the and of") == []
    plain = BM25Retriever.build(
        Corpus(["1"], ["Running dogs"]),
        tmp_path / "plain",
        BM25Settings(stemmer=None, stopwords=None),
        show_progress=False,
    )
    assert plain.analyze("The running dogs") == ["the", "running", "dogs"]


@pytest.mark.parametrize("stopwords, stemmer", [("en", "english"), (None, None), ("de", "german")])
def test_the_search_analysis_equals_bm25s_tokenize(scifact_dir: Path, stopwords, stemmer) -> None:
    """Indexing analyses with bm25s.tokenize, search and the reward with our Analyzer: the same terms."""
    texts = [json.loads(line)["text"] for line in (scifact_dir / "corpus.jsonl").open()][:2000]
    texts += ["", "The THE the", "x  é café naïve 3 33 a-b c_d", "Running runners ran; RUNS!"]
    settings = BM25Settings(stopwords=stopwords, stemmer=stemmer)
    expected = bm25s.tokenize(
        texts,
        stopwords=stopwords or [],
        stemmer=Stemmer.Stemmer(stemmer) if stemmer else None,
        return_ids=False,
        show_progress=False,
    )
    assert Analyzer(settings)(texts) == expected


def test_date_ranges_are_refused_not_ignored(small_index: BM25Retriever) -> None:
    with pytest.raises(ValueError, match="bm25 retriever cannot filter by publication date"):
        small_index.search(["aspirin"], 5, dates=[DateRange(end="2020/01/01")])
    with pytest.raises(ValueError, match="one range \\(or None\\) per query"):
        small_index.search(["aspirin", "tyres"], 5, dates=[None])
    plain = small_index.search(["aspirin", "tyres"], 5)
    assert small_index.search(["aspirin", "tyres"], 5, dates=[None, DateRange()]) == plain


def test_corpus_of_stop_words_only_is_refused(tmp_path: Path) -> None:
    corpus = Corpus(["1", "2"], ["the and of", "it is a"])
    with pytest.raises(ValueError, match="no term to index: every document is empty or stop words only"):
        BM25Retriever.build(corpus, tmp_path / "index", show_progress=False)
    assert not (tmp_path / "index" / "index.json").exists()


def test_open_retriever_builds_once_then_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPRETRIEVAL_CACHE", str(tmp_path / "cache"))
    corpus = _write(tmp_path / "c.jsonl", [{"_id": "1", "text": "alpha beta"}, {"_id": "2", "text": "gamma"}])
    first = open_retriever("bm25", corpus=corpus, show_progress=False)
    built = [p for p in (tmp_path / "cache" / "indexes").iterdir() if p.is_dir()]
    second = open_retriever("bm25", corpus=corpus, show_progress=False)
    assert len(built) == 1 and second.fingerprint == first.fingerprint


def test_index_build_cli(tmp_path: Path) -> None:
    corpus = _write(
        tmp_path / "c.jsonl",
        [{"_id": str(i), "text": f"document number {i} about topic{i % 3}"} for i in range(50)],
    )
    out = tmp_path / "idx"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepretrieval.cli",
            "index",
            "build",
            "--corpus",
            str(corpus),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "indexed 50 documents" in proc.stdout
    loaded = BM25Retriever.load(out)
    hits = loaded.search(["topic1"], 100)[0]
    assert sorted(int(h.doc_id) for h in hits) == [i for i in range(50) if i % 3 == 1]
    assert loaded.settings == BM25Settings()


def test_index_build_cli_passes_settings(tmp_path: Path) -> None:
    corpus = _write(
        tmp_path / "c.jsonl", [{"_id": "1", "text": "The cats ran"}, {"_id": "2", "text": "dogs"}]
    )
    out = tmp_path / "idx"
    command = [sys.executable, "-m", "deepretrieval.cli", "index", "build", "--corpus", str(corpus)]
    subprocess.run(
        [*command, "--out", str(out), "--k1", "1.2", "--stemmer", "none", "--stopwords", "none"],
        capture_output=True,
        check=True,
    )
    loaded = BM25Retriever.load(out)
    assert loaded.settings == BM25Settings(k1=1.2, stemmer=None, stopwords=None)
    assert loaded.analyze("The cats") == ["the", "cats"]
    bad = subprocess.run(
        [*command, "--out", str(out), "--k1", "nan"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: BM25Settings: k1: Input should be a finite number")
    assert bad.stderr.count("\n") == 1


def test_an_index_is_the_same_whatever_the_hash_seed(tmp_path) -> None:
    """bm25s numbers terms in set order (Python's per-process string hashing); we sort the vocabulary, so
    two builds of one corpus are byte-identical and equal scores tie-break the same way in every process."""
    import subprocess
    import sys

    corpus = tmp_path / "corpus.jsonl"
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    corpus.write_text(
        "".join(f'{{"_id": "d{i}", "text": "{words[i % 8]} {words[(i * 3) % 8]}"}}\n' for i in range(40))
    )
    code = (
        "import sys; from deepretrieval.retrievers import load_corpus; "
        "from deepretrieval.retrievers.bm25 import BM25Retriever; "
        "r = BM25Retriever.build(load_corpus(sys.argv[1]), sys.argv[2], show_progress=False); "
        "print([h.doc_id for h in r.search(['alpha beta gamma'], 12)[0]])"
    )
    outputs = []
    for seed in ("1", "2", "3"):
        out = tmp_path / f"index-{seed}"
        env = {**__import__("os").environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-c", code, str(corpus), str(out)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        vocab = next(out.glob("v*/bm25.vocab.json")).read_bytes()
        outputs.append((proc.stdout, vocab))
    assert outputs[0] == outputs[1] == outputs[2]
