//! Crash points for the crash tests (`crates/server/tests/*_crash.rs`). Built with the
//! `crash-points` feature, a process whose `FLASH_CRASH_AT` names a point dies there at once,
//! as under `kill -9`: no destructor runs and nothing more is written. Without the feature (any
//! build for use) a crash point is nothing.

/// Dies here when `FLASH_CRASH_AT` is `name` (with the `crash-points` feature).
#[cfg(feature = "crash-points")]
pub fn crash_point(name: &str) {
    if std::env::var("FLASH_CRASH_AT").is_ok_and(|at| at == name) {
        eprintln!("FLASH_CRASH_AT={name}: dying here");
        std::process::abort();
    }
}

/// Nothing: this build has no crash points.
#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn crash_point(_name: &str) {}
