//! Files that hold user data (plans, reports, audit logs, Mongo backups, the scan cache): owner
//! only (0600 files, 0700 directories the tool creates), and durable — the file is fsynced,
//! and so is its directory after a create or rename, so a crash keeps the entry too.

use std::io::Write as _;
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};

/// Creates `dir` and its missing parents with mode 0700 (existing ones are left as they are).
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    b.mode(0o700);
    b.create(dir)
}

/// The directory an entry lives in (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// fsyncs a directory so a new or renamed entry in it survives a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Opens (creating with mode 0600) a file to append to; on creation its directory is fsynced.
pub fn open_private_append(path: &Path) -> std::io::Result<std::fs::File> {
    let dir = parent(path);
    create_private_dir_all(dir)?;
    let existed = path.exists();
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    o.mode(0o600);
    let f = o.open(path)?;
    if !existed {
        sync_dir(dir)?;
    }
    Ok(f)
}

/// Writes `bytes` to `path` through a 0600 temporary file, fsync and a rename, then fsyncs the
/// directory: a crash never leaves a half-written file, and the new one is there after it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = parent(path);
    create_private_dir_all(dir)?;
    // Unique per call, so concurrent writers of one file never share a temporary.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    o.mode(0o600);
    let mut f = o.open(&tmp)?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    drop(f);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_and_directories_the_tool_creates_are_owner_only() {
        let t = tempfile::tempdir().unwrap();
        let plan = t.path().join("new/dir/plan.json");
        write_atomic(&plan, b"{}").unwrap();
        assert_eq!(mode(&plan), 0o600);
        assert_eq!(mode(&t.path().join("new/dir")), 0o700);
        assert_eq!(mode(&t.path().join("new")), 0o700);
        let log = t.path().join("other/audit.jsonl");
        let mut f = open_private_append(&log).unwrap();
        f.write_all(b"x\n").unwrap();
        assert_eq!(mode(&log), 0o600);
        assert_eq!(mode(&t.path().join("other")), 0o700);
        // Rewriting keeps it private, even under a permissive umask's defaults.
        write_atomic(&plan, b"{\"a\":1}").unwrap();
        assert_eq!(mode(&plan), 0o600);
        assert_eq!(std::fs::read(&plan).unwrap(), b"{\"a\":1}");
    }
}
