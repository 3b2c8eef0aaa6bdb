//! Reads which images Kubernetes runs or will run: Pending/Running pods (every container kind,
//! from the spec and the runtime's resolved `imageID` digests) and the pod templates of
//! Deployments, StatefulSets, DaemonSets, Jobs and CronJobs. A kind the cluster does not serve
//! (404) is skipped, not a failure; anything else that cannot be read fails the source.

use crate::model::workloads::{Evidence, ImageRef, WorkloadImage, Workloads};
use ::kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use ::kube::config::{KubeConfigOptions, Kubeconfig};
use ::kube::{Client, Config};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodSpec, PodTemplateSpec};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// `kubernetes:` in config.yaml.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct KubeSettings {
    /// Path to a kubeconfig; `None` = `KUBECONFIG`/`~/.kube/config`, else in-cluster.
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    /// Namespaces to scan; `["*"]` means all.
    pub namespaces: Vec<String>,
}

impl Default for KubeSettings {
    fn default() -> Self {
        KubeSettings {
            kubeconfig: None,
            context: None,
            namespaces: vec!["domino-compute".into(), "domino-platform".into()],
        }
    }
}

/// Why the Kubernetes source failed; every message names the setting (or RBAC) to fix.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No usable kubeconfig or in-cluster configuration, or no client could be built.
    #[error("{0}")]
    Config(String),
    /// Listing a kind failed (RBAC, a server error).
    #[error("{0}")]
    List(String),
    /// A configured namespace does not exist: listing it would find no pods and protect
    /// nothing, so the source fails instead.
    #[error(
        "kubernetes: namespace {0} does not exist (check kubernetes.compute_namespace / kubernetes.platform_namespace)"
    )]
    NoNamespace(String),
}

/// A namespace that does not exist lists no pods without any error: ask for it first. Not
/// being allowed to ask fails too (fail closed; grant `get` on that namespace).
async fn namespace_exists(client: &Client, name: &str) -> Result<(), KubeError> {
    use k8s_openapi::api::core::v1::Namespace;
    match Api::<Namespace>::all(client.clone()).get_opt(name).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(KubeError::NoNamespace(name.to_string())),
        Err(e) => Err(KubeError::List(format!(
            "kubernetes: cannot check that namespace {name} exists (grant get on namespaces/{name}): {e}"
        ))),
    }
}

/// Every cluster of `contexts` (one `KubeSettings` each), read concurrently, into one set of
/// workloads. Each fails closed on its own: any cluster that cannot be read fails the source,
/// naming its context, because its pods are as much in use as the others'. With more than one
/// cluster each evidence names its context.
pub async fn load_contexts(contexts: &[KubeSettings]) -> Result<Workloads, KubeError> {
    if let [one] = contexts {
        return load(one).await;
    }
    let results = futures::future::join_all(contexts.iter().map(load)).await;
    let mut out = Workloads::default();
    for (s, result) in contexts.iter().zip(results) {
        let name = s.context.as_deref().unwrap_or("(current)");
        let mut w = result.map_err(|e| {
            let message = format!("kubernetes context {name}: {e}");
            match e {
                KubeError::Config(_) => KubeError::Config(message),
                KubeError::List(_) | KubeError::NoNamespace(_) => KubeError::List(message),
            }
        })?;
        for i in &mut w.images {
            i.evidence.context = Some(name.to_string());
        }
        out.images.append(&mut w.images);
    }
    Ok(out)
}

/// Connects and scans; `Err` is a reason naming the setting to fix.
pub async fn load(settings: &KubeSettings) -> Result<Workloads, KubeError> {
    let client = client(settings).await?;
    let mut out = Workloads::default();
    let namespaces: Vec<Option<&str>> = if settings.namespaces.iter().any(|n| n == "*") {
        vec![None]
    } else {
        settings.namespaces.iter().map(|n| Some(n.as_str())).collect()
    };
    for ns in namespaces {
        if let Some(name) = ns {
            namespace_exists(&client, name).await?;
        }
        scan_namespace(&client, ns, &mut out).await.map_err(KubeError::List)?;
    }
    Ok(out)
}

pub async fn client(s: &KubeSettings) -> Result<Client, KubeError> {
    client_inner(s).await.map_err(KubeError::Config)
}

async fn client_inner(s: &KubeSettings) -> Result<Client, String> {
    let opts = KubeConfigOptions {
        context: s.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &s.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| format!("kubernetes: cannot read kubernetes.kubeconfig {path}: {e}"))?;
            Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(|e| format!("kubernetes: bad kubeconfig {path} (check kubernetes.context): {e}"))?
        }
        None => match Config::from_kubeconfig(&opts).await {
            Ok(c) => c,
            Err(_) => Config::incluster().map_err(|e| {
                format!("kubernetes: no kubeconfig and not in a cluster (set kubernetes.kubeconfig): {e}")
            })?,
        },
    };
    Client::try_from(config)
        .map_err(|e| format!("kubernetes: cannot build a client (check kubernetes.kubeconfig): {e}"))
}

async fn scan_namespace(client: &Client, ns: Option<&str>, out: &mut Workloads) -> Result<(), String> {
    // Pods that may still run: not Succeeded and not Failed (server-side field selector).
    let lp = ListParams::default().fields("status.phase!=Succeeded,status.phase!=Failed");
    for pod in list::<Pod>(api(client, ns), lp, "Pod").await?.unwrap_or_default() {
        pod_images(&pod, out);
    }
    templates::<Deployment>(client, ns, "Deployment", |d| d.spec.as_ref().map(|s| &s.template), out).await?;
    templates::<StatefulSet>(client, ns, "StatefulSet", |d| d.spec.as_ref().map(|s| &s.template), out).await?;
    templates::<DaemonSet>(client, ns, "DaemonSet", |d| d.spec.as_ref().map(|s| &s.template), out).await?;
    templates::<Job>(client, ns, "Job", |d| d.spec.as_ref().map(|s| &s.template), out).await?;
    if !templates::<CronJob>(client, ns, "CronJob", cron_v1, out).await? {
        cronjobs_v1beta1(client, ns, out).await?;
    }
    Ok(())
}

