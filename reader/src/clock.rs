//! The wall clock of the `medcard` CLI and the desktop app: Unix seconds from the system, or
//! `MEDCARD_NOW` in test builds only.
//!
//! `MEDCARD_NOW` lets the tests replay a clinic day at fixed times. A release build ignores it:
//! anyone who can set a kiosk's or bedside device's environment would otherwise make an expired
//! code verify (reproduced: a 2020 code verified under `MEDCARD_NOW=1600000000`). Test builds
//! are the debug-assertion builds `cargo build` and `cargo test` make; clinics run release builds.

/// The test clock's environment variable.
pub const TEST_CLOCK_VAR: &str = "MEDCARD_NOW";

/// Whether this build honours [`TEST_CLOCK_VAR`] (debug-assertion builds only).
pub const TEST_CLOCK_HONOURED: bool = cfg!(debug_assertions);

/// `MEDCARD_NOW` was set to something that is not Unix seconds (test builds only).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{TEST_CLOCK_VAR}={value:?}: expected Unix seconds")]
pub struct TestClockError {
    /// What the variable held.
    pub value: String,
}

/// The system clock in Unix seconds (0 before 1970, which no clinic runs at).
#[must_use]
pub fn system_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Now: [`TEST_CLOCK_VAR`] when this build honours it and it is set, else the system clock.
pub fn now() -> Result<i64, TestClockError> {
    now_from(std::env::var(TEST_CLOCK_VAR).ok().as_deref(), TEST_CLOCK_HONOURED)
}

/// [`now`] with the variable's value and the build's policy given. Pure but for the system clock.
pub fn now_from(test_clock: Option<&str>, honoured: bool) -> Result<i64, TestClockError> {
    match test_clock {
        Some(v) if honoured => v.trim().parse().map_err(|_| TestClockError { value: v.to_owned() }),
        _ => Ok(system_now()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_builds_ignore_the_test_clock_so_an_expired_code_stays_expired() {
        let t = now_from(Some("1600000000"), false);
        assert!(matches!(t, Ok(t) if t > 1_700_000_000), "{t:?}");
        assert_eq!(now_from(Some("1600000000"), true), Ok(1_600_000_000));
        assert!(now_from(Some("soon"), true).is_err());
        assert!(now_from(Some("soon"), false).is_ok(), "an ignored variable is not an error");
    }
}
