//! `deploy/`: every manifest is accepted by a real kube-apiserver (server-side dry run), the
//! CronJob's commands parse with this CLI and its config loads without warnings, and the RBAC
//! grants exactly what the tool uses: a SubjectAccessReview for each verb of each account, and
//! for verbs they must not have.

mod support;

use clap::Parser as _;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use serde_json::Value;
use std::path::PathBuf;

const PLATFORM: &str = "domino-platform";
const COMPUTE: &str = "domino-compute";

fn manifests() -> Vec<(PathBuf, Value)> {
    let dir = support::repo_path("deploy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let mut out = vec![];
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for v in docs {
            if !v.is_null() {
                out.push((f.clone(), v));
            }
        }
    }
    out
}

fn find<'a>(all: &'a [(PathBuf, Value)], kind: &str) -> &'a Value {
    &all.iter().find(|(_, v)| v["kind"] == kind).expect(kind).1
}

fn args_of(container: &Value) -> Vec<String> {
    let mut a = vec!["registry-cleaner".to_string()];
    a.extend(
        container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string()),
    );
    a
}

#[test]
fn the_cronjob_runs_report_then_a_capped_forced_delete_with_the_shipped_config() {
    let all = manifests();
    let cron = find(&all, "CronJob");
    let pod = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let report = args_of(&pod["initContainers"][0]);
    let delete = args_of(&pod["containers"][0]);
    let cli = registry_cleaner::cli::Cli::try_parse_from(&report).expect("report args parse");
    let Some(registry_cleaner::cli::Command::Report(r)) = cli.command else {
        panic!("the init container runs report: {report:?}")
    };
    let plan = r.output.expect("report writes the plan to a file");
    assert!(plan.starts_with("/data"), "the plan is on the volume");
    assert!(r.metrics_file.is_some());
    let cli = registry_cleaner::cli::Cli::try_parse_from(&delete).expect("delete args parse");
    let Some(registry_cleaner::cli::Command::Delete(d)) = cli.command else {
        panic!("the container runs delete: {delete:?}")
    };
    assert_eq!(d.plan, plan, "delete applies the plan report wrote");
    assert!(d.apply && d.force && d.max_delete.is_some_and(|n| n > 0), "{delete:?}");
    assert!(d.metrics_file.is_some());
    assert_eq!(pod["serviceAccountName"], "registry-cleaner");
    for c in [&pod["initContainers"][0], &pod["containers"][0]] {
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        let mounts = c["volumeMounts"].as_array().unwrap();
        assert!(mounts.iter().any(|m| m["name"] == "data" && m["mountPath"] == "/data"));
    }
    let claim = &pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "data")
        .unwrap();
    assert_eq!(
        claim["persistentVolumeClaim"]["claimName"],
        find(&all, "PersistentVolumeClaim")["metadata"]["name"]
    );

    // The shipped config loads as it is: no warnings, output (audit log, backups) on the volume.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, find(&all, "ConfigMap")["data"]["config.yaml"].as_str().unwrap()).unwrap();
    let s = registry_cleaner::settings::Settings::load(
        Some(&cfg),
        &Default::default(),
        &registry_cleaner::settings::FlagOverrides::default(),
    )
    .unwrap();
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(s.output_dir, PathBuf::from("/data"));
    assert_eq!(s.registry.auth_secret.as_deref(), Some("domino-registry"));
    assert_eq!(
        (
            s.kubernetes.platform_namespace.as_str(),
            s.kubernetes.compute_namespace.as_str()
        ),
        (PLATFORM, COMPUTE)
    );
}

/// (account, namespace, verb, API group, resource[/subresource], object name).
type Access = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

