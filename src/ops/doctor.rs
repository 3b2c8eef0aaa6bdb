//! `registry-cleaner doctor`: every check a first run depends on, each with pass/fail and the
//! fix — settings, registry reachable and authorized, tags present in each image repository
//! (zero is usually an auth or prefix problem), deletes enabled, MongoDB reachable with its
//! collections, Kubernetes RBAC for every verb the tool uses, a Keycloak token. Read-only: the
//! deletes-enabled probe is the pre-flight's DELETE of a digest that cannot exist.

use crate::dataset::SourceKind;
use crate::settings::Settings;
use crate::sources::{keycloak, kube, mongo};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pass,
    Fail,
    /// Needed only by one command (gc), or a warning worth reading.
    Warn,
    /// The source was switched off with `--without`.
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: String,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn new(check: impl Into<String>, status: Status, detail: impl Into<String>, fix: Option<&str>) -> Check {
        Check {
            check: check.into(),
            status,
            detail: detail.into(),
            fix: fix.map(str::to_string),
        }
    }
}

/// Collections that only label reports (owner names): missing ones warn.
const INFORMING: [&str; 1] = ["users"];

/// Runs every check. Never deletes, never writes.
pub async fn run(settings: &Settings) -> Vec<Check> {
    let mut out = vec![Check::new(
        "settings",
        Status::Pass,
        format!(
            "registry {} (repositories under {}/), platform namespace {}, compute namespace {}",
            settings.registry.host,
            settings.registry.repository,
            settings.kubernetes.platform_namespace,
            settings.kubernetes.compute_namespace
        ),
        None,
    )];
    registry(settings, &mut out).await;
    let off = |k: SourceKind| settings.without.contains(&k);
    if off(SourceKind::Mongo) {
        out.push(Check::new("mongo", Status::Skip, "--without mongo", None));
    } else {
        mongo_checks(settings, &mut out).await;
    }
    if off(SourceKind::Kubernetes) {
        out.push(Check::new("kubernetes", Status::Skip, "--without kubernetes", None));
    } else {
        kube_checks(settings, &mut out).await;
    }
    if off(SourceKind::Keycloak) {
        out.push(Check::new("keycloak", Status::Skip, "--without keycloak", None));
    } else {
        keycloak_check(settings, &mut out).await;
    }
    out
}

/// Whether any check failed.
pub fn failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

async fn registry(settings: &Settings, out: &mut Vec<Check>) {
    let client = match super::connect::registry_client(settings) {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::new(
                "registry client",
                Status::Fail,
                e.to_string(),
                Some("check registry.ca_cert, REGISTRY_USERNAME/REGISTRY_PASSWORD or ~/.docker/config.json"),
            ));
            return;
        }
    };
    match client.ping().await {
        Ok(()) => out.push(Check::new(
            "registry reachable and authorized",
            Status::Pass,
            settings.registry.base_url(),
            None,
        )),
        Err(e) => {
            let fix = match e.status() {
                Some(401 | 403) => {
                    "set REGISTRY_USERNAME/REGISTRY_PASSWORD (or registry.auth_secret) to an account that can pull"
                }
                _ => "check REGISTRY_URL / registry.host and that the registry answers /v2/ from here",
            };
            out.push(Check::new(
                "registry reachable and authorized",
                Status::Fail,
                e.to_string(),
                Some(fix),
            ));
            return;
        }
    }
    let repos: Vec<String> = match &settings.registry.repositories {
        Some(list) => list.clone(),
        None => ["environment", "model"]
            .iter()
            .map(|r| format!("{}/{r}", settings.registry.repository))
            .collect(),
    };
    for repo in &repos {
        let check = format!("tags in {repo}");
        match client.tags(repo).await {
            Ok(t) if t.is_empty() => out.push(Check::new(
                check,
                Status::Fail,
                "no tags: usually credentials that cannot list this repository, or the wrong registry.repository prefix",
                Some("check registry.repository and that the account can pull from this repository"),
            )),
            Ok(t) => out.push(Check::new(check, Status::Pass, format!("{} tags", t.len()), None)),
            Err(e) => out.push(Check::new(
                check,
                Status::Fail,
                e.to_string(),
                Some("check registry.repository and the account's pull permission"),
            )),
        }
    }
    let probe_repo = repos.first().cloned().unwrap_or_default();
    match super::execute::preflight(&client, &probe_repo).await {
        Ok(()) => out.push(Check::new(
            "deletes enabled",
            Status::Pass,
            "DELETE of a digest that cannot exist answers 404",
            None,
        )),
        Err(e) => out.push(Check::new(
            "deletes enabled",
            Status::Fail,
            e,
            Some("set REGISTRY_STORAGE_DELETE_ENABLED=true on the registry, and give the account delete permission"),
        )),
    }
}

