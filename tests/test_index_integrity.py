"""Index folders are never used torn or mismatched: rebuilds under a live reader, builders killed with
SIGKILL at random moments, corrupted and truncated files, an index of another corpus, bad destinations."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from deepretrieval.cli import main
from deepretrieval.retrievers import (
    BadIndexError,
    Corpus,
    IndexMismatchError,
    corpus_fingerprint,
    load_corpus,
    open_retriever,
)
from deepretrieval.retrievers.bm25 import BM25Retriever, BM25Settings
from deepretrieval.retrievers.bm25.build import weight_ceiling
from deepretrieval.retrievers.corpus import known_fingerprint
from deepretrieval.retrievers.storage import index_store

QUERIES = [f"w{i} w{i + 7} w{(i * 13) % 400}" for i in range(20)]
HINT = "rebuild it with `deepretrieval index build --corpus"


def _corpus(seed: int, size: int = 1500) -> Corpus:
    """Synthetic documents of 30 words out of 400; another seed gives other rankings for QUERIES."""
    rng = random.Random(seed)
    texts = [" ".join(f"w{rng.randrange(400)}" for _ in range(30)) for _ in range(size)]
    return Corpus([f"d{i}" for i in range(size)], texts)


def _write(path: Path, corpus: Corpus) -> Path:
    path.write_text(
        "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in zip(corpus.ids, corpus.texts))
    )
    return path


def _expected(retriever: BM25Retriever) -> dict:
    rankings = [r.doc_ids for r in retriever.search(QUERIES, 10)]
    doc = rankings[0][0]
    return {"rankings": rankings, "doc": doc, "text": retriever.text(doc)}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Corpus, dict]]:
    """Two collections with the same ids and other texts, keyed by corpus fingerprint, with the rankings
    and a text that an index of each must give."""
    folder = tmp_path_factory.mktemp("reference")
    found = {}
    for seed in (1, 2):
        corpus = _corpus(seed)
        retriever = BM25Retriever.build(corpus, folder / str(seed), show_progress=False)
        found[corpus.fingerprint] = (corpus, _expected(retriever))
    first, second = (expected["rankings"] for _, expected in found.values())
    assert first != second
    return found


def _check(retriever: BM25Retriever, corpora: dict) -> None:
    """The retriever gives exactly the results of the corpus its manifest names."""
    assert _expected(retriever) == corpora[retriever.corpus_fingerprint][1]


def _version(index_dir: Path) -> Path:
    return index_dir / json.loads((index_dir / "index.json").read_text())["version"]


READER = r"""
import json, sys
from pathlib import Path
from deepretrieval.retrievers.bm25 import BM25Retriever

index_dir, expected_file, stop_file = sys.argv[1:4]
expected = json.loads(Path(expected_file).read_text())
queries = expected.pop("queries")

def results(retriever):
    rankings = [r.doc_ids for r in retriever.search(queries, 10)]
    return {"rankings": rankings, "doc": rankings[0][0], "text": retriever.text(rankings[0][0])}

held = BM25Retriever.load(index_dir)  # mapped once, searched while the folder is rebuilt
held_expected = expected[held.corpus_fingerprint]
print("ready", flush=True)
rounds = 0
while rounds < 20 or not Path(stop_file).exists():
    assert results(held) == held_expected, f"round {rounds}: the mapped index changed under the reader"
    fresh = BM25Retriever.load(index_dir)  # loads race the publication of new versions
    assert results(fresh) == expected[fresh.corpus_fingerprint], f"round {rounds}: torn load"
    fresh.close()
    rounds += 1
