"""The Boolean engine on real tantivy indexes: exact match sets on a hand-made collection, the index
lifecycle, bounded bad queries, and the 20 CLEF TAR 2017 expert strategies on their 27,126 records."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepretrieval.retrievers.base import DateRange, IndexedRetriever, SettingsError
from deepretrieval.retrievers.boolean import BooleanRetriever, BooleanSettings, QueryOptions
from deepretrieval.retrievers.corpus import Corpus, CorpusError, load_corpus
from deepretrieval.retrievers.storage.index_store import MANIFEST, BadIndexError

DOCS = [
    ("d1", "Gout and hyperuricemia", "Allopurinol lowers uric acid in patients with gout.", "2001/05/10"),
    (
        "d2",
        "Tophaceous gout treatment",
        "Febuxostat was compared with allopurinol in chronic tophaceous gout.",
        "2005",
    ),
    (
        "d3",
        "Uric acid crystals",
        "Monosodium urate crystals deposit in joints; the acid is uric.",
        "2010/12/31",
    ),
    (
        "d4",
        "Rotator cuff tears",
        "Ultrasonography detects tears of the rotator cuffs in shoulder pain.",
        None,
    ),
    (
        "d5",
        "Magnetic resonance imaging of the shoulder",
        "MR imaging was compared with arthrography.",
        "2015/02",
    ),
    (
        "d6",
        "Shoulder impingement tests",
        "The Hawkins-Kennedy test and the Neer sign were examined.",
        "2012/06/01",
    ),
    ("d7", "Tendinitis and tendonitis", "Both spellings appear; manoeuvre and maneuver too.", None),
    (
        "d8",
        "Haemorrhage after stroke",
        "Intracerebral hemorrhage was imaged by computed tomography angiography.",
        None,
    ),
    ("d9", "Angiography", "Tomography was computed for angiography in bleeding patients.", None),
    ("d10", "Running studies", "Runners ran 6 km; the study of running shoes.", None),
    ("d11", "Chronic kidney failure in transplant candidates", "Renal disease.", None),
    ("d12", "Aspergillus fumigatus", "", None),
]


def write_corpus(path: Path, *, dates: bool) -> Corpus:
    with path.open("w") as handle:
        for doc_id, title, abstract, date in DOCS:
            record = {"_id": doc_id, "title": title, "text": abstract, "metadata": {}}
            if dates and date:
                record["metadata"]["pub_date"] = date
            handle.write(json.dumps(record) + "\n")
    return load_corpus(path)


def build(
    corpus: Corpus, index_dir: Path, settings: BooleanSettings | None = None, **runtime
) -> BooleanRetriever:
    return BooleanRetriever.build(corpus, index_dir, settings, show_progress=False, **runtime)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> BooleanRetriever:
    folder = tmp_path_factory.mktemp("small")
    return build(write_corpus(folder / "corpus.jsonl", dates=True), folder / "index")


def matches(retriever: BooleanRetriever, query: str, k: int = 100) -> set[str]:
    (ranking,) = retriever.search([query], k)
    assert ranking.total == len(ranking) and ranking.error is None
    return set(ranking.doc_ids)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("gout AND allopurinol", {"d1", "d2"}),
        ("febuxostat OR tendinitis", {"d2", "d7"}),
        ("gout NOT febuxostat", {"d1"}),
        ("allopurinol OR uric AND crystals", {"d3"}),  # left to right: (allopurinol OR uric) AND crystals
        ("allopurinol OR (uric AND crystals)", {"d1", "d2", "d3"}),
        ('"uric acid"[ab]', {"d1"}),
        ('"uric acid"[ti]', {"d3"}),
        ("uric acid[tiab]", {"d1", "d3"}),
        ("uric acid", {"d1", "d3"}),  # implicit AND: d3's abstract has both words, apart
        ("tophaceous[ti]", {"d2"}),
        ("allopurinol[ti]", set()),
        ("allopurinol[ab]", {"d1", "d2"}),
        ("study", {"d10"}),  # stemmed: "studies" and "study"
        ("runn*", {"d10"}),  # truncation on exact words: "running", "runners"
        ("tend*", {"d7"}),
        ("rotator cuff*[tiab]", {"d4"}),
        ("6", {"d10"}),
        ("Aspergillus[tiab]", {"d12"}),
        ('"hip pain"[tiab:~2] OR "tomography angiography"[tiab:~3]', {"d8", "d9"}),
        ('"tomography angiography"[tiab:~0]', {"d8"}),
        ("gout[tiab]\nfebuxostat[tiab]\n#1 NOT #2", {"d1"}),
        ('"Kidney Failure, Chronic"[mh]', {"d11"}),
        ("gout AND english[la]", {"d1", "d2"}),
        ("gout NOT review[pt]", {"d1", "d2"}),
        ("english[la]", {doc[0] for doc in DOCS}),  # only unevaluable restrictions: every document
        ('"hyperuricemia allopurinol"', set()),  # a phrase never spans title and abstract
        ("Hawkins-K*[tiab]", {"d6"}),  # "hawkins" then any word starting with k
        ("PIB-* OR Neer-*", {"d6"}),  # a wildcard alone after punctuation adds nothing
    ],
)
def test_pubmed_match_sets(small: BooleanRetriever, query: str, expected: set[str]):
    assert matches(small, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Tend#nitis.mp.", {"d7"}),
        ("Man?euv$.mp.", {"d7"}),  # manoeuvre and maneuver
        ("h?emorrhage$.tw.", {"d8"}),
        ("tend$1.tw.", set()),  # at most one more character
        ("(tomography adj2 angiography).tw.", {"d8"}),
        ("(angiography adj2 tomography).tw.", {"d8"}),  # any order
        ("(tomography adj5 angiography).tw.", {"d8", "d9"}),
        ("(tomography adj angiography).tw.", {"d8"}),  # plain adj: a phrase in written order
        ("(angiography adj tomography).tw.", set()),
        ("((computed or magnetic) adj2 (tomograph$ or resonance)).ti,ab.", {"d5", "d8", "d9"}),
        ("Hawkins Kennedy$.mp.", {"d6"}),
        ("gout.ti.", {"d1", "d2"}),
        ("allopurinol.ti.", set()),
        ("gout.tw.\nfebuxostat.tw.\n1 not 2", {"d1"}),
        ("gout.tw.\ncrystals.tw.\nshoulder.tw.\nor/1-3\nand/2,4", {"d3"}),
        ("Kidney Failure, Chronic/", {"d11"}),
        ("gout.tw.\nexp animals/ not humans.sh.\n1 not 2", {"d1", "d2"}),
        ("gout.tw.\nlimit 1 to english language", {"d1", "d2"}),
        ("Neer C$.au.", set()),
    ],
)
def test_ovid_match_sets(small: BooleanRetriever, query: str, expected: set[str]):
    assert matches(small, query) == expected


def test_ranking_is_bm25_within_the_boolean_match(small: BooleanRetriever):
    (ranking,) = small.search(["allopurinol OR febuxostat"], 10)
    assert ranking.doc_ids == ["d2", "d1"]  # d2 has both terms
    assert ranking.scores[0] > ranking.scores[1] > 0
    (top,) = small.search(["gout OR shoulder OR acid"], 2)
    assert len(top) == 2 and top.total == 6
    (every,) = small.search(["gout OR shoulder OR acid"], 10**12)  # k beyond the collection
    assert every.total == len(every) == 6


def test_dates_limit_publication_dates(small: BooleanRetriever):
    assert small.has_dates
    assert matches(small, "gout AND 2004:2010[dp]") == {"d2"}
    assert matches(small, "shoulder AND 2015[dp]") == {"d5"}
    assert matches(small, 'gout or acid or shoulder\nlimit 1 to yr="2010 -Current"') == {"d3", "d5", "d6"}
    limited = small.search(
        ["gout", "gout", "acid OR shoulder"],
        10,
        dates=[DateRange(end="2004/12/31"), None, DateRange("2010/12/31", "2012/06/01")],
    )
    assert [set(r.doc_ids) for r in limited] == [{"d1"}, {"d1", "d2"}, {"d3", "d6"}]
    with pytest.raises(ValueError, match="bad date range"):
        small.search(["gout"], 5, dates=[DateRange(end="yesterday")])


def test_an_index_without_dates_refuses_date_ranges_and_relaxes_date_limits(tmp_path: Path):
    corpus = write_corpus(tmp_path / "corpus.jsonl", dates=False)
    retriever = build(corpus, tmp_path / "index")
    assert not retriever.has_dates
    with pytest.raises(ValueError, match="has no publication dates"):
        retriever.search(["gout"], 5, dates=[DateRange(end="2004/12/31")])
    assert retriever.search(["gout"], 5, dates=[None])[0].total == 2
    assert matches(retriever, "gout AND 2004:2010[dp]") == {"d1", "d2"}


@pytest.mark.parametrize(
    "query",
    [
        "gout AND (tophi",  # does not parse
        "gout AND OR tophi",
        "*",  # a wildcard needs a leading letter
        "*itis OR gout",
        "(" * 200 + "gout" + ")" * 200,  # nested too deep
        "gout " * 20_000,  # too long
        "\n".join(["gout"] + [f"#{n} OR #{n}" for n in range(1, 60)]),  # expands exponentially
        "\n".join(["gout"] + [f"#{n} {'AND' if n % 2 else 'OR'} acid" for n in range(1, 2000)]),  # too deep
        "",
        "   ",
        "AND",
    ],
)
def test_bad_queries_get_an_empty_ranking_with_total_zero(small: BooleanRetriever, query: str):
    (ranking,) = small.search([query], 10)
    assert len(ranking) == 0 and ranking.total == 0 and not ranking.failed


def test_a_deep_strategy_within_the_bounds(small: BooleanRetriever):
    gout, acid = matches(small, "gout"), matches(small, "acid")
    lines, expected = ["gout"], set(gout)
    for n in range(1, 60):  # 60 lines nesting 60 deep: AND acid, OR gout, AND acid, ...
        lines.append(f"#{n} AND acid" if n % 2 else f"#{n} OR gout")
        expected = expected & acid if n % 2 else expected | gout
    assert matches(small, "\n".join(lines)) == expected


SYNTAX_PIECES = [
    "gout", "acid*", "a*", "*", '"', "(", ")", "[", "]", "[tiab]", "[mh]", "[tiab:~2]", "AND", "OR", "NOT",
    "or", "not", "#1", "#2", "1", "2", "/", "exp", "adj3", ".tw.", ".ti,ab", "$", "?", "#", "tend#n",
    "h?em$", "limit 1 to english", "or/1-2", "\n", "2005:2010[dp]", ":", "~", "-", "end-st*", "β",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(SYNTAX_PIECES) | st.text(max_size=6), max_size=14), st.booleans())
def test_search_never_raises_nor_fails_on_any_text(small: BooleanRetriever, pieces: list[str], glued: bool):
    (ranking,) = small.search(["".join(pieces) if glued else " ".join(pieces)], 5)
    assert not ranking.failed and ranking.total >= len(ranking)


def test_non_text_query_is_a_bad_query(small: BooleanRetriever):
    (ranking,) = small.search([None], 10)  # type: ignore[list-item]
    assert ranking.total == 0


def test_wildcards_expand_to_the_most_frequent_terms_within_the_caps(small: BooleanRetriever, tmp_path: Path):
    corpus = write_corpus(tmp_path / "corpus.jsonl", dates=False)
    capped = build(corpus, tmp_path / "index", max_expansions=2)
    pattern = capped._compiler.tokens(("a*",))[0]
    expanded = capped._compiler.expand("abstract_exact", pattern)
    every = small._compiler.expand("abstract_exact", pattern)
    assert len(expanded) == 2 and expanded == every[:2] and len(every) > 2
    assert matches(capped, "a*[ab]") == matches(small, " OR ".join(f"{term}[ab]" for term in expanded))
    strict = BooleanRetriever.load(tmp_path / "index", max_terms=3)
    assert strict.search(["a*[ab]"], 10)[0].total == 0  # more index terms than allowed: a bad query
    assert strict.search(["gout"], 10)[0].total == 2


def test_batch_equals_per_query_loop_and_dedupes(small: BooleanRetriever):
    queries = ["gout", "tend*", "gout", "(tomography adj5 angiography).tw.", "bad (", "gout"] * 4
    batch = small.search(queries, 5)
    loop = [small.search([query], 5)[0] for query in queries]
    assert [(r.doc_ids, r.scores.tolist(), r.total) for r in batch] == [
        (r.doc_ids, r.scores.tolist(), r.total) for r in loop
    ]
    assert batch[0] is batch[2]
    with pytest.raises(ValueError, match="positive integer"):
        small.search(["gout"], 0)
    with pytest.raises(ValueError, match=r"one range \(or None\) per query"):
        small.search(["gout", "acid"], 5, dates=[None])


def test_text_analyze_explain(small: BooleanRetriever):
    assert small.text("d2") == DOCS[1][1] + " " + DOCS[1][2]
    assert small.text("d12") == "Aspergillus fumigatus"
    with pytest.raises(KeyError, match="unknown document id"):
        small.text("nope")
    assert small.analyze('gout[tiab] OR "uric acids"[tiab] OR tend* AND studies') == [
        "gout",
        "uric",
        "acid",
        "tend*",
        "studi",
    ]
    assert small.analyze("exp Gout/\ngout.tw.\nor/1-2") == ["gout", "gout"]
    assert small.analyze("gout[tiab] AND (tophi") == ["gout", "tophi"]  # does not parse: words, tags dropped
    assert "Match" in repr(small.explain("gout[tiab]"))


def test_lifecycle_manifest_fingerprints_and_atomic_rebuild(tmp_path: Path):
    corpus = write_corpus(tmp_path / "corpus.jsonl", dates=True)
    first = build(corpus, tmp_path / "index")
    assert isinstance(first, IndexedRetriever) and first.kind == "boolean" and len(first) == 12
    manifest = json.loads((tmp_path / "index" / MANIFEST).read_text())
    assert manifest["kind"] == "boolean" and manifest["corpus"]["documents"] == 12
    assert manifest["info"]["dated_documents"] == 5 and manifest["settings"] == {"stemmer": "english"}
    assert not any(name.startswith(".") for name in manifest["files"])  # tantivy's lock files left out
    assert first.corpus_fingerprint == corpus.fingerprint
    assert BooleanRetriever.load(tmp_path / "index").fingerprint == first.fingerprint
    assert BooleanRetriever.load(tmp_path / "index", max_expansions=5).fingerprint != first.fingerprint

    second = build(corpus, tmp_path / "index")  # publishes a new version and deletes first's files
    assert [p.name for p in (tmp_path / "index").iterdir() if p.name.startswith("v")] == [
        json.loads((tmp_path / "index" / MANIFEST).read_text())["version"]
    ]
    assert first.search(["gout"], 5)[0].doc_ids == second.search(["gout"], 5)[0].doc_ids  # still mapped
    assert first.text("d2") == second.text("d2")
    assert second.fingerprint == first.fingerprint

    first.close()
    with pytest.raises(RuntimeError, match="closed"):
        first.search(["gout"], 5)


def test_load_rejects_missing_or_damaged_indexes(tmp_path: Path):
    corpus = write_corpus(tmp_path / "corpus.jsonl", dates=False)
    index = tmp_path / "index"
    with pytest.raises(BadIndexError, match="holds no deepretrieval index"):
        BooleanRetriever.load(index)
    build(corpus, index)
    version = index / json.loads((index / MANIFEST).read_text())["version"]
    ids = version / "ids.json"
    good = ids.read_bytes()
    ids.write_bytes(good.replace(b'"d1"', b'"dX"'))  # same size, other content
    with pytest.raises(BadIndexError, match="ids.json does not match its checksum"):
        BooleanRetriever.load(index)
    ids.write_bytes(good)
    segment = next(version.glob("*.idx"))
    data = segment.read_bytes()
    segment.write_bytes(data[:-1])
    with pytest.raises(BadIndexError, match="truncated"):
        BooleanRetriever.load(index)
    segment.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # same size: only verify=True reads it all
    with pytest.raises(BadIndexError, match="does not match its checksum"):
        BooleanRetriever.load(index, verify=True)
    segment.write_bytes(data)
    (version / "meta.json").unlink()
    with pytest.raises(BadIndexError, match="meta.json is missing"):
        BooleanRetriever.load(index)


def test_an_in_memory_corpus_has_no_titles_and_a_changed_file_is_refused(tmp_path: Path):
    memory = build(Corpus(["a", "b"], ["Gout treatment", "Uric acid"]), tmp_path / "memory")
    assert matches(memory, "gout[tiab]") == {"a"} and matches(memory, "gout[ti]") == set()
    corpus = write_corpus(tmp_path / "corpus.jsonl", dates=False)
    (tmp_path / "corpus.jsonl").write_text((tmp_path / "corpus.jsonl").read_text().replace("Gout", "Goat"))
    with pytest.raises(CorpusError, match="not the document the corpus read there"):
        build(corpus, tmp_path / "index")
    assert not (tmp_path / "index" / MANIFEST).exists()


def test_headings_can_be_ignored(tmp_path: Path, small: BooleanRetriever):
    ignoring = BooleanRetriever.load(small.index_dir, headings="ignore")
    assert matches(small, "Kidney Failure, Chronic/") == {"d11"}
    assert matches(ignoring, "Kidney Failure, Chronic/") == set()
    assert matches(ignoring, "Kidney Failure, Chronic/ or kidney.tw.") == {"d11"}


def test_exact_words_only_index(tmp_path: Path):
    corpus = write_corpus(tmp_path / "corpus.jsonl", dates=False)
    exact = build(corpus, tmp_path / "index", BooleanSettings(stemmer=None))
    assert matches(exact, "study") == {"d10"} and matches(exact, "studies") == {"d10"}
    assert matches(exact, "runner") == set()  # no stemming: "runners" only
    assert matches(exact, "(tomography adj2 angiography).tw.") == {"d8"}


def test_a_bad_publication_date_is_a_one_line_corpus_error(tmp_path: Path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "x", "title": "t", "text": "", "metadata": {"pub_date": "May 2001"}}\n')
    with pytest.raises(CorpusError, match=r"corpus.jsonl:1: publication date 'May 2001' is not YYYY"):
        build(load_corpus(path), tmp_path / "index")


def test_settings_and_options_are_checked():
    with pytest.raises(SettingsError, match="unknown stemmer"):
        BooleanSettings(stemmer="klingon")
    with pytest.raises(SettingsError, match="unknown key 'syntax'"):
        BooleanSettings(syntax="ovid")
    with pytest.raises(ValueError, match="syntax must be"):
        QueryOptions(syntax="lucene")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_expansions must be a positive integer"):
        QueryOptions(max_expansions=0)


# ---- CLEF TAR 2017: the expert strategies on the real collection ------------------------------------


@pytest.fixture(scope="module")
def clef(shared_data: Path) -> Path:
    folder = shared_data / "literature" / "clef-tar-2017"
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"{folder} not found")
    return folder


@pytest.fixture(scope="module")
def clef_index(clef: Path, tmp_path_factory) -> BooleanRetriever:
    return build(load_corpus(clef), tmp_path_factory.mktemp("clef") / "index")


def test_clef_expert_strategies_match_and_recall_their_relevant_documents(
    clef: Path, clef_index: BooleanRetriever
):
    topics = [json.loads(line) for line in (clef / "queries.jsonl").read_text().splitlines()]
    relevant: dict[str, set[str]] = defaultdict(set)
    for line in (clef / "qrels" / "content.tsv").read_text().splitlines()[1:]:
        topic, doc_id, _ = line.split("\t")
        relevant[topic].add(doc_id)
    experts = clef_index.search(
        [t["metadata"]["boolean_query"] or t["metadata"]["ovid_query"] for t in topics], 30_000
    )
    recall = {}
    for topic, ranking in zip(topics, experts):
        assert 0 < ranking.total == len(ranking) < 30_000, topic["_id"]
        recall[topic["_id"]] = len(relevant[topic["_id"]] & set(ranking.doc_ids)) / len(
            relevant[topic["_id"]]
        )
    found = sum(recall[t] * len(relevant[t]) for t in recall)
    assert found / sum(len(r) for r in relevant.values()) > 0.9  # measured 315 / 347 = 0.908
    assert min(recall.values()) > 0.65  # CD009944 0.683: its staging concept is MeSH-only
    assert sum(value == 1.0 for value in recall.values()) >= 12  # measured 12 of 20

    titles = clef_index.search([t["text"] for t in topics], 30_000)  # the review titles, implicit AND
    for topic, title, expert in zip(topics, titles, experts):
        assert title.total < expert.total, topic["_id"]
    assert sum(r.total for r in titles) * 10 < sum(r.total for r in experts)
