//! Headless commands: load sources → categories → report JSON on stdout (or a file).
//! Progress and messages go to stderr; stdout carries only the JSON.

use crate::dataset::{Dataset, SourceKind};
use crate::model::{Inventory, TagId};
use crate::ops::scan::{ScanOptions, ScanProgress, scan};
use crate::plan::CategoryId;
use crate::report::json::{self, PlanInput};
use crate::settings::Settings;
use crate::sources::registry::{Credentials, RegistryClient, RegistryOptions, docker_config_credentials};
use anyhow::{Context as _, anyhow, bail};
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Exit codes: 0 success, 1 finished with failures, 2 could not run.
pub const EXIT_FAILURES: u8 = 1;
pub const EXIT_CANNOT_RUN: u8 = 2;

/// An error that maps to "could not run" (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CannotRun(pub String);

/// Builds the registry client from settings: credentials from the environment, else from
/// `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`).
pub fn registry_client(settings: &Settings) -> anyhow::Result<RegistryClient> {
    let r = &settings.registry;
    let credentials = match (&r.username, &r.password) {
        (Some(u), Some(p)) => Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        }),
        (Some(_), None) | (None, Some(_)) => {
            bail!(CannotRun(
                "set both REGISTRY_USERNAME and REGISTRY_PASSWORD, or neither".into()
            ))
        }
        (None, None) => {
            let dir = std::env::var_os("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| dirs::home_dir().map(|h| h.join(".docker")));
            match dir {
                Some(d) => docker_config_credentials(&d.join("config.json"), &r.host).map_err(CannotRun)?,
                None => None,
            }
        }
    };
    let ca_cert_pem = match &r.ca_cert {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading CA certificate {}", p.display()))?),
        None => None,
    };
    let opts = RegistryOptions {
        base_url: r.base_url(),
        credentials,
        insecure: r.insecure,
        ca_cert_pem,
        timeout: Duration::from_secs(r.timeout_seconds),
        max_retries: r.max_retries,
        initial_backoff: Duration::from_secs_f64(r.initial_delay_seconds),
        concurrency: r.concurrency,
    };
    RegistryClient::new(opts).map_err(|e| anyhow!(CannotRun(e.to_string())))
}

/// Scan options from settings; `for_delete` never trusts cached tag digests, because a tag
/// moved onto a planned digest must be seen before that digest is deleted.
pub fn scan_options(settings: &Settings, for_delete: bool) -> ScanOptions {
    let r = &settings.registry;
    let trust = r.trust_unchanged_tag_lists && !for_delete;
    ScanOptions {
        prefix: settings.registry.repository.clone(),
        repositories: settings.registry.repositories.clone(),
        fetch_config: settings.registry.fetch_config,
        verify_blobs: settings.registry.verify_blobs,
        concurrency: settings.registry.concurrency,
        cache: if r.cache {
            crate::ops::scan_cache::ScanCache::new(r.cache_dir.as_deref(), &r.host, trust)
        } else {
            None
        },
    }
}

/// Scans the registry, printing a progress line on stderr when it is a terminal.
pub async fn scan_registry(settings: &Settings, quiet: bool, for_delete: bool) -> anyhow::Result<Inventory> {
    let show = !quiet && std::io::stderr().is_terminal();
    let progress = move |p: ScanProgress| {
        if show {
            eprint!("\r\x1b[2K{}", progress_line(&p));
        }
    };
    let result = scan_registry_with(settings, for_delete, &progress).await;
    if show {
        eprintln!();
    }
    result
}

/// "Manifests: 812/2005 (950/s, ETA 1s, 820 requests)".
pub fn progress_line(p: &ScanProgress) -> String {
    let eta = p.eta_secs().map(|s| format!(", ETA {s:.0}s")).unwrap_or_default();
    format!(
        "{:?}: {}/{} ({:.0}/s{eta}, {} requests)",
        p.phase,
        p.done,
        p.total,
        p.rate(),
        p.requests
    )
}

/// Scans the registry, reporting progress to `on_progress`.
pub async fn scan_registry_with(
    settings: &Settings,
    for_delete: bool,
    on_progress: &(dyn Fn(ScanProgress) + Sync),
) -> anyhow::Result<Inventory> {
    let client = registry_client(settings)?;
    scan(&client, &scan_options(settings, for_delete), on_progress)
        .await
        .map_err(|e| anyhow!(CannotRun(format!("registry {}: {e}", settings.registry.host))))
}