print("rounds", rounds, flush=True)
"""


def test_rebuild_in_place_under_a_reader_keeps_its_results(corpora: dict, tmp_path: Path) -> None:
    (first, _), (second, _) = corpora.values()
    index = tmp_path / "index"
    BM25Retriever.build(first, index, show_progress=False).close()
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({"queries": QUERIES, **{fp: exp for fp, (_, exp) in corpora.items()}}))
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(index), str(expected), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "ready", reader.stderr
        for round_ in range(8):  # other texts under the same names, then the first ones again
            BM25Retriever.build(second if round_ % 2 == 0 else first, index, show_progress=False).close()
        stop.touch()
        out, err = reader.communicate(timeout=300)
    finally:
        reader.kill()
    assert reader.returncode == 0, f"reader exited with {reader.returncode} (-7 is SIGBUS): {err[-2000:]}"
    assert out.startswith("rounds")
    _check(BM25Retriever.load(index), corpora)


def _kill_during(build, delay: float) -> None:
    """Run ``build`` in a forked child and SIGKILL it after ``delay`` seconds (if it is still running)."""
    pid = os.fork()
    if pid == 0:  # the child: no pytest teardown, no flushing of the parent's buffers
        try:
            build()
        finally:
            os._exit(0)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def test_builder_killed_at_random_moments_leaves_a_consistent_index(corpora: dict, tmp_path: Path) -> None:
    (first, _), (second, _) = corpora.values()
    index = tmp_path / "index"
    started = time.perf_counter()
    BM25Retriever.build(first, index, show_progress=False).close()
    duration = time.perf_counter() - started
    rng = random.Random(11)
    for attempt in range(14):
        corpus = second if attempt % 2 == 0 else first
        _kill_during(
            lambda corpus=corpus: BM25Retriever.build(corpus, index, show_progress=False),
            rng.uniform(0, 1.3 * duration),
        )
        _check(BM25Retriever.load(index), corpora)  # the old index or the new one, never a mix
    BM25Retriever.build(first, index, show_progress=False).close()
    names = sorted(path.name for path in index.iterdir())
    assert names[:2] == [".lock", "index.json"] and len(names) == 3  # leftovers of killed builds removed


def test_killed_cache_build_is_rebuilt_on_next_open(
    corpora: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (first, _), _ = corpora.values()
    path = _write(tmp_path / "corpus.jsonl", first)
    started = time.perf_counter()
    BM25Retriever.build(load_corpus(path), tmp_path / "timing", show_progress=False).close()
    duration = time.perf_counter() - started
    rng = random.Random(5)
    for attempt in range(6):
        monkeypatch.setenv("DEEPRETRIEVAL_CACHE", str(tmp_path / f"cache{attempt}"))
        _kill_during(
            lambda: open_retriever("bm25", corpus=path, show_progress=False), rng.uniform(0, duration)
        )
        _check(open_retriever("bm25", corpus=path, show_progress=False), corpora)


def _randomise(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def _randomise_body(path: Path) -> None:
    array = np.load(path, mmap_mode="r+")  # header kept, every value replaced
    array[:] = np.random.default_rng(0).integers(-(2**31), 2**31 - 1, size=array.shape, dtype=np.int64)
    array.flush()


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        ("bm25.indices.npy", _randomise, "bm25.indices.npy is not a readable .npy array"),
        ("bm25.indices.npy", _randomise_body, "bm25.indices.npy holds document rows outside 0..1499"),
        ("bm25.indptr.npy", _randomise_body, "bm25.indptr.npy is not a valid row index"),
        ("docs.jsonl", _truncate, "docs.jsonl is .* bytes, the manifest says .* \\(truncated\\?\\)"),
        ("docs.ids.json", _truncate, "docs.ids.json is .* bytes"),
        ("docs.offsets.npy", _truncate, "docs.offsets.npy is .* bytes"),
        ("bm25.vocab.json", Path.unlink, "bm25.vocab.json is missing"),
    ],
)
def test_damaged_files_are_refused_in_one_line(
    corpora: dict, tmp_path: Path, name: str, damage, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (first, _), _ = corpora.values()
    index = BM25Retriever.build(first, tmp_path / "index", show_progress=False).index_dir
    damage(_version(index) / name)
    with pytest.raises(BadIndexError, match=f"index {index} is damaged: {name} (is|does)"):
        BM25Retriever.load(index)  # a small file: its checksum (or size) is checked on every load
    monkeypatch.setattr(index_store, "CHECKSUM_ON_LOAD", 0)  # as a large file: the readers' checks find it
    with pytest.raises(BadIndexError, match=f"index {index} is damaged: {message}.*; {HINT}") as caught:
        BM25Retriever.load(index)
    assert "\n" not in str(caught.value)


def test_same_size_damage_is_found_by_a_checksum(
    corpora: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (first, _), _ = corpora.values()
    index = BM25Retriever.build(first, tmp_path / "index", show_progress=False).index_dir
    _randomise(_version(index) / "docs.jsonl")  # offsets and sizes still agree: only the bytes changed
    with pytest.raises(BadIndexError, match="docs.jsonl does not match its checksum"):
        BM25Retriever.load(index)  # a small file: checked on every load
    monkeypatch.setattr(index_store, "CHECKSUM_ON_LOAD", 0)  # a large one: checked by size only...
    BM25Retriever.load(index).close()
    with pytest.raises(BadIndexError, match="docs.jsonl does not match its checksum"):
        BM25Retriever.load(index, verify=True)  # ... unless asked


def test_empty_manifest_of_a_given_index_is_refused_not_rebuilt(corpora: dict, tmp_path: Path) -> None:
    (first, _), _ = corpora.values()
    path = _write(tmp_path / "corpus.jsonl", first)
    index = tmp_path / "index"
    BM25Retriever.build(first, index, show_progress=False).close()
    (index / "index.json").write_bytes(b"")
    before = sorted(p.name for p in index.iterdir())
    with pytest.raises(
        BadIndexError, match=f"index {index} is unusable: index.json is not valid JSON \\(0 bytes\\)"
    ):
        open_retriever("bm25", corpus=path, index_dir=index)
    assert sorted(p.name for p in index.iterdir()) == before and not (index / "index.json").read_bytes()


def test_empty_manifest_of_a_cached_index_is_rebuilt(
    corpora: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (first, _), _ = corpora.values()
    monkeypatch.setenv("DEEPRETRIEVAL_CACHE", str(tmp_path / "cache"))
    path = _write(tmp_path / "corpus.jsonl", first)
    cached = open_retriever("bm25", corpus=path, show_progress=False)
    (cached.index_dir / "index.json").write_bytes(b"")
    _check(cached, corpora)  # the open retriever keeps its mapped version
    again = open_retriever("bm25", corpus=path, show_progress=False)
    assert again.index_dir == cached.index_dir
    _check(again, corpora)


def test_index_of_another_corpus_is_refused(scifact_dir: Path, tmp_path: Path, capsys) -> None:
    full = load_corpus(scifact_dir)
    half = Corpus(full.ids[: len(full) // 2], full.texts[: len(full) // 2])
    index = BM25Retriever.build(half, tmp_path / "half", show_progress=False).index_dir
    with pytest.raises(
        IndexMismatchError, match=f"index {index} was built from another corpus than"
    ) as caught:
        open_retriever("bm25", corpus=scifact_dir, index_dir=index)
    assert "\n" not in str(caught.value) and f"--corpus {scifact_dir / 'corpus.jsonl'} --out {index}" in str(
        caught.value
    )
    argv = ["eval", "--task", "beir", "--data", str(scifact_dir), "--index", str(index), "--limit", "2"]
    assert main(argv) == 2
    assert "was built from another corpus" in capsys.readouterr().err
    with pytest.raises(IndexMismatchError, match="was built with k1=0.9, not 1.2"):
        open_retriever("bm25", index_dir=index, k1=1.2)
    open_retriever("bm25", index_dir=index, k1=0.9, threads=1).close()  # as built: accepted


def test_corpus_fingerprint_follows_the_documents_and_is_remembered_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPRETRIEVAL_CACHE", str(tmp_path / "cache"))
    corpus = _corpus(4, size=50)
    path = _write(tmp_path / "c.jsonl", corpus)
    assert known_fingerprint(path) is None
    value = corpus_fingerprint(path)
    assert value == corpus.fingerprint == corpus_fingerprint(Corpus(list(corpus.ids), list(corpus.texts)))
    assert known_fingerprint(path) == value and known_fingerprint(tmp_path) is None
    copy = _write(tmp_path / "copy.jsonl", corpus)  # same documents, another file: same fingerprint
    assert corpus_fingerprint(copy) == value
    edited = Corpus(corpus.ids, corpus.texts[:-1] + [corpus.texts[-1].replace("w", "x", 1)])
    before = path.stat().st_mtime_ns
    _write(path, edited)  # same size, new contents: the file's stamp changed, so no stale answer
    os.utime(path, ns=(before + 10**9, before + 10**9))  # as an edit a second later (clock ticks are coarse)
    assert path.stat().st_size == copy.stat().st_size
    assert known_fingerprint(path) is None and corpus_fingerprint(path) == edited.fingerprint != value


def test_concurrent_builders_of_one_cache_agree(
    corpora: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (first, _), _ = corpora.values()
    monkeypatch.setenv("DEEPRETRIEVAL_CACHE", str(tmp_path / "cache"))
    path = _write(tmp_path / "corpus.jsonl", first)
    children = []
    for child in range(3):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                retriever = open_retriever("bm25", corpus=path, show_progress=False)
                (tmp_path / f"out{child}.json").write_text(json.dumps(_expected(retriever)))
                code = 0
            finally:
                os._exit(code)
        children.append(pid)
    assert all(os.waitpid(pid, 0)[1] == 0 for pid in children)
    results = [json.loads((tmp_path / f"out{child}.json").read_text()) for child in range(3)]
    assert results == [corpora[first.fingerprint][1]] * 3
    (folder,) = [p for p in (tmp_path / "cache" / "indexes").iterdir() if p.is_dir()]
    assert len([p for p in folder.iterdir() if p.name.startswith("v")]) == 1


def test_build_destinations_that_are_files_are_refused(tmp_path: Path, capsys) -> None:
    corpus = _write(tmp_path / "c.jsonl", _corpus(3, size=20))
    for out, problem in [
        (corpus, "is a file"),
        (corpus / "sub", f"lies under {corpus}, which is a file"),
    ]:
        assert main(["index", "build", "--corpus", str(corpus), "--out", str(out)]) == 2
        last = capsys.readouterr().err.splitlines()[-1]
        assert last == f"error: index folder {out} {problem}; choose a folder path"
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main(["index", "build", "--corpus", str(corpus), "--out", str(foreign)]) == 2
    assert "holds files that are not part of an index (notes.txt)" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    (foreign / "notes.txt").unlink()
    (foreign / "docs.jsonl").write_text("a user's file that an old index would also have had\n")
    assert main(["index", "build", "--corpus", str(corpus), "--out", str(foreign)]) == 2
    assert "holds files that are not part of an index (docs.jsonl)" in capsys.readouterr().err


def test_index_in_the_old_layout_is_refused_then_replaced_by_a_rebuild(tmp_path: Path, capsys) -> None:
    corpus = _write(tmp_path / "c.jsonl", _corpus(3, size=20))
    old = tmp_path / "old"
    (old / "bm25s").mkdir(parents=True)  # what deepretrieval 0.1 wrote: manifest, bm25s arrays, docs.*
    (old / "bm25s" / "data.csc.index.npy").write_bytes(b"old")
    (old / "deepretrieval_bm25.json").write_text('{"settings": {}, "fingerprint": "x", "documents": 20}')
    (old / "docs.jsonl").write_text("old\n")
    with pytest.raises(BadIndexError, match=f"index {old} was written by an older deepretrieval; {HINT}"):
        open_retriever("bm25", corpus=corpus, index_dir=old)
    assert main(["index", "build", "--corpus", str(corpus), "--out", str(old)]) == 0
    capsys.readouterr()
    assert (
        sorted(p.name for p in old.iterdir())[:2] == [".lock", "index.json"] and len(list(old.iterdir())) == 3
    )
    assert len(BM25Retriever.load(old)) == 20


def test_unusable_corpora_are_refused_in_one_line(tmp_path: Path, capsys) -> None:
    stop_words = tmp_path / "stop.jsonl"
    stop_words.write_text('{"_id": "1", "text": "the and of"}\n{"_id": "2", "text": "it is"}\n')
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(b'{"_id": "1", "text": "ok"}\n{"_id": "2", "text": "caf\xe9"}\n')
    surrogate = tmp_path / "surrogate.jsonl"
    surrogate.write_text('{"_id": "1", "text": "half a pair \\ud800 here"}\n')
    for corpus, message in [
        (stop_words, f"corpus {stop_words} has no term to index: every document is empty or stop words only"),
        (latin1, f"{latin1}:2: not UTF-8 (byte 0xe9 at column 26); re-encode the file as UTF-8"),
        (surrogate, f"{surrogate}:1: the text holds an unpaired surrogate escape"),
    ]:
        assert main(["index", "build", "--corpus", str(corpus), "--out", str(tmp_path / "out")]) == 2
        (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
        assert error.startswith(f"error: {message}")
    assert not (tmp_path / "out" / "index.json").exists()


# --------------------------------------------------------------------------- index values (issue 20, item 5)


def _flip_bits(path: Path, count: int, bits: tuple[int, ...], seed: int = 20) -> np.ndarray:
    """Flip one of ``bits`` in each of ``count`` float32 values of a .npy file, in place (same size, header
    kept); returns the values as they now are."""
    array = np.load(path, mmap_mode="r+")
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(array), size=count, replace=False)
    words = array.view(np.uint32)
    words[rows] ^= np.left_shift(np.uint32(1), rng.choice(bits, size=count).astype(np.uint32))
    array.flush()
    return np.asarray(array[rows])


@pytest.fixture
def scifact_copy(scifact_bm25: BM25Retriever, tmp_path: Path) -> Path:
    """A copy of the real SciFact BM25 index, to damage."""
    return Path(shutil.copytree(scifact_bm25.index_dir, tmp_path / "scifact-bm25"))


def test_bit_flips_in_the_score_matrix_are_refused(
    scifact_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same-size bit flips in bm25.data.npy (the issue's damage: weights up to 6.8e35, negative ones) are
    found by the checksum on load (a small file), by the value check when the file is too large to
    checksum on every load, and by `deepretrieval index verify` always."""
    data = _version(scifact_copy) / "bm25.data.npy"
    flipped = _flip_bits(data, 40, bits=(30, 31))  # the sign bit, the top exponent bit
    assert (flipped < 0).any() and (np.abs(flipped) > 1e30).any()
    with pytest.raises(BadIndexError, match="bm25.data.npy does not match its checksum; rebuild it with"):
        BM25Retriever.load(scifact_copy)
    assert main(["index", "verify", str(scifact_copy)]) == 1
    source = json.loads((scifact_copy / "index.json").read_text())["corpus"]["source"]
    assert capsys.readouterr().err.strip() == (
        f"error: index {scifact_copy} is damaged: bm25.data.npy does not match its checksum; rebuild it "
        f"with `deepretrieval index build --corpus {source} --out {scifact_copy}`"
    )
    monkeypatch.setattr(index_store, "CHECKSUM_ON_LOAD", 0)  # as a 600 MB matrix: values checked instead
    ceiling = weight_ceiling(BM25Settings(), 5183)
    outside = int(np.count_nonzero(~((flipped >= 0) & (flipped <= ceiling))))
    with pytest.raises(BadIndexError, match=rf"bm25.data.npy holds {outside} weights outside \[0, [0-9.]+\]"):
        BM25Retriever.load(scifact_copy)
    assert main(["index", "verify", str(scifact_copy)]) == 1
    assert "bm25.data.npy does not match its checksum" in capsys.readouterr().err