async fn mongo_checks(settings: &Settings, out: &mut Vec<Check>) {
    let ms = super::load::mongo_settings(settings).await;
    let db = match mongo::connect(&ms).await {
        Ok(db) => db,
        Err(e) => {
            out.push(Check::new(
                "mongo reachable",
                Status::Fail,
                e.to_string(),
                Some("set MONGODB_URI, or mongo.host/mongo.port and MONGODB_PASSWORD (or the mongodb-replicaset-admin secret)"),
            ));
            return;
        }
    };
    let names = match db.list_collection_names().await {
        Ok(n) => n,
        Err(e) => {
            out.push(Check::new(
                "mongo reachable",
                Status::Fail,
                ms.scrub(format!("listing collections of {}: {e}", ms.target())),
                Some("the account needs read access to the Domino database (mongo.db)"),
            ));
            return;
        }
    };
    out.push(Check::new("mongo reachable", Status::Pass, ms.target(), None));
    let missing = |list: &[&str]| -> Vec<String> {
        list.iter()
            .filter(|c| !names.iter().any(|n| n == *c))
            .map(|c| c.to_string())
            .collect()
    };
    // The same rule as the source: environments_v2 and every protecting collection, unless
    // named in mongo.optional_collections.
    let protecting: Vec<&str> = std::iter::once(crate::model::domino::CORE_COLLECTION)
        .chain(crate::model::domino::PROTECTING_COLLECTIONS.iter().map(|(n, _)| *n))
        .filter(|n| !settings.mongo.optional_collections.iter().any(|o| o == n))
        .collect();
    let gone = missing(&protecting);
    out.push(if gone.is_empty() {
        Check::new("mongo collections", Status::Pass, protecting.join(", "), None)
    } else {
        Check::new(
            "mongo collections",
            Status::Fail,
            format!(
                "database {} has no {}: their protections would be missing",
                db.name(),
                gone.join(", ")
            ),
            Some("check mongo.db (Domino's database is usually `domino`), or name a collection this Domino version lacks in mongo.optional_collections"),
        )
    });
    let gone = missing(&INFORMING);
    if !gone.is_empty() {
        out.push(Check::new(
            "mongo collections (labels)",
            Status::Warn,
            format!("no {}: owners and names will be missing from reports", gone.join(", ")),
            None,
        ));
    }
}

/// One access check: (namespace, verb, group, resource, subresource, name, needed by).
type Access = (
    String,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<String>,
    &'static str,
);

