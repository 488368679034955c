//! The operating system's random source, and the one error every layer reports when it fails.

use thiserror::Error;

/// The operating system's random number source failed (no entropy, a sandbox that forbids
/// `getrandom`, ...). Nothing secret was produced; the operation that needed it was not done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct RandomError(#[source] getrandom::Error);

/// Fills `buf` from the operating system's random source.
pub fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(RandomError)
}

impl From<getrandom::Error> for RandomError {
    fn from(e: getrandom::Error) -> Self {
        RandomError(e)
    }
}
