//! Logging through a non-blocking writer, to a file or to stderr; stdout belongs to the TUI or
//! the JSON report. The returned guard must live until exit so buffered lines are flushed.
//!
//! Where: `--log-file` when given; else stderr when stderr is not a terminal (a pod, a CronJob,
//! a pipe: the log collector reads it, and there may be no writable home); else the user state
//! directory (a terminal, where the TUI owns the screen). Format: `--log-format` / `LOG_FORMAT`,
//! by default JSON lines on a non-terminal stderr and text in a file.

use std::fmt;
use std::path::{Path, PathBuf};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Default log file: `$XDG_STATE_HOME/registry-cleaner/registry-cleaner.log` (or the cache dir).
pub fn default_log_path() -> PathBuf {
    dirs::state_dir()
        .or_else(dirs::cache_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("registry-cleaner")
        .join("registry-cleaner.log")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`, then the fields.
    Json,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    File(PathBuf),
    Stderr,
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::File(p) => write!(f, "{}", p.display()),
            Destination::Stderr => f.write_str("stderr"),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub file: Option<PathBuf>,
    pub format: Option<LogFormat>,
    pub verbosity: u8,
    pub quiet: bool,
    pub stderr_is_terminal: bool,
    /// The TUI owns the terminal: never fall back to a terminal stderr.
    pub tui: bool,
}

/// Where and how logs go for these options (before any file is opened).
pub fn choose(o: &LogOptions) -> (Destination, LogFormat) {
    let dest = match &o.file {
        Some(f) => Destination::File(f.clone()),
        None if !o.stderr_is_terminal => Destination::Stderr,
        None => Destination::File(default_log_path()),
    };
    let format = o.format.unwrap_or(match dest {
        Destination::Stderr => LogFormat::Json,
        Destination::File(_) => LogFormat::Text,
    });
    (dest, format)
}

pub struct Logging {
    pub guard: WorkerGuard,
    pub destination: Destination,
    pub format: LogFormat,
    /// Why the chosen file could not be used (logs went to stderr instead).
    pub fallback: Option<String>,
}

/// Starts logging at `verbosity` (0 = info for our crate, 1 = debug, 2+ = trace; quiet =
/// warnings only). Client crates stay at `warn` unless `RUST_LOG` says otherwise. A log file
/// that cannot be opened (read-only root filesystem, no home) falls back to stderr unless the
/// TUI owns a terminal stderr; then this is an error and the caller runs without logs.
pub fn init(o: &LogOptions) -> anyhow::Result<Logging> {
    let (mut destination, mut format) = choose(o);
    let mut fallback = None;
    let (writer, guard) = match &destination {
        Destination::File(path) => match rotate(path, ROTATE_BYTES, KEEP_ROTATED, std::time::SystemTime::now())
            .and_then(|()| open_append(path))
        {
            Ok(file) => tracing_appender::non_blocking(file),
            Err(e) if !(o.tui && o.stderr_is_terminal) => {
                fallback = Some(format!("{e:#}; logging to stderr"));
                destination = Destination::Stderr;
                if o.format.is_none() && !o.stderr_is_terminal {
                    format = LogFormat::Json;
                }
                tracing_appender::non_blocking(std::io::stderr())
            }
            Err(e) => return Err(e),
        },
        Destination::Stderr => tracing_appender::non_blocking(std::io::stderr()),
    };
    let level = match (o.quiet, o.verbosity) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("warn,registry_cleaner={level}")));
    let builder = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter);
    match format {
        LogFormat::Json => builder.event_format(JsonLines).try_init().ok(),
        LogFormat::Text => builder.try_init().ok(),
    };
    Ok(Logging {
        guard,
        destination,
        format,
        fallback,
    })
}

/// A log file is rotated when a run starts and it holds this much, or was last written on an
/// earlier day (UTC).
pub const ROTATE_BYTES: u64 = 10 << 20;
/// Rotated files kept beside the log: `<log>.1` (newest) … `<log>.5`; older ones are removed.
pub const KEEP_ROTATED: usize = 5;

/// Rotates `path` (when it exists and is at least `max_bytes` long, or was last modified on a
/// UTC day before `now`'s): `<path>.N-1` → `<path>.N` for N down to 2 (`<path>.keep` is
/// dropped), then `<path>` → `<path>.1`, so the log keeps its name and its 0600 file mode and
/// a run's log starts fresh. Done at start, by name, so no writer holds the file.
pub fn rotate(path: &Path, max_bytes: u64, keep: usize, now: std::time::SystemTime) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let day = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 86_400)
    };
    let stale = meta.modified().is_ok_and(|m| day(m) < day(now));
    if meta.len() < max_bytes && !stale {
        return Ok(());
    }
    let numbered = |n: usize| {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    };
    if keep == 0 {
        return std::fs::remove_file(path).with_context(|| format!("removing log file {}", path.display()));
    }
    let _ = std::fs::remove_file(numbered(keep));
    for n in (1..keep).rev() {
        let from = numbered(n);
        if from.exists() {
            std::fs::rename(&from, numbered(n + 1)).with_context(|| format!("rotating {}", from.display()))?;
        }
    }
    std::fs::rename(path, numbered(1)).with_context(|| format!("rotating log file {}", path.display()))
}

fn open_append(path: &Path) -> anyhow::Result<std::fs::File> {
    use anyhow::Context as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating log directory {}", dir.display()))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
        .with_context(|| format!("opening log file {}", path.display()))
}

/// One JSON object per line, for log collectors: `timestamp` (RFC 3339 UTC), `level`,
/// `target`, `message`, the event's fields, and `spans` (names, outermost first) when inside
/// spans. A field named like one of those keys is kept as `field.<name>`.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        let mut obj = serde_json::Map::new();
        let ts = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        obj.insert("timestamp".into(), ts.into());
        obj.insert("level".into(), meta.level().as_str().into());
        obj.insert("target".into(), meta.target().into());
        obj.insert("message".into(), fields.message.take().unwrap_or_default().into());
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<serde_json::Value> = scope.from_root().map(|s| s.name().into()).collect();
            if !spans.is_empty() {
                obj.insert("spans".into(), spans.into());
            }
        }
        for (k, v) in fields.fields {
            let key = if obj.contains_key(&k) { format!("field.{k}") } else { k };
            obj.insert(key, v);
        }
        let line = serde_json::to_string(&serde_json::Value::Object(obj)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

#[derive(Default)]
struct JsonFields {
    message: Option<String>,
    fields: Vec<(String, serde_json::Value)>,
}

impl JsonFields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.fields.push((field.name().to_string(), value));
        }
    }
}

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full log is rotated at start: it becomes `.1`, `.1` becomes `.2` …, the oldest beyond
    /// the kept count goes; a small log of today stays; yesterday's log rotates whatever size.
    #[test]
    fn a_full_or_old_log_rotates_by_name_keeping_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("rc.log");
        let now = std::time::SystemTime::now();
        let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).ok();
        rotate(&log, 10, 2, now).unwrap(); // no file yet: nothing to do
        std::fs::write(&log, "small").unwrap();
        rotate(&log, 10, 2, now).unwrap();
        assert_eq!(
            read("rc.log").as_deref(),
            Some("small"),
            "under the limit, written today"
        );
        for run in ["first run, long line", "second run, long line", "third run, long line"] {
            std::fs::write(&log, run).unwrap();
            rotate(&log, 10, 2, now).unwrap();
            assert!(!log.exists(), "rotated away");
        }
        assert_eq!(read("rc.log.1").as_deref(), Some("third run, long line"));
        assert_eq!(read("rc.log.2").as_deref(), Some("second run, long line"));
        assert_eq!(read("rc.log.3"), None, "only two rotated files are kept");
        std::fs::write(&log, "tiny").unwrap();
        rotate(&log, 10, 2, now + std::time::Duration::from_secs(86_400)).unwrap();
        assert_eq!(read("rc.log.1").as_deref(), Some("tiny"), "a new day starts a new file");
        assert_eq!(read("rc.log.2").as_deref(), Some("third run, long line"));
    }

    /// `init`'s opening path: after a rotation the log is created again, owner-only.
    #[cfg(unix)]
    #[test]
    fn the_log_reopened_after_a_rotation_is_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("rc.log");
        std::fs::write(&log, vec![b'x'; 64]).unwrap();
        rotate(&log, 32, KEEP_ROTATED, std::time::SystemTime::now()).unwrap();
        drop(open_append(&log).unwrap());
        assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(dir.path().join("rc.log.1")).unwrap().len(), 64);
    }

    #[test]
    fn destination_and_format_follow_the_terminal_unless_told() {
        let pod = LogOptions::default();
        assert_eq!(choose(&pod), (Destination::Stderr, LogFormat::Json));
        let text = LogOptions {
            format: Some(LogFormat::Text),
            ..LogOptions::default()
        };
        assert_eq!(choose(&text), (Destination::Stderr, LogFormat::Text));
        let terminal = LogOptions {
            stderr_is_terminal: true,
            ..LogOptions::default()
        };
        assert_eq!(
            choose(&terminal),
            (Destination::File(default_log_path()), LogFormat::Text)
        );
        let file = LogOptions {
            file: Some("x.log".into()),
            format: Some(LogFormat::Json),
            ..LogOptions::default()
        };
        assert_eq!(choose(&file), (Destination::File("x.log".into()), LogFormat::Json));
    }

    #[test]
    fn json_lines_carry_message_fields_and_spans() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || buf.clone())
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!("scan");
            let _e = span.enter();
            tracing::info!(
                done = 3u64,
                total = 10u64,
                rate = 1.5,
                ok = true,
                level = "x",
                "progress \"quoted\""
            );
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(text.lines().count(), 1);
        assert_eq!(v["message"], "progress \"quoted\"");
        assert_eq!(v["level"], "INFO");
        assert_eq!((v["done"].as_u64(), v["total"].as_u64()), (Some(3), Some(10)));
        assert_eq!(v["rate"], 1.5);
        assert_eq!(v["ok"], true);
        assert_eq!(v["field.level"], "x");
        assert_eq!(v["spans"], serde_json::json!(["scan"]));
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'), "{v}");
    }
}
