//! Exit codes and the one error that means "could not run" (exit 2), shared by every command.

/// Exit codes: 0 success, 1 finished with failures, 2 could not run.
pub const EXIT_FAILURES: u8 = 1;
pub const EXIT_CANNOT_RUN: u8 = 2;

/// An error that maps to "could not run" (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CannotRun(pub String);
