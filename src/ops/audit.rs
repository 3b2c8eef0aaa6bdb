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
        let operator = operator();
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

/// Who runs this: `USER`, else `LOGNAME`, else the login name of the process's uid from
/// `/etc/passwd` (a pod or a tmux started without a login shell sets neither), else `uid N`.
pub fn operator() -> String {
    #[cfg(unix)]
    let uid = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    };
    #[cfg(not(unix))]
    let uid = None;
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    operator_from(std::env::var("USER").ok(), std::env::var("LOGNAME").ok(), uid, &passwd)
}

fn operator_from(user: Option<String>, logname: Option<String>, uid: Option<u32>, passwd: &str) -> String {
    if let Some(name) = user.into_iter().chain(logname).find(|n| !n.is_empty()) {
        return name;
    }
    let Some(uid) = uid else {
        return "unknown".into();
    };
    passwd
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id: u32 = f.nth(1)?.parse().ok()?;
            (id == uid && !name.is_empty()).then(|| name.to_string())
        })
        .next()
        .unwrap_or_else(|| format!("uid {uid}"))
}

#[cfg(test)]
mod tests {
    use super::operator_from;

    #[test]
    fn the_operator_is_user_then_logname_then_the_uids_login_name() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nops:x:1000:1000::/home/ops:/bin/sh\n";
        let s = |v: &str| Some(v.to_string());
        assert_eq!(operator_from(s("ann"), s("bob"), Some(1000), passwd), "ann");
        assert_eq!(operator_from(None, s("bob"), Some(1000), passwd), "bob");
        assert_eq!(operator_from(s(""), None, Some(1000), passwd), "ops");
        assert_eq!(operator_from(None, None, Some(0), passwd), "root");
        assert_eq!(operator_from(None, None, Some(4242), passwd), "uid 4242");
        assert_eq!(operator_from(None, None, None, passwd), "unknown");
    }
}
