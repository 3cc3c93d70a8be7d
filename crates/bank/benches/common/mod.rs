//! Helpers shared by the bank's benchmarks.

use std::time::Duration;

use flash_store::testing::Backend;

/// A comma-separated list from the environment, or `default`.
pub fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect()
}

/// The `p` quantile of sorted latencies.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// A number from the environment, or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// The backends `FLASH_BENCH_BACKENDS` names (default both), with their names.
pub fn backends() -> Vec<(String, Backend)> {
    env_list("FLASH_BENCH_BACKENDS", "sqlite,postgres")
        .into_iter()
        .map(|name| {
            let backend = match name.as_str() {
                "sqlite" => Backend::Sqlite,
                "postgres" => Backend::Postgres,
                other => panic!("unknown backend {other}"),
            };
            (name, backend)
        })
        .collect()
}