fn cron_v1(c: &CronJob) -> Option<&PodTemplateSpec> {
    c.spec
        .as_ref()
        .and_then(|s| s.job_template.spec.as_ref())
        .map(|s| &s.template)
}

fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: ::kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as ::kube::Resource>::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Lists every page; `Ok(None)` when the cluster does not serve the kind (404).
async fn list<K: Clone + DeserializeOwned + Debug>(
    api: Api<K>,
    lp: ListParams,
    kind: &str,
) -> Result<Option<Vec<K>>, String> {
    let mut lp = lp.limit(500);
    let mut items = Vec::new();
    loop {
        match api.list(&lp).await {
            Ok(page) => {
                items.extend(page.items);
                match page.metadata.continue_.filter(|c| !c.is_empty()) {
                    Some(token) => lp = lp.continue_token(&token),
                    None => return Ok(Some(items)),
                }
            }
            Err(::kube::Error::Api(s)) if s.code == 404 => return Ok(None),
            Err(e) => {
                return Err(format!(
                    "kubernetes: listing {kind}s failed (check RBAC and kubernetes.namespaces): {e}"
                ));
            }
        }
    }
}

/// Returns whether the kind is served.
async fn templates<K>(
    client: &Client,
    ns: Option<&str>,
    kind: &str,
    template: impl Fn(&K) -> Option<&PodTemplateSpec>,
    out: &mut Workloads,
) -> Result<bool, String>
where
    K: ::kube::Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    <K as ::kube::Resource>::DynamicType: Default,
{
    let Some(items) = list::<K>(api(client, ns), ListParams::default(), kind).await? else {
        return Ok(false);
    };
    for item in &items {
        if let Some(spec) = template(item).and_then(|t| t.spec.as_ref()) {
            let meta = item.meta();
            spec_images(
                spec,
                &evidence_base(meta.namespace.as_deref(), kind, meta.name.as_deref()),
                out,
            );
        }
    }
    Ok(true)
}

/// Clusters before 1.21 serve CronJob only as batch/v1beta1.
async fn cronjobs_v1beta1(client: &Client, ns: Option<&str>, out: &mut Workloads) -> Result<(), String> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("batch", "v1beta1", "CronJob"));
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let Ok(items) = (match api.list(&ListParams::default()).await {
        Ok(l) => Ok(l.items),
        Err(::kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => Err(format!(
            "kubernetes: listing batch/v1beta1 CronJobs failed (check RBAC): {e}"
        )),
    }) else {
        return Err("kubernetes: listing batch/v1beta1 CronJobs failed (check RBAC)".into());
    };
    for cj in items {
        let spec = cj.data.pointer("/spec/jobTemplate/spec/template/spec").cloned();
        let Some(spec) = spec.and_then(|s| serde_json::from_value::<PodSpec>(s).ok()) else {
            continue;
        };
        spec_images(
            &spec,
            &evidence_base(cj.metadata.namespace.as_deref(), "CronJob", cj.metadata.name.as_deref()),
            out,
        );
    }
    Ok(())
}

fn evidence_base(ns: Option<&str>, kind: &str, name: Option<&str>) -> Evidence {
    Evidence {
        namespace: ns.unwrap_or_default().into(),
        kind: kind.into(),
        name: name.unwrap_or_default().into(),
        container: String::new(),
        context: None,
    }
}

/// A pod's images: every container kind in the spec, plus the digests the runtime resolved.
pub fn pod_images(pod: &Pod, out: &mut Workloads) {
    let base = evidence_base(pod.metadata.namespace.as_deref(), "Pod", pod.metadata.name.as_deref());
    if let Some(spec) = &pod.spec {
        spec_images(spec, &base, out);
    }
    let Some(status) = &pod.status else { return };
    let all = [
        &status.init_container_statuses,
        &status.container_statuses,
        &status.ephemeral_container_statuses,
    ];
    for cs in all.into_iter().flatten().flatten() {
        status_images(cs, &base, out);
    }
}

fn status_images(cs: &ContainerStatus, base: &Evidence, out: &mut Workloads) {
    let ev = Evidence {
        container: cs.name.clone(),
        ..base.clone()
    };
    let by_name = ImageRef::parse(&cs.image);
    // imageID names the repository the runtime pulled from and the digest it resolved.
    if let Some(mut id) = ImageRef::parse(&cs.image_id).filter(|r| r.digest.is_some()) {
        if id.tag.is_none() {
            id.tag = by_name.as_ref().and_then(|r| r.tag.clone());
        }
        out.images.push(WorkloadImage {
            image: id,
            evidence: ev.clone(),
        });
    }
    if let Some(image) = by_name {
        out.images.push(WorkloadImage { image, evidence: ev });
    }
}

fn spec_images(spec: &PodSpec, base: &Evidence, out: &mut Workloads) {
    let names = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| (&c.name, &c.image))
        .chain(spec.containers.iter().map(|c| (&c.name, &c.image)))
        .chain(spec.ephemeral_containers.iter().flatten().map(|c| (&c.name, &c.image)));
    for (name, image) in names {
        let Some(image) = image.as_deref().and_then(ImageRef::parse) else {
            continue;
        };
        out.images.push(WorkloadImage {
            image,
            evidence: Evidence {
                container: name.clone(),
                ..base.clone()
            },
        });
    }
}
