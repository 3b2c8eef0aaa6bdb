//! Command-line definitions only (clap derive). Secrets are never flags or positionals: they
//! come from the environment or credential stores.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Exit codes and examples, under `--help`.
pub const AFTER_HELP: &str = "\
Exit codes:
  0  done
  1  finished with failures (a delete failed, a doctor check failed, gc did not complete)
  2  cannot run (bad flags or configuration, a source that must answer did not)
  3  `delete --apply` deleted nothing it planned; `report --strict` with a category unavailable

Examples:
  registry-cleaner tui --demo                      the TUI on the bundled demo data
  registry-cleaner report -o plan.json             every category; the file is a plan
  registry-cleaner report --format table --group-by owner
  registry-cleaner delete --plan plan.json         dry run: re-checks and prints what would go
  registry-cleaner delete --plan plan.json --apply --force --max-delete 500 --max-bytes 500GiB
  registry-cleaner gc                              in-cluster GC (read-only mode on, then off)
  registry-cleaner doctor                          check everything a run needs
  registry-cleaner completions bash > /etc/bash_completion.d/registry-cleaner

Settings: defaults < config.yaml < environment variables < flags; `config show` prints them.";

#[derive(Debug, Parser)]
#[command(
    name = "registry-cleaner",
    version,
    about = "Reclaim space in a Domino Data Lab Docker registry without breaking running workloads",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Default, Clone)]
pub struct GlobalArgs {
    /// Configuration file (default: ./config.yaml when present). [env: CONFIG_FILE]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Registry host[:port]; an http:// prefix means plain HTTP. [env: REGISTRY_URL]
    #[arg(long, global = true, value_name = "HOST[:PORT]")]
    pub registry: Option<String>,
    /// Repository prefix holding environment/ and model/ (default dominodatalab). [env: REPOSITORY]
    #[arg(long, global = true, value_name = "PREFIX")]
    pub repository: Option<String>,
    /// Talk plain HTTP to the registry.
    #[arg(long, global = true)]
    pub plain_http: bool,
    /// Skip TLS certificate verification (not recommended).
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Extra CA certificate (PEM) to trust for the registry.
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Log file (default: stderr when stderr is not a terminal, as in a pod or a CronJob;
    /// else the user state directory).
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Log line format (default: json on a non-terminal stderr, text in a file).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "LOG_FORMAT",
        ignore_case = true,
        value_name = "FORMAT"
    )]
    pub log_format: Option<LogFormatArg>,
    /// Read the registry password from FILE (a mounted secret). [env: REGISTRY_PASSWORD_FILE]
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// More log detail (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors in the log; no progress line.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Run without this source on purpose (recorded in every report); repeatable.
    #[arg(long = "without", global = true, value_enum, value_name = "SOURCE")]
    pub without: Vec<SourceArg>,
    /// Maximum parallel registry requests (default 8; lowered automatically when the registry
    /// answers 429/503 or slows down).
    #[arg(long, global = true, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Only runs and workspaces active within N days protect a tag (config usage always does).
    #[arg(long, global = true, value_name = "N")]
    pub unused_since_days: Option<u32>,
    /// Newest built revisions kept per environment by old-revisions (default 5).
    #[arg(long, global = true, value_name = "N")]
    pub keep_revisions: Option<usize>,
    /// Restrict candidates to the ObjectIds in FILE (environment:, environmentRevision:, model:,
    /// modelVersion: prefixes; bare ids apply to both kinds).
    #[arg(long = "ids", global = true, value_name = "FILE")]
    pub ids: Option<PathBuf>,
    /// Look for running workloads in every namespace, not only Domino's.
    #[arg(long, global = true)]
    pub all_namespaces: bool,
    /// A kubeconfig context to read workloads from; repeat for several clusters (each must be
    /// readable). The first is the home cluster (registry, Mongo secret, GC).
    #[arg(long = "kube-context", global = true, value_name = "NAME")]
    pub kube_context: Vec<String>,
    /// Never propose an image pushed less than this many hours ago (default 2).
    #[arg(long, global = true, value_name = "HOURS")]
    pub grace_period_hours: Option<u64>,
    /// Read the inventory from the registry's storage, as garbage-collect does (read-only):
    /// file:///ROOTDIRECTORY or s3://BUCKET/ROOTDIRECTORY (S3 settings from the AWS_*
    /// variables). Sees untagged manifests and push times; deletes still use the HTTP API.
    /// [env: REGISTRY_STORAGE]
    #[arg(long, global = true, value_name = "URL")]
    pub storage: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Json,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    Mongo,
    Kubernetes,
    Keycloak,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The interactive terminal UI (the default on a terminal).
    Tui(TuiArgs),
    /// Scan the registry and write an inventory snapshot (JSON).
    Scan(ScanArgs),
    /// Write the cleanup report (categories, candidates, protected tags, plan) as JSON.
    Report(ReportArgs),
    /// Delete what a plan lists (dry run unless --apply), re-checking everything first.
    Delete(DeleteArgs),
    /// Re-insert the Mongo documents that `delete --mongo-cleanup` backed up (idempotent).
    Restore(RestoreArgs),
    /// Delete the Domino Mongo records of images listed in a file, for images removed by other
    /// means; each image must be confirmed gone first. Dry run unless --apply; backed up first.
    MongoCleanup(MongoCleanupArgs),
    /// Garbage-collect the in-cluster registry (read-only mode on, GC, read-only mode off).
    Gc(GcArgs),
    /// Check everything a run depends on (registry, auth, deletes, Mongo, RBAC, Keycloak) and
    /// say how to fix what fails; exit 1 if anything fails. Changes nothing.
    Doctor(DoctorArgs),
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a shell completion script, generated from this CLI (bash, zsh, fish, elvish,
    /// powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), generated from this CLI: `registry-cleaner man | man -l -`.
    Man,
}

