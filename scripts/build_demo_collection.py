"""Build the embedded demo retrieval collection (src/deepretrieval/data/demo/), deterministically.

The collection exists to show the vocabulary gap that query rewriting closes: users ask in lay words
("heart attack", "flat tyre"), documents are written in formal words ("myocardial infarction",
"puncture"). Everything comes from the hand-written concept inventory in ``demo_concepts.yaml`` beside this
script (no third-party text):

* each concept has lay phrases (used in queries), formal synonyms (used in documents, best known first)
  and one formal fact per facet (signs, causes, remedy, prevention);
* every concept yields one document per facet, composed from sentence templates; a few of those documents
  also mention the lay phrase (so the original query is not hopeless), the rest never use a lay word;
* every concept has one hand-written distractor document that uses its lay words in another sense;
* every concept yields one lay query per facet; the same-facet document is judged 2, the concept's other
  documents 1. Queries are split into train and held-out test, stratified by concept.

Run ``python scripts/build_demo_collection.py`` to rewrite the files (byte-identical on every run) and the
README with the BM25 figures measured on them (the package's ``BM25Retriever`` and ``evaluate_run``);
``--out DIR`` writes elsewhere, ``--check`` only verifies, ``--inventory FILE`` reads another inventory.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import reprlib
import string
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bm25s
import Stemmer
import yaml

from deepretrieval.files import atomic_write
from deepretrieval.metrics import evaluate_run
from deepretrieval.retrievers.base import Ranking
from deepretrieval.retrievers.bm25 import BM25Retriever, BM25Settings
from deepretrieval.retrievers.corpus import Corpus

SEED = 20240603
TEST_FRACTION = 0.30
LAY_MENTIONS_PER_CONCEPT = 2
FACETS = ("signs", "causes", "remedy", "prevention")
HERE = Path(__file__).resolve().parent
DEFAULT_INVENTORY = HERE / "demo_concepts.yaml"
DEFAULT_OUT = HERE.parent / "src" / "deepretrieval" / "data" / "demo"
BM25 = BM25Settings()  # the package's defaults: k1=0.9, b=0.4, English Snowball stemmer and stop words
METRICS = ("ndcg@10", "recall@10")


_STEMMER = Stemmer.Stemmer(BM25.stemmer)


def stems(text: str) -> set[str]:
    """The terms the package's BM25 sees in ``text``: bm25s tokenisation with its stop words and stemmer
    (what ``BM25Retriever.analyze`` will give once it exists; the gap check runs before any index does)."""
    (terms,) = bm25s.tokenize(
        [text], stopwords=BM25.stopwords, stemmer=_STEMMER, return_ids=False, show_progress=False
    )
    return set(terms)


# Function words that BM25 keeps (its English list is short) but that carry no topic: the gap check
# ignores them.
_FUNCTION_STEMS = frozenset(stems("when from too during up just my can"))


# ---------------------------------------------------------------- the inventory


class InventoryError(ValueError):
    """A concept inventory the generator cannot use; the message names the entry and the field."""


class Clause(str):
    """A lay phrase that is a whole clause ("car won't start"): queries put it first ("car won't start what to
    do") instead of inside a noun slot ("signs of flat tyre"). Tagged ``!clause`` in the inventory."""


@dataclass(frozen=True)
class Domain:
    """Domain-specific nouns the document templates need."""

    experts: str  # plural, sentence-initial capitalisation applied by the templates
    expert: str  # singular, after "a"/"an"
    literature: str
    caseload: str


@dataclass(frozen=True)
class Concept:
    """One thing people search for, in their words (lay) and the documents' words (formal)."""

    key: str
    domain: str
    lay: tuple[str, ...]  # Clause items are whole clauses
    formal: tuple[str, ...]
    facts: dict[str, str]  # facet -> formal fact
    distractor: tuple[str, str]  # (title, text) using the lay words in another sense
    shared: frozenset[str] = frozenset()  # stems allowed in both vocabularies (a partial gap, on purpose)


@dataclass(frozen=True)
class Templates:
    """Sentence templates; the per-facet groups map each facet to its templates."""

    titles: dict[str, tuple[str, ...]]
    openings: dict[str, tuple[str, ...]]
    facet_support: dict[str, tuple[str, ...]]
    support: tuple[str, ...]
    lay_mentions: tuple[str, ...]
    noun_queries: dict[str, tuple[str, ...]]
    clause_queries: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Inventory:
    domains: dict[str, Domain]
    templates: Templates
    concepts: dict[str, Concept]  # key -> concept, in file order


@dataclass(frozen=True)
class _Slots:
    """The placeholders a template group may use and must use."""

    per_facet: bool
    allowed: tuple[str, ...]
    required: tuple[str, ...] = ()


_DOCUMENT_SLOTS = ("F", "F2", "Experts", "experts", "expert", "literature", "caseload")
TEMPLATE_GROUPS = {
    "titles": _Slots(True, _DOCUMENT_SLOTS),
    "openings": _Slots(True, (*_DOCUMENT_SLOTS, "fact"), ("fact",)),
    "facet_support": _Slots(True, _DOCUMENT_SLOTS),
    "support": _Slots(False, _DOCUMENT_SLOTS),
    "lay_mentions": _Slots(False, ("F", "L"), ("F", "L")),  # the gap check strips these sentences by pattern
    "noun_queries": _Slots(True, ("L",), ("L",)),
    "clause_queries": _Slots(True, ("L",), ("L",)),
}


class _Loader(yaml.SafeLoader):
    """Safe YAML plus the ``!clause`` tag."""


def _construct_clause(loader: _Loader, node: yaml.Node) -> Clause:
    if not isinstance(node, yaml.ScalarNode):
        raise InventoryError(
            f"line {node.start_mark.line + 1}: !clause must tag a phrase, not a list or mapping"
        )
    return Clause(loader.construct_scalar(node))


_Loader.add_constructor("!clause", _construct_clause)

# The checks below are hand-written rather than a pydantic schema: each error names the concept by its key
# and the field by its name in the file, in one line, and pydantic would turn a Clause back into a str.


def _shown(raw: Any) -> str:
    """A short repr of a bad value for a one-line error (a whole concept would not fit)."""
    return reprlib.repr(raw)


def _fields(raw: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    if not isinstance(raw, dict):
        raise InventoryError(f"{where} must be a mapping with {', '.join(required)}, got {_shown(raw)}")
    for name in required:
        if name not in raw:
            raise InventoryError(f"{where} is missing {name!r} (needs {', '.join(required)})")
    for name in raw:
        if name not in required and name not in optional:
            raise InventoryError(
                f"{where} has an unknown field {name!r} (known: {', '.join((*required, *optional))})"
            )
    return raw


def _text(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InventoryError(f"{where} must be non-empty text, got {_shown(raw)}")
    return raw


def _texts(raw: Any, where: str, at_least: int = 1) -> tuple[str, ...]:
    if not isinstance(raw, list) or len(raw) < at_least:
        raise InventoryError(f"{where} must be a list of at least {at_least} text(s), got {_shown(raw)}")
    items = tuple(_text(item, f"{where}[{i}]") for i, item in enumerate(raw))
    for i, item in enumerate(items):
        if item in items[:i]:
            raise InventoryError(f"{where} lists {item!r} twice")
    return items


def _template(raw: Any, where: str, slots: _Slots) -> str:
    text = _text(raw, where)
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as err:
        raise InventoryError(f"{where}: {err} in {text!r} (write a literal brace as {{{{ or }}}})") from None
    unknown = sorted(used - set(slots.allowed))
    if unknown:
        raise InventoryError(
            f"{where} uses the unknown placeholder {{{unknown[0]}}} in {text!r} "
            f"(allowed: {', '.join(f'{{{s}}}' for s in slots.allowed)})"
        )
    missing = [slot for slot in slots.required if slot not in used]
    if missing:
        raise InventoryError(f"{where} must use the placeholder {{{missing[0]}}}: {text!r}")
    return text


def _templates(raw: Any) -> Templates:
    _fields(raw, "templates", tuple(TEMPLATE_GROUPS))
    groups: dict[str, Any] = {}
    for name, slots in TEMPLATE_GROUPS.items():
        if slots.per_facet:
            per_facet = _fields(raw[name], f"templates.{name}", FACETS)
            groups[name] = {
                facet: tuple(
                    _template(t, f"templates.{name}.{facet}[{i}]", slots)
                    for i, t in enumerate(_texts(per_facet[facet], f"templates.{name}.{facet}"))
                )
                for facet in FACETS
            }
        else:
            groups[name] = tuple(
                _template(t, f"templates.{name}[{i}]", slots)
                for i, t in enumerate(_texts(raw[name], f"templates.{name}"))
            )
    return Templates(**groups)


def _shared_stems(raw: Any, where: str) -> frozenset[str]:
    found: set[str] = set()
    for i, word in enumerate(_texts(raw, where)):
        terms = stems(word)
        if len(terms) != 1:
            raise InventoryError(f"{where}[{i}] must be one indexed word, {word!r} gives {sorted(terms)}")
        found |= terms
    return frozenset(found)


def _concept(raw: Any, number: int, domains: dict[str, Domain]) -> Concept:
    key = raw.get("key") if isinstance(raw, dict) else None
    where = f"concept {key!r}" if isinstance(key, str) and key.strip() else f"concept #{number}"
    _fields(raw, where, ("key", "domain", "lay", "formal", "facts", "distractor"), ("shared",))
    domain = _text(raw["domain"], f"{where}, domain")
    if domain not in domains:
        raise InventoryError(f"{where} has the unknown domain {domain!r} (known: {', '.join(domains)})")
    facts = _fields(raw["facts"], f"{where}, facts", FACETS)
    distractor = _fields(raw["distractor"], f"{where}, distractor", ("title", "text"))
    return Concept(
        key=_text(raw["key"], f"{where}, key"),
        domain=domain,
        lay=_texts(raw["lay"], f"{where}, lay"),
        formal=_texts(raw["formal"], f"{where}, formal", at_least=2),  # a document names two of them
        facts={facet: _text(facts[facet], f"{where}, facts.{facet}") for facet in FACETS},
        distractor=(
            _text(distractor["title"], f"{where}, distractor.title"),
            _text(distractor["text"], f"{where}, distractor.text"),
        ),
        shared=_shared_stems(raw["shared"], f"{where}, shared") if "shared" in raw else frozenset(),
    )


def parse_inventory(raw: Any) -> Inventory:
    """Validate a loaded inventory document; raises :class:`InventoryError` on the first bad entry."""
    _fields(raw, "the inventory", ("domains", "templates", "concepts"))
    if not isinstance(raw["domains"], dict) or not raw["domains"]:
        raise InventoryError(f"domains must map each domain name to its nouns, got {_shown(raw['domains'])}")
    domains: dict[str, Domain] = {}
    for name, nouns in raw["domains"].items():
        where = f"domain {name!r}"
        _fields(nouns, where, ("experts", "expert", "literature", "caseload"))
        domains[name] = Domain(**{field: _text(text, f"{where}, {field}") for field, text in nouns.items()})
    if not isinstance(raw["concepts"], list) or not raw["concepts"]:
        raise InventoryError(f"concepts must be a non-empty list, got {_shown(raw['concepts'])}")
    concepts: dict[str, Concept] = {}
    for number, entry in enumerate(raw["concepts"], start=1):
        concept = _concept(entry, number, domains)
        if concept.key in concepts:
            raise InventoryError(f"concept {concept.key!r} appears twice (keys must be unique)")
        concepts[concept.key] = concept
    return Inventory(domains, _templates(raw["templates"]), concepts)


def load_inventory(path: Path = DEFAULT_INVENTORY) -> Inventory:
    """Read and validate the concept inventory at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InventoryError(f"cannot read the concept inventory {path}: {err.strerror}") from None
    try:
        return parse_inventory(yaml.load(text, Loader=_Loader))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise InventoryError(f"{path}: not valid YAML{at}: {getattr(err, 'problem', None) or err}") from None
    except InventoryError as err:
        raise InventoryError(f"{path}: {err}") from None


# ---------------------------------------------------------------- the collection


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str
    concept: str | None  # None for distractors
    facet: str | None


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    concept: str
    facet: str
    split: str


@dataclass(frozen=True)
class Collection:
    documents: list[Document]
    queries: list[Query]
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: grade}


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(template: str, nouns: Domain, formal: str, formal2: str, **extra: str) -> str:
    out = template.format(
        F=formal,
        F2=formal2,
        Experts=_upper_first(nouns.experts),
        experts=nouns.experts,
        expert=nouns.expert,
        literature=nouns.literature,
        caseload=nouns.caseload,
        **extra,
    )
    return _upper_first(out)


def _pick_formal(rng: random.Random, concept: Concept) -> tuple[str, str]:
    """A primary and a different secondary formal term; the best-known synonym is the most frequent."""
    weights = [2 ** (len(concept.formal) - i) for i in range(len(concept.formal))]
    first = rng.choices(concept.formal, weights=weights)[0]
    second = rng.choice([f for f in concept.formal if f != first])
    return first, second


def _concept_documents(
    rng: random.Random, concept: Concept, inventory: Inventory
) -> list[tuple[str, str, str]]:
    """(facet, title, text) for the concept's four documents; ``LAY_MENTIONS_PER_CONCEPT`` of them also
    mention a lay phrase."""
    templates, nouns = inventory.templates, inventory.domains[concept.domain]
    lay_facets = set(rng.sample(FACETS, LAY_MENTIONS_PER_CONCEPT))
    docs = []
    for facet in FACETS:
        formal, formal2 = _pick_formal(rng, concept)
        title = _fill(rng.choice(templates.titles[facet]), nouns, formal, formal2)
        opening = rng.choice(templates.openings[facet])
        sentences = [_fill(opening, nouns, formal, formal2, fact=concept.facts[facet])]
        support = [rng.choice(templates.support), rng.choice(templates.facet_support[facet])]
        rng.shuffle(support)
        sentences += [_fill(s, nouns, formal, formal2) for s in support[: rng.randint(1, 2)]]
        if facet in lay_facets:
            template = rng.choice(templates.lay_mentions)  # draw order is part of the output: keep it
            mention = _fill(template, nouns, formal, formal2, L=rng.choice(concept.lay))
            sentences.insert(rng.randint(1, len(sentences)), mention)
        docs.append((facet, title, " ".join(sentences)))
    return docs


def _check_concept(concept: Concept, docs: list[tuple[str, str, str]], lay_mentions: tuple[str, ...]) -> None:
    """The vocabulary gap by construction: outside the lay-mention sentences no lay word appears in the
    concept's documents, and the distractor does share a lay word."""
    lay = set().union(*(stems(phrase) for phrase in concept.lay)) - concept.shared - _FUNCTION_STEMS
    for facet, title, text in docs:
        for mention in lay_mentions:
            text = re.sub(re.escape(mention).replace(r"\{F\}", ".*?").replace(r"\{L\}", ".*?"), "", text)
        leaked = lay & stems(f"{title} {text}")
        if leaked:
            raise InventoryError(
                f"concept {concept.key!r}, {facet} document uses lay words {sorted(leaked)}: {text!r}"
            )
    if not lay & stems(" ".join(concept.distractor)):
        raise InventoryError(f"concept {concept.key!r}: the distractor shares no lay word {sorted(lay)}")


def _lay_query(rng: random.Random, concept: Concept, facet: str, templates: Templates, seen: set[str]) -> str:
    """A lay query for ``facet`` that no earlier query already used."""
    for _ in range(50):
        lay = rng.choice(concept.lay)
        group = templates.clause_queries if isinstance(lay, Clause) else templates.noun_queries
        text = rng.choice(group[facet]).format(L=lay)
        if text not in seen:
            return text
    raise InventoryError(
        f"concept {concept.key!r}: cannot write a new {facet} query (add lay phrases or query templates)"
    )


def build(inventory: Inventory, seed: int = SEED) -> Collection:
    """Compose documents, queries, judgments and the train/test split from the inventory."""
    rng = random.Random(seed)
    raw_docs: list[tuple[str, str, str | None, str | None]] = []  # title, text, concept, facet
    raw_queries: list[tuple[str, str, str]] = []  # text, concept, facet
    seen_queries: set[str] = set()
    for concept in inventory.concepts.values():
        docs = _concept_documents(rng, concept, inventory)
        _check_concept(concept, docs, inventory.templates.lay_mentions)
        raw_docs += [(title, text, concept.key, facet) for facet, title, text in docs]
        raw_docs.append((*concept.distractor, None, None))
        for facet in FACETS:
            text = _lay_query(rng, concept, facet, inventory.templates, seen_queries)
            seen_queries.add(text)
            raw_queries.append((text, concept.key, facet))

    rng.shuffle(raw_docs)
    documents = [Document(f"d{i:04d}", t, x, c, f) for i, (t, x, c, f) in enumerate(raw_docs, start=1)]

    # Stratified split: every concept has test queries; a fraction of concepts has two.
    keys = list(inventory.concepts)
    rng.shuffle(keys)
    per_concept = len(FACETS)
    n_two = round((TEST_FRACTION * per_concept - 1) * len(keys))
    test_count = {key: 2 if i < n_two else 1 for i, key in enumerate(keys)}
    test_facets = {key: set(rng.sample(FACETS, test_count[key])) for key in sorted(test_count)}
    rng.shuffle(raw_queries)
    queries = [
        Query(f"q{i:03d}", text, key, facet, "test" if facet in test_facets[key] else "train")
        for i, (text, key, facet) in enumerate(raw_queries, start=1)
    ]

    by_concept: dict[str, list[Document]] = {}
    for doc in documents:
        if doc.concept:
            by_concept.setdefault(doc.concept, []).append(doc)
    qrels = {q.id: {d.id: 2 if d.facet == q.facet else 1 for d in by_concept[q.concept]} for q in queries}
    return Collection(documents, queries, qrels)


# ---------------------------------------------------------------- measurement (for the README)


def oracle_expansion(query: Query, inventory: Inventory, top: int | None = None) -> str:
    """The query followed by the concept's formal synonyms (all of them, or the ``top`` best known)."""
    formal = inventory.concepts[query.concept].formal
    return " ".join([query.text, *formal[:top]])


def _top_ids(ranking: Ranking, k: int) -> list[str]:
    """The ``k`` best documents of a complete ranking, exact score ties broken by doc id, descending
    (trec_eval's rule). BM25Retriever orders exact ties by bm25s's vocabulary ids, which follow Python's
    string hashing and so change from one process to the next; the README's figures must not."""
    return [doc_id for _, doc_id in sorted(zip(ranking.scores.tolist(), ranking.doc_ids), reverse=True)[:k]]


def measure_bm25(inventory: Inventory, collection: Collection) -> dict[str, dict[str, dict[str, float]]]:
    """split -> query variant -> NDCG@10 / R@10, with the package's BM25 over the collection (title + text)
    and its metrics."""
    documents = collection.documents
    corpus = Corpus([d.id for d in documents], [f"{d.title} {d.text}" for d in documents])
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="demo-bm25-") as index_dir:
        retriever = BM25Retriever.build(corpus, index_dir, BM25, show_progress=False)
        for split in ("test", "train"):
            queries = [q for q in collection.queries if q.split == split]
            variants = {
                "original": [q.text for q in queries],
                "oracle (all formal synonyms)": [oracle_expansion(q, inventory) for q in queries],
                "query + top-2 formal synonyms": [oracle_expansion(q, inventory, top=2) for q in queries],
            }
            qrels = {q.id: collection.qrels[q.id] for q in queries}
            results[split] = {}
            for name, texts in variants.items():
                rankings = retriever.search(texts, k=len(documents))  # every match, for _top_ids' tie rule
                run = {q.id: _top_ids(r, 10) for q, r in zip(queries, rankings, strict=True)}
                results[split][name], _ = evaluate_run(run, qrels, METRICS)
    return results


# ---------------------------------------------------------------- writing


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=True) + "\n" for r in records)


