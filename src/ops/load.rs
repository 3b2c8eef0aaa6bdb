//! Loading every source concurrently into one [`Dataset`]: the registry scan (or a snapshot),
//! MongoDB, Kubernetes and Keycloak, then the categories and protections computed by the pure
//! core. A source that fails is a status, not an error — except the registry, without which
//! there is nothing to report.

use crate::dataset::{Dataset, SourceKind, SourceStatus, TagLabel};
use crate::model::domino::DominoData;
use crate::model::{ImageKind, Inventory, ObjectId};
use crate::plan::{Policy, SourceState, SourcesData};
use crate::settings::Settings;
use crate::sources::{keycloak, kube, mongo};
use std::collections::HashMap;
use std::future::Future;

/// The policy the core applies, from validated settings.
pub fn policy(settings: &Settings) -> Result<Policy, String> {
    let p = &settings.policy;
    let only_ids = match &p.ids_file {
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: cannot read ids file: {e}", f.display()))?;
            Some(crate::model::ids_file::parse_ids_file(&f.display().to_string(), &text).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    Ok(Policy {
        keep_revisions: p.keep_revisions,
        unused_since_days: p.unused_since_days,
        grace_period_secs: i64::try_from(p.grace_period_hours)
            .ok()
            .and_then(|h| h.checked_mul(3600))
            .ok_or_else(|| {
                format!(
                    "policy.grace_period_hours {} is too large (at most {} hours)",
                    p.grace_period_hours,
                    i64::MAX / 3600
                )
            })?,
        protect: p
            .protect
            .iter()
            .map(|r| regex::Regex::new(r).map_err(|e| format!("protect: {r:?}: {e}")))
            .collect::<Result<_, _>>()?,
        without: settings.without.clone(),
        only_ids,
        registry_aliases: settings.registry.aliases.clone(),
    })
}

/// Mongo connection settings. Without `MONGODB_PASSWORD` and `MONGODB_URI`, the password is
/// read from the `mongodb-replicaset-admin` secret (keys `user`, `password`) in the platform
/// namespace, as Domino's own tooling does (domain.md §1); if that fails too, no credentials.
pub async fn mongo_settings(settings: &Settings) -> mongo::MongoSettings {
    let mut ms = mongo_settings_plain(settings);
    if ms.uri.is_none() && ms.password.is_none() && !settings.without.contains(&SourceKind::Kubernetes) {
        match mongo_secret(&kube_settings(settings), &settings.kubernetes.platform_namespace).await {
            Ok(Some((user, password))) => {
                ms.username = Some(user);
                ms.password = Some(password);
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "no mongodb-replicaset-admin secret; connecting without credentials"),
        }
    }
    ms
}

/// `(user, password)` from the `mongodb-replicaset-admin` secret, if it exists.
pub async fn mongo_secret(ks: &kube::KubeSettings, namespace: &str) -> Result<Option<(String, String)>, String> {
    let client = kube::client(ks).await.map_err(|e| e.to_string())?;
    let secrets: ::kube::Api<k8s_openapi::api::core::v1::Secret> = ::kube::Api::namespaced(client, namespace);
    let secret = match secrets.get_opt("mongodb-replicaset-admin").await {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("reading secret {namespace}/mongodb-replicaset-admin: {e}")),
    };
    let data = secret.data.unwrap_or_default();
    let field = |k: &str| data.get(k).map(|v| String::from_utf8_lossy(&v.0).trim().to_string());
    match (field("user"), field("password")) {
        (Some(u), Some(p)) => Ok(Some((u, p))),
        _ => Err(format!(
            "secret {namespace}/mongodb-replicaset-admin lacks the keys user and password"
        )),
    }
}

fn mongo_settings_plain(settings: &Settings) -> mongo::MongoSettings {
    let m = &settings.mongo;
    mongo::MongoSettings {
        host: m.host.clone(),
        port: m.port,
        replicaset: Some(m.replicaset.clone()).filter(|r| !r.is_empty()),
        db: m.db.clone(),
        uri: m.uri.as_ref().map(|u| u.expose().to_string()),
        // Credentials only with a password: a MONGODB_URI carries its own, and a username
        // without a password fails SCRAM against servers that need no authentication.
        username: Some(m.username.clone()).filter(|_| m.password.is_some()),
        password: m.password.as_ref().map(|p| p.expose().to_string()),
        optional_collections: m.optional_collections.clone(),
        ca_cert: settings.registry.ca_cert.clone(),
        insecure: settings.registry.insecure,
        ..mongo::MongoSettings::default()
    }
}

/// The home cluster (the first context): where the registry, the Mongo secret and GC live.
pub fn kube_settings(settings: &Settings) -> kube::KubeSettings {
    kube_settings_for(settings, settings.kubernetes.contexts.first().cloned())
}

/// One per configured context (the current one when none is): every cluster whose workloads
/// protect images.
pub fn kube_settings_all(settings: &Settings) -> Vec<kube::KubeSettings> {
    match settings.kubernetes.contexts.as_slice() {
        [] => vec![kube_settings(settings)],
        list => list
            .iter()
            .map(|c| kube_settings_for(settings, Some(c.clone())))
            .collect(),
    }
}

fn kube_settings_for(settings: &Settings, context: Option<String>) -> kube::KubeSettings {
    let k = &settings.kubernetes;
    kube::KubeSettings {
        kubeconfig: None,
        context,
        namespaces: if k.all_namespaces {
            vec!["*".into()]
        } else {
            vec![k.compute_namespace.clone(), k.platform_namespace.clone()]
        },
    }
}

pub fn keycloak_settings(settings: &Settings) -> Option<keycloak::KeycloakSettings> {
    let k = &settings.keycloak;
    Some(keycloak::KeycloakSettings {
        host: k.host.clone()?,
        realm: k.realm.clone(),
        username: k.username.clone().unwrap_or_else(|| "admin".into()),
        password: k.password.as_ref().map(|p| p.expose().to_string()),
        // One trust setting for every TLS peer: an internal CA signs them all.
        ca_cert: settings.registry.ca_cert.clone(),
        insecure: settings.registry.insecure,
        ..keycloak::KeycloakSettings::default()
    })
}

async fn source<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    kind: SourceKind,
    off: bool,
    f: F,
    on_source: &(dyn Fn(SourceKind, SourceStatus) + Sync),
) -> SourceState<T> {
    let state = if off {
        SourceState::Disabled
    } else {
        match f.await {
            Ok(v) => SourceState::Ok(v),
            Err(e) => SourceState::Failed(e.to_string()),
        }
    };
    on_source(kind, status(&state));
    state
}

