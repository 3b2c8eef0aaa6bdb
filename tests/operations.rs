//! Watching a run without a terminal, against a real registry: JSON log lines on stderr,
//! progress lines, `--metrics-file` in Prometheus text format for report and delete, and a
//! run in a pod-like sandbox (no home, read-only root filesystem).

mod support;

use registry_cleaner::sources::registry::{RegistryClient, RegistryOptions};
use registry_cleaner::world::{self, sample_registry};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use support::registry::Registry;

const NOW: i64 = 1_760_000_000;
const WITHOUT: [&str; 6] = ["--without", "mongo", "--without", "kubernetes", "--without", "keycloak"];

fn pushed() -> Registry {
    let reg = Registry::start();
    support::runtime()
        .block_on(world::push(
            &RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap(),
            &sample_registry("dominodatalab", NOW),
        ))
        .unwrap();
    reg
}

fn cmd(dir: &Path, url: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_registry-cleaner"));
    c.args(args)
        .args(["--registry", url])
        .args(WITHOUT)
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env_remove("REGISTRY_URL")
        .env_remove("LOG_FORMAT")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    c
}

fn ok(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Every stderr line is a JSON object with timestamp, level, target and message.
fn json_lines(stderr: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(stderr);
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
            for k in ["timestamp", "level", "target", "message"] {
                assert!(v.get(k).is_some(), "{k} missing in {l}");
            }
            v
        })
        .collect()
}

/// A strict reader of the text exposition format: `# HELP`/`# TYPE` before each metric's
/// samples, sample lines `name{k="v",...} number`; returns series → value.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut typed = std::collections::HashSet::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            assert!(typed.insert(name.to_string()), "TYPE twice: {line}");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "stray line {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && name.starts_with("registry_cleaner_"),
            "{line}"
        );
        assert!(typed.contains(name), "sample before its TYPE: {line}");
        let labels = &series[name.len()..];
        if !labels.is_empty() {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            for pair in labels[1..labels.len() - 1].split(',') {
                let (k, v) = pair.split_once('=').expect("k=v");
                assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
                assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
            }
        }
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        assert!(out.insert(series.to_string(), v).is_none(), "series twice: {line}");
    }
    out
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn report_and_delete_write_prometheus_metrics_and_log_json_lines_with_progress() {
    let reg = pushed();
    let url = reg.url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let metrics = d.join("textfile").join("report.prom");
    let plan = d.join("plan.json");
    let sel = "dominodatalab/environment:65a000000000000000000001-1";
    let out = cmd(
        d,
        &url,
        &[
            "report",
            "--select",
            sel,
            "--output",
            plan.to_str().unwrap(),
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();

    // Logs: JSON lines on stderr (not a terminal), with the scan's closing progress line.
    let logs = json_lines(&out.stderr);
    let progress: Vec<&Value> = logs.iter().filter(|l| l["kind"] == "progress").collect();
    let last = progress.last().expect("a progress line for the scan");
    assert_eq!(last["what"], "scan");
    assert!(
        last["total"].as_u64().unwrap() > 0 && last["done"] == last["total"],
        "{last}"
    );
    assert!(last["message"].as_str().unwrap().contains("/s"), "{last}");
    assert!(
        d.join("state").read_dir().is_err(),
        "no log file is written when stderr is not a terminal"
    );

    // Metrics: one series per category, equal to the report; the run's times.
    let text = std::fs::read_to_string(&metrics).unwrap();
    let m = parse_metrics(&text);
    let cats = report["categories"].as_array().unwrap();
    assert_eq!(cats.len(), 9);
    for c in cats {
        let id = c["id"].as_str().unwrap();
        let key = |name: &str| format!("registry_cleaner_{name}{{category=\"{id}\"}}");
        assert_eq!(
            m[&key("tags_pending_deletion")],
            // Tags only: orphaned-references' candidates are Mongo records.
            c["candidates"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|x| x.get("repository").is_some())
                .count() as f64
        );
        assert_eq!(
            m[&key("space_recoverable_bytes")],
            c["reclaimable_bytes"].as_u64().unwrap() as f64
        );
        let available = if c["status"] == "unavailable" { 0.0 } else { 1.0 };
        assert_eq!(m[&key("category_available")], available, "{id}");
    }
    assert_eq!(
        m["registry_cleaner_plan_tags"],
        report["plan"]["tags"].as_array().unwrap().len() as f64
    );
    assert!(m["registry_cleaner_plan_reclaimable_bytes"] > 0.0);
    assert!(m["registry_cleaner_scan_duration_seconds"] > 0.0);
    let success = m["registry_cleaner_last_success_timestamp_seconds{command=\"report\"}"];
    assert!((now() - success).abs() < 120.0, "{success}");
    assert_eq!(
        m["registry_cleaner_jobs_total{operation=\"report\",status=\"succeeded\"}"],
        1.0
    );
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&metrics).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }
    let leftovers: Vec<_> = std::fs::read_dir(metrics.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers,
        vec![std::ffi::OsString::from("report.prom")],
        "atomic write leaves no temp file"
    );

    // A dry-run delete, then an applied one: counts by outcome.
    let dm = d.join("textfile").join("delete.prom");
    let p = plan.to_str().unwrap();
    let dmf = dm.to_str().unwrap();
    let planned = report["plan"]["manifests"].as_array().unwrap().len() as f64;
    assert!(planned >= 1.0);
    let dry = ok(&cmd(d, &url, &["delete", "--plan", p, "--metrics-file", dmf])
        .output()
        .unwrap());
    assert_eq!(dry["dry_run"], true);
    let m = parse_metrics(&std::fs::read_to_string(&dm).unwrap());
    assert_eq!(
        m["registry_cleaner_delete_manifests{outcome=\"would_delete\"}"],
        planned
    );
    assert_eq!(m["registry_cleaner_delete_manifests{outcome=\"deleted\"}"], 0.0);
    assert_eq!(m["registry_cleaner_delete_dry_run"], 1.0);
    let out = cmd(
        d,
        &url,
        &["delete", "--plan", p, "--apply", "--force", "--metrics-file", dmf],
    )
    .output()
    .unwrap();
    let applied = ok(&out);
    let logs = json_lines(&out.stderr);
    let last = logs
        .iter()
        .rfind(|l| l["kind"] == "progress")
        .expect("a progress line for the delete");
    assert_eq!(last["what"], "delete");
    assert_eq!(last["done"].as_f64(), Some(planned));
    let m = parse_metrics(&std::fs::read_to_string(&dm).unwrap());
    assert_eq!(
        m["registry_cleaner_delete_manifests{outcome=\"deleted\"}"],
        applied["summary"]["deleted"].as_u64().unwrap() as f64
    );
    assert_eq!(m["registry_cleaner_delete_manifests{outcome=\"deleted\"}"], planned);
    assert_eq!(m["registry_cleaner_delete_manifests{outcome=\"failed\"}"], 0.0);
    assert_eq!(m["registry_cleaner_delete_manifests{outcome=\"skipped\"}"], 0.0);
    assert_eq!(m["registry_cleaner_delete_dry_run"], 0.0);
    assert_eq!(
        m["registry_cleaner_jobs_total{operation=\"delete\",status=\"succeeded\"}"],
        2.0
    );
    let success = m["registry_cleaner_last_success_timestamp_seconds{command=\"delete\"}"];

    // A run that cannot run (a plan for another registry) counts as failed and keeps the last
    // success time.
    let other = Registry::start();
    let out = cmd(d, &other.url(), &["delete", "--plan", p, "--metrics-file", dmf])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let m = parse_metrics(&std::fs::read_to_string(&dm).unwrap());
    assert_eq!(m["registry_cleaner_last_run_success{command=\"delete\"}"], 0.0);
    assert_eq!(
        m["registry_cleaner_last_success_timestamp_seconds{command=\"delete\"}"],
        success
    );
    assert_eq!(
        m["registry_cleaner_jobs_total{operation=\"delete\",status=\"failed\"}"],
        1.0
    );
    assert!(
        !m.keys().any(|k| k.contains("delete_manifests")),
        "no counts from a run that did not run"
    );
}

