//! Exit codes and the one error that means "could not run" (exit 2), shared by every command.

/// Exit codes: 0 success, 1 finished with failures, 2 could not run, 3 nothing deleted.
pub const EXIT_FAILURES: u8 = 1;
pub const EXIT_CANNOT_RUN: u8 = 2;
/// `delete --apply`: nothing failed, but nothing planned was deleted either (all skipped).
pub const EXIT_NOTHING_DELETED: u8 = 3;

/// An error that maps to "could not run" (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CannotRun(pub String);
