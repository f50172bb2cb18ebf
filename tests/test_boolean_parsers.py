"""PubMed and Ovid parsers: each construct parses to the AST it means; bad queries raise ParseError."""

from __future__ import annotations

import json

import pytest

from deepretrieval.retrievers.boolean.approximate import (
    ABSTRACT,
    EVERYTHING,
    NOTHING,
    TITLE,
    Match,
    approximate,
    uninvert,
)
from deepretrieval.retrievers.boolean.ovid_parser import parse_ovid
from deepretrieval.retrievers.boolean.parse import detect_syntax, parse_query
from deepretrieval.retrievers.boolean.pubmed_parser import parse_pubmed
from deepretrieval.retrievers.boolean.syntax import (
    And,
    DateLimit,
    Heading,
    Limit,
    Limits,
    Near,
    Not,
    Or,
    ParseError,
    QueryError,
    Ref,
    Strategy,
    Subheading,
    Term,
)

TIAB = ("ti", "ab")


def pubmed(text: str):
    return parse_pubmed(text).query()


def ovid(text: str):
    return parse_ovid(text).query()


def t(*words: str, fields: tuple[str, ...] = ("all",)) -> Term:
    return Term(words, fields)


def mp(*words: str) -> Term:
    return Term(words, ("mp",))


# ---- PubMed ----------------------------------------------------------------------------------------


def test_pubmed_is_left_to_right_without_precedence():
    assert pubmed("a1 OR b AND c") == pubmed("(a1 OR b) AND c") == And((Or((t("a1"), t("b"))), t("c")))
    assert pubmed("b AND c OR d") == Or((And((t("b"), t("c"))), t("d")))
    assert pubmed("b NOT c OR d") == Or((Not(t("b"), t("c")), t("d")))
    assert pubmed("b OR c NOT d") == Not(Or((t("b"), t("c"))), t("d"))
    assert pubmed("b OR (c NOT d)") == Or((t("b"), Not(t("c"), t("d"))))


def test_pubmed_implicit_and_drops_stopwords_and_lowercase_operators():
    assert pubmed("heart attack") == And((t("heart"), t("attack")))
    assert pubmed("tests for the diagnosis of gout") == And((t("tests"), t("diagnosis"), t("gout")))
    assert pubmed("cancer or tumour") == And((t("cancer"), t("tumour")))
    assert pubmed("cancer OR tumour") == Or((t("cancer"), t("tumour")))


def test_pubmed_field_tags_make_phrases():
    assert pubmed("aspergill*[tiab]") == t("aspergill*", fields=TIAB)
    assert pubmed("fungal infection[tw]") == t("fungal", "infection", fields=("tw",))
    assert pubmed("teres minor [tw]") == t("teres", "minor", fields=("tw",))
    assert pubmed('"heart attack"[Title/Abstract]') == t("heart", "attack", fields=TIAB)
    assert pubmed("x[ti] OR y[Title] OR z[ab] OR w[Abstract]") == Or(
        (t("x", fields=("ti",)), t("y", fields=("ti",)), t("z", fields=("ab",)), t("w", fields=("ab",)))
    )
    assert pubmed("gout[All Fields]") == t("gout")
    assert pubmed('"heart attack"') == t("heart", "attack")
    assert pubmed("smith j[au]") == t("smith", "j", fields=("au",))
    assert pubmed("review[pt]") == t("review", fields=("pt",))
    with pytest.raises(ParseError, match=r"unknown field tag \[unknowntag\]; PubMed tags read here: 1au"):
        pubmed("gout[unknowntag]")  # refused with the tags that are read, never silently widened


def test_pubmed_tag_after_a_group_applies_to_its_untagged_terms():
    assert pubmed("(gout OR uric acid[ti])[tiab]") == Or(
        (t("gout", fields=TIAB), t("uric", "acid", fields=("ti",)))
    )


def test_pubmed_mesh_subheadings_dates_and_proximity():
    assert pubmed('"Aspergillus"[MeSH]') == Heading("Aspergillus")
    assert pubmed("Magnetic Resonance Imaging [mh]") == Heading("Magnetic Resonance Imaging")
    assert pubmed("Rupture [mh:noexp]") == Heading("Rupture", explode=False)
    assert pubmed("Neoplasms[MeSH Terms]") == Heading("Neoplasms")
    assert pubmed("Neoplasms[majr]") == Heading("Neoplasms", major=True)
    assert pubmed("us [sh]") == Subheading("us")
    assert pubmed("2005:2010[dp]") == DateLimit("2005/01/01", "2010/12/31")
    assert pubmed("2005/03:2006/06/15[pdat]") == DateLimit("2005/03/01", "2006/06/15")
    assert pubmed('"2010"[dp]') == DateLimit("2010/01/01", "2010/12/31")
    assert pubmed('"hip pain"[tiab:~2]') == Near((t("hip", fields=TIAB), t("pain", fields=TIAB)), 2)