async fn kube_checks(settings: &Settings, out: &mut Vec<Check>) {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let ks = super::load::kube_settings(settings);
    let client = match kube::client(&ks).await {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::new(
                "kubernetes client",
                Status::Fail,
                e.to_string(),
                Some("set KUBECONFIG / kubernetes.context, or run in the cluster with the deploy/ ServiceAccount"),
            ));
            return;
        }
    };
    let k = &settings.kubernetes;
    let mut wanted: Vec<Access> = Vec::new();
    let namespaces: Vec<String> = if k.all_namespaces {
        vec![String::new()]
    } else {
        vec![k.compute_namespace.clone(), k.platform_namespace.clone()]
    };
    for ns in &namespaces {
        for (group, resource) in [
            ("", "pods"),
            ("apps", "deployments"),
            ("apps", "statefulsets"),
            ("apps", "daemonsets"),
            ("batch", "jobs"),
            ("batch", "cronjobs"),
        ] {
            wanted.push((ns.clone(), "list", group, resource, "", None, "report, delete"));
        }
    }
    let platform = k.platform_namespace.clone();
    if settings.mongo.uri.is_none() && settings.mongo.password.is_none() {
        wanted.push((
            platform.clone(),
            "get",
            "",
            "secrets",
            "",
            Some("mongodb-replicaset-admin".into()),
            "the Mongo password",
        ));
    }
    if let Some(secret) = &settings.registry.auth_secret {
        wanted.push((
            platform.clone(),
            "get",
            "",
            "secrets",
            "",
            Some(secret.clone()),
            "registry credentials",
        ));
    }
    let sts = k.registry_statefulset.clone();
    wanted.push((
        platform.clone(),
        "get",
        "apps",
        "statefulsets",
        "",
        Some(sts.clone()),
        "gc",
    ));
    wanted.push((
        platform.clone(),
        "patch",
        "apps",
        "statefulsets",
        "",
        Some(sts.clone()),
        "gc",
    ));
    wanted.push((
        platform.clone(),
        "create",
        "",
        "pods",
        "exec",
        Some(format!("{sts}-0")),
        "gc",
    ));
    let api: ::kube::Api<SelfSubjectAccessReview> = ::kube::Api::all(client);
    for (ns, verb, group, resource, sub, name, needed_by) in wanted {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(ns.clone()).filter(|n| !n.is_empty()),
                    verb: Some(verb.into()),
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    subresource: Some(sub.to_string()).filter(|s| !s.is_empty()),
                    name: name.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let what = format!(
            "rbac: {verb} {}{}{}{} in {}",
            if group.is_empty() {
                String::new()
            } else {
                format!("{group}/")
            },
            resource,
            if sub.is_empty() {
                String::new()
            } else {
                format!("/{sub}")
            },
            name.as_deref().map(|n| format!(" {n}")).unwrap_or_default(),
            if ns.is_empty() { "all namespaces" } else { &ns }
        );
        let gc_only = needed_by == "gc";
        match api.create(&Default::default(), &review).await {
            Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => {
                out.push(Check::new(what, Status::Pass, format!("needed by {needed_by}"), None));
            }
            Ok(r) => out.push(Check::new(
                what,
                if gc_only { Status::Warn } else { Status::Fail },
                format!(
                    "denied{}; needed by {needed_by}",
                    r.status
                        .and_then(|s| s.reason)
                        .filter(|r| !r.is_empty())
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ),
                Some(if gc_only {
                    "only `gc` needs this: bind the registry-cleaner-gc Role (deploy/rbac.yaml)"
                } else {
                    "bind the Role in deploy/rbac.yaml to this account"
                }),
            )),
            Err(e) => out.push(Check::new(
                what,
                Status::Fail,
                format!("the access review failed: {e}"),
                Some("the account must be able to create selfsubjectaccessreviews (every authenticated user can by default)"),
            )),
        }
    }
}

async fn keycloak_check(settings: &Settings, out: &mut Vec<Check>) {
    let Some(ks) = super::load::keycloak_settings(settings) else {
        out.push(Check::new(
            "keycloak token",
            Status::Fail,
            "no Keycloak host configured",
            Some("set KEYCLOAK_HOST (or keycloak.host), or pass --without keycloak"),
        ));
        return;
    };
    let result = match keycloak::Directory::new(&ks) {
        Ok(d) => d.check_token().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => out.push(Check::new(
            "keycloak token",
            Status::Pass,
            format!("{} realm {}", ks.base_url(), ks.realm),
            None,
        )),
        Err(e) => out.push(Check::new(
            "keycloak token",
            Status::Fail,
            e.to_string(),
            Some("check KEYCLOAK_HOST, KEYCLOAK_USERNAME and KEYCLOAK_PASSWORD"),
        )),
    }
}

/// The checks as a table for a terminal.
pub fn table(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(5).min(70);
    let mut s = String::new();
    for c in checks {
        let mark = match c.status {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Warn => "warn",
            Status::Skip => "skip",
        };
        s.push_str(&format!("{mark}  {:<width$}  {}\n", c.check, c.detail));
        if let Some(fix) = &c.fix
            && c.status != Status::Pass
        {
            s.push_str(&format!("      {:<width$}  fix: {fix}\n", ""));
        }
    }
    s
}