def _qrels_tsv(collection: Collection, split: str) -> str:
    lines = ["query-id\tcorpus-id\tscore"]
    for q in collection.queries:
        if q.split == split:
            lines += [f"{q.id}\t{d}\t{g}" for d, g in sorted(collection.qrels[q.id].items())]
    return "\n".join(lines) + "\n"


NUMBER_WORDS = {1: "One", 2: "Two", 3: "Three"}


def _readme(inventory: Inventory, collection: Collection) -> str:
    docs, queries = collection.documents, collection.queries
    n_decoy = sum(d.concept is None for d in docs)
    n_train = sum(q.split == "train" for q in queries)
    n_test = len(queries) - n_train
    n_judged = {
        split: sum(len(collection.qrels[q.id]) for q in queries if q.split == split)
        for split in ("train", "test")
    }
    domains: dict[str, int] = {}
    for c in inventory.concepts.values():
        domains[c.domain] = domains.get(c.domain, 0) + 1
    rows = "\n".join(
        f"| {split} | {name} | {m['ndcg@10']:.3f} | {m['recall@10']:.3f} |"
        for split, variants in measure_bm25(inventory, collection).items()
        for name, m in variants.items()
    )
    example = next(q for q in queries if q.split == "test")
    concept = inventory.concepts[example.concept]
    return f"""# Demo collection: the vocabulary gap

A small retrieval collection written entirely by this project (no third-party text) for the quickstart:
users ask in everyday words, documents answer in formal words, so a policy that rewrites queries with the
formal synonyms it knows (e.g. "heart attack" -> "myocardial infarction") retrieves far better than the
original query. BEIR layout, readable by the same loader as SciFact.

Generated by `scripts/build_demo_collection.py` (seed {SEED}); rerunning it reproduces these files byte for
byte, including the figures below. Do not edit by hand.

## How it was made

* A hand-written inventory of {len(inventory.concepts)} concepts across {len(domains)} domains
  ({", ".join(f"{d} {n}" for d, n in domains.items())}). Each concept has lay phrases (query side),
  formal synonyms (document side, best known first) and one formal fact for each facet: signs, causes,
  remedy, prevention.
* Each concept yields four documents, one per facet, composed from sentence templates with the formal terms.
  {NUMBER_WORDS[LAY_MENTIONS_PER_CONCEPT]} of the four also say what people call it (the lay phrase), so
  the original query is not hopeless; the generator verifies that no other sentence of a concept's
  documents contains one of its lay words (after stemming), except a few deliberate shared words
  (e.g. "brake", "credit").
* Each concept has one hand-written distractor document that uses its lay words in another sense
  ("flat" as an apartment, "shingles" on a roof, "cookies" in a browser).
* Each concept yields one lay query per facet from query templates. Judgments: the same-facet document is
  graded 2, the concept's three other documents 1; distractors are not relevant.
* Split by query, stratified by concept: every concept has one or two held-out test queries and its other
  queries in train (no query text appears twice). Test concepts are therefore also seen in training, with
  other facets and other wording.

Example (test): `{example.text}` -> formal synonyms: {", ".join(concept.formal)}.

## Counts

| file | count |
|---|---|
| corpus.jsonl | {len(docs)} documents ({len(docs) - n_decoy} concept documents, {n_decoy} distractors) |
| queries.jsonl | {len(queries)} queries |
| qrels/train.tsv | {n_train} queries, {n_judged["train"]} judgments |
| qrels/test.tsv | {n_test} queries, {n_judged["test"]} judgments |

## BM25 baseline

bm25s, k1={BM25.k1}, b={BM25.b}, English Snowball stemmer and English stop words, title + text indexed.
"Oracle" appends all formal synonyms of the query's concept from the inventory; "top-2" appends the two
best-known ones (a cheap stand-in for what an LLM rewrite could add).

| split | queries | NDCG@10 | R@10 |
|---|---|---|---|
{rows}
"""