def test_pubmed_numbered_lines():
    strategy = parse_pubmed("gout[tiab]\nuric acid[tiab]\n\n#1 OR #2\ntreatment\n#3 AND #4")
    assert strategy.lines[2] == Or((Ref(1), Ref(2)))
    assert strategy.query() == And(
        (Or((t("gout", fields=TIAB), t("uric", "acid", fields=TIAB))), t("treatment"))
    )


def test_pubmed_lines_without_references_are_one_wrapped_query():
    assert pubmed("(gout OR tophi)\nAND allopurinol") == And((Or((t("gout"), t("tophi"))), t("allopurinol")))
    assert len(parse_pubmed("gout\ntophi").lines) == 1


def test_pubmed_leniency_for_pasted_strategies():
    """The defects of CLEF's CD007394 and CD009020 strategies, read as PubMed reads them."""
    assert pubmed('\u201cAspergillus"[MeSH]') == Heading("Aspergillus")  # curly opening quote
    assert pubmed('Serology"[MeSH]') == Heading("Serology")  # a quote without its partner is dropped
    strategy = parse_pubmed("gout[tiab]\ntophi[tiab]\n#1 OR 2")  # '2' without '#' is a search term
    assert strategy.lines[2] == Or((Ref(1), t("2")))
    assert pubmed("(gout[tw] OR tophi[tw])Total references = 1551") == Or(
        (t("gout", fields=("tw",)), t("tophi", fields=("tw",)))
    )
    assert pubmed("AND gout OR") == t("gout")
    assert pubmed("gout AND NOT tophi") == Not(t("gout"), t("tophi"))
    assert pubmed("gout ? tophi") == And((t("gout"), t("tophi")))


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("(gout OR tophi", "never closed"),
        ("gout) OR tophi", "unbalanced"),
        ("gout AND OR tophi", "follows another operator"),
        ("gout AND ()", "empty parentheses"),
        ("#2 OR gout\ntophi", "not an earlier line"),
        ("gout[tiab", "never closed"),
        ("[tiab] gout", "follows no search term"),
        ('gout AND ""', "empty phrase"),
        ("1900/13[dp]", "no such month"),
        ("the of", "no search terms"),
        ("   \n  ", "empty query"),
        ('"a b"[tiab:~x]', "needs a number"),
        ("NOT gout", "nothing on its left"),
        ("tophi AND (NOT gout)", "nothing on its left"),
    ],
)
def test_pubmed_errors_say_why(query: str, reason: str):
    with pytest.raises(ParseError, match=reason):
        parse_pubmed(query)


def test_limits_bound_length_depth_and_expansion():
    with pytest.raises(ParseError, match="characters long"):
        parse_pubmed("gout " * 100, Limits(max_chars=100))
    with pytest.raises(ParseError, match="nested deeper"):
        parse_pubmed("(" * 70 + "gout" + ")" * 70)
    doubling = "\n".join(["gout"] + [f"#{n} OR #{n}" for n in range(1, 40)])
    with pytest.raises(ParseError, match="expands to"):
        parse_pubmed(doubling)
    assert len(parse_pubmed(doubling, Limits(max_leaves=2**40)).lines) == 40
    chain = "\n".join(["gout"] + [f"#{n} {'AND' if n % 2 else 'OR'} w{n}" for n in range(1, 100)])
    with pytest.raises(ParseError, match="nests 65 levels deep"):
        parse_pubmed(chain)
    assert len(parse_pubmed(chain, Limits(max_depth=100)).lines) == 100
    flat = "\n".join(["gout"] + [f"#{n} OR w{n}" for n in range(1, 500)])  # ORs of ORs flatten
    assert parse_pubmed(flat).query() == Or((t("gout"), *(t(f"w{n}") for n in range(1, 500))))


# ---- Ovid ------------------------------------------------------------------------------------------


