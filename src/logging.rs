//! Logging to a file through a non-blocking writer: stdout belongs to the TUI or the JSON
//! report. The returned guard must live until exit so buffered lines are flushed.

use std::path::{Path, PathBuf};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Default log file: `$XDG_STATE_HOME/registry-cleaner/registry-cleaner.log` (or the cache dir).
pub fn default_log_path() -> PathBuf {
    dirs::state_dir()
        .or_else(dirs::cache_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("registry-cleaner")
        .join("registry-cleaner.log")
}

/// Starts file logging at `verbosity` (0 = info for our crate, 1 = debug, 2+ = trace; quiet =
/// warnings only). Client crates stay at `warn` unless `RUST_LOG` says otherwise.
pub fn init(path: &Path, verbosity: u8, quiet: bool) -> anyhow::Result<WorkerGuard> {
    use anyhow::Context as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating log directory {}", dir.display()))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening log file {}", path.display()))?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let level = match (quiet, verbosity) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("warn,registry_cleaner={level}")));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok();
    Ok(guard)
}
