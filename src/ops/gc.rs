//! `registry-cleaner gc`: garbage collection of an in-cluster Distribution registry (domain.md
//! §6.4), done safely: read-only mode on (`REGISTRY_STORAGE_MAINTENANCE_READONLY`), wait for
//! a Ready pod running that template, `registry garbage-collect` through the Kubernetes exec
//! API (never `--delete-untagged`: untagged manifests may be index children or in use by
//! digest), blob bytes before/after when the storage can be read, and read-only mode off again
//! on every path — failures, timeouts and Ctrl-C/SIGTERM included.
//!
//! No StatefulSet: the registry is external or managed (ECR, ACR, GCR, ...), whose provider
//! collects unreferenced blobs itself; we say so and succeed.

use crate::settings::Settings;
use crate::sources::kube as kube_source;
use ::kube::api::{Api, AttachParams, ListParams, Patch, PatchParams};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;
use std::time::Duration;
use tokio::io::AsyncReadExt as _;

pub const READONLY_ENV: &str = "REGISTRY_STORAGE_MAINTENANCE_READONLY";
pub const READONLY_VALUE: &str = r#"{"enabled":true}"#;
pub const CONFIG_PATH: &str = "/etc/docker/registry/config.yml";
const DEFAULT_ROOT: &str = "/var/lib/registry";

/// How `gc` runs (the CLI's `GcOptions` converts into this).
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Print the steps without changing anything.
    pub dry_run: bool,
    /// How long to wait for a Ready registry pod after each change (seconds).
    pub ready_timeout_secs: u64,
    /// How often to look for a Ready pod (milliseconds).
    pub poll_ms: u64,
    /// Skip measuring the storage with `du` before and after.
    pub no_measure: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    pub kind: &'static str,
    pub namespace: String,
    pub statefulset: String,
    /// No StatefulSet: an external/managed registry that collects by itself.
    pub managed: bool,
    pub dry_run: bool,
    pub ok: bool,
    pub steps: Vec<String>,
    pub pod: Option<String>,
    pub blob_bytes_before: Option<u64>,
    pub blob_bytes_after: Option<u64>,
    pub freed_bytes: Option<u64>,
    pub gc_output: Option<String>,
    pub error: Option<String>,
    /// Whether read-only mode was switched off again (always attempted once it was switched on).
    pub read_only_restored: Option<bool>,
    pub message: String,
}

