//! Benchmark harness (see bench/run).