/// Loads everything. `registry` is the inventory future (scan or snapshot) and its time;
/// `on_source` hears about each other source as soon as it finishes (TUI status bar).
pub async fn load_all(
    settings: &Settings,
    registry: impl Future<Output = anyhow::Result<(Inventory, i64)>>,
    now: i64,
    on_source: &(dyn Fn(SourceKind, SourceStatus) + Sync),
) -> anyhow::Result<Dataset> {
    let policy = policy(settings).map_err(|e| anyhow::anyhow!(crate::exit::CannotRun(e)))?;
    let off = |k| settings.without.contains(&k);
    let ks = kube_settings_all(settings);
    let kc = keycloak_settings(settings);
    let (reg, mongo, kubernetes, keycloak) = tokio::join!(
        registry,
        source(
            SourceKind::Mongo,
            off(SourceKind::Mongo),
            async { mongo::load(&mongo_settings(settings).await).await },
            on_source
        ),
        source(
            SourceKind::Kubernetes,
            off(SourceKind::Kubernetes),
            kube::load_contexts(&ks),
            on_source
        ),
        source(
            SourceKind::Keycloak,
            off(SourceKind::Keycloak),
            async {
                match &kc {
                    Some(k) => keycloak::load(k).await.map_err(|e| e.to_string()),
                    None => Err("KEYCLOAK_HOST is not set (keycloak.host in config.yaml)".to_string()),
                }
            },
            on_source
        ),
    );
    let (inventory, generated_at) = reg?;
    let data = SourcesData {
        registry: SourceState::Ok(()),
        mongo,
        kubernetes,
        keycloak,
    };
    let mut categories = crate::plan::evaluate(&inventory, &data, &policy, now);
    if !settings.registry.fetch_config {
        for c in &mut categories {
            c.notes.push(
                "registry.fetch_config is off: image ages are unknown, so the grace period protected nothing".into(),
            );
        }
    }
    let protections = crate::plan::evaluate::all_protections(&inventory, &data, &policy, now);
    let mut ds = Dataset {
        generated_at,
        ..Default::default()
    };
    ds.sources.insert(SourceKind::Registry, SourceStatus::Ok);
    ds.sources.insert(SourceKind::Mongo, status(&data.mongo));
    ds.sources.insert(SourceKind::Kubernetes, status(&data.kubernetes));
    ds.sources.insert(SourceKind::Keycloak, status(&data.keycloak));
    ds.labels = labels(&inventory, data.mongo.ok(), &protections);
    if let Some(users) = data.keycloak.ok() {
        with_keycloak_usernames(&mut ds.labels, users);
    }
    ds.mongo_collections = data.mongo.ok().map(|d| d.collections.clone()).unwrap_or_default();
    ds.inventory = inventory;
    ds.categories = categories;
    ds.protections = protections;
    Ok(ds)
}