def test_index_verify_checks_every_byte(
    scifact_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["index", "verify", str(scifact_copy)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"index {scifact_copy} is intact: bm25, 5183 documents, 7 files")
    monkeypatch.setattr(index_store, "CHECKSUM_ON_LOAD", 0)  # every file as a large one
    _flip_bits(_version(scifact_copy) / "bm25.data.npy", 3, bits=(0, 1, 2))  # tiny changes, values in range
    BM25Retriever.load(scifact_copy).close()  # nothing a load-time check can see...
    assert main(["index", "verify", str(scifact_copy)]) == 1  # ...but every checksum is checked here
    assert "bm25.data.npy does not match its checksum" in capsys.readouterr().err
    for folder, problem in [
        (scifact_copy.parent / "absent", "holds no deepretrieval index"),
        (scifact_copy / "index.json", "holds no deepretrieval index"),
    ]:
        assert main(["index", "verify", str(folder)]) == 1
        assert problem in capsys.readouterr().err


def test_bm25_settings_outside_their_ranges_are_refused_before_the_corpus_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "not-read.jsonl"  # never opened: the settings are refused first
    for flags, problem in [
        (["--k1", "1e308"], "k1: Input should be less than or equal to 10"),
        (["--k1", "-1"], "k1: Input should be greater than or equal to 0"),
        (["--b", "1.5"], "b: Input should be less than or equal to 1"),
        (["--k1", "nan"], "k1: Input should be a finite number"),
        (["--method", "bm25+", "--k1", "0"], "method: Value error, bm25+ needs k1 > 0"),
    ]:
        argv = ["index", "build", "--corpus", str(missing), "--out", str(tmp_path / "out"), *flags]
        assert main(argv) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("error: BM25Settings: ") and problem in line
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="k1: Input should be less than or equal to 10"):
        open_retriever("bm25", corpus=missing, k1=1e308)