def test_ovid_words_phrases_fields_and_truncation():
    assert ovid("Diagnos$.mp.") == mp("Diagnos*")
    assert ovid("Active compression.mp.") == mp("Active", "compression")
    assert ovid("Man?euv$.mp.") == mp("Man?euv*")
    assert ovid("Tend#nitis.mp.") == mp("Tend#nitis")
    assert ovid("dog$1.tw.") == Term(("dog?",), ("tw",))
    assert ovid("esophag* varic*") == mp("esophag*", "varic*")
    assert ovid("kala-azar.ti,ab") == Term(("kala-azar",), TIAB)
    assert ovid("RDT.ab,ti.") == Term(("RDT",), ("ab", "ti"))
    assert ovid("(thecoma* or luteoma*).tw,ot.") == Or(
        (Term(("thecoma*",), ("tw", "ot")), Term(("luteoma*",), ("tw", "ot")))
    )
    assert ovid("Crenshaw A$.au.") == Term(("Crenshaw", "A*"), ("au",))
    assert ovid('"polymerase chain reaction*".ti,ab.') == Term(("polymerase", "chain", "reaction*"), TIAB)
    assert ovid("(liver biops*).mp. [mp=title, abstract, original title]") == mp("liver", "biops*")
    assert ovid("K39 Or rK39.ti,ab") == Or((mp("K39"), Term(("rK39",), TIAB)))


def test_ovid_adjacency():
    assert ovid("(coronary adj5 disease).tw.") == Near(
        (Term(("coronary",), ("tw",)), Term(("disease",), ("tw",))), 4
    )
    assert ovid("(Anterior adj (release or slide)).mp.") == Near(
        (mp("Anterior"), Or((mp("release"), mp("slide")))), 0, ordered=True
    )
    assert ovid("optical$ adj2 coherence$ adj2 tomograph$") == Near(
        (mp("optical*"), mp("coherence*"), mp("tomograph*")), 1
    )
    assert ovid("a1 adj2 b1 adj5 c1") == Near((Near((mp("a1"), mp("b1")), 1), mp("c1")), 4)
    assert ovid("gout adj3 tophi or uric") == Or((Near((mp("gout"), mp("tophi")), 2), mp("uric")))


def test_ovid_headings():
    assert ovid("Kidney Transplantation/") == Heading("Kidney Transplantation", explode=False)
    assert ovid("exp Tomography, X-Ray Computed/") == Heading("Tomography, X-Ray Computed")
    assert ovid("Exp Leishmania donovani/") == Heading("Leishmania donovani")
    assert ovid("*Lymphatic Metastasis/") == Heading("Lymphatic Metastasis", explode=False, major=True)
    assert ovid("Dipyridamole/du [Diagnostic Use]") == Heading(
        "Dipyridamole", explode=False, subheadings=("du",)
    )
    assert ovid("exp *Dementia/di, pa or Kidney/ri") == Or(
        (
            Heading("Dementia", major=True, subheadings=("di", "pa")),
            Heading("Kidney", explode=False, subheadings=("ri",)),
        )
    )
    assert ovid('exp "Sensitivity and Specificity"/') == Heading("Sensitivity and Specificity")
    assert ovid("(Fluoroscopy/ or fluoroscopy.tw.)") == Or(
        (Heading("Fluoroscopy", explode=False), Term(("fluoroscopy",), ("tw",)))
    )
    assert ovid("exp animals/ not humans.sh.") == Not(Heading("animals"), Heading("humans", explode=False))
    assert ovid("(animals not humans).sh.") == Not(
        Heading("animals", explode=False), Heading("humans", explode=False)
    )


def test_ovid_line_combinations_and_limits():
    strategy = parse_ovid(
        "gout.tw.\ntophi.tw.\nuric.tw.\nor/1-3\nand/1,3\n1 or 2 or podagra.tw.\n"
        'limit 4 to english language\nlimit 7 to yr="2005 -Current"\nlimit 1 to yr=2010\n'
        'limit 6 to "reviews (maximizes specificity)"'
    )
    assert strategy.lines[3] == Or((Ref(1), Ref(2), Ref(3)))
    assert strategy.lines[4] == And((Ref(1), Ref(3)))
    assert strategy.lines[5] == Or((Ref(1), Ref(2), Term(("podagra",), ("tw",))))
    assert strategy.lines[6] == And((Ref(4), Limit("english language")))
    assert strategy.lines[7] == And((Ref(7), DateLimit("2005/01/01", None)))
    assert strategy.lines[8] == And((Ref(1), DateLimit("2010/01/01", "2010/12/31")))
    assert strategy.lines[9] == And((Ref(6), Limit("reviews (maximizes specificity)")))
    assert Strategy(strategy.lines[:4]).query() == Or(
        (Term(("gout",), ("tw",)), Term(("tophi",), ("tw",)), Term(("uric",), ("tw",)))
    )


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("gout.tw.\n3 or 1", "not an earlier line"),
        ("gout.tw.\ntophi.tw.\nor/2-1", "runs backwards"),
        ("exp gout", "must precede a subject heading"),
        ("(gout or tophi", "not closed"),
        ("gout or", "search term is missing"),
        ("gout.tw.\nand/1,x", "not a list of line numbers"),
        ("gout ) tophi", "unexpected"),
    ],
)
def test_ovid_errors_say_why(query: str, reason: str):
    with pytest.raises(ParseError, match=reason):
        parse_ovid(query)


