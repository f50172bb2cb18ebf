"""SqlTask: Spider loader on the real data, a BIRD-shaped fixture built here, prompts, comparison semantics,
difficulty, and ``measure`` through the real executor pool."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepretrieval.parsing import parse_completion
from deepretrieval.prompting import Prompting
from deepretrieval.sql.compare import bird_match, orders_output, results_match, spider_match
from deepretrieval.sql.executor import ExecutionLimits, SqlExecutorPool
from deepretrieval.sql.hardness import spider_hardness
from deepretrieval.tasks import load_task
from deepretrieval.tasks.sql import SqlDataError, SqlTask

OUTCOME_KEYS = {"ex", "executed", "timeout"}

SQL = Prompting("sql")


class RecordingPool(SqlExecutorPool):
    """A real pool that also records the job batches it was given."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches: list[list[tuple]] = []

    def run(self, jobs, progress=None):
        self.batches.append(list(jobs))
        return super().run(jobs, progress)


@pytest.fixture(scope="module")
def pool():
    with RecordingPool(workers=2, limits=ExecutionLimits(timeout_s=1.0)) as pool:
        yield pool


@pytest.fixture(scope="module")
def spider(spider_dir: Path, pool: RecordingPool) -> SqlTask:
    return SqlTask(spider_dir, pool=pool)


def by_sql(task: SqlTask, sql: str):
    return next(ex for ex in task.examples("dev") if ex.truth == sql)


# ---------------------------------------------------------------- comparison semantics


def test_values_normalise_numerically() -> None:
    assert spider_match([(1,)], [(1.0,)], order_matters=False)
    assert spider_match([(0.3,)], [(0.1 + 0.2,)], order_matters=False)
    assert not spider_match([(1,)], [("1",)], order_matters=False)
    assert not spider_match([(0.3,)], [(0.30001,)], order_matters=False)


def test_spider_compares_multisets_and_bird_sets() -> None:
    gold, pred = [(1,), (2,)], [(1,), (2,), (2,)]
    assert not spider_match(gold, pred, order_matters=False)
    assert bird_match(gold, pred)
    assert spider_match([(1,), (2,), (2,)], [(2,), (1,), (2,)], order_matters=False)
    assert spider_match([], [], order_matters=True)
    assert not spider_match([], [(None,)], order_matters=False)


def test_spider_order_matters_only_under_top_level_order_by() -> None:
    gold, reversed_rows = [(1, "a"), (2, "b")], [(2, "b"), (1, "a")]
    assert not results_match(gold, reversed_rows, dialect="spider", gold_sql="SELECT x, y FROM t ORDER BY x")
    assert results_match(gold, reversed_rows, dialect="spider", gold_sql="SELECT x, y FROM t")
    nested = "SELECT x, y FROM (SELECT x, y FROM t ORDER BY x) WHERE y <> 'order by'"
    assert results_match(gold, reversed_rows, dialect="spider", gold_sql=nested)
    assert results_match(gold, reversed_rows, dialect="bird", gold_sql="SELECT x, y FROM t ORDER BY x")


@pytest.mark.parametrize(
    ("sql", "orders"),
    [
        ("SELECT a FROM t ORDER BY a", True),
        ("select a from t order  by a desc limit 3", True),
        ("SELECT a FROM t UNION SELECT a FROM u ORDER BY a", True),
        ("SELECT a FROM t WHERE a IN (SELECT a FROM u ORDER BY a LIMIT 1)", False),
        ("SELECT row_number() OVER (ORDER BY a) FROM t", False),
        ("SELECT 'ORDER BY' FROM t -- ORDER BY a", False),
        ('SELECT "order" FROM t', False),
    ],
)
def test_orders_output_sees_only_top_level(sql: str, orders: bool) -> None:
    assert orders_output(sql) is orders


def test_spider_allows_column_permutations_bird_does_not() -> None:
    gold = [(1, "x", 2.5), (2, "y", 3.5)]
    permuted = [("x", 2.5, 1), ("y", 3.5, 2)]
    assert spider_match(gold, permuted, order_matters=True)
    assert not bird_match(gold, permuted)
    # same column multisets, different row pairing: not a permutation of the gold result
    assert not spider_match([(1, "x"), (2, "y")], [(1, "y"), (2, "x")], order_matters=False)
    # many identical columns are tried once, not width! times
    wide = [tuple([k] * 12) for k in range(3)]
    assert spider_match(wide, list(reversed(wide)), order_matters=False)


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown SQL dialect"):
        results_match([], [], dialect="postgres")  # type: ignore[arg-type]


