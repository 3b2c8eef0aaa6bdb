//! Settings layered once at start-up: built-in defaults < `config.yaml` < environment
//! variables < command-line flags, then validated. Errors name the key and the file.
//! Keeps the original tool's key and variable names (domain.md §8) so configs keep working.

use crate::dataset::SourceKind;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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
    pub cache: Option<serde_yaml::Value>,
    #[serde(default)]
    pub s3: Option<serde_yaml::Value>,
    #[serde(default)]
    pub skopeo: Option<serde_yaml::Value>,
    #[serde(default)]
    pub reports: Option<serde_yaml::Value>,
    #[serde(default)]
    pub security: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRegistry {
    pub url: Option<String>,
    pub repository: Option<String>,
    /// Explicit repositories to scan instead of every repository under the prefix.
    pub repositories: Option<Vec<String>>,
    pub username: Option<String>,
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMongo {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub replicaset: Option<String>,
    pub db: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileKubernetes {
    pub domino_platform_namespace: Option<String>,
    pub compute_namespace: Option<String>,
    pub context: Option<String>,
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
    pub grace_period_hours: Option<u64>,
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
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KubernetesSettings {
    pub platform_namespace: String,
    pub compute_namespace: String,
    pub context: Option<String>,
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
        let file = match &path {
            Some(p) => read_file_config(p)?,
            None => FileConfig::default(),
        };
        build(file, path, env, flags)
    }
}

pub fn read_file_config(path: &Path) -> Result<FileConfig, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read config file: {e}", path.display()))?;
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn build(f: FileConfig, path: Option<PathBuf>, env: &Env, flags: &FlagOverrides) -> Result<Settings, String> {
    let src = path
        .as_ref()
        .map_or("defaults".to_string(), |p| p.display().to_string());
    let bad = |key: &str, why: String| format!("{src}: {key}: {why}");
    let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();

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
    let repository = flags
        .repository
        .clone()
        .or_else(|| get("REPOSITORY"))
        .or(f.registry.repository)
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
        .unwrap_or(8);
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
    let registry = RegistrySettings {
        host,
        scheme,
        repository,
        repositories: f.registry.repositories,
        username: get("REGISTRY_USERNAME").or(f.registry.username),
        password: get("REGISTRY_PASSWORD").map(Secret::new),
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
    };
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
        password: get("MONGODB_PASSWORD").map(Secret::new),
    };

    let platform_namespace = get("PLATFORM_NAMESPACE")
        .or_else(|| get("DOMINO_PLATFORM_NAMESPACE"))
        .or(f.kubernetes.domino_platform_namespace)
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
        context: f.kubernetes.context,
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
        password: get("KEYCLOAK_PASSWORD").map(Secret::new),
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
    })
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
    if !name_ok || !port_ok || host.contains('/') {
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
mod tests {
    use super::*;

    fn load_yaml(yaml: &str, env: &[(&str, &str)], flags: FlagOverrides) -> Result<Settings, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, yaml).unwrap();
        let env: Env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::load(Some(&path), &env, &flags).map_err(|e| e.replace(&path.display().to_string(), "FILE"))
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
        assert!(e.contains("mongo.port") && e.starts_with("FILE:"), "{e}");
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