def test_an_index_that_could_never_match_is_not_published(tmp_path: Path) -> None:
    one = Corpus(["d1"], ["aspirin prevents stroke"])  # atire's idf of a term in every document is 0
    with pytest.raises(
        ValueError, match="every BM25 weight is 0 with k1=0.9, b=0.4, method=atire over 1 docum"
    ):
        BM25Retriever.build(one, tmp_path / "one", BM25Settings(method="atire"), show_progress=False)
    assert not (tmp_path / "one" / "index.json").exists()
    assert (
        len(BM25Retriever.build(one, tmp_path / "lucene", show_progress=False).search(["aspirin"], 5)[0]) == 1
    )


def test_eval_at_a_folder_whose_build_failed_is_refused_not_built(
    scifact_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPRETRIEVAL_CACHE", str(tmp_path / "cache"))
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(b'{"_id": "1", "text": "ok"}\n{"_id": "2", "text": "caf\xe9"}\n')
    index = tmp_path / "index"
    assert main(["index", "build", "--corpus", str(latin1), "--out", str(index)]) == 2
    assert index.is_dir() and not (index / "index.json").exists()  # what a failed build leaves
    capsys.readouterr()
    for folder, where in [(index, "holds no published index"), (tmp_path / "typo", "does not exist")]:
        argv = ["eval", "--task", "beir", "--data", str(scifact_dir), "--index", str(folder), "--limit", "2"]
        assert main(argv) == 2
        assert capsys.readouterr().err.strip() == (
            f"error: index folder {folder} {where} (a given index is loaded, never built); build it with "
            f"`deepretrieval index build --corpus {scifact_dir / 'corpus.jsonl'} --out {folder}`"
        )
    assert sorted(p.name for p in index.iterdir()) == [".lock"] and not (tmp_path / "typo").exists()
    assert not (tmp_path / "cache" / "indexes").exists()  # and no default index built elsewhere either
