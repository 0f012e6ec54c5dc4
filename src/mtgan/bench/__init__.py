"""`mtgan bench`: train presets × seeds under one protocol, in parallel processes, and compare
them in a table (Markdown, CSV) and a self-contained HTML report."""

from mtgan.bench.plan import is_bench_dir
from mtgan.bench.suite import BenchOutcome, report_bench_dir, run_bench

__all__ = ["BenchOutcome", "is_bench_dir", "report_bench_dir", "run_bench"]
