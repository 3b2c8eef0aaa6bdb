//! Test kit only: named points between two durable steps where the kill matrix
//! (`tests/kill_matrix.rs`) stops the real binary. With `RC_KILL_POINT=<name>` (and
//! `RC_KILL_POINT_AT=<n>`, default 1) the process, on reaching `<name>` for the n-th time,
//! creates the file `RC_KILL_POINT_FILE` and sleeps there for a minute, so the test kills it
//! exactly between those steps. Without the `testkit` feature [`reached`] does nothing and
//! reads no environment.

/// Where the process is: `mongo-backed-up` (a document is in the backup file, not yet deleted),
/// `mongo-deleted` (deleted, its audit line not yet written), `restore-inserted` (a document
/// re-inserted, the next not yet).
#[cfg(feature = "testkit")]
pub async fn reached(point: &str) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static HITS: AtomicUsize = AtomicUsize::new(0);
    if std::env::var("RC_KILL_POINT").ok().as_deref() != Some(point) {
        return;
    }
    let at: usize = std::env::var("RC_KILL_POINT_AT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    if HITS.fetch_add(1, Ordering::SeqCst) + 1 != at {
        return;
    }
    if let Some(file) = std::env::var_os("RC_KILL_POINT_FILE") {
        let _ = std::fs::write(file, point);
    }
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
}

/// Without the test kit: nothing.
#[cfg(not(feature = "testkit"))]
pub async fn reached(_point: &str) {}