# ---------------------------------------------------------------- Spider difficulty


def test_hardness_reproduces_the_official_spider_dev_split(spider_dir: Path) -> None:
    records = json.loads((spider_dir / "dev.json").read_text())
    counts = Counter(spider_hardness(record["sql"]) for record in records)
    assert counts == {"easy": 248, "medium": 446, "hard": 174, "extra": 166}


def test_hardness_refuses_unparsed_input() -> None:
    with pytest.raises(ValueError, match="not a Spider parsed query"):
        spider_hardness({"select": []})


# ---------------------------------------------------------------- Spider loading and prompts


def test_spider_dev_skips_missing_database_with_one_warning(
    spider_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="deepretrieval.tasks.sql"):
        examples = SqlTask(spider_dir).examples("dev")
    assert len(examples) == 972
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped 62 of 1034" in warnings[0] and "wta_1: 62" in warnings[0]
    assert all(ex.meta["db_id"] != "wta_1" and Path(ex.meta["db_path"]).is_file() for ex in examples)
    assert {ex.meta["hardness"] for ex in examples} == {"easy", "medium", "hard", "extra"}
    assert len({ex.id for ex in examples}) == 972


def test_spider_prompt_carries_schema_from_the_database(spider: SqlTask) -> None:
    example = next(ex for ex in spider.examples("dev") if ex.meta["db_id"] == "concert_singer")
    system, user = spider.messages(example, Prompting("sql", reasoning=True))
    assert system["role"] == "system" and user["role"] == "user"
    with closing(sqlite3.connect(example.meta["db_path"])) as conn:
        stored = [sql for (sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table'")]
    assert all(sql.splitlines()[0].rstrip() in user["content"] for sql in stored)
    assert example.fields["question"] in user["content"]
    assert "External knowledge" not in user["content"]
    assert "<think>" in user["content"] and '{"sql"' in user["content"]
    plain = spider.messages(example, SQL)[1]["content"]
    assert "<think>" not in plain and "<answer>" in plain


def test_prompted_answer_format_parses(spider: SqlTask) -> None:
    completion = '<think>count rows</think>\n<answer>{"sql": "SELECT count(*) FROM singer"}</answer>'
    parsed = parse_completion(completion, reasoning=True, answer_key=spider.answer_key)
    assert parsed.format_ok and parsed.answer == "SELECT count(*) FROM singer"


def test_sample_rows_option(spider_dir: Path) -> None:
    task = load_task("sql", spider_dir, sample_rows=2, timeout_s=0.5, max_rows=100, workers=1)
    example = next(ex for ex in task.examples("dev") if ex.meta["db_id"] == "singer")
    content = task.messages(example, SQL)[1]["content"]
    assert "2 rows from singer:" in content
    assert task.pool.limits.timeout_s == 0.5 and task.pool.limits.max_rows == 100 and task.pool.size == 1


# ---------------------------------------------------------------- measure


def test_measure_judges_execution(spider: SqlTask) -> None:
    ordered = by_sql(spider, "SELECT name ,  country ,  age FROM singer ORDER BY age DESC")
    count = by_sql(spider, "SELECT count(*) FROM singer")
    cases = [
        (ordered, ordered.truth, 1.0, 1.0),
        (ordered, "SELECT age, name, country FROM singer ORDER BY age DESC", 1.0, 1.0),  # column permutation
        (
            ordered,
            "SELECT name, country, age FROM singer ORDER BY age ASC",
            0.0,
            1.0,
        ),  # gold orders: order counts
        (count, "select COUNT(*) from singer;", 1.0, 1.0),
        (count, "SELECT count(*) + 0.0 FROM singer", 1.0, 1.0),  # 6 == 6.0
        (count, "SELECT count(*) FROM stadium", 0.0, 1.0),
        (count, "SELECT count(*) FROM no_such_table", 0.0, 0.0),
        (count, "DROP TABLE singer", 0.0, 0.0),
        (count, "", 0.0, 0.0),
    ]
    outcomes = spider.measure([answer for _, answer, _, _ in cases], [ex for ex, _, _, _ in cases])
    for (_, answer, ex, executed), outcome in zip(cases, outcomes):
        assert outcome == {"ex": ex, "executed": executed, "timeout": 0.0}, answer


def test_measure_reports_timeouts(spider: SqlTask) -> None:
    count = by_sql(spider, "SELECT count(*) FROM singer")
    runaway = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    assert spider.measure([runaway], [count]) == [{"ex": 0.0, "executed": 0.0, "timeout": 1.0}]


def test_measure_runs_each_distinct_pair_once_and_caches_gold(spider_dir: Path) -> None:
    with RecordingPool(workers=1, limits=ExecutionLimits(timeout_s=1.0)) as pool:
        task = SqlTask(spider_dir, pool=pool)
        examples = task.examples("dev")[:4]
        answers = [examples[0].truth, "SELECT 1", "SELECT 1", examples[3].truth]
        first = task.measure(answers, examples)
        assert len(pool.batches) == 1
        batch = pool.batches[0]
        assert len(batch) == len(set(batch))
        assert {(ex.meta["db_path"], ex.truth) for ex in examples} <= set(batch)
        assert first[0]["ex"] == 1.0 and first[3]["ex"] == 1.0 and first[1]["ex"] == 0.0
        second = task.measure(answers, examples)
        assert second == first
        # gold results come from the cache; the answers equal to a gold query need no execution either
        assert {sql for _, sql in pool.batches[1]} == {"SELECT 1"}


NASTY = [
    "",
    " ",
    ";",
    "\x00",
    "\ud800",
    "SELECT '\ud800'",
    "SELECT 1\x00",
    "é" * 10_000,
    "SELECT " + "(" * 5000,
    "<answer>{}</answer>",
    "SELECT 1; SELECT 2",
    "ATTACH ':memory:' AS m",
    None,
    b"SELECT 1",
    42,
]


def test_measure_never_raises_on_odd_answers(spider: SqlTask) -> None:
    example = by_sql(spider, "SELECT count(*) FROM singer")
    outcomes = spider.measure(NASTY, [example] * len(NASTY))  # type: ignore[arg-type]
    assert all(set(o) == OUTCOME_KEYS and o["ex"] == 0.0 for o in outcomes)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=200), min_size=1, max_size=8))