/// Runs GC. `Err` only when it could not start (no cluster access); everything after read-only
/// mode is switched on is reported in the `GcReport` with `ok: false`.
pub async fn run(settings: &Settings, args: &GcOptions) -> Result<GcReport, String> {
    let ns = settings.kubernetes.platform_namespace.clone();
    let name = settings.kubernetes.registry_statefulset.clone();
    let client = kube_source::client(&crate::ops::load::kube_settings(settings))
        .await
        .map_err(|e| e.to_string())?;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client, &ns);
    let mut r = GcReport {
        kind: "registry-cleaner-gc",
        namespace: ns.clone(),
        statefulset: name.clone(),
        dry_run: args.dry_run,
        ..GcReport::default()
    };
    let sts = match sets.get_opt(&name).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            r.managed = true;
            r.ok = true;
            r.message = format!(
                "no StatefulSet '{name}' in namespace '{ns}': the registry is external or managed (ECR, ACR, GCR, ...); \
                 such providers collect unreferenced layers themselves, so there is nothing to run here \
                 (set kubernetes.registry_statefulset if the in-cluster registry has another name)"
            );
            return Ok(r);
        }
        Err(e) => return Err(format!("kubernetes: reading StatefulSet {ns}/{name}: {e}")),
    };
    let spec = sts.spec.as_ref().ok_or("the registry StatefulSet has no spec")?;
    let container = spec
        .template
        .spec
        .as_ref()
        .and_then(|p| p.containers.first())
        .ok_or("the registry StatefulSet has no container")?;
    let cname = container.name.clone();
    let root = container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY")
        .and_then(|e| e.value.clone())
        .unwrap_or_else(|| DEFAULT_ROOT.into());
    let selector = spec
        .selector
        .match_labels
        .as_ref()
        .filter(|m| !m.is_empty())
        .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
        .unwrap_or_else(|| format!("app={name}"));
    r.steps = vec![
        format!(
            "set {READONLY_ENV}={READONLY_VALUE} on container '{cname}' of StatefulSet {ns}/{name} (this restarts the registry pod; pushes fail while it is read-only)"
        ),
        format!(
            "wait up to {}s for a Ready pod ({selector}) running the read-only template",
            args.ready_timeout_secs
        ),
        if args.no_measure {
            "do not measure the storage".into()
        } else {
            format!("measure the storage: du -sb {root}")
        },
        format!("exec in container '{cname}': registry garbage-collect {CONFIG_PATH} (never --delete-untagged)"),
        if args.no_measure {
            "-".into()
        } else {
            format!("measure the storage again: du -sb {root}")
        },
        format!(
            "remove {READONLY_ENV} again (always, also after a failure or an interruption) and wait for a Ready pod"
        ),
    ];
    r.steps.retain(|s| s != "-");
    if args.dry_run {
        r.ok = true;
        r.message = "dry run: nothing was changed; run without --dry-run to collect garbage".into();
        return Ok(r);
    }
    let poll = Duration::from_millis(args.poll_ms.max(10));
    let timeout = Duration::from_secs(args.ready_timeout_secs);
    let pp = PatchParams::default();
    let on = serde_json::json!({ "spec": { "template": { "spec": { "containers": [
        { "name": cname, "env": [ { "name": READONLY_ENV, "value": READONLY_VALUE } ] } ] } } } });
    if let Err(e) = sets.patch(&name, &pp, &Patch::Strategic(&on)).await {
        return Err(format!("kubernetes: patching StatefulSet {ns}/{name} read-only: {e}"));
    }
    // From here on, read-only mode must be switched off whatever happens.
    let work = collect(&pods, &selector, &cname, &root, poll, timeout, !args.no_measure, &mut r);
    let outcome = tokio::select! {
        res = work => res,
        _ = interrupted() => Err("interrupted; switching read-only mode off".to_string()),
    };
    let off = serde_json::json!({ "spec": { "template": { "spec": { "containers": [
        { "name": cname, "env": [ { "name": READONLY_ENV, "$patch": "delete" } ] } ] } } } });
    let mut restore_err = None;
    match sets.patch(&name, &pp, &Patch::Strategic(&off)).await {
        Ok(_) => {
            r.read_only_restored = Some(true);
            if let Err(e) = wait_ready(&pods, &selector, &cname, false, poll, timeout).await {
                restore_err = Some(format!("read-only mode is off, but {e}"));
            }
        }
        Err(e) => {
            r.read_only_restored = Some(false);
            restore_err = Some(format!(
                "could not switch read-only mode off; remove {READONLY_ENV} from StatefulSet {ns}/{name} by hand: {e}"
            ));
        }
    }
    if let (Some(b), Some(a)) = (r.blob_bytes_before, r.blob_bytes_after) {
        r.freed_bytes = Some(b.saturating_sub(a));
    }
    match (outcome, restore_err) {
        (Ok(()), None) => {
            r.ok = true;
            r.message = match r.freed_bytes {
                Some(f) => format!("garbage collection finished; {f} bytes freed; the registry is writable again"),
                None => "garbage collection finished; the registry is writable again".into(),
            };
        }
        (o, restore) => {
            let errs: Vec<String> = o.err().into_iter().chain(restore).collect();
            r.error = Some(errs.join("; "));
            r.message = if r.read_only_restored == Some(true) {
                "garbage collection failed; read-only mode was switched off again".into()
            } else {
                "garbage collection failed and the registry may still be read-only".into()
            };
        }
    }
    Ok(r)
}

#[allow(clippy::too_many_arguments)]
async fn collect(
    pods: &Api<Pod>,
    selector: &str,
    container: &str,
    root: &str,
    poll: Duration,
    timeout: Duration,
    measure: bool,
    r: &mut GcReport,
) -> Result<(), String> {
    let pod = wait_ready(pods, selector, container, true, poll, timeout).await?;
    r.pod = Some(pod.clone());
    if measure {
        r.blob_bytes_before = du(pods, &pod, container, root).await;
    }
    let (ok, out) = exec(pods, &pod, container, &["registry", "garbage-collect", CONFIG_PATH]).await?;
    r.gc_output = Some(tail(&out));
    if !ok {
        return Err(format!("registry garbage-collect failed in pod {pod}: {}", tail(&out)));
    }
    if measure {
        r.blob_bytes_after = du(pods, &pod, container, root).await;
    }
    Ok(())
}