fn status<T>(s: &SourceState<T>) -> SourceStatus {
    match s {
        SourceState::Ok(_) => SourceStatus::Ok,
        SourceState::Failed(e) => SourceStatus::Failed(e.clone()),
        SourceState::Disabled => SourceStatus::Disabled,
    }
}

/// Name and owner of an environment or model, by id.
type Names<'a> = HashMap<ObjectId, (&'a str, Option<ObjectId>)>;

/// Names and owners from Mongo, evidence from the protections, for the TUI's tree and details.
pub fn labels(
    inv: &Inventory,
    mongo: Option<&DominoData>,
    prot: &std::collections::BTreeMap<crate::model::TagId, Vec<String>>,
) -> HashMap<crate::model::TagId, TagLabel> {
    let mut out = HashMap::new();
    let (envs, models, users): (Names, Names, HashMap<ObjectId, &str>) = match mongo {
        Some(d) => (
            d.environments
                .iter()
                .map(|e| (e.id, (e.name.as_str(), e.owner)))
                .collect(),
            d.models.iter().map(|m| (m.id, (m.name.as_str(), m.owner))).collect(),
            d.users.iter().map(|u| (u.id, u.login.as_str())).collect(),
        ),
        None => Default::default(),
    };
    for t in inv.tag_ids() {
        let tag = inv.tag(t);
        let id = ObjectId::prefix_of_tag(&inv.domino_tag(t));
        let named = id.and_then(|id| match inv.repo(tag.repo).kind {
            ImageKind::Environment => envs.get(&id),
            ImageKind::Model => models.get(&id),
            ImageKind::Other => None,
        });
        let evidence = prot.get(&t).cloned().unwrap_or_default();
        if named.is_none() && evidence.is_empty() {
            continue;
        }
        let owner_id = named.and_then(|(_, o)| *o);
        out.insert(
            t,
            TagLabel {
                group: named.map(|(n, _)| n.to_string()),
                owner: owner_id.and_then(|o| users.get(&o)).map(|s| s.to_string()),
                evidence,
                object: named.and(id),
                owner_id,
            },
        );
    }
    out
}

