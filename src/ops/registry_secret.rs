//! Registry credentials from a Kubernetes `dockerconfigjson` secret in the platform namespace,
//! read like the Mongo secret (`ops::load::mongo_secret`): `registry.auth_secret` /
//! `REGISTRY_AUTH_SECRET` names it (then it must exist and hold this registry, or the run
//! stops); without a name, Domino's own `domino-registry` secret is tried and its absence is
//! not an error. Credentials already set (REGISTRY_PASSWORD, a password file) win.

use crate::dataset::SourceKind;
use crate::exit::CannotRun;
use crate::settings::Settings;
use crate::sources::registry::docker_config_auths;
use crate::sources::{kube, registry::Credentials};
use std::time::Duration;

/// Domino's registry secret (type `kubernetes.io/dockerconfigjson`).
pub const DEFAULT_SECRET: &str = "domino-registry";

/// Credentials for `registry` from secret `name` in `namespace`; `Ok(None)` when the secret
/// does not exist or has no entry for this registry.
pub async fn registry_secret(
    ks: &kube::KubeSettings,
    namespace: &str,
    name: &str,
    registry: &str,
) -> Result<Option<Credentials>, String> {
    let client = kube::client(ks).await.map_err(|e| e.to_string())?;
    let secrets: ::kube::Api<k8s_openapi::api::core::v1::Secret> = ::kube::Api::namespaced(client, namespace);
    let secret = match secrets.get_opt(name).await {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("reading secret {namespace}/{name}: {e}")),
    };
    let source = format!("secret {namespace}/{name}");
    let data = secret.data.unwrap_or_default();
    let Some(raw) = data.get(".dockerconfigjson") else {
        return Err(format!(
            "{source} has no .dockerconfigjson key (type kubernetes.io/dockerconfigjson expected)"
        ));
    };
    let json: serde_json::Value =
        serde_json::from_slice(&raw.0).map_err(|_| format!("{source}: .dockerconfigjson is not valid JSON"))?;
    docker_config_auths(&json, registry, &source)
}

/// Fills the registry credentials from the secret when none are set. A named secret that is
/// missing, unreadable or lacks this registry stops the run (exit 2); problems with the default
/// one never do (they are logged at debug level, and `~/.docker/config.json` is tried next).
pub async fn resolve(settings: &Settings) -> anyhow::Result<Settings> {
    let r = &settings.registry;
    if r.password.is_some() {
        return Ok(settings.clone());
    }
    let explicit = r.auth_secret.clone();
    let name = explicit.clone().unwrap_or_else(|| DEFAULT_SECRET.to_string());
    let ns = &settings.kubernetes.platform_namespace;
    if settings.without.contains(&SourceKind::Kubernetes) {
        if let Some(n) = explicit {
            anyhow::bail!(CannotRun(format!(
                "registry.auth_secret ({n}) is read from Kubernetes, but --without kubernetes is set"
            )));
        }
        return Ok(settings.clone());
    }
    let ks = crate::ops::load::kube_settings(settings);
    let read = tokio::time::timeout(Duration::from_secs(15), registry_secret(&ks, ns, &name, &r.host))
        .await
        .unwrap_or_else(|_| Err(format!("reading secret {ns}/{name}: no answer within 15 s")));
    let found = match (read, &explicit) {
        (Ok(Some(c)), _) => c,
        (Ok(None), Some(_)) => anyhow::bail!(CannotRun(format!(
            "registry.auth_secret: secret {ns}/{name} does not exist or has no auths entry for {}",
            r.host
        ))),
        (Err(e), Some(_)) => anyhow::bail!(CannotRun(format!("registry.auth_secret: {e}"))),
        (Ok(None), None) => {
            tracing::debug!(secret = %name, "no registry credentials in the default secret");
            return Ok(settings.clone());
        }
        (Err(e), None) => {
            tracing::debug!(error = %e, "default registry secret not read");
            return Ok(settings.clone());
        }
    };
    tracing::info!(secret = %format!("{ns}/{name}"), user = %found.username, "registry credentials from a Kubernetes secret");
    let mut s = settings.clone();
    s.registry.username = Some(found.username);
    s.registry.password = Some(found.password);
    Ok(s)
}