# ---- syntax detection and the CLEF strategies -------------------------------------------------------


def test_detect_syntax():
    assert detect_syntax("gout AND (allopurinol OR febuxostat)") == "pubmed"
    assert detect_syntax("gout treatment") == "pubmed"
    assert detect_syntax("exp Gout/\ngout.tw.\nor/1-2") == "ovid"
    assert detect_syntax("gout[tiab] AND allopurinol$") == "pubmed"
    assert parse_query("exp Gout/").lines == (Heading("Gout"),)


def test_every_clef_expert_strategy_parses_in_its_syntax(clef_topics):
    for topic in clef_topics:
        meta = topic["metadata"]
        text = meta["boolean_query"] or meta["ovid_query"]
        assert detect_syntax(text) == meta["query_syntax"], topic["_id"]
        strategy = parse_query(text)
        assert isinstance(strategy.query(), (And, Or, Not)), topic["_id"]


@pytest.fixture(scope="module")
def clef_topics(shared_data):
    path = shared_data / "literature" / "clef-tar-2017" / "queries.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---- approximation -----------------------------------------------------------------------------------


def approx(text: str, *, has_dates: bool = False, syntax: str = "auto"):
    return approximate(parse_query(text, syntax), has_dates=has_dates)


def test_fields_map_onto_title_and_abstract():
    assert approx("gout[ti]") == Match(("gout",), (TITLE,))
    assert approx("gout[ab]") == Match(("gout",), (ABSTRACT,))
    assert approx("gout[tw] OR tophi[tiab] OR uric") == Or(
        (Match(("gout",)), Match(("tophi",)), Match(("uric",)))
    )
    assert approx("gout.ti,nm.", syntax="ovid") == Match(("gout",))
    assert approx("gout[tiab] OR smith[au]") == Match(("gout",))  # no author field: matches nothing
    assert approx("smith[au]") is NOTHING


def test_headings_become_phrases_in_reading_order():
    assert (
        uninvert("Tomography, Emission-Computed, Single-Photon")
        == "Single-Photon Emission-Computed Tomography"
    )
    assert approx("Kidney Failure, Chronic/") == Match(("Chronic", "Kidney", "Failure"))
    assert approx("exp *Dementia/di") == Match(("Dementia",))
    assert approx("gout[tiab] OR drug therapy[sh]") == Match(("gout",))


def test_unevaluable_restrictions_never_remove_a_document():
    assert approx("gout[tiab] AND english[la]") == Match(("gout",))
    assert approx("gout[tiab] NOT review[pt]") == Match(("gout",))
    assert approx("gout[tiab] AND humans[mh]") == Match(("gout",))
    assert approx("gout[tiab] NOT (animals[mh] NOT humans[mh])") == Match(("gout",))
    assert approx("gout.tw.\nlimit 1 to english language") == Match(("gout",))
    # CLEF CD011134's ending: 30 = 7 and 14 and 29; 32 = limit 31 to reviews; 33 = 30 not 32
    strategy = "gout.tw.\ntophi.tw.\nuric.tw.\n1 and 2 and 3\n1 and 2\nlimit 5 to reviews\n4 not 6"
    assert approx(strategy) == And((Match(("gout",)), Match(("tophi",)), Match(("uric",))))
    assert approx("2012*.ed.", syntax="ovid") is EVERYTHING
    assert approx("gout[tiab] AND 2005:2010[dp]") == Match(("gout",))
    assert approx("gout[tiab] AND 2005:2010[dp]", has_dates=True) == And(
        (Match(("gout",)), DateLimit("2005/01/01", "2010/12/31"))
    )


def test_proximity_distributes_over_or():
    assert approx("((magnetic resonance or MR) adj5 (angiogra$ or arteriogra$)).tw.") == Or(
        (
            Near((Match(("magnetic", "resonance")), Match(("angiogra*",))), 4),
            Near((Match(("magnetic", "resonance")), Match(("arteriogra*",))), 4),
            Near((Match(("MR",)), Match(("angiogra*",))), 4),
            Near((Match(("MR",)), Match(("arteriogra*",))), 4),
        )
    )
    assert approx("(Anterior adj (release or slide)).mp.") == Or(
        (Match(("Anterior", "release")), Match(("Anterior", "slide")))
    )
    assert approx("(gout adj3 (tophi and uric)).tw.") == And(
        (Match(("gout",)), Match(("tophi",)), Match(("uric",)))
    )
    assert approx("(gout.ti. adj3 tophi.ab.)") is NOTHING
    many = " or ".join(f"w{n}" for n in range(40))
    with pytest.raises(QueryError, match="combinations"):
        approx(f"(({many}) adj3 ({many})).tw.")
