//! From settings to live sources: the registry client, scan options, scans with progress, a
//! whole-dataset load, and the settings fingerprint a plan is bound to.

use crate::dataset::Dataset;
use crate::exit::CannotRun;
use crate::model::Inventory;
use crate::ops::scan::{ScanOptions, ScanProgress, scan};
use crate::settings::Settings;
use crate::sources::registry::{Credentials, RegistryClient, RegistryOptions, docker_config_credentials};
use anyhow::{Context as _, anyhow, bail};
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// Scans the registry, drawing a live bar (rate, ETA) on stderr when it is a terminal, else
/// logging a line every 10 s (`ops::progress`) and one at the end.
pub async fn scan_registry(settings: &Settings, quiet: bool, for_delete: bool) -> anyhow::Result<Inventory> {
    let terminal = std::io::stderr().is_terminal();
    let bar = (!quiet && terminal).then(|| crate::ops::progress::bar("scan", 0));
    let ticker = (!quiet && !terminal).then(|| crate::ops::progress::Ticker::new("scan"));
    let last = std::sync::Mutex::new(None::<ScanProgress>);
    let progress = |p: ScanProgress| {
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = &bar {
            // Each phase counts its own items: a new phase restarts the bar (and its ETA), as
            // does a count that goes back (the storage scan reads index children in a
            // second manifest step).
            if last.is_none_or(|l| l.phase != p.phase || p.done < l.done) {
                b.reset();
            }
            b.set_length(p.total as u64);
            b.set_position(p.done as u64);
            b.set_message(format!("{:?}, {} requests", p.phase, p.requests));
        }
        if let Some(t) = &ticker {
            t.update_with(p.done, p.total, || format!("scan {}", progress_line(&p)));
        }
        *last = Some(p);
    };
    let result = scan_registry_with(settings, for_delete, &progress).await;
    if let Some(b) = &bar {
        b.finish();
    }
    if let (Some(t), Some(p)) = (&ticker, *last.lock().unwrap_or_else(|e| e.into_inner()))
        && result.is_ok()
    {
        t.finish(p.done, p.total);
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

/// Storage scan options from settings (the same repositories as the HTTP scan).
pub fn storage_scan_options(settings: &Settings) -> crate::sources::storage::StorageScanOptions {
    let r = &settings.registry;
    crate::sources::storage::StorageScanOptions {
        prefix: r.repository.clone(),
        repositories: r.repositories.clone(),
        fetch_config: r.fetch_config,
        verify_blobs: r.verify_blobs,
        concurrency: r.concurrency,
    }
}

/// Reads the inventory from the registry's storage (`registry.storage`), read-only.
pub async fn scan_storage_with(
    settings: &Settings,
    url: &str,
    on_progress: &(dyn Fn(ScanProgress) + Sync),
) -> anyhow::Result<Inventory> {
    use crate::ops::scan::ScanPhase;
    use crate::sources::storage::{StorageSource, StorageStep, scan};
    let src = StorageSource::open(url).map_err(|e| anyhow!(CannotRun(e.to_string())))?;
    let started = std::time::Instant::now();
    let progress = |step, done, total| {
        on_progress(ScanProgress {
            phase: match step {
                StorageStep::Listing => ScanPhase::Listing,
                StorageStep::TagLinks => ScanPhase::TagLinks,
                StorageStep::Manifests => ScanPhase::Manifests,
                StorageStep::Configs => ScanPhase::Configs,
                StorageStep::Blobs => ScanPhase::Blobs,
            },
            done,
            total,
            requests: src.stats.requests(),
            elapsed_secs: started.elapsed().as_secs_f64(),
        })
    };
    scan(
        &src,
        &settings.registry.host,
        &storage_scan_options(settings),
        &progress,
    )
    .await
    .map_err(|e| anyhow!(CannotRun(format!("registry storage {url}: {e}"))))
}

/// Scans the registry (its storage when `registry.storage` is set, else its HTTP API),
/// reporting progress to `on_progress`.
pub async fn scan_registry_with(
    settings: &Settings,
    for_delete: bool,
    on_progress: &(dyn Fn(ScanProgress) + Sync),
) -> anyhow::Result<Inventory> {
    if let Some(url) = &settings.registry.storage {
        return scan_storage_with(settings, url, on_progress).await;
    }
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
    Ok(load_dataset_timed(settings, snapshot, quiet, for_delete, now).await?.0)
}

/// [`load_dataset`], also returning how long the registry scan took (none from a snapshot).
pub async fn load_dataset_timed(
    settings: &Settings,
    snapshot: Option<&Path>,
    quiet: bool,
    for_delete: bool,
    now: i64,
) -> anyhow::Result<(Dataset, Option<f64>)> {
    let scan_secs = std::sync::Mutex::new(None);
    let registry = async {
        match snapshot {
            Some(p) => crate::report::snapshot::read(p).map_err(|e| anyhow!(CannotRun(e.to_string()))),
            None => {
                let started = std::time::Instant::now();
                let inv = scan_registry(settings, quiet, for_delete).await?;
                *scan_secs.lock().unwrap_or_else(|e| e.into_inner()) = Some(started.elapsed().as_secs_f64());
                Ok((inv, now))
            }
        }
    };
    let ds = crate::ops::load::load_all(settings, registry, now, &|_, _| {}).await?;
    let secs = *scan_secs.lock().unwrap_or_else(|e| e.into_inner());
    Ok((ds, secs))
}

/// A stable fingerprint of the settings that decide what a plan means.
/// Every setting that changes what is a candidate or what protects: the registry and its
/// repositories, whether config blobs are read (the grace period needs them), the policy, the
/// sources turned off, which MongoDB database (never its credentials) and which of its
/// protecting collections may be absent, the Kubernetes
/// namespaces and context, and the Keycloak realm.
pub fn settings_fingerprint(settings: &Settings) -> String {
    let mongo = &settings.mongo;
    // The URI without its user:password part: where, never who.
    let mongo_uri = mongo.uri.as_ref().map(|u| {
        let u = u.expose();
        match (u.find("://"), u.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}{}", &u[..s + 3], &u[at + 1..]),
            _ => u.to_string(),
        }
    });
    let k = &settings.kubernetes;
    let key = serde_json::json!({
        "registry": settings.registry.host,
        "repository": settings.registry.repository,
        "repositories": settings.registry.repositories,
        "fetch_config": settings.registry.fetch_config,
        "policy": settings.policy,
        "without": settings.without,
        "mongo": { "host": mongo.host, "port": mongo.port, "db": mongo.db, "uri": mongo_uri },
        "kubernetes": {
            "platform_namespace": k.platform_namespace,
            "compute_namespace": k.compute_namespace,
            "all_namespaces": k.all_namespaces,
            // One context keeps the key (and plans) as before; several are all listed.
            "context": k.contexts.first(),
        },
        "keycloak": { "host": settings.keycloak.host, "realm": settings.keycloak.realm },
    });
    let mut key = key;
    if k.contexts.len() > 1 {
        key["kubernetes"]["contexts"] = serde_json::json!(k.contexts);
    }
    // Which absent collections are allowed changes what protects. Only when set, so plans
    // written before the setting existed keep their fingerprint.
    // Which recorded hosts name this registry decides which Mongo records can be orphans.
    if !settings.registry.aliases.is_empty() {
        key["registry_aliases"] = serde_json::json!(settings.registry.aliases);
    }
    if !mongo.optional_collections.is_empty() {
        key["mongo"]["optional_collections"] = serde_json::json!(mongo.optional_collections);
    }
    // The inventory's source decides what is a candidate (untagged manifests, push-time
    // grace): a plan made from storage needs storage at delete time. The kind, not the URL:
    // the registry is already named, and the same storage may be mounted elsewhere.
    if settings.registry.storage.is_some() {
        key["inventory"] = serde_json::json!("storage");
    }
    crate::model::digest::sha256_digest(key.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{FlagOverrides, Secret};

    fn settings() -> Settings {
        let t = tempfile::tempdir().unwrap();
        let cfg = t.path().join("config.yaml");
        std::fs::write(&cfg, "{}\n").unwrap();
        Settings::load(Some(&cfg), &Default::default(), &FlagOverrides::default()).unwrap()
    }

    #[test]
    fn every_decision_setting_changes_the_fingerprint_and_credentials_do_not_leak_into_it() {
        let base = settings_fingerprint(&settings());
        type Change = Box<dyn Fn(&mut Settings)>;
        let changes: Vec<(&str, Change)> = vec![
            (
                "fetch_config",
                Box::new(|s| s.registry.fetch_config = !s.registry.fetch_config),
            ),
            ("mongo.db", Box::new(|s| s.mongo.db = "other".into())),
            ("mongo.host", Box::new(|s| s.mongo.host = "elsewhere".into())),
            (
                "mongo uri",
                Box::new(|s| s.mongo.uri = Some(Secret::new("mongodb://u:p@h:1/x"))),
            ),
            (
                "compute namespace",
                Box::new(|s| s.kubernetes.compute_namespace = "x".into()),
            ),
            (
                "platform namespace",
                Box::new(|s| s.kubernetes.platform_namespace = "y".into()),
            ),
            (
                "all namespaces",
                Box::new(|s| s.kubernetes.all_namespaces = !s.kubernetes.all_namespaces),
            ),
            ("keycloak realm", Box::new(|s| s.keycloak.realm = "Other".into())),
            (
                "a second context",
                Box::new(|s| s.kubernetes.contexts = vec!["a".into(), "b".into()]),
            ),
            (
                "mongo.optional_collections",
                Box::new(|s| s.mongo.optional_collections = vec!["sagas".into()]),
            ),
            ("grace period", Box::new(|s| s.policy.grace_period_hours += 1)),
            (
                "storage source",
                Box::new(|s| s.registry.storage = Some("file:///srv/registry".into())),
            ),
        ];
        for (what, change) in changes {
            let mut s = settings();
            change(&mut s);
            assert_ne!(settings_fingerprint(&s), base, "{what}");
        }
        // Only where Mongo is, not who logs in.
        let mut a = settings();
        a.mongo.uri = Some(Secret::new("mongodb://alice:pw1@h:1/x"));
        let mut b = settings();
        b.mongo.uri = Some(Secret::new("mongodb://bob:pw2@h:1/x"));
        assert_eq!(settings_fingerprint(&a), settings_fingerprint(&b));
    }
}
