"""Text-to-SQL support: sandboxed execution, result comparison, schema text, Spider difficulty."""

from deepretrieval.sql.compare import Compat, Dialect, execution_sql, results_match
from deepretrieval.sql.executor import (
    ExecutionLimits,
    ExecutionResult,
    SqlExecutorPool,
    UnsafeSqlError,
    single_statement,
)
from deepretrieval.sql.hardness import spider_hardness
from deepretrieval.sql.schema import describe_database

__all__ = [
    "Compat",
    "Dialect",
    "ExecutionLimits",
    "ExecutionResult",
    "SqlExecutorPool",
    "UnsafeSqlError",
    "describe_database",
    "execution_sql",
    "results_match",
    "single_statement",
    "spider_hardness",
]
