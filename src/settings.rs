//! Settings layered once at start-up: built-in defaults < `config.yaml` < environment
//! variables < command-line flags, then validated. Errors name the key and the file.
//! Keeps the original tool's key and variable names (domain.md §8) so configs keep working.

use crate::dataset::SourceKind;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Parallel registry requests when no flag, env or config sets `registry.concurrency`.
pub const DEFAULT_CONCURRENCY: usize = 8;

pub use crate::model::secret::Secret;

/// The `config.yaml` file as written by operators. Unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub registry: FileRegistry,
    #[serde(default)]
    pub mongo: FileMongo,
    #[serde(default)]
    pub kubernetes: FileKubernetes,
    #[serde(default)]
    pub keycloak: FileKeycloak,
    #[serde(default)]
    pub analysis: FileAnalysis,
    #[serde(default)]
    pub retry: FileRetry,
    #[serde(default)]
    pub policy: FilePolicy,
    /// Regexes on `repository:tag` that are never deleted.
    #[serde(default)]
    pub protect: Vec<String>,
    /// Sections of the original tool that this tool does not use; accepted so an existing
    /// config.yaml keeps working.
    #[serde(default)]
    pub cache: Option<serde_json::Value>,
    #[serde(default)]
    pub s3: Option<serde_json::Value>,
    #[serde(default)]
    pub skopeo: Option<serde_json::Value>,
    #[serde(default)]
    pub reports: Option<serde_json::Value>,
    #[serde(default)]
    pub security: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRegistry {
    pub url: Option<String>,
    pub repository: Option<String>,
    /// Explicit repositories to scan instead of every repository under the prefix.
    pub repositories: Option<Vec<String>>,
    pub username: Option<String>,
    /// A Kubernetes secret of type dockerconfigjson (in the platform namespace) holding the
    /// registry credentials; env `REGISTRY_AUTH_SECRET`. Without it, `domino-registry` is tried.
    pub auth_secret: Option<String>,
    /// Old name of `repository` (the original tool before 0.3).
    pub repository_name: Option<String>,
    /// Old: the name of the variable holding the password (the original defaulted to
    /// `SKOPEO_PASSWORD`). Still honoured, with a warning.
    pub password_env_var: Option<String>,
    pub insecure: Option<bool>,
    pub ca_cert: Option<PathBuf>,
    pub concurrency: Option<usize>,
    pub timeout_seconds: Option<u64>,
    pub fetch_config: Option<bool>,
    pub verify_blobs: Option<bool>,
    /// Keep a digest-keyed cache of manifests and configs for fast rescans.
    pub cache: Option<bool>,
    pub cache_dir: Option<PathBuf>,
    /// Reuse cached tag digests when a repository's tag list is unchanged (never for deletes).
    pub trust_unchanged_tag_lists: Option<bool>,
    /// Read the inventory from the registry's storage (`file:///rootdirectory` or
    /// `s3://bucket/rootdirectory`) instead of its HTTP API; env `REGISTRY_STORAGE`.
    pub storage: Option<String>,
    /// Other `host[:port]` names of this registry that Mongo may record (Domino's in-cluster
    /// name when the tool connects through a port-forward); env `REGISTRY_ALIASES`, commas.
    pub aliases: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMongo {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub replicaset: Option<String>,
    pub db: Option<String>,
    pub username: Option<String>,
    /// Protecting collections this install lacks on purpose (env `MONGODB_OPTIONAL_COLLECTIONS`,
    /// comma-separated); any other one missing fails the Mongo source.
    pub optional_collections: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileKubernetes {
    pub domino_platform_namespace: Option<String>,
    /// Old names of `domino_platform_namespace`.
    pub namespace: Option<String>,
    pub platform_namespace: Option<String>,
    /// Old: pod name prefixes scanned for images. Every pod is checked now, so it is inert.
    pub pod_prefixes: Option<serde_json::Value>,
    pub compute_namespace: Option<String>,
    pub context: Option<String>,
    /// Several clusters (the original evictor loops over every context): all are read.
    pub contexts: Option<Vec<String>>,
    pub all_namespaces: Option<bool>,
    pub registry_statefulset: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileKeycloak {
    pub host: Option<String>,
    pub realm: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAnalysis {
    pub max_workers: Option<usize>,
    pub output_dir: Option<PathBuf>,
    pub timeout: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRetry {
    pub max_retries: Option<u32>,
    pub initial_delay: Option<f64>,
    pub max_delay: Option<f64>,
    pub exponential_base: Option<f64>,
    pub jitter: Option<bool>,
    pub timeout: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePolicy {
    pub keep_revisions: Option<usize>,
    pub unused_since_days: Option<u32>,
    pub grace_period_hours: Option<u64>,
}

/// Flags that override everything else (already parsed by clap).
#[derive(Debug, Default, Clone)]
pub struct FlagOverrides {
    pub registry: Option<String>,
    pub repository: Option<String>,
    pub plain_http: bool,
    pub insecure: bool,
    pub ca_cert: Option<PathBuf>,
    pub without: Vec<SourceKind>,
    pub concurrency: Option<usize>,
    pub log_file: Option<PathBuf>,
    pub unused_since_days: Option<u32>,
    pub keep_revisions: Option<usize>,
    pub ids_file: Option<PathBuf>,
    pub all_namespaces: bool,
    /// `--kube-context`, repeatable.
    pub kube_contexts: Vec<String>,
    pub grace_period_hours: Option<u64>,
    /// `--password-file`: the registry password from a file (a mounted secret).
    pub password_file: Option<PathBuf>,
    /// `--storage URL`: the inventory from the registry's storage.
    pub storage: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RegistrySettings {
    /// `host[:port]`.
    pub host: String,
    pub scheme: Scheme,
    pub repository: String,
    pub repositories: Option<Vec<String>>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The dockerconfigjson secret to read credentials from when none are set.
    pub auth_secret: Option<String>,
    pub insecure: bool,
    pub ca_cert: Option<PathBuf>,
    pub concurrency: usize,
    pub timeout_seconds: u64,
    pub max_retries: u32,
    pub initial_delay_seconds: f64,
    pub fetch_config: bool,
    pub verify_blobs: bool,
    pub cache: bool,
    pub cache_dir: Option<PathBuf>,
    pub trust_unchanged_tag_lists: bool,
    /// Where the registry's storage is read from (`file://` or `s3://`), when the inventory
    /// comes from storage rather than the HTTP API. Deletes always go through the HTTP API.
    pub storage: Option<String>,
    /// Other names of this registry's host, lowercase (`registry.aliases`).
    pub aliases: Vec<String>,
}

impl RegistrySettings {
    pub fn base_url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}", self.host)
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MongoSettings {
    pub host: String,
    pub port: u16,
    pub replicaset: String,
    pub db: String,
    pub uri: Option<Secret>,
    pub username: String,
    pub password: Option<Secret>,
    /// Sorted, without duplicates: part of the settings fingerprint.
    pub optional_collections: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KubernetesSettings {
    pub platform_namespace: String,
    pub compute_namespace: String,
    /// Kubeconfig contexts to read, in order; empty = the current context. The first is the
    /// home cluster (registry, Mongo secret, GC); workloads are read from every one.
    pub contexts: Vec<String>,
    pub all_namespaces: bool,
    pub registry_statefulset: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KeycloakSettings {
    pub host: Option<String>,
    pub realm: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicySettings {
    pub keep_revisions: usize,
    pub unused_since_days: Option<u32>,
    pub grace_period_hours: u64,
    pub protect: Vec<String>,
    /// `--ids FILE`: restrict candidates to these ObjectIds (validated at load).
    pub ids_file: Option<PathBuf>,
}

/// Validated settings, passed down explicitly (no globals).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    pub config_file: Option<PathBuf>,
    pub registry: RegistrySettings,
    pub mongo: MongoSettings,
    pub kubernetes: KubernetesSettings,
    pub keycloak: KeycloakSettings,
    pub policy: PolicySettings,
    pub output_dir: PathBuf,
    pub without: BTreeSet<SourceKind>,
    pub log_file: Option<PathBuf>,
    /// Old or inert keys and variables met while loading (logged once at start-up).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Environment variables as a map, so tests can pass their own.
pub type Env = BTreeMap<String, String>;

pub fn process_env() -> Env {
    std::env::vars().collect()
}

impl Settings {
    /// Loads `config_file` (or `./config.yaml` when present), applies `env` and `flags`, and
    /// validates. Errors name the file and key.
    pub fn load(config_file: Option<&Path>, env: &Env, flags: &FlagOverrides) -> Result<Settings, String> {
        let path = match config_file {
            Some(p) => Some(p.to_path_buf()),
            None => env.get("CONFIG_FILE").map(PathBuf::from).or_else(|| {
                let p = PathBuf::from("config.yaml");
                p.exists().then_some(p)
            }),
        };
        let (file, text) = match &path {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| format!("{}: cannot read config file: {e}", p.display()))?;
                (parse_file_config(p, &text)?, text)
            }
            None => (FileConfig::default(), String::new()),
        };
        let mut warnings = Warnings {
            src: path.as_ref().map(|p| p.display().to_string()),
            text,
            out: Vec::new(),
        };
        let mut s = build(file, path, env, flags, &mut warnings)?;
        s.warnings = warnings.out;
        Ok(s)
    }
}

/// Warnings collected while loading (old or inert keys, old variable names); `main` logs them
/// once logging is up. Each names the file, the line when it can be found, and the key.
struct Warnings {
    src: Option<String>,
    text: String,
    out: Vec<String>,
}

impl Warnings {
    /// `key` is dotted (`registry.repository_name`).
    fn key(&mut self, key: &str, why: &str) {
        let at = match &self.src {
            Some(f) => match yaml_key_line(&self.text, key) {
                Some(n) => format!("{f}:{n}: "),
                None => format!("{f}: "),
            },
            None => String::new(),
        };
        self.out.push(format!("{at}{key}: {why}"));
    }
    fn env(&mut self, var: &str, why: &str) {
        self.out.push(format!("environment: {var}: {why}"));
    }
}

/// The 1-based line of a dotted key in block-style YAML (`a:` at column 0, then `b:` indented
/// under it), for messages; `None` when the layout is something else (flow style, anchors).
pub fn yaml_key_line(text: &str, dotted: &str) -> Option<usize> {
    let mut parts = dotted.split('.');
    let mut want = parts.next()?;
    let mut rest: Vec<&str> = parts.collect();
    rest.reverse();
    let mut min_indent = 0usize;
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if inside && indent < min_indent {
            return None;
        }
        if (indent == 0 || indent >= min_indent)
            && trimmed
                .strip_prefix(want)
                .is_some_and(|r| r.trim_start().starts_with(':'))
        {
            match rest.pop() {
                None => return Some(i + 1),
                Some(next) => {
                    want = next;
                    min_indent = indent + 1;
                    inside = true;
                }
            }
        }
    }
    None
}

pub fn read_file_config(path: &Path) -> Result<FileConfig, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read config file: {e}", path.display()))?;
    parse_file_config(path, &text)
}

fn parse_file_config(path: &Path, text: &str) -> Result<FileConfig, String> {
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    serde_saphyr::from_str(text).map_err(|e| yaml_error(path, text, &e))
}

/// `FILE:LINE:COLUMN: section.key: what is wrong`, one line: the parser's own message names
/// the position but not the key, and its source snippet does not fit a log line.
fn yaml_error(path: &Path, text: &str, e: &serde_saphyr::Error) -> String {
    let msg = e.without_snippet().to_string();
    let msg = msg.trim_start_matches("error: ");
    let Some(loc) = e.location().filter(|l| l.line() > 0) else {
        return format!("{}: {msg}", path.display());
    };
    let (line, column) = (loc.line(), loc.column());
    let msg = msg
        .strip_prefix(&format!("line {line} column {column}: "))
        .unwrap_or(msg);
    let key = key_path_at(text, usize::try_from(line).unwrap_or(usize::MAX))
        .map(|k| format!("{k}: "))
        .unwrap_or_default();
    format!("{}:{line}:{column}: {key}{msg}", path.display())
}

/// The dotted key path of the block-style mapping key on 1-based `line` (`mongo.port`), or
/// `None` when that line holds no key.
fn key_path_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let key_of = |l: &str| -> Option<(usize, String)> {
        let content = l.trim_start();
        if content.is_empty() || content.starts_with('#') {
            return None;
        }
        let indent = l.len() - content.len();
        let content = content.strip_prefix("- ").unwrap_or(content);
        let (key, _) = content.split_once(':')?;
        let key = key.trim().trim_matches(|c| c == '\'' || c == '"');
        (!key.is_empty() && !key.contains(char::is_whitespace)).then(|| (indent, key.to_string()))
    };
    let (mut indent, key) = key_of(lines.get(line.checked_sub(1)?)?)?;
    let mut path = vec![key];
    for l in lines[..line - 1].iter().rev() {
        if let Some((i, k)) = key_of(l).filter(|(i, _)| *i < indent) {
            path.push(k);
            indent = i;
            if i == 0 {
                break;
            }
        }
    }
    path.reverse();
    Some(path.join("."))
}

/// What an inert key of the original tool would have done, and what to use instead.
const INERT: &[(&str, &str)] = &[
    (
        "analysis.timeout",
        "has no effect: registry.timeout_seconds (or retry.timeout) is the per-request timeout",
    ),
    (
        "retry.max_delay",
        "has no effect: retries wait retry.initial_delay, doubling, at most 30 s (or what Retry-After asks, at most 60 s)",
    ),
    (
        "retry.exponential_base",
        "has no effect: the retry delay always doubles from retry.initial_delay",
    ),
    ("retry.jitter", "has no effect: retry delays have no jitter"),
    (
        "kubernetes.pod_prefixes",
        "has no effect: every pod in the compute and platform namespaces (every namespace with --all-namespaces) protects the images it runs",
    ),
    (
        "cache",
        "has no effect: the original tool's in-process caches; registry.cache and registry.cache_dir control this tool's scan cache",
    ),
    (
        "s3",
        "has no effect: images are not backed up to S3; --mongo-cleanup backs up Mongo documents to analysis.output_dir first",
    ),
    (
        "skopeo",
        "has no effect: skopeo is not used; registry.concurrency bounds parallel registry requests",
    ),
    (
        "reports",
        "has no effect: `report` writes one JSON report (--output); docs/migration.md maps the original report files",
    ),
];

fn inert_warnings(f: &FileConfig, w: &mut Warnings) {
    let set: &[(&str, bool)] = &[
        ("analysis.timeout", f.analysis.timeout.is_some()),
        ("retry.max_delay", f.retry.max_delay.is_some()),
        ("retry.exponential_base", f.retry.exponential_base.is_some()),
        ("retry.jitter", f.retry.jitter.is_some()),
        ("kubernetes.pod_prefixes", f.kubernetes.pod_prefixes.is_some()),
    ];
    let why = |k: &str| INERT.iter().find(|(key, _)| *key == k).map_or("", |(_, w)| *w);
    for (key, present) in set {
        if *present {
            w.key(key, why(key));
        }
    }
    for (section, value) in [
        ("cache", &f.cache),
        ("s3", &f.s3),
        ("skopeo", &f.skopeo),
        ("reports", &f.reports),
    ] {
        let Some(value) = value else { continue };
        match value.as_object() {
            Some(m) if !m.is_empty() => {
                for name in m.keys() {
                    w.key(&format!("{section}.{name}"), why(section));
                }
            }
            _ => w.key(section, why(section)),
        }
    }
    if let Some(sec) = &f.security {
        for key in ["dry_run_by_default", "require_confirmation"] {
            if sec.get(key).and_then(serde_json::Value::as_bool) == Some(false) {
                w.key(
                    &format!("security.{key}"),
                    "false has no effect: delete is a dry run without --apply, and --apply asks for confirmation unless --force",
                );
            }
        }
    }
}

/// A value under its current key or an old one: the old one warns, and both set to different
/// values is an error naming both.
fn renamed(
    w: &mut Warnings,
    bad: &dyn Fn(&str, String) -> String,
    new_key: &str,
    new: Option<String>,
    olds: &[(&str, Option<String>)],
) -> Result<Option<String>, String> {
    let mut value = new;
    let mut from = new_key;
    for (old_key, old) in olds {
        let Some(old) = old else { continue };
        w.key(old_key, &format!("is the original tool's old name; use {new_key}"));
        match &value {
            Some(v) if v != old => {
                return Err(bad(
                    old_key,
                    format!("{old:?} contradicts {from} = {v:?}; keep only {new_key}"),
                ));
            }
            Some(_) => {}
            None => {
                value = Some(old.clone());
                from = old_key;
            }
        }
    }
    Ok(value)
}

/// A secret from `var`, or from the file named by `file_flag` / `<var>_FILE` (a mounted
/// Kubernetes secret); one trailing newline is dropped. Both set, or an unreadable or empty
/// file, is an error naming the variable and the file (never the content).
pub fn secret_var(env: &Env, var: &str, file_flag: Option<&Path>, flag: &str) -> Result<Option<Secret>, String> {
    let value = env.get(var).filter(|v| !v.is_empty());
    let file_var = format!("{var}_FILE");
    let (file, via) = match (file_flag, env.get(&file_var).filter(|v| !v.is_empty())) {
        (Some(f), _) => (Some(f.to_path_buf()), flag.to_string()),
        (None, Some(f)) => (Some(PathBuf::from(f)), file_var.clone()),
        (None, None) => (None, String::new()),
    };
    match (value, file) {
        (Some(_), Some(_)) => Err(format!("environment: {var} and {via} are both set; keep one")),
        (Some(v), None) => Ok(Some(Secret::new(v.clone()))),
        (None, Some(f)) => {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: cannot read {via}: {e}", f.display()))?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            if text.is_empty() {
                return Err(format!("{}: {via} names an empty file", f.display()));
            }
            Ok(Some(Secret::new(text.to_string())))
        }
        (None, None) => Ok(None),
    }
}

/// The registry user when only a password is given, as the original tool and Domino's own
/// `docker-registry` secret use.
pub const DEFAULT_REGISTRY_USER: &str = "domino-registry";

fn build(
    f: FileConfig,
    path: Option<PathBuf>,
    env: &Env,
    flags: &FlagOverrides,
    w: &mut Warnings,
) -> Result<Settings, String> {
    let src = path
        .as_ref()
        .map_or("defaults".to_string(), |p| p.display().to_string());
    let bad = |key: &str, why: String| format!("{src}: {key}: {why}");
    let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
    inert_warnings(&f, w);

    let raw_url = flags
        .registry
        .clone()
        .or_else(|| get("REGISTRY_URL"))
        .or(f.registry.url)
        .unwrap_or_else(|| "docker-registry:5000".into());
    let (mut scheme, host) = parse_registry_url(&raw_url).map_err(|e| bad("registry.url", e))?;
    if flags.plain_http {
        scheme = Scheme::Http;
    }
    let file_repository = renamed(
        w,
        &bad,
        "registry.repository",
        f.registry.repository,
        &[("registry.repository_name", f.registry.repository_name)],
    )?;
    let repository = flags
        .repository
        .clone()
        .or_else(|| get("REPOSITORY"))
        .or(file_repository)
        .unwrap_or_else(|| "dominodatalab".into());
    if repository.is_empty()
        || !repository
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-/.".contains(c))
    {
        return Err(bad(
            "registry.repository",
            format!("{repository:?} must match ^[A-Za-z0-9_./-]+$"),
        ));
    }
    let concurrency = flags
        .concurrency
        .or(f.registry.concurrency)
        .or(f.analysis.max_workers)
        .unwrap_or(DEFAULT_CONCURRENCY);
    if !(1..=256).contains(&concurrency) {
        return Err(bad(
            "registry.concurrency",
            format!("{concurrency} must be between 1 and 256"),
        ));
    }
    let max_retries = f.retry.max_retries.unwrap_or(3);
    if max_retries > 20 {
        return Err(bad("retry.max_retries", format!("{max_retries} is more than 20")));
    }
    let initial_delay = f.retry.initial_delay.unwrap_or(0.2);
    if !(0.0..=60.0).contains(&initial_delay) {
        return Err(bad(
            "retry.initial_delay",
            format!("{initial_delay} must be between 0 and 60 seconds"),
        ));
    }
    let mut password = secret_var(
        env,
        "REGISTRY_PASSWORD",
        flags.password_file.as_deref(),
        "--password-file",
    )?;
    if let Some(var) = &f.registry.password_env_var {
        let why = if password.is_some() {
            "is the original tool's old setting; REGISTRY_PASSWORD (or REGISTRY_PASSWORD_FILE) is set and wins"
                .to_string()
        } else if get(var).is_some() {
            password = get(var).map(Secret::new);
            format!(
                "is the original tool's old setting; the password was read from {var}, but set REGISTRY_PASSWORD (or REGISTRY_PASSWORD_FILE) instead"
            )
        } else {
            format!("names {var}, which is not set; set REGISTRY_PASSWORD (or REGISTRY_PASSWORD_FILE) instead")
        };
        w.key("registry.password_env_var", &why);
    }
    if password.is_none()
        && let Some(p) = get("SKOPEO_PASSWORD")
    {
        password = Some(Secret::new(p));
        w.env(
            "SKOPEO_PASSWORD",
            "the shell tool's variable was used as the registry password; set REGISTRY_PASSWORD instead",
        );
    }
    let username = get("REGISTRY_USERNAME")
        .or(f.registry.username)
        .or_else(|| password.as_ref().map(|_| DEFAULT_REGISTRY_USER.to_string()));
    let auth_secret = get("REGISTRY_AUTH_SECRET").or(f.registry.auth_secret);
    if let Some(name) = &auth_secret
        && !is_dns_label(name)
    {
        return Err(bad(
            "registry.auth_secret",
            format!("{name:?} is not a valid secret name"),
        ));
    }
    let registry = RegistrySettings {
        host,
        scheme,
        repository,
        repositories: f.registry.repositories,
        username,
        password,
        auth_secret,
        insecure: flags.insecure || f.registry.insecure.unwrap_or(false),
        ca_cert: flags.ca_cert.clone().or(f.registry.ca_cert),
        concurrency,
        timeout_seconds: f.registry.timeout_seconds.or(f.retry.timeout).unwrap_or(30).max(1),
        max_retries,
        initial_delay_seconds: initial_delay,
        fetch_config: f.registry.fetch_config.unwrap_or(true),
        verify_blobs: f.registry.verify_blobs.unwrap_or(false),
        cache: f.registry.cache.unwrap_or(true),
        cache_dir: f.registry.cache_dir,
        trust_unchanged_tag_lists: f.registry.trust_unchanged_tag_lists.unwrap_or(false),
        storage: flags
            .storage
            .clone()
            .or_else(|| get("REGISTRY_STORAGE"))
            .or(f.registry.storage),
        aliases: registry_aliases(get("REGISTRY_ALIASES"), f.registry.aliases, &bad)?,
    };
    if let Some(url) = &registry.storage {
        crate::sources::storage::parse_url(url).map_err(|e| bad("registry.storage", e))?;
    }
    if let Some(ca) = &registry.ca_cert
        && !ca.exists()
    {
        return Err(bad("registry.ca_cert", format!("{} does not exist", ca.display())));
    }

    let mongo_port = match get("MONGODB_PORT") {
        Some(p) => p
            .parse()
            .map_err(|_| format!("environment: MONGODB_PORT: {p:?} is not a port number"))?,
        None => f.mongo.port.unwrap_or(27017),
    };
    if mongo_port == 0 {
        return Err(bad("mongo.port", "0 is not a valid port".into()));
    }
    let mongo = MongoSettings {
        host: get("MONGODB_HOST")
            .or(f.mongo.host)
            .unwrap_or_else(|| "mongodb-replicaset".into()),
        port: mongo_port,
        replicaset: f.mongo.replicaset.unwrap_or_else(|| "rs0".into()),
        db: f.mongo.db.unwrap_or_else(|| "domino".into()),
        uri: get("MONGODB_URI").map(Secret::new),
        username: get("MONGODB_USERNAME")
            .or(f.mongo.username)
            .unwrap_or_else(|| "admin".into()),
        password: secret_var(env, "MONGODB_PASSWORD", None, "")?,
        optional_collections: optional_collections(
            get("MONGODB_OPTIONAL_COLLECTIONS"),
            f.mongo.optional_collections,
            &bad,
        )?,
    };

    let file_platform = renamed(
        w,
        &bad,
        "kubernetes.domino_platform_namespace",
        f.kubernetes.domino_platform_namespace,
        &[
            ("kubernetes.platform_namespace", f.kubernetes.platform_namespace),
            ("kubernetes.namespace", f.kubernetes.namespace),
        ],
    )?;
    let platform_namespace = get("PLATFORM_NAMESPACE")
        .or_else(|| get("DOMINO_PLATFORM_NAMESPACE"))
        .or(file_platform)
        .unwrap_or_else(|| "domino-platform".into());
    let compute_namespace = get("COMPUTE_NAMESPACE")
        .or(f.kubernetes.compute_namespace)
        .unwrap_or_else(|| "domino-compute".into());
    for (key, ns) in [
        ("kubernetes.domino_platform_namespace", &platform_namespace),
        ("kubernetes.compute_namespace", &compute_namespace),
    ] {
        if !is_dns_label(ns) {
            return Err(bad(
                key,
                format!("{ns:?} is not a valid namespace name (lowercase letters, digits and '-')"),
            ));
        }
    }
    let kubernetes = KubernetesSettings {
        platform_namespace,
        compute_namespace,
        contexts: kube_contexts(&flags.kube_contexts, f.kubernetes.context, f.kubernetes.contexts, &bad)?,
        all_namespaces: flags.all_namespaces || f.kubernetes.all_namespaces.unwrap_or(false),
        registry_statefulset: f
            .kubernetes
            .registry_statefulset
            .unwrap_or_else(|| "docker-registry".into()),
    };
    let keycloak = KeycloakSettings {
        host: get("KEYCLOAK_HOST").or(f.keycloak.host),
        realm: get("KEYCLOAK_REALM")
            .or(f.keycloak.realm)
            .unwrap_or_else(|| "DominoRealm".into()),
        username: get("KEYCLOAK_USERNAME").or(f.keycloak.username),
        password: secret_var(env, "KEYCLOAK_PASSWORD", None, "")?,
    };
    let keep_revisions = flags.keep_revisions.or(f.policy.keep_revisions).unwrap_or(5);
    if keep_revisions == 0 {
        return Err(bad("policy.keep_revisions", "must be at least 1".into()));
    }
    for p in &f.protect {
        regex::Regex::new(p).map_err(|e| bad("protect", format!("{p:?} is not a valid regex: {e}")))?;
    }
    if let Some(ids) = &flags.ids_file {
        let text = std::fs::read_to_string(ids).map_err(|e| format!("{}: cannot read ids file: {e}", ids.display()))?;
        crate::model::ids_file::parse_ids_file(&ids.display().to_string(), &text).map_err(|e| e.to_string())?;
    }
    let policy = PolicySettings {
        keep_revisions,
        unused_since_days: flags.unused_since_days.or(f.policy.unused_since_days),
        grace_period_hours: flags.grace_period_hours.or(f.policy.grace_period_hours).unwrap_or(2),
        protect: f.protect,
        ids_file: flags.ids_file.clone(),
    };
    Ok(Settings {
        config_file: path,
        registry,
        mongo,
        kubernetes,
        keycloak,
        policy,
        output_dir: f.analysis.output_dir.unwrap_or_else(|| PathBuf::from("reports")),
        without: flags.without.iter().copied().collect(),
        log_file: flags.log_file.clone(),
        warnings: Vec::new(),
    })
}

/// `--kube-context` (repeatable, wins), else `kubernetes.contexts`, else `kubernetes.context`;
/// both keys in one file is an error. Duplicates are dropped, order kept (the first is home).
fn kube_contexts(
    flags: &[String],
    one: Option<String>,
    many: Option<Vec<String>>,
    bad: &dyn Fn(&str, String) -> String,
) -> Result<Vec<String>, String> {
    let (list, key) = match (flags, one, many) {
        ([_, ..], _, _) => (flags.to_vec(), "--kube-context"),
        ([], Some(_), Some(_)) => {
            return Err(bad(
                "kubernetes.context",
                "is set together with kubernetes.contexts; keep only kubernetes.contexts".into(),
            ));
        }
        ([], Some(c), None) => (vec![c], "kubernetes.context"),
        ([], None, Some(l)) => (l, "kubernetes.contexts"),
        ([], None, None) => (vec![], ""),
    };
    let mut out: Vec<String> = Vec::new();
    for c in list {
        if c.trim().is_empty() {
            return Err(match key {
                "--kube-context" => "--kube-context: an empty context name".to_string(),
                k => bad(k, "an empty context name".into()),
            });
        }
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

/// `registry.aliases` (or `REGISTRY_ALIASES`, comma-separated): each `host[:port]`, lowercase,
/// sorted, duplicates dropped; anything else is an error naming the entry.
fn registry_aliases(
    env: Option<String>,
    file: Option<Vec<String>>,
    bad: &dyn Fn(&str, String) -> String,
) -> Result<Vec<String>, String> {
    let (names, from_env): (Vec<String>, bool) = match env {
        Some(v) => (
            v.split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect(),
            true,
        ),
        None => (file.unwrap_or_default(), false),
    };
    let mut out = BTreeSet::new();
    for name in names {
        let host = match parse_registry_url(&name) {
            Ok((_, host)) if !name.contains("://") => host,
            _ => {
                let why = format!("{name:?} is not host[:port]");
                return Err(if from_env {
                    format!("environment: REGISTRY_ALIASES: {why}")
                } else {
                    bad("registry.aliases", why)
                });
            }
        };
        out.insert(host.to_ascii_lowercase());
    }
    Ok(out.into_iter().collect())
}

/// `mongo.optional_collections`, or `MONGODB_OPTIONAL_COLLECTIONS` (comma-separated, wins).
/// Only protecting collections can be named: `environments_v2` never (every category depends
/// on it), a name this tool does not read is a typo that would leave the real collection
/// required and the operator puzzled. Those Domino may lack anyway are accepted as they are.
fn optional_collections(
    env: Option<String>,
    file: Option<Vec<String>>,
    bad: &dyn Fn(&str, String) -> String,
) -> Result<Vec<String>, String> {
    use crate::model::domino::{CORE_COLLECTION, OPTIONAL_COLLECTIONS, PROTECTING_COLLECTIONS};
    let (names, key) = match env {
        Some(v) => (
            v.split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect(),
            None,
        ),
        None => (file.unwrap_or_default(), Some("mongo.optional_collections")),
    };
    let fail = |why: String| match key {
        Some(k) => bad(k, why),
        None => format!("environment: MONGODB_OPTIONAL_COLLECTIONS: {why}"),
    };
    let mut out = BTreeSet::new();
    for name in names {
        if name == CORE_COLLECTION {
            return Err(fail(format!(
                "{name:?} cannot be optional: every category depends on it"
            )));
        }
        if !PROTECTING_COLLECTIONS.iter().any(|(n, _)| *n == name) && !OPTIONAL_COLLECTIONS.contains(&name.as_str()) {
            let known: Vec<&str> = PROTECTING_COLLECTIONS.iter().map(|(n, _)| *n).collect();
            return Err(fail(format!(
                "{name:?} is not a collection this tool reads (one of: {})",
                known.join(", ")
            )));
        }
        out.insert(name);
    }
    Ok(out.into_iter().collect())
}

/// `http://h:p` → plain HTTP; `https://h:p` or bare `h:p` → TLS. Returns (scheme, host[:port]).
pub fn parse_registry_url(raw: &str) -> Result<(Scheme, String), String> {
    let raw = raw.trim();
    let (scheme, rest) = if let Some(r) = raw.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if let Some(r) = raw.strip_prefix("https://") {
        (Scheme::Https, r)
    } else if raw.contains("://") {
        return Err(format!("{raw:?}: only http:// and https:// are supported"));
    } else {
        (Scheme::Https, raw)
    };
    let host = rest.trim_end_matches('/');
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    let name_ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    // The HTTP client parses the same text as a URL: a name it refuses (`1.2.3.4.5` reads as
    // a bad IPv4 address) is refused here, at start-up, rather than at the first request.
    let url_ok = url::Url::parse(&format!("https://{host}")).is_ok();
    if !name_ok || !port_ok || !url_ok || host.contains('/') {
        return Err(format!(
            "{raw:?} is not host[:port] (with an optional http:// or https://)"
        ));
    }
    Ok((scheme, host.to_string()))
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod keys_tests {
    use super::FileConfig;

    /// The keys serde accepts at `section` (top level when empty), read from the error it gives
    /// for an unknown key: derived from the structs, so a new key cannot be missed.
    fn accepted(section: &str) -> Vec<String> {
        let yaml = if section.is_empty() {
            "no_such_key_probe: 1\n".to_string()
        } else {
            format!("{section}:\n  no_such_key_probe: 1\n")
        };
        let e = serde_saphyr::from_str::<FileConfig>(&yaml)
            .unwrap_err()
            .without_snippet()
            .to_string();
        let list = e
            .split_once("expected")
            .map(|(_, l)| l)
            .unwrap_or_else(|| panic!("{e}"));
        // "unknown field `x`, expected one of a, b, c at line 1, column 1"
        let list = list.trim_start().trim_start_matches("one of ");
        let list = list.split(" at line").next().unwrap();
        list.split(", ").map(|k| k.trim_matches('`').to_string()).collect()
    }

    /// Every key of config.yaml (sections included) is in the annotated config.yaml (set or
    /// commented out, under its section) and named in README as `section.key`.
    #[test]
    fn every_settings_key_is_in_the_annotated_config_and_the_readme() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = std::fs::read_to_string(root.join("config.yaml")).unwrap();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let top = accepted("");
        assert!(top.len() >= 10 && top.contains(&"registry".to_string()), "{top:?}");
        let mut keys: Vec<(String, String)> = Vec::new();
        for section in &top {
            let yaml = format!("{section}:\n  no_such_key_probe: 1\n");
            let e = serde_saphyr::from_str::<FileConfig>(&yaml).err().map(|e| e.to_string());
            if e.is_some_and(|e| e.contains("unknown field")) {
                keys.extend(accepted(section).into_iter().map(|k| (section.clone(), k)));
            } else {
                keys.push((section.clone(), String::new())); // a list or a free-form section
            }
        }
        assert!(keys.len() > 40, "{keys:?}");
        let mut missing = Vec::new();
        for (section, key) in &keys {
            // `key:` or `# key:` (any indent); a line at column 0 that is `name:` or
            // `# name:` opens section `name`; other column-0 comments change nothing.
            let is_key = |content: &str, k: &str| content.strip_prefix(k).is_some_and(|r| r.starts_with(':'));
            let mut inside = String::new();
            let in_config = config.lines().any(|l| {
                let content = l.trim_start().trim_start_matches('#').trim_start();
                let head: String = content
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !l.starts_with(' ') && !head.is_empty() && is_key(content, &head) {
                    inside = head.clone();
                    return key.is_empty() && head == *section;
                }
                !key.is_empty() && l.starts_with(' ') && inside == *section && is_key(content, key)
            });
            let name = if key.is_empty() {
                section.clone()
            } else {
                format!("{section}.{key}")
            };
            if !in_config {
                missing.push(format!("config.yaml: {name}"));
            }
            if !readme.contains(&format!("`{name}`")) {
                missing.push(format!("README.md: `{name}`"));
            }
        }
        assert!(missing.is_empty(), "missing: {missing:#?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_yaml(yaml: &str, env: &[(&str, &str)], flags: FlagOverrides) -> Result<Settings, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, yaml).unwrap();
        let env: Env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let file = path.display().to_string();
        let mut s = Settings::load(Some(&path), &env, &flags).map_err(|e| e.replace(&file, "FILE"))?;
        for w in &mut s.warnings {
            *w = w.replace(&file, "FILE");
        }
        Ok(s)
    }

    #[test]
    fn layers_defaults_file_env_and_flags_in_order() {
        let yaml = "registry:\n  url: file-registry:5000\n  repository: fromfile\nmongo:\n  port: 27018\n";
        let s = load_yaml(yaml, &[], FlagOverrides::default()).unwrap();
        assert_eq!(s.registry.host, "file-registry:5000");
        assert_eq!(s.registry.scheme, Scheme::Https);
        assert_eq!(s.registry.repository, "fromfile");
        assert_eq!(s.mongo.port, 27018);
        assert_eq!(s.mongo.db, "domino");
        let s = load_yaml(
            yaml,
            &[("REGISTRY_URL", "http://env-registry:5000"), ("REPOSITORY", "fromenv")],
            FlagOverrides::default(),
        )
        .unwrap();
        assert_eq!(
            (s.registry.host.as_str(), s.registry.scheme),
            ("env-registry:5000", Scheme::Http)
        );
        assert_eq!(s.registry.repository, "fromenv");
        let flags = FlagOverrides {
            registry: Some("flag:1".into()),
            repository: Some("fromflag".into()),
            ..Default::default()
        };
        let s = load_yaml(yaml, &[("REGISTRY_URL", "env:5000")], flags).unwrap();
        assert_eq!(
            (s.registry.host.as_str(), s.registry.repository.as_str()),
            ("flag:1", "fromflag")
        );
    }

    #[test]
    fn unknown_keys_wrong_types_and_bad_values_name_the_key_and_file() {
        let e = load_yaml("registry:\n  urll: x\n", &[], FlagOverrides::default()).unwrap_err();
        assert!(e.starts_with("FILE:") && e.contains("urll"), "{e}");
        let e = load_yaml("mongo:\n  port: lots\n", &[], FlagOverrides::default()).unwrap_err();
        assert!(e.starts_with("FILE:2:9: mongo.port: ") && !e.contains('\n'), "{e}");
        let e = load_yaml(
            "# c\nmongo:\n  host: h\n\nregistry:\n  url: r:5000\n  concurrency: -1\n",
            &[],
            FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(e.starts_with("FILE:7:16: registry.concurrency: "), "{e}");
        let e = load_yaml(
            "registry:\n  repository: 'invalid@repo'\n",
            &[],
            FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(e.contains("registry.repository"), "{e}");
        let e = load_yaml("registry:\n  url: 'has space'\n", &[], FlagOverrides::default()).unwrap_err();
        assert!(e.contains("registry.url"), "{e}");
        let e = load_yaml("protect: ['(']\n", &[], FlagOverrides::default()).unwrap_err();
        assert!(e.contains("protect"), "{e}");
    }

    #[test]
    fn registry_aliases_are_hosts_lowercased_and_bad_entries_name_the_key() {
        let s = load_yaml(
            "registry:\n  aliases: ['Old.Example.com:5000', docker-registry:5000, old.example.com:5000]\n",
            &[],
            FlagOverrides::default(),
        )
        .unwrap();
        assert_eq!(s.registry.aliases, vec!["docker-registry:5000", "old.example.com:5000"]);
        let s = load_yaml(
            "registry:\n  aliases: [a.example.com]\n",
            &[("REGISTRY_ALIASES", " b.example.com , ,c:1")],
            FlagOverrides::default(),
        )
        .unwrap();
        assert_eq!(s.registry.aliases, vec!["b.example.com", "c:1"], "the variable wins");
        let e = load_yaml(
            "registry:\n  aliases: ['https://x.example.com']\n",
            &[],
            FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(e.contains("registry.aliases") && e.contains("x.example.com"), "{e}");
        let e = load_yaml("", &[("REGISTRY_ALIASES", "a b")], FlagOverrides::default()).unwrap_err();
        assert!(e.contains("REGISTRY_ALIASES"), "{e}");
    }

    #[test]
    fn original_tool_sections_are_accepted() {
        let yaml = "cache:\n  enabled: true\ns3:\n  bucket: ''\nskopeo:\n  rate_limit:\n    enabled: true\nanalysis:\n  max_workers: 4\n  output_dir: ../reports\n";
        let s = load_yaml(yaml, &[], FlagOverrides::default()).unwrap();
        assert_eq!(s.registry.concurrency, 4);
        assert_eq!(s.output_dir, PathBuf::from("../reports"));
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_serialization() {
        let s = load_yaml(
            "",
            &[
                ("REGISTRY_PASSWORD", "hunter2"),
                ("MONGODB_PASSWORD", "mongo-pw"),
                ("KEYCLOAK_PASSWORD", "kc-pw"),
            ],
            FlagOverrides::default(),
        )
        .unwrap();
        let dbg = format!("{s:?}");
        let json = serde_json::to_string(&s).unwrap();
        for secret in ["hunter2", "mongo-pw", "kc-pw"] {
            assert!(!dbg.contains(secret) && !json.contains(secret), "{secret} leaked");
        }
        assert_eq!(s.registry.password.as_ref().unwrap().expose(), "hunter2");
    }

    /// The original tool's `config.yaml` at 0.2 (domain.md §8, with the older names), as an
    /// operator would bring it.
    const ORIGINAL_OLD_CONFIG: &str = "# Docker Registry Cleaner Configuration
registry:
  url: \"docker-registry:5000\"
  repository_name: \"dominodatalab\"
  password_env_var: \"SKOPEO_PASSWORD\"

kubernetes:
  namespace: \"domino-platform\"
  compute_namespace: \"domino-compute\"
  pod_prefixes: [\"model-\", \"run-\"]

analysis:
  max_workers: 4
  timeout: 300
  output_dir: \".\"

reports:
  workload_report: \"workload-report.json\"
  image_analysis: \"final-report.json\"

security:
  dry_run_by_default: true
  require_confirmation: true
";

    #[test]
    fn the_original_tools_old_config_loads_with_warnings_naming_the_new_keys() {
        let s = load_yaml(
            ORIGINAL_OLD_CONFIG,
            &[("SKOPEO_PASSWORD", "pw")],
            FlagOverrides::default(),
        )
        .unwrap();
        assert_eq!(s.registry.repository, "dominodatalab");
        assert_eq!(s.kubernetes.platform_namespace, "domino-platform");
        assert_eq!(s.kubernetes.compute_namespace, "domino-compute");
        assert_eq!(s.registry.concurrency, 4);
        assert_eq!(s.output_dir, PathBuf::from("."));
        // password_env_var names SKOPEO_PASSWORD: it still works, as the shell tool's user.
        assert_eq!(s.registry.password.as_ref().unwrap().expose(), "pw");
        assert_eq!(s.registry.username.as_deref(), Some("domino-registry"));
        let w = s.warnings.join("\n");
        for (at, text) in [
            ("FILE:4: registry.repository_name", "use registry.repository"),
            ("FILE:5: registry.password_env_var", "read from SKOPEO_PASSWORD"),
            (
                "FILE:8: kubernetes.namespace",
                "use kubernetes.domino_platform_namespace",
            ),
            ("FILE:10: kubernetes.pod_prefixes", "has no effect"),
            ("FILE:14: analysis.timeout", "registry.timeout_seconds"),
            ("FILE:18: reports.workload_report", "has no effect"),
            ("FILE:19: reports.image_analysis", "has no effect"),
        ] {
            assert!(
                s.warnings.iter().any(|l| l.starts_with(at) && l.contains(text)),
                "no warning {at} ... {text} in:\n{w}"
            );
        }
        assert_eq!(s.warnings.len(), 7, "{w}");
        assert!(
            !w.contains("pw\n") && !w.ends_with("pw"),
            "a warning shows the password"
        );
    }

    #[test]
    fn old_and_new_names_together_must_agree() {
        let yaml = "registry:\n  repository: a\n  repository_name: a\nkubernetes:\n  platform_namespace: p\n";
        let s = load_yaml(yaml, &[], FlagOverrides::default()).unwrap();
        assert_eq!(s.registry.repository, "a");
        assert_eq!(s.kubernetes.platform_namespace, "p");
        let e = load_yaml(
            "registry:\n  repository: a\n  repository_name: b\n",
            &[],
            FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(
            e.starts_with("FILE: registry.repository_name:") && e.contains("registry.repository"),
            "{e}"
        );
        let e = load_yaml(
            "kubernetes:\n  domino_platform_namespace: a\n  namespace: b\n",
            &[],
            FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(
            e.contains("kubernetes.namespace") && e.contains("domino_platform_namespace"),
            "{e}"
        );
    }

    #[test]
    fn inert_keys_of_the_current_original_warn_and_the_rest_work() {
        let yaml = "retry:\n  max_retries: 2\n  initial_delay: 1.0\n  max_delay: 60.0\n  exponential_base: 2.0\n  jitter: true\n  timeout: 300\ncache:\n  enabled: true\n  tag_list_ttl: 1800\ns3:\n  bucket: ''\nskopeo:\n  rate_limit:\n    enabled: true\nsecurity:\n  dry_run_by_default: true\n  require_confirmation: false\n";
        let s = load_yaml(yaml, &[], FlagOverrides::default()).unwrap();
        assert_eq!(s.registry.max_retries, 2);
        assert_eq!(s.registry.initial_delay_seconds, 1.0);
        assert_eq!(s.registry.timeout_seconds, 300);
        let keys: Vec<&str> = s.warnings.iter().map(|l| l.split(": ").nth(1).unwrap_or("")).collect();
        assert_eq!(
            keys,
            [
                "retry.max_delay",
                "retry.exponential_base",
                "retry.jitter",
                "cache.enabled",
                "cache.tag_list_ttl",
                "s3.bucket",
                "skopeo.rate_limit",
                "security.require_confirmation",
            ],
            "{:#?}",
            s.warnings
        );
        assert!(
            s.warnings[0].starts_with("FILE:4: retry.max_delay: has no effect"),
            "{}",
            s.warnings[0]
        );
        // A key the original never had is still an error naming it.
        let e = load_yaml("retry:\n  max_dealy: 1\n", &[], FlagOverrides::default()).unwrap_err();
        assert!(e.contains("max_dealy"), "{e}");
        let e = load_yaml("kubernetes:\n  pod_prefix: []\n", &[], FlagOverrides::default()).unwrap_err();
        assert!(e.contains("pod_prefix"), "{e}");
    }

    #[test]
    fn registry_password_alone_uses_the_domino_registry_user_and_files_work() {
        let s = load_yaml("", &[("REGISTRY_PASSWORD", "pw")], FlagOverrides::default()).unwrap();
        assert_eq!(s.registry.username.as_deref(), Some(DEFAULT_REGISTRY_USER));
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let s = load_yaml(
            "",
            &[("REGISTRY_PASSWORD", "pw"), ("REGISTRY_USERNAME", "bob")],
            FlagOverrides::default(),
        )
        .unwrap();
        assert_eq!(s.registry.username.as_deref(), Some("bob"));
        let s = load_yaml("", &[], FlagOverrides::default()).unwrap();
        assert_eq!((s.registry.username, s.registry.password.is_none()), (None, true));
        // SKOPEO_PASSWORD alone: the shell tool's variable, with a warning; REGISTRY_PASSWORD wins.
        let s = load_yaml("", &[("SKOPEO_PASSWORD", "sk")], FlagOverrides::default()).unwrap();
        assert_eq!(s.registry.password.as_ref().unwrap().expose(), "sk");
        assert_eq!(s.registry.username.as_deref(), Some("domino-registry"));
        assert!(
            s.warnings[0].starts_with("environment: SKOPEO_PASSWORD:"),
            "{:?}",
            s.warnings
        );
        let s = load_yaml(
            "",
            &[("SKOPEO_PASSWORD", "sk"), ("REGISTRY_PASSWORD", "rp")],
            FlagOverrides::default(),
        )
        .unwrap();
        assert_eq!(s.registry.password.as_ref().unwrap().expose(), "rp");
        assert!(s.warnings.is_empty());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "from-file\n").unwrap();
        let f = file.display().to_string();
        let s = load_yaml(
            "",
            &[
                ("REGISTRY_PASSWORD_FILE", f.as_str()),
                ("MONGODB_PASSWORD_FILE", f.as_str()),
            ],
            FlagOverrides::default(),
        )
        .unwrap();
        assert_eq!(s.registry.password.as_ref().unwrap().expose(), "from-file");
        assert_eq!(s.mongo.password.as_ref().unwrap().expose(), "from-file");
        let flags = FlagOverrides {
            password_file: Some(file.clone()),
            ..Default::default()
        };
        let s = load_yaml("", &[], flags.clone()).unwrap();
        assert_eq!(s.registry.password.as_ref().unwrap().expose(), "from-file");
        let e = load_yaml("", &[("REGISTRY_PASSWORD", "x")], flags).unwrap_err();
        assert!(e.contains("REGISTRY_PASSWORD and --password-file"), "{e}");
        let e = load_yaml(
            "",
            &[("KEYCLOAK_PASSWORD_FILE", "/nonexistent/pw")],
            FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(
            e.starts_with("/nonexistent/pw: cannot read KEYCLOAK_PASSWORD_FILE"),
            "{e}"
        );
        std::fs::write(&file, "\n").unwrap();
        let e = load_yaml("", &[("REGISTRY_PASSWORD_FILE", f.as_str())], FlagOverrides::default()).unwrap_err();
        assert!(e.contains("empty"), "{e}");
    }

    #[test]
    fn auth_secret_from_config_or_environment() {
        let s = load_yaml("registry:\n  auth_secret: my-registry\n", &[], FlagOverrides::default()).unwrap();
        assert_eq!(s.registry.auth_secret.as_deref(), Some("my-registry"));
        let s = load_yaml(
            "registry:\n  auth_secret: my-registry\n",
            &[("REGISTRY_AUTH_SECRET", "env-secret")],
            FlagOverrides::default(),
        )
        .unwrap();
        assert_eq!(s.registry.auth_secret.as_deref(), Some("env-secret"));
        let e = load_yaml("registry:\n  auth_secret: Bad_Name\n", &[], FlagOverrides::default()).unwrap_err();
        assert!(e.contains("registry.auth_secret"), "{e}");
    }

    #[test]
    fn optional_collections_from_config_or_environment_and_only_protecting_ones() {
        let s = load_yaml(
            "mongo:\n  optional_collections: [sagas, runs, sagas]\n",
            &[],
            FlagOverrides::default(),
        )
        .unwrap();
        assert_eq!(s.mongo.optional_collections, ["runs", "sagas"]);
        let s = load_yaml(
            "mongo:\n  optional_collections: [sagas]\n",
            &[("MONGODB_OPTIONAL_COLLECTIONS", "projects, workspace_session")],
            FlagOverrides::default(),
        )
        .unwrap();
        assert_eq!(s.mongo.optional_collections, ["projects", "workspace_session"]);
        assert!(
            load_yaml("", &[], FlagOverrides::default())
                .unwrap()
                .mongo
                .optional_collections
                .is_empty()
        );
        let e = load_yaml(
            "mongo:\n  optional_collections: [environments_v2]\n",
            &[],
            FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(
            e.starts_with("FILE: mongo.optional_collections:") && e.contains("cannot be optional"),
            "{e}"
        );
        let e = load_yaml("mongo:\n  optional_collections: [run]\n", &[], FlagOverrides::default()).unwrap_err();
        assert!(
            e.contains("mongo.optional_collections") && e.contains("\"run\" is not a collection"),
            "{e}"
        );
        let e = load_yaml(
            "",
            &[("MONGODB_OPTIONAL_COLLECTIONS", "sagaz")],
            FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(e.starts_with("environment: MONGODB_OPTIONAL_COLLECTIONS:"), "{e}");
    }

    /// issue 11.13: several clusters from `kubernetes.contexts` or repeated `--kube-context`.
    #[test]
    fn kube_contexts_from_flags_the_list_or_the_single_key() {
        let ctx = |yaml: &str, flags: &[&str]| {
            let f = FlagOverrides {
                kube_contexts: flags.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            };
            load_yaml(yaml, &[], f).map(|s| s.kubernetes.contexts)
        };
        assert_eq!(ctx("", &[]).unwrap(), Vec::<String>::new());
        assert_eq!(ctx("kubernetes:\n  context: one\n", &[]).unwrap(), ["one"]);
        assert_eq!(
            ctx("kubernetes:\n  contexts: [east, west, east]\n", &[]).unwrap(),
            ["east", "west"]
        );
        assert_eq!(
            ctx("kubernetes:\n  contexts: [east]\n", &["b", "a"]).unwrap(),
            ["b", "a"],
            "flags win, in order"
        );
        let e = ctx("kubernetes:\n  context: a\n  contexts: [b]\n", &[]).unwrap_err();
        assert!(
            e.starts_with("FILE: kubernetes.context:") && e.contains("kubernetes.contexts"),
            "{e}"
        );
        let e = ctx("kubernetes:\n  contexts: ['']\n", &[]).unwrap_err();
        assert!(e.contains("kubernetes.contexts") && e.contains("empty"), "{e}");
        assert!(ctx("", &[""]).unwrap_err().contains("--kube-context"));
    }

    #[test]
    fn key_lines_are_found_in_block_yaml() {
        let text = "a:\n  b: 1\n  c:\n    d: 2\ne:\n  b: 3\n";
        assert_eq!(yaml_key_line(text, "a.b"), Some(2));
        assert_eq!(yaml_key_line(text, "a.c.d"), Some(4));
        assert_eq!(yaml_key_line(text, "e.b"), Some(6));
        assert_eq!(yaml_key_line(text, "e.d"), None);
    }

    #[test]
    fn registry_urls() {
        assert_eq!(
            parse_registry_url("http://127.0.0.1:5000").unwrap(),
            (Scheme::Http, "127.0.0.1:5000".into())
        );
        assert_eq!(
            parse_registry_url("registry.example.com").unwrap(),
            (Scheme::Https, "registry.example.com".into())
        );
        assert!(parse_registry_url("ftp://x").is_err());
        assert!(parse_registry_url("x:99999").is_err());
    }
}