def test_measure_never_raises_on_any_text(spider: SqlTask, answers: list[str]) -> None:
    example = by_sql(spider, "SELECT count(*) FROM singer")
    outcomes = spider.measure(answers, [example] * len(answers))
    assert len(outcomes) == len(answers)
    assert all(set(o) == OUTCOME_KEYS and set(o.values()) <= {0.0, 1.0} for o in outcomes)


def test_measure_refuses_mismatched_batches(spider: SqlTask) -> None:
    with pytest.raises(ValueError, match="2 answers for 1 examples"):
        spider.measure(["SELECT 1", "SELECT 2"], spider.examples("dev")[:1])


# ---------------------------------------------------------------- BIRD-shaped fixture


@pytest.fixture
def bird_dir(tmp_path: Path) -> Path:
    root = tmp_path / "bird"
    db_dir = root / "dev_databases" / "shop"
    db_dir.mkdir(parents=True)
    with closing(sqlite3.connect(db_dir / "shop.sqlite")) as conn:
        conn.executescript(
            """
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), amount REAL);
            INSERT INTO customers VALUES (1, 'Ada', 'London'), (2, 'Grace', 'New York'), (3, 'Linus', 'Helsinki');
            INSERT INTO orders VALUES (1, 1, 120.0), (2, 1, 80.5), (3, 2, 300.0), (4, 3, 15.25);
            """
        )
        conn.commit()
    records = [
        {
            "question_id": 0,
            "db_id": "shop",
            "question": "Which customers spent more than 100 in total?",
            "evidence": "spent more than 100 refers to SUM(amount) > 100",
            "difficulty": "simple",
            "SQL": "SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id HAVING SUM(o.amount) > 100",
        },
        {
            "question_id": 1,
            "db_id": "shop",
            "question": "List the cities of customers.",
            "evidence": "",
            "difficulty": "moderate",
            "SQL": "SELECT city FROM customers ORDER BY city",
        },
        {
            "question_id": 2,
            "db_id": "library",
            "question": "How many books?",
            "evidence": "",
            "difficulty": "simple",
            "SQL": "SELECT count(*) FROM books",
        },
    ]
    (root / "dev.json").write_text(json.dumps(records))
    return root