/// Owners' usernames from Keycloak (the account carrying the owner's `domino-user-id`; an
/// enabled account wins over a disabled one), where Keycloak knows the owner.
pub fn with_keycloak_usernames(
    labels: &mut HashMap<crate::model::TagId, TagLabel>,
    users: &[crate::model::users::KeycloakUser],
) {
    let mut names: HashMap<ObjectId, (&str, bool)> = HashMap::new();
    for u in users {
        if let Some(id) = u.domino_id {
            let e = names.entry(id).or_insert((u.username.as_str(), u.enabled));
            if u.enabled && !e.1 {
                *e = (u.username.as_str(), true);
            }
        }
    }
    for l in labels.values_mut() {
        if let Some((name, _)) = l.owner_id.and_then(|o| names.get(&o)) {
            l.owner = Some(name.to_string());
        }
    }
}

#[cfg(test)]
mod grace_tests {
    use super::policy;
    use crate::settings::{Env, FlagOverrides, Settings};

    fn with_grace(hours: u64) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "registry:\n  url: reg.example:5000\n").unwrap();
        let flags = FlagOverrides {
            grace_period_hours: Some(hours),
            ..FlagOverrides::default()
        };
        Settings::load(Some(&path), &Env::default(), &flags).unwrap()
    }

    #[test]
    fn a_grace_period_that_would_wrap_is_refused_not_turned_negative() {
        for hours in [u64::MAX, 1 << 62, i64::MAX as u64 / 3600 + 1] {
            let e = policy(&with_grace(hours)).map(|p| p.grace_period_secs).unwrap_err();
            assert!(e.contains("grace_period_hours") && e.contains("too large"), "{e}");
        }
        let max = i64::MAX as u64 / 3600;
        assert_eq!(policy(&with_grace(max)).unwrap().grace_period_secs, max as i64 * 3600);
        assert_eq!(policy(&with_grace(2)).unwrap().grace_period_secs, 7200);
    }
}

#[cfg(test)]
mod trust_tests {
    use super::{keycloak_settings, mongo_settings_plain};
    use crate::settings::{Env, FlagOverrides, Settings};

    /// issue 11.14: `--ca-cert` and `--insecure` reach the Keycloak and Mongo clients, not
    /// only the registry's.
    #[test]
    fn the_ca_certificate_and_insecure_reach_keycloak_and_mongo() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "keycloak:\n  host: https://kc.internal\n").unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "pem").unwrap();
        let flags = FlagOverrides {
            ca_cert: Some(ca.clone()),
            insecure: true,
            ..FlagOverrides::default()
        };
        let s = Settings::load(Some(&path), &Env::default(), &flags).unwrap();
        let k = keycloak_settings(&s).unwrap();
        assert_eq!((k.ca_cert.as_deref(), k.insecure), (Some(ca.as_path()), true));
        let m = mongo_settings_plain(&s);
        assert_eq!((m.ca_cert.as_deref(), m.insecure), (Some(ca.as_path()), true));
        let s = Settings::load(Some(&path), &Env::default(), &FlagOverrides::default()).unwrap();
        let k = keycloak_settings(&s).unwrap();
        assert_eq!((k.ca_cert, k.insecure), (None, false));
    }
}

#[cfg(test)]
mod context_tests {
    use super::{kube_settings, kube_settings_all};
    use crate::settings::{Env, FlagOverrides, Settings};

    /// issue 11.13: every context is read for workloads; the first is the home cluster.
    #[test]
    fn every_context_is_a_workload_source_and_the_first_is_home() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "kubernetes:\n  contexts: [east, west]\n").unwrap();
        let s = Settings::load(Some(&path), &Env::default(), &FlagOverrides::default()).unwrap();
        let all: Vec<Option<String>> = kube_settings_all(&s).into_iter().map(|k| k.context).collect();
        assert_eq!(all, [Some("east".to_string()), Some("west".to_string())]);
        assert_eq!(kube_settings(&s).context.as_deref(), Some("east"));
        std::fs::write(&path, "{}\n").unwrap();
        let s = Settings::load(Some(&path), &Env::default(), &FlagOverrides::default()).unwrap();
        let all: Vec<Option<String>> = kube_settings_all(&s).into_iter().map(|k| k.context).collect();
        assert_eq!(all, [None], "the current context");
    }
}