/// Writes the completion script for `shell` to `out`.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    use clap::CommandFactory as _;
    clap_complete::generate(shell, &mut Cli::command(), "registry-cleaner", out);
}

/// Writes the manual page (roff) to `out`.
pub fn write_man(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap::CommandFactory as _;
    clap_mangen::Man::new(Cli::command()).render(out)
}

#[derive(Debug, Args, Default, Clone)]
pub struct DoctorArgs {
    /// JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Default, Clone)]
pub struct TuiArgs {
    /// Run offline on the bundled demo dataset; deletions only touch the in-memory demo.
    #[arg(long)]
    pub demo: bool,
    /// Open a saved scan instead of contacting the registry.
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// Hide every destructive action.
    #[arg(long)]
    pub read_only: bool,
    /// Where `w` writes the plan (a `report` JSON that `delete --plan` accepts).
    #[arg(long, value_name = "FILE", default_value = "registry-cleaner-plan.json")]
    pub plan_output: PathBuf,
    /// Demo size in tags.
    #[arg(long, value_name = "N", default_value_t = 3000)]
    pub demo_tags: usize,
    /// Demo generator seed.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub demo_seed: u64,
    /// Capture the mouse: the wheel scrolls the focused list, help and outcomes (off by
    /// default, so the terminal's own text selection keeps working).
    #[arg(long)]
    pub mouse: bool,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Where to write the snapshot (default: stdout).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args, Default)]