def test_bird_loader_prompt_and_set_semantics(bird_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="deepretrieval.tasks.sql"),
        SqlTask(bird_dir, workers=1) as task,
    ):
        assert task.dialect == "bird"
        examples = task.examples("dev")
        assert [ex.id for ex in examples] == ["bird-dev-0", "bird-dev-1"]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "skipped 1 of 3" in warnings[0] and "library: 1" in warnings[0]
        assert examples[0].meta["hardness"] == "simple" and examples[0].meta["db_id"] == "shop"

        user = task.messages(examples[0], SQL)[1]["content"]
        assert "External knowledge: spent more than 100 refers to SUM(amount) > 100" in user
        assert "CREATE TABLE orders" in user and "Which customers spent" in user
        assert "External knowledge" not in task.messages(examples[1], SQL)[1]["content"]

        answers = [
            (
                "SELECT name FROM customers WHERE id IN (SELECT customer_id FROM orders GROUP BY customer_id"
                " HAVING SUM(amount) > 100) UNION ALL SELECT 'Ada'"
            ),  # a duplicate row: same set
            "SELECT city FROM customers ORDER BY city DESC",  # order ignored by BIRD
        ]
        assert task.measure(answers, examples) == [{"ex": 1.0, "executed": 1.0, "timeout": 0.0}] * 2
        wrong = task.measure(["SELECT name FROM customers", "SELECT nonsense FROM customers"], examples)
        assert wrong == [
            {"ex": 0.0, "executed": 1.0, "timeout": 0.0},
            {"ex": 0.0, "executed": 0.0, "timeout": 0.0},
        ]


def test_bird_split_subfolder_layout(bird_dir: Path, tmp_path: Path) -> None:
    nested = tmp_path / "nested"
    (nested / "dev").mkdir(parents=True)
    for name in ("dev.json", "dev_databases"):
        (bird_dir / name).rename(nested / "dev" / name)
    task = SqlTask(nested, dialect=None)
    assert task.dialect == "bird" and len(task.examples("dev")) == 2


def test_data_errors_are_clear(tmp_path: Path, spider_dir: Path) -> None:
    with pytest.raises(SqlDataError, match="does not exist"):
        SqlTask(tmp_path / "absent")
    with pytest.raises(SqlDataError, match="neither a Spider folder"):
        SqlTask(tmp_path)
    with pytest.raises(SqlDataError, match="needs one of test.json"):
        SqlTask(spider_dir).examples("test")
    with pytest.raises(ValueError, match="dialect must be one of"):
        SqlTask(spider_dir, dialect="mysql")  # type: ignore[arg-type]
    broken = tmp_path / "broken"
    (broken / "dev_databases").mkdir(parents=True)
    (broken / "dev.json").write_text('[{"db_id": "x"')
    with pytest.raises(SqlDataError, match="not valid JSON"):
        SqlTask(broken).examples("dev")


def test_official_compat_reproduces_the_evaluators_distinct_rule(spider_dir: Path) -> None:
    """Spider dev #37 returns a singer twice; a prediction that adds DISTINCT is wrong with --keep_distinct
    (our default) and right under the official evaluator's default, which strips DISTINCT from both."""
    with load_task("sql", spider_dir) as keep, load_task("sql", spider_dir, compat="official") as official:
        example = keep.examples("dev")[37]
        assert example.truth.startswith("SELECT T2.name FROM singer_in_concert")
        distinct = example.truth.replace("SELECT T2.name", "SELECT DISTINCT T2.name")
        assert keep.measure([distinct, example.truth], [example, example])[0]["ex"] == 0.0
        verdicts = official.measure([distinct, example.truth], [official.examples("dev")[37]] * 2)
        assert [v["ex"] for v in verdicts] == [1.0, 1.0]
    with pytest.raises(ValueError, match="compat"):
        load_task("sql", spider_dir, compat="loose")
