//! Command-line definitions only (clap derive). Secrets are never flags or positionals: they
//! come from the environment or credential stores.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "registry-cleaner", version, about = "Reclaim space in a Domino Data Lab Docker registry without breaking running workloads")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Default, Clone)]
pub struct GlobalArgs {
    /// Configuration file (default: ./config.yaml when present, or $CONFIG_FILE).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Registry host[:port]; an http:// prefix means plain HTTP (env REGISTRY_URL).
    #[arg(long, global = true, value_name = "HOST[:PORT]")]
    pub registry: Option<String>,
    /// Repository prefix holding environment/ and model/ (default dominodatalab; env REPOSITORY).
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
    /// Log file (default: the user state directory).
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// More log detail (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors in the log; no progress line.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Run without this source on purpose (recorded in every report); repeatable.
    #[arg(long = "without", global = true, value_enum, value_name = "SOURCE")]
    pub without: Vec<SourceArg>,
    /// Parallel registry requests (default 8).
    #[arg(long, global = true, value_name = "N")]
    pub concurrency: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    Mongo,
    Kubernetes,
    Keycloak,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan the registry and write an inventory snapshot (JSON).
    Scan(ScanArgs),
    /// Write the cleanup report (categories, candidates, protected tags, plan) as JSON.
    Report(ReportArgs),
    /// Delete what a plan lists (dry run unless --apply), re-checking everything first.
    Delete(crate::headless::delete::DeleteArgs),
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
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
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective settings (secrets redacted).
    Show,
}