/// A Ready, Running pod of the StatefulSet whose first container has (or lacks) the read-only env.
async fn wait_ready(
    pods: &Api<Pod>,
    selector: &str,
    container: &str,
    read_only: bool,
    poll: Duration,
    timeout: Duration,
) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let list = pods
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| format!("kubernetes: listing registry pods ({selector}): {e}"))?;
        if let Some(p) = list
            .items
            .iter()
            .find(|p| ready(p) && has_env(p, container) == read_only)
        {
            return Ok(p.metadata.name.clone().unwrap_or_default());
        }
        if tokio::time::Instant::now() + poll > deadline {
            let mode = if read_only { "read-only" } else { "writable" };
            return Err(format!(
                "no Ready {mode} registry pod ({selector}) within {}s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(poll).await;
    }
}

fn ready(p: &Pod) -> bool {
    let Some(st) = &p.status else { return false };
    st.phase.as_deref() == Some("Running")
        && st
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn has_env(p: &Pod, container: &str) -> bool {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == container))
        .and_then(|c| c.env.as_ref())
        .is_some_and(|env| env.iter().any(|e| e.name == READONLY_ENV))
}

/// Runs a command in the pod; `(success, stdout+stderr)`.
async fn exec(pods: &Api<Pod>, pod: &str, container: &str, cmd: &[&str]) -> Result<(bool, String), String> {
    let ap = AttachParams::default()
        .container(container)
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let mut proc = pods
        .exec(pod, cmd.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &ap)
        .await
        .map_err(|e| format!("kubernetes exec in pod {pod} failed: {e}"))?;
    let (mut so, mut se) = (proc.stdout(), proc.stderr());
    let read_out = async {
        match so.as_mut() {
            Some(s) => read_tail(s, MAX_EXEC_OUTPUT).await,
            None => String::new(),
        }
    };
    let read_err = async {
        match se.as_mut() {
            Some(s) => read_tail(s, MAX_EXEC_OUTPUT).await,
            None => String::new(),
        }
    };
    let (out, err) = tokio::join!(read_out, read_err);
    let status = match proc.take_status() {
        Some(s) => s.await,
        None => None,
    };
    let _ = proc.join().await;
    let ok = status.as_ref().is_some_and(|s| s.status.as_deref() == Some("Success"));
    let mut text = out;
    if !err.is_empty() {
        text.push_str(&err);
    }
    if !ok && let Some(msg) = status.and_then(|s| s.message) {
        text.push_str(&msg);
    }
    Ok((ok, text))
}

async fn du(pods: &Api<Pod>, pod: &str, container: &str, root: &str) -> Option<u64> {
    let (ok, out) = exec(pods, pod, container, &["du", "-sb", root]).await.ok()?;
    if !ok {
        return None;
    }
    out.split_whitespace().next()?.parse().ok()
}

/// The most of each exec stream kept: `garbage-collect` prints a line per blob (megabytes on a
/// big registry) and only the tail is reported.
const MAX_EXEC_OUTPUT: usize = 256 << 10;

/// Reads a stream to its end, keeping only its last `cap` bytes (prefixed with how much was
/// dropped), so a huge output costs bounded memory.
async fn read_tail<R: tokio::io::AsyncRead + Unpin>(r: &mut R, cap: usize) -> String {
    let mut kept: std::collections::VecDeque<u8> = std::collections::VecDeque::with_capacity(cap.min(64 << 10));
    let mut dropped = 0u64;
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        kept.extend(&chunk[..n]);
        if kept.len() > cap {
            let extra = kept.len() - cap;
            kept.drain(..extra);
            dropped += extra as u64;
        }
    }
    let text = String::from_utf8_lossy(kept.make_contiguous()).into_owned();
    if dropped > 0 {
        format!("[{dropped} earlier bytes of output dropped]\n{text}")
    } else {
        text
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::read_tail;

    #[tokio::test]
    async fn exec_output_keeps_a_bounded_tail() {
        // 64 MiB of blob lines, then the summary GC prints last.
        let mut big = b"blob eligible for deletion: sha256:00\n".repeat(64 << 20 >> 5);
        big.extend_from_slice(b"5 blobs marked, 3 blobs eligible for deletion\n");
        let out = read_tail(&mut big.as_slice(), 1024).await;
        assert!(out.len() < 1100, "{} bytes kept", out.len());
        assert!(out.ends_with("3 blobs eligible for deletion\n"), "{out}");
        assert!(
            out.starts_with('[') && out.contains("earlier bytes of output dropped"),
            "{out}"
        );
        assert_eq!(read_tail(&mut &b"short"[..], 1024).await, "short");
    }
}