/// Loads every source into a dataset (registry from a snapshot when given).
pub async fn load_dataset(
    settings: &Settings,
    snapshot: Option<&Path>,
    quiet: bool,
    for_delete: bool,
    now: i64,
) -> anyhow::Result<Dataset> {
    let registry = async {
        match snapshot {
            Some(p) => crate::report::snapshot::read(p).map_err(|e| anyhow!(CannotRun(e.to_string()))),
            None => Ok((scan_registry(settings, quiet, for_delete).await?, now)),
        }
    };
    crate::ops::load::load_all(settings, registry, now, &|_, _| {}).await
}

/// Parses `repo:tag` selections (from flags and a file) against the inventory. Errors name the
/// file and line, or the flag value.
pub fn parse_selection(inv: &Inventory, flags: &[String], file: Option<&Path>) -> anyhow::Result<Vec<TagId>> {
    let mut lines: Vec<(String, String)> = flags.iter().map(|s| (format!("--select {s:?}"), s.clone())).collect();
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| CannotRun(format!("{}: cannot read selection file: {e}", f.display())))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            lines.push((format!("{}:{}", f.display(), i + 1), line.to_string()));
        }
    }
    let mut out = Vec::new();
    for (at, item) in lines {
        let (repo, tag) = item
            .rsplit_once(':')
            .filter(|(r, t)| !r.is_empty() && !t.is_empty() && !t.contains('/'))
            .ok_or_else(|| CannotRun(format!("{at}: {item:?} is not repository:tag")))?;
        let id = inv
            .find_tag(repo, tag)
            .ok_or_else(|| CannotRun(format!("{at}: {repo}:{tag} is not in the registry")))?;
        out.push(id);
    }
    Ok(out)
}

/// A stable fingerprint of the settings that decide what a plan means.
pub fn settings_fingerprint(settings: &Settings) -> String {
    let key = serde_json::json!({
        "registry": settings.registry.host,
        "repository": settings.registry.repository,
        "repositories": settings.registry.repositories,
        "policy": settings.policy,
        "without": settings.without,
    });
    crate::world::sha256_digest(key.to_string().as_bytes())
}

pub fn parse_categories(ids: &[String]) -> anyhow::Result<Vec<CategoryId>> {
    ids.iter()
        .map(|s| {
            CategoryId::parse(s).ok_or_else(|| {
                let all: Vec<&str> = CategoryId::ALL.iter().map(|c| c.as_str()).collect();
                anyhow!(CannotRun(format!(
                    "unknown category {s:?}; expected one of {}",
                    all.join(", ")
                )))
            })
        })
        .collect()
}

pub async fn report(settings: &Settings, args: &crate::cli::ReportArgs, quiet: bool, now: i64) -> anyhow::Result<()> {
    let only = parse_categories(&args.categories)?;
    let ds = load_dataset(settings, args.snapshot.as_deref(), quiet, false, now).await?;
    let input = if args.select.is_empty() && args.select_file.is_none() {
        PlanInput::Categories
    } else {
        PlanInput::Selection(parse_selection(
            &ds.inventory,
            &args.select,
            args.select_file.as_deref(),
        )?)
    };
    let without: Vec<SourceKind> = settings.without.iter().copied().collect();
    let report = json::build(&ds, &only, &input, &settings_fingerprint(settings), &without);
    let bytes = serde_json::to_vec_pretty(&report)?;
    write_output(args.output.as_deref(), &bytes)
}

pub async fn scan_command(settings: &Settings, output: Option<&Path>, quiet: bool, now: i64) -> anyhow::Result<()> {
    let inv = scan_registry(settings, quiet, false).await?;
    let snap = crate::report::snapshot::to_snapshot(&inv, now);
    write_output(output, &serde_json::to_vec(&snap)?)
}

/// Writes to a file atomically, or to stdout.
pub fn write_output(path: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    match path {
        Some(p) => json::write_atomic(p, bytes).with_context(|| format!("writing {}", p.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            out.write_all(b"\n")?;
            Ok(())
        }
    }
}

pub mod delete;
pub mod maintenance;
