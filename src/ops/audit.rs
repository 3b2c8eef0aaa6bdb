//! The audit log: one JSON object per line (time, operator, action, target, result, error),
//! appended and flushed to disk before the next action, so it survives a crash or SIGKILL.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct AuditLog {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    operator: String,
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    operator: &'a str,
    action: &'a str,
    target: &'a str,
    result: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

impl AuditLog {
    pub fn open(path: &Path) -> std::io::Result<AuditLog> {
        // Owner-only (it names every image deleted and who did it), directory fsynced on create.
        let file = crate::report::files::open_private_append(path)?;
        let operator = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Ok(AuditLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            operator,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends and fsyncs one line. An audit failure is an error the caller must stop on.
    pub fn record(&self, action: &str, target: &str, result: &str, error: Option<&str>) -> std::io::Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let line = Line {
            time: crate::report::rfc3339(now),
            operator: &self.operator,
            action,
            target,
            result,
            error,
        };
        let mut bytes = serde_json::to_vec(&line).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        let mut f = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("audit log lock poisoned"))?;
        f.write_all(&bytes)?;
        f.sync_data()
    }
}