#[test]
fn log_format_text_and_a_log_file_are_honoured() {
    let reg = pushed();
    let url = reg.url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = cmd(d, &url, &["scan", "--output", "snap.json"])
        .env("LOG_FORMAT", "text")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(" INFO ") && err.contains("scan") && !err.contains("{\"timestamp\""),
        "{err}"
    );
    let log = d.join("logs").join("rc.log");
    let out = cmd(
        d,
        &url,
        &[
            "--log-file",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "scan",
            "--output",
            "snap.json",
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&std::fs::read(&log).unwrap());
    assert!(lines.iter().any(|l| l["kind"] == "progress"), "{lines:?}");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600);
    let out = cmd(d, &url, &["--log-format", "xml", "scan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// As in a pod: no writable home, a read-only root filesystem (a private mount namespace with
/// `/` remounted read-only; needs `unshare`, which the test servers' setup has as root).
#[test]
fn in_a_pod_with_a_read_only_root_and_no_home_the_report_runs_and_logs_go_to_stderr() {
    let reg = pushed();
    let url = reg.url();
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_registry-cleaner");
    let sandbox = |extra: &[&str]| {
        let mut c = Command::new("unshare");
        c.args(["-m", "sh", "-c", "mount -o remount,bind,ro / && exec \"$@\"", "sh", bin])
            .args(extra)
            .args(["report", "--registry", &url])
            .args(WITHOUT)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", "/nonexistent")
            .stdin(Stdio::null());
        c.output().expect("run unshare (util-linux)")
    };
    // The sandbox really is read-only.
    let probe = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -o remount,bind,ro / && touch \"$0\"/probe"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!probe.status.success(), "the sandbox must refuse writes");
    assert!(!dir.path().join("probe").exists());

    let out = sandbox(&[]);
    let report = ok(&out);
    assert_eq!(report["sources"]["registry"]["status"], "ok");
    let logs = json_lines(&out.stderr);
    assert!(logs.iter().any(|l| l["kind"] == "progress"), "{logs:?}");

    // An explicit log file on the read-only filesystem falls back to stderr and says so.
    let out = sandbox(&["--log-file", "/var/log/registry-cleaner/rc.log"]);
    ok(&out);
    let logs = json_lines(&out.stderr);
    assert!(
        logs.iter().any(|l| l["level"] == "WARN"
            && l["message"].as_str().unwrap().contains("/var/log/registry-cleaner")
            && l["message"].as_str().unwrap().contains("logging to stderr")),
        "{logs:?}"
    );
    assert!(!Path::new("/var/log/registry-cleaner/rc.log").exists());
}