pub struct ReportArgs {
    /// Only these categories (repeatable; default: all).
    #[arg(long = "category", value_name = "ID")]
    pub categories: Vec<String>,
    /// Use a saved scan instead of contacting the registry.
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// Where to write the report (default: stdout).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Plan exactly this tag (and the sibling tags on its digest); repeatable.
    #[arg(long = "select", value_name = "REPO:TAG")]
    pub select: Vec<String>,
    /// Plan the tags listed in FILE, one repo:tag per line, # comments.
    #[arg(long, value_name = "FILE")]
    pub select_file: Option<PathBuf>,
    /// Also write Prometheus metrics (node-exporter textfile format) to FILE, atomically.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Exit 3 when a category is unavailable (a source failed), after writing the report.
    #[arg(long)]
    pub strict: bool,
    /// Output format: the JSON report (a plan `delete --plan` accepts), an aligned table, or
    /// CSV (RFC 4180, header row). Metrics and exit codes do not depend on it.
    #[arg(long, value_enum, default_value_t = ReportFormat::Json, value_name = "FORMAT")]
    pub format: ReportFormat,
    /// Group the candidates by owner, project or environment: tags, environments, and the
    /// bytes each group frees alone (exclusive) or only with others (shared), counted once.
    #[arg(long, value_enum, value_name = "KEY")]
    pub group_by: Option<GroupByArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ReportFormat {
    #[default]
    Json,
    Table,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupByArg {
    Owner,
    Project,
    Environment,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective settings (secrets redacted).
    Show,
}

impl TuiArgs {
    /// What `registry-cleaner` with no command runs on a terminal.
    pub fn default_for_terminal() -> TuiArgs {
        TuiArgs {
            plan_output: PathBuf::from("registry-cleaner-plan.json"),
            demo_tags: 3000,
            demo_seed: 42,
            ..TuiArgs::default()
        }
    }
}

#[derive(Debug, Args, Default)]
pub struct DeleteArgs {
    /// The plan: a `report` JSON or a file written from the TUI (`w`).
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// Really delete (default is a dry run that re-checks and prints what would happen).
    #[arg(long)]
    pub apply: bool,
    /// Do not ask for confirmation (required with --apply when stdin is not a terminal).
    #[arg(long)]
    pub force: bool,
    /// Also delete the Mongo records of images whose deletion succeeded (backed up first).
    #[arg(long)]
    pub mongo_cleanup: bool,
    /// Where --mongo-cleanup backs up every document before deleting it (JSON Lines; default:
    /// <analysis.output_dir>/mongo-backup-<time>.jsonl). `registry-cleaner restore` reads it.
    #[arg(long, value_name = "FILE")]
    pub backup: Option<PathBuf>,
    /// Refuse plans with more than N tags.
    #[arg(long, value_name = "N")]
    pub max_delete: Option<usize>,
    /// Refuse plans that reclaim more than this, on the plan and on fresh data: bytes, or with
    /// a unit (500GiB, 1.5TB, 200M; KiB/MiB/GiB/TiB are powers of 1024, kB/MB/GB/TB and K/M/G/T
    /// of 1000).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_bytes: Option<u64>,
    /// Where to write the results JSON (default: stdout).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Audit log (JSON Lines; default: <analysis.output_dir>/audit.jsonl).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Also write Prometheus metrics (node-exporter textfile format) to FILE, atomically.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A backup file written by `delete --mongo-cleanup` (JSON Lines).
    #[arg(long, value_name = "FILE")]
    pub backup: PathBuf,
}

#[derive(Debug, Args, Clone)]
pub struct MongoCleanupArgs {
    /// One image per line: `[host/]repository:tag`, a bare tag (both image repositories) or a
    /// 24-hex environment/model/revision/version id (every image recorded for it); `#` comments.
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Back up and delete (default: dry run, print what would go).
    #[arg(long)]
    pub apply: bool,
    /// Do not ask for confirmation (for scripts).
    #[arg(long)]
    pub force: bool,
    /// Backup file (default: <analysis.output_dir>/mongo-backup-<time>.jsonl).
    #[arg(long, value_name = "FILE")]
    pub backup: Option<PathBuf>,
    /// Audit log (default: <analysis.output_dir>/audit.jsonl).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct GcArgs {
    /// Print the steps without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for every registry pod to be Ready after each change (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub ready_timeout_secs: u64,
    /// How often to look at the registry pods (milliseconds).
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub poll_ms: u64,
    /// Skip measuring the storage with `du` before and after.
    #[arg(long)]
    pub no_measure: bool,
    /// Run on a registry StatefulSet of more than one replica (refused otherwise); GC still
    /// waits until every replica is Ready and read-only.
    #[arg(long)]
    pub allow_replicas: bool,
}

impl From<&GcArgs> for crate::ops::gc::GcOptions {
    fn from(a: &GcArgs) -> Self {
        crate::ops::gc::GcOptions {
            dry_run: a.dry_run,
            ready_timeout_secs: a.ready_timeout_secs,
            poll_ms: a.poll_ms,
            no_measure: a.no_measure,
            allow_replicas: a.allow_replicas,
        }
    }
}

/// A byte size: a number with an optional unit (`500GiB`, `1.5TB`, `200M`, `1024`). Binary
/// units (KiB, MiB, GiB, TiB) are powers of 1024; decimal ones (kB/K, MB/M, GB/G, TB/T) of 1000.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let mult: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0f64.powi(2),
        "gib" => 1024.0f64.powi(3),
        "tib" => 1024.0f64.powi(4),
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB)"
            ));
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 500GiB, 1.5TB, 1024)"))?;
    let bytes = n * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(format!("{s:?} is out of range"));
    }
    if unit.is_empty() && num.contains('.') {
        return Err(format!("{s:?}: a byte count has no fraction"));
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod size_tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("500GiB"), Ok(500 * (1u64 << 30)));
        assert_eq!(parse_size("1.5TB"), Ok(1_500_000_000_000));
        assert_eq!(parse_size("200M"), Ok(200_000_000));
        assert_eq!(parse_size("3 KiB"), Ok(3072));
        assert_eq!(parse_size("7kb"), Ok(7000));
        for bad in ["", "GiB", "12XB", "-5", "1.5", "99999999999TiB", "1e3"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