def render(inventory: Inventory, collection: Collection) -> dict[str, str]:
    """File name (relative to the demo folder) -> exact file content."""
    return {
        "corpus.jsonl": _jsonl(
            [{"_id": d.id, "title": d.title, "text": d.text} for d in collection.documents]
        ),
        "queries.jsonl": _jsonl([{"_id": q.id, "text": q.text} for q in collection.queries]),
        "qrels/train.tsv": _qrels_tsv(collection, "train"),
        "qrels/test.tsv": _qrels_tsv(collection, "test"),
        "README.md": _readme(inventory, collection),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="folder to write (default: %(default)s)"
    )
    parser.add_argument(
        "--check", action="store_true", help="only verify that the files in --out are current, byte for byte"
    )
    parser.add_argument(
        "--inventory", type=Path, default=DEFAULT_INVENTORY, help="concept inventory (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        inventory = load_inventory(args.inventory)
        files = {name: text.encode("utf-8") for name, text in render(inventory, build(inventory)).items()}
    except InventoryError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check:
        stale = [
            name
            for name, content in files.items()
            if not (args.out / name).is_file() or (args.out / name).read_bytes() != content
        ]
        if stale:
            print(f"out of date in {args.out}: {', '.join(stale)}", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    for name, content in files.items():
        path = args.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as handle:
            handle.write(content)
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