fn review(user: &str, ns: &str, verb: &str, group: &str, resource: &str, name: Option<&str>) -> SubjectAccessReview {
    let (resource, sub) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s.to_string())),
        None => (resource, None),
    };
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{PLATFORM}:{user}")),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{PLATFORM}"),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.into()),
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                subresource: sub,
                name: name.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn every_manifest_passes_a_server_side_dry_run_and_rbac_grants_exactly_what_is_used() {
    let k = support::kube::shared();
    let rt = support::runtime();
    rt.block_on(async {
        let client = registry_cleaner::sources::kube::client(&registry_cleaner::sources::kube::KubeSettings {
            kubeconfig: Some(k.kubeconfig.display().to_string()),
            ..Default::default()
        })
        .await
        .expect("client");
        for ns in [PLATFORM, COMPUTE] {
            support::kube::create_namespace(&client, ns).await;
        }
        let dry = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let mut kinds = vec![];
        for (file, v) in manifests() {
            let (group, version) = match v["apiVersion"].as_str().unwrap().split_once('/') {
                Some((g, ver)) => (g.to_string(), ver.to_string()),
                None => (String::new(), v["apiVersion"].as_str().unwrap().to_string()),
            };
            let kind = v["kind"].as_str().unwrap().to_string();
            let cluster_scoped = kind.starts_with("Cluster");
            let ns = v["metadata"]["namespace"].as_str().unwrap_or_default();
            if cluster_scoped {
                assert!(ns.is_empty(), "{}: a {kind} has no namespace", file.display());
            } else {
                assert!(
                    [PLATFORM, COMPUTE].contains(&ns),
                    "{}: {kind} in {ns:?}",
                    file.display()
                );
            }
            let mut obj: DynamicObject = serde_json::from_value(v.clone()).unwrap();
            let gvk = GroupVersionKind::gvk(&group, &version, &kind);
            let ar = match kube::discovery::pinned_kind(&client, &gvk).await {
                Ok((ar, _)) => ar,
                // The test server is Kubernetes 1.20, which serves CronJob only as batch/v1beta1
                // (same schema for what the manifest uses); clusters since 1.25 serve only v1.
                Err(_) if kind == "CronJob" && version == "v1" => {
                    let gvk = GroupVersionKind::gvk("batch", "v1beta1", "CronJob");
                    obj.types.as_mut().unwrap().api_version = "batch/v1beta1".into();
                    kube::discovery::pinned_kind(&client, &gvk)
                        .await
                        .expect("batch/v1beta1")
                        .0
                }
                Err(e) => panic!("{}: {kind} {group}/{version} not served: {e}", file.display()),
            };
            let api: Api<DynamicObject> = if cluster_scoped {
                Api::all_with(client.clone(), &ar)
            } else {
                Api::namespaced_with(client.clone(), ns, &ar)
            };
            let name = obj.metadata.name.clone().unwrap();
            api.create(&dry, &obj)
                .await
                .unwrap_or_else(|e| panic!("{}: {kind} {name} refused by the API server: {e}", file.display()));
            assert!(api.get_opt(&name).await.unwrap().is_none(), "a dry run creates nothing");
            // The RBAC objects for real, to review access below.
            if [
                "ServiceAccount",
                "Role",
                "RoleBinding",
                "ClusterRole",
                "ClusterRoleBinding",
            ]
            .contains(&kind.as_str())
            {
                api.create(&PostParams::default(), &obj).await.expect("create");
            }
            kinds.push(kind);
        }
        for k in [
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "PersistentVolumeClaim",
            "ConfigMap",
            "CronJob",
        ] {
            assert!(kinds.iter().any(|x| x == k), "{k} missing from deploy/: {kinds:?}");
        }

        let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
        let allowed = |sar: SubjectAccessReview| {
            let reviews = reviews.clone();
            async move {
                let r = reviews.create(&PostParams::default(), &sar).await.expect("review");
                r.status.expect("status").allowed
            }
        };
        let c = "registry-cleaner";
        let gc = "registry-cleaner-gc";
        // What report/delete use (sources/kube.rs, ops/load.rs, ops/registry_secret.rs) …
        let mut must: Vec<Access> = vec![];
        for ns in [COMPUTE, PLATFORM] {
            must.push((c, ns, "list", "", "pods", None));
            for r in ["deployments", "statefulsets", "daemonsets"] {
                must.push((c, ns, "list", "apps", r, None));
            }
            for r in ["jobs", "cronjobs"] {
                must.push((c, ns, "list", "batch", r, None));
            }
        }
        // sources/kube.rs: the configured namespaces must exist.
        must.push((c, "", "get", "", "namespaces", Some(COMPUTE)));
        must.push((c, "", "get", "", "namespaces", Some(PLATFORM)));
        must.push((c, PLATFORM, "get", "", "secrets", Some("domino-registry")));
        must.push((c, PLATFORM, "get", "", "secrets", Some("mongodb-replicaset-admin")));
        // … and what gc uses (ops/gc.rs).
        must.push((gc, PLATFORM, "get", "apps", "statefulsets", Some("docker-registry")));
        must.push((gc, PLATFORM, "patch", "apps", "statefulsets", Some("docker-registry")));
        must.push((gc, PLATFORM, "list", "", "pods", None));
        must.push((gc, PLATFORM, "create", "", "pods/exec", Some("docker-registry-0")));
        for (user, ns, verb, group, res, name) in &must {
            assert!(
                allowed(review(user, ns, verb, group, res, *name)).await,
                "{user} cannot {verb} {group}/{res} {name:?} in {ns}"
            );
        }
        let must_not: Vec<Access> = vec![
            (c, PLATFORM, "get", "", "secrets", Some("keycloak-http")),
            (c, PLATFORM, "list", "", "secrets", None),
            (c, "", "get", "", "namespaces", Some("kube-system")),
            (c, "", "list", "", "namespaces", None),
            (c, COMPUTE, "get", "", "secrets", Some("domino-registry")),
            (c, PLATFORM, "patch", "apps", "statefulsets", Some("docker-registry")),
            (c, PLATFORM, "create", "", "pods/exec", Some("docker-registry-0")),
            (c, COMPUTE, "delete", "", "pods", Some("run-1")),
            (c, "default", "list", "", "pods", None),
            (gc, PLATFORM, "get", "", "secrets", Some("domino-registry")),
            (gc, PLATFORM, "patch", "apps", "statefulsets", Some("nucleus-frontend")),
            (gc, PLATFORM, "delete", "apps", "statefulsets", Some("docker-registry")),
            (gc, COMPUTE, "create", "", "pods/exec", Some("run-1")),
        ];
        for (user, ns, verb, group, res, name) in &must_not {
            assert!(
                !allowed(review(user, ns, verb, group, res, *name)).await,
                "{user} must not {verb} {group}/{res} {name:?} in {ns}"
            );
        }
    });
}
