//! `registry-cleaner gc`: garbage collection of an in-cluster Distribution registry (domain.md
//! §6.4), done safely:
//!
//! 1. a StatefulSet of more than one replica is refused unless `--allow-replicas` (every replica
//!    restarts, and every one must be read-only), and one of no replica always (no pod to run
//!    GC in), before anything is changed;
//! 2. the SIGINT/SIGTERM listeners are installed, then read-only mode is switched on
//!    (`REGISTRY_STORAGE_MAINTENANCE_READONLY`);
//! 3. GC waits until EVERY pod the StatefulSet's selector matches is Ready and runs the
//!    read-only template: the variable with exactly `READONLY_VALUE` in the registry container,
//!    and the StatefulSet's `status.updateRevision` (when it has one) as `controller-revision-hash`.
//!    A pod still writable takes pushes whose new blobs GC would delete;
//! 4. `registry garbage-collect` through the Kubernetes exec API (never `--delete-untagged`:
//!    untagged manifests may be index children or in use by digest), after one more look at the
//!    pods, with blob bytes before/after when the storage can be read;
//! 5. read-only mode is switched off again on every path from the first patch on — a failed
//!    patch or one whose answer was lost, timeouts, an exec failure, SIGINT/SIGTERM at any
//!    point — and `read_only_restored` is what the StatefulSet read back afterwards says.
//!
//! No StatefulSet: the registry is external or managed (ECR, ACR, GCR, ...), whose provider
//! collects unreferenced blobs itself; we say so and succeed.

use crate::settings::Settings;
use crate::sources::kube as kube_source;
use ::kube::api::{Api, AttachParams, ListParams, Patch, PatchParams};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{EnvVar, Pod};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::AsyncReadExt as _;
use tokio::time::Instant;

pub const READONLY_ENV: &str = "REGISTRY_STORAGE_MAINTENANCE_READONLY";
pub const READONLY_VALUE: &str = r#"{"enabled":true}"#;
pub const CONFIG_PATH: &str = "/etc/docker/registry/config.yml";
const DEFAULT_ROOT: &str = "/var/lib/registry";
/// The label the StatefulSet controller puts on a pod: the revision of the template it runs.
const REVISION_LABEL: &str = "controller-revision-hash";
/// How long one Kubernetes API call may take: the client has no read timeout of its own, and a
/// call that hangs must not keep the registry read-only.
const API_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at switching read-only mode off, and the pause between them: a blip of the API
/// server must not leave the registry read-only.
const RESTORE_ATTEMPTS: u32 = 3;
const RESTORE_PAUSE: Duration = Duration::from_secs(2);

/// How `gc` runs (the CLI's `GcOptions` converts into this).
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Print the steps without changing anything.
    pub dry_run: bool,
    /// How long to wait for every registry pod to be Ready after each change (seconds).
    pub ready_timeout_secs: u64,
    /// How often to look at the registry pods (milliseconds).
    pub poll_ms: u64,
    /// Skip measuring the storage with `du` before and after.
    pub no_measure: bool,
    /// Run on a StatefulSet of more than one replica (GC still waits for all of them).
    pub allow_replicas: bool,
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
    /// The pod GC ran in (set once every pod runs the read-only template).
    pub pod: Option<String>,
    pub blob_bytes_before: Option<u64>,
    pub blob_bytes_after: Option<u64>,
    pub freed_bytes: Option<u64>,
    pub gc_output: Option<String>,
    pub error: Option<String>,
    /// Whether the StatefulSet's template is without the read-only variable again, as read back
    /// from the API server (always attempted once the first patch was sent; `None` before).
    pub read_only_restored: Option<bool>,
    /// Set when the garbage-collect exec was interrupted (a signal while it ran): `true` once a
    /// `pgrep` in its container found no garbage-collect process left (after a `pkill`), before
    /// read-only mode was switched off; `false` when that could not be shown within
    /// `STOP_WAIT` (the message then says garbage-collect may still be running).
    pub gc_stopped: Option<bool>,
    /// Set when a garbage-collect was already running in the pod before ours would start (an
    /// earlier gc killed by SIGKILL mid-exec leaves one): `true` once it was stopped and seen
    /// gone, and only then was ours started; `false` when it could not be (nothing started).
    pub earlier_gc_stopped: Option<bool>,
    pub message: String,
    /// The exec of garbage-collect has been sent and its stream has not ended.
    #[serde(skip)]
    exec_in_flight: bool,
}

/// The registry StatefulSet as `gc` drives it.
struct Registry {
    sets: Api<StatefulSet>,
    pods: Api<Pod>,
    ns: String,
    name: String,
    /// The template's first container: it gets the variable, and GC runs in it.
    container: String,
    /// The storage root `du` measures.
    root: String,
    selector: String,
    replicas: i32,
}

impl Registry {
    fn of(sts: &StatefulSet, sets: Api<StatefulSet>, pods: Api<Pod>, ns: String, name: String) -> Result<Self, String> {
        let spec = sts
            .spec
            .as_ref()
            .ok_or_else(|| format!("StatefulSet {ns}/{name} has no spec"))?;
        let container = spec
            .template
            .spec
            .as_ref()
            .and_then(|p| p.containers.first())
            .ok_or_else(|| format!("StatefulSet {ns}/{name} has no container"))?;
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
        Ok(Registry {
            container: container.name.clone(),
            root,
            selector,
            replicas: replicas(sts),
            sets,
            pods,
            ns,
            name,
        })
    }

    fn what(&self) -> String {
        format!("StatefulSet {}/{}", self.ns, self.name)
    }
}

/// Runs GC. `Err` only when it could not start (no cluster access, a refused StatefulSet, no
/// signal listener); everything from the first patch on is reported in the `GcReport`, with
/// `ok: false` on any failure.
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
    let Some(sts) = api(&format!("reading StatefulSet {ns}/{name}"), sets.get_opt(&name)).await? else {
        r.managed = true;
        r.ok = true;
        r.message = format!(
            "no StatefulSet '{name}' in namespace '{ns}': the registry is external or managed (ECR, ACR, GCR, ...); \
             such providers collect unreferenced layers themselves, so there is nothing to run here \
             (set kubernetes.registry_statefulset if the in-cluster registry has another name)"
        );
        return Ok(r);
    };
    let reg = Registry::of(&sts, sets, pods, ns, name)?;
    r.steps = steps(&reg, args);
    check_replicas(&reg, args.allow_replicas)?;
    if args.dry_run {
        r.ok = true;
        r.message = "dry run: nothing was changed; run without --dry-run to collect garbage".into();
        return Ok(r);
    }
    let poll = Duration::from_millis(args.poll_ms.max(10));
    let timeout = Duration::from_secs(args.ready_timeout_secs);
    // Listening before the first patch is sent: a signal during the patch must reach us rather
    // than end the process with the registry read-only.
    let mut interrupts = Interrupts::install()?;
    // From the first patch on, read-only mode is switched off again whatever happens. Even a
    // patch that failed is undone: the server may have applied it and the answer got lost.
    let outcome = tokio::select! {
        biased;
        sig = interrupts.recv() => Err(format!("interrupted by {sig}")),
        res = collect(&reg, args, poll, timeout, &mut r) => res,
    };
    // An interrupted exec leaves garbage-collect running in the pod (closing the stream does
    // not stop it): stop it, and see it gone, before the registry takes pushes again.
    let mut stop_err = None;
    if r.exec_in_flight
        && let Some(pod) = r.pod.clone()
    {
        let stopped = stop_remote_gc(&reg, &pod).await;
        r.gc_stopped = Some(stopped.is_ok());
        if let Err(e) = stopped {
            stop_err = Some(format!(
                "garbage-collect may still be running in pod {pod}: it was interrupted, and no pgrep showed it stopped within {}s ({e}); read-only mode is switched off anyway: the StatefulSet restarts {pod} first (highest ordinal), which ends it; check with: kubectl -n {} exec {pod} -c {} -- pgrep -f '{GC_PATTERN}'",
                STOP_WAIT.as_secs(),
                reg.ns,
                reg.container
            ));
        }
    }
    let restore_err = restore(&reg, poll, timeout, &mut interrupts, &mut r).await;
    finish(&mut r, outcome, stop_err, restore_err);
    Ok(r)
}

/// What `pkill -f` / `pgrep -f` look for: the garbage-collect process gc started.
const GC_PATTERN: &str = "registry garbage-collect";
/// How long an interrupted garbage-collect is given to be seen gone before read-only mode is
/// switched off regardless (and the report says it may still run).
const STOP_WAIT: Duration = Duration::from_secs(30);

/// After an interrupted garbage-collect exec, or before ours when an earlier one still runs:
/// `pkill -f GC_PATTERN` in its container, then
/// `pgrep -f GC_PATTERN` once a second until it exits 1 (no such process), for at most
/// `STOP_WAIT`. `Err` with the last thing seen when it could not be shown gone: pgrep found it,
/// failed otherwise (not installed: no exit code 1), or the API did not answer.
async fn stop_remote_gc(reg: &Registry, pod: &str) -> Result<(), String> {
    let deadline = Instant::now() + STOP_WAIT;
    let bounded = |cmd: &'static [&'static str]| async move {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left.min(API_TIMEOUT), exec_code(&reg.pods, pod, &reg.container, cmd)).await {
            Ok(r) => r,
            Err(_) => Err(format!("{} got no answer", cmd.join(" "))),
        }
    };
    let _ = bounded(&["pkill", "-f", GC_PATTERN]).await;
    loop {
        let last = match bounded(&["pgrep", "-f", GC_PATTERN]).await {
            Ok((Some(1), _)) => return Ok(()),
            Ok((Some(0), out)) => format!("pgrep still finds it: {}", tail(&out)),
            Ok((code, out)) => format!("pgrep exited {code:?}: {}", tail(&out)),
            Err(e) => e,
        };
        if Instant::now() + Duration::from_secs(1) >= deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// More than one replica only with `--allow-replicas`: each one restarts read-only, and GC waits
/// for all of them. None is never enough: there is no pod to run GC in.
fn check_replicas(reg: &Registry, allow_replicas: bool) -> Result<(), String> {
    match reg.replicas {
        1 => Ok(()),
        n if n < 1 => Err(format!(
            "{} has {n} replicas: there is no registry pod to run garbage-collect in; nothing was changed",
            reg.what()
        )),
        _ if allow_replicas => Ok(()),
        n => Err(format!(
            "{} has {n} replicas: gc would restart every one read-only and collect only once all {n} are; \
             pass --allow-replicas to do that; nothing was changed",
            reg.what()
        )),
    }
}

fn steps(reg: &Registry, args: &GcOptions) -> Vec<String> {
    let (c, what, n) = (&reg.container, reg.what(), reg.replicas);
    let restarts = if n == 1 {
        "this restarts the registry pod".to_string()
    } else {
        format!("this restarts all {n} registry pods")
    };
    let mut steps = vec![
        format!(
            "set {READONLY_ENV}={READONLY_VALUE} on container '{c}' of {what} ({restarts}; pushes fail while it is read-only)"
        ),
        format!(
            "wait up to {}s until every pod ({}; {n} expected) is Ready with {READONLY_ENV}={READONLY_VALUE} \
             and the StatefulSet's update revision; no garbage-collect otherwise",
            args.ready_timeout_secs, reg.selector
        ),
    ];
    if args.no_measure {
        steps.push("do not measure the storage".into());
    } else {
        steps.push(format!("measure the storage: du -sb {}", reg.root));
    }
    steps.push(format!(
        "look at every pod once more; in container '{c}' of the highest ordinal, stop a garbage-collect an earlier killed gc left running (pgrep -f, pkill -f), then exec: registry garbage-collect {CONFIG_PATH} (never --delete-untagged)"
    ));
    if !args.no_measure {
        steps.push(format!("measure the storage again: du -sb {}", reg.root));
    }
    steps.push(format!(
        "remove {READONLY_ENV} again (always once the first patch is sent: also after a failure, a timeout, SIGINT or SIGTERM) \
         and wait for every pod to be Ready without it"
    ));
    steps
}

/// Read-only mode on, every pod on the read-only template, GC. This may stop at any await (a
/// signal): the caller switches read-only mode off whatever state it reached.
async fn collect(
    reg: &Registry,
    args: &GcOptions,
    poll: Duration,
    timeout: Duration,
    r: &mut GcReport,
) -> Result<(), String> {
    switch_read_only_on(reg).await?;
    let pods = wait_rolled(reg, Mode::ReadOnly, poll, timeout).await?;
    // The highest ordinal: a StatefulSet rolling update restarts it first, so when read-only
    // mode is switched off (even after an interrupted exec whose process may live on), the
    // pod running garbage-collect goes down before any replica comes back writable.
    let pod = pods
        .iter()
        .max_by_key(|p| ordinal(p))
        .cloned()
        .ok_or("no registry pod to run garbage-collect in")?;
    r.pod = Some(pod.clone());
    // An earlier gc killed by SIGKILL during its exec leaves its garbage-collect running (no
    // handler could stop it): stop that one before starting ours, and see it gone. Before the
    // measurement and the last read-only look, so neither is stale when ours starts. (Two gc
    // runs started at the same time by two operators are not told apart from that case.)
    let pgrep = tokio::time::timeout(
        API_TIMEOUT,
        exec_code(&reg.pods, &pod, &reg.container, &["pgrep", "-f", GC_PATTERN]),
    )
    .await
    .unwrap_or_else(|_| Err(format!("pgrep -f '{GC_PATTERN}' got no answer")));
    match pgrep {
        Ok((Some(1), _)) => {}
        Ok((Some(0), out)) => {
            // Interrupted from here on, the caller stops it (as it would our own).
            r.exec_in_flight = true;
            let stopped = stop_remote_gc(reg, &pod).await;
            r.earlier_gc_stopped = Some(stopped.is_ok());
            if let Err(e) = stopped {
                return Err(format!(
                    "garbage-collect not started: an earlier garbage-collect is still running in pod {pod} ({}) and could not be stopped: {e}",
                    tail(&out)
                ));
            }
            r.exec_in_flight = false;
        }
        Ok((code, out)) => {
            return Err(format!(
                "garbage-collect not started: could not tell whether an earlier one still runs in pod {pod} (pgrep -f '{GC_PATTERN}' exited {code:?}: {})",
                tail(&out)
            ));
        }
        Err(e) => return Err(format!("garbage-collect not started: {e}")),
    }
    let measure = !args.no_measure;
    if measure {
        r.blob_bytes_before = du(&reg.pods, &pod, &reg.container, &reg.root).await;
    }
    // The wait may be minutes ago (du of a big storage is slow): a pod that came back writable
    // since would take pushes during GC.
    if let Look::Lagging(why) = look(reg, Mode::ReadOnly).await? {
        return Err(format!(
            "garbage-collect not started: {} is no longer read-only in every pod: {why}",
            reg.what()
        ));
    }
    let gc = ["registry", "garbage-collect", CONFIG_PATH];
    r.exec_in_flight = true;
    let (ok, out) = exec(&reg.pods, &pod, &reg.container, &gc).await?;
    r.exec_in_flight = false;
    r.gc_output = Some(tail(&out));
    if !ok {
        return Err(format!("registry garbage-collect failed in pod {pod}: {}", tail(&out)));
    }
    if measure {
        r.blob_bytes_after = du(&reg.pods, &pod, &reg.container, &reg.root).await;
    }
    Ok(())
}

/// Read-only mode off, then a wait for every pod on the writable template. The patch is never
/// cut short; the wait is, by a further signal. `Some(error)` when either failed.
async fn restore(
    reg: &Registry,
    poll: Duration,
    timeout: Duration,
    interrupts: &mut Interrupts,
    r: &mut GcReport,
) -> Option<String> {
    if let Err(e) = switch_read_only_off(reg).await {
        r.read_only_restored = Some(false);
        return Some(format!(
            "could not switch read-only mode off; remove {READONLY_ENV} from container '{}' of {} by hand: {e}",
            reg.container,
            reg.what()
        ));
    }
    r.read_only_restored = Some(true);
    let waited = tokio::select! {
        biased;
        sig = interrupts.recv() => Err(format!("the wait for writable pods was cut short by {sig}")),
        res = wait_rolled(reg, Mode::Writable, poll, timeout) => res.map(drop),
    };
    waited.err().map(|e| format!("read-only mode is off, but {e}"))
}

fn finish(r: &mut GcReport, outcome: Result<(), String>, stop_err: Option<String>, restore_err: Option<String>) {
    let outcome = match (outcome, stop_err) {
        (Ok(()), None) => Ok(()),
        (o, stop) => Err(o.err().into_iter().chain(stop).collect::<Vec<_>>().join("; ")),
    };
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
            r.message = if r.gc_stopped == Some(false) {
                format!(
                    "garbage collection was interrupted and MAY STILL BE RUNNING in pod {}; read-only mode was {}",
                    r.pod.as_deref().unwrap_or("?"),
                    if r.read_only_restored == Some(true) {
                        "switched off again"
                    } else {
                        "possibly left on"
                    }
                )
            } else if r.read_only_restored == Some(true) {
                "garbage collection failed; read-only mode was switched off again".into()
            } else {
                "garbage collection failed and the registry may still be read-only".into()
            };
        }
    }
}

/// One Kubernetes API call, bounded by `API_TIMEOUT`; the error names `what` failed.
async fn api<T>(what: &str, call: impl Future<Output = Result<T, ::kube::Error>>) -> Result<T, String> {
    match tokio::time::timeout(API_TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("kubernetes: {what}: {e}")),
        Err(_) => Err(format!(
            "kubernetes: {what}: no answer within {}s",
            API_TIMEOUT.as_secs()
        )),
    }
}

/// A strategic-merge patch of one env entry of the template's container (merged by name).
fn env_patch(container: &str, entry: Value) -> Value {
    json!({ "spec": { "template": { "spec": { "containers": [ { "name": container, "env": [ entry ] } ] } } } })
}

/// Sends one template patch (strategic merge); the answer is the patched StatefulSet.
async fn patch_template(reg: &Registry, patch: &Value, what: &str) -> Result<StatefulSet, String> {
    api(
        what,
        reg.sets
            .patch(&reg.name, &PatchParams::default(), &Patch::Strategic(patch)),
    )
    .await
}

async fn switch_read_only_on(reg: &Registry) -> Result<(), String> {
    let on = env_patch(&reg.container, json!({ "name": READONLY_ENV, "value": READONLY_VALUE }));
    patch_template(reg, &on, &format!("patching {} read-only", reg.what()))
        .await
        .map(drop)
}

/// Removes the read-only variable (a few attempts). `Ok` only when the StatefulSet read back —
/// the patch's answer, or a GET when no patch got through — has no read-only variable.
async fn switch_read_only_off(reg: &Registry) -> Result<(), String> {
    let off = env_patch(&reg.container, json!({ "name": READONLY_ENV, "$patch": "delete" }));
    let what = format!("removing {READONLY_ENV} from {}", reg.what());
    let mut last = String::new();
    for attempt in 1..=RESTORE_ATTEMPTS {
        match patch_template(reg, &off, &what).await {
            Ok(sts) => {
                return writable_template(&sts, &reg.container)
                    .map_err(|v| format!("{what}: the answer still has {v}"));
            }
            Err(e) => last = e,
        }
        if attempt < RESTORE_ATTEMPTS {
            tokio::time::sleep(RESTORE_PAUSE).await;
        }
    }
    // No patch got through, yet the template may be writable (the first patch never applied).
    match api(&format!("reading {}", reg.what()), reg.sets.get(&reg.name)).await {
        Ok(sts) if writable_template(&sts, &reg.container).is_ok() => Ok(()),
        _ => Err(last),
    }
}

/// `Ok` when container `container` of the StatefulSet's template has no read-only variable;
/// else the variable as shown.
fn writable_template(sts: &StatefulSet, container: &str) -> Result<(), String> {
    let var = sts
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.iter().find(|c| c.name == container))
        .and_then(|c| c.env.iter().flatten().find(|e| e.name == READONLY_ENV));
    match var {
        None => Ok(()),
        Some(v) => Err(format!("{READONLY_ENV}={}", shown(v))),
    }
}

/// Which template every pod must run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    ReadOnly,
    Writable,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::ReadOnly => "read-only",
            Mode::Writable => "writable",
        }
    }
}

/// One look at the StatefulSet and its pods: all on the template (pod names, sorted), or the
/// first reason why not.
enum Look {
    Rolled(Vec<String>),
    Lagging(String),
}

async fn look(reg: &Registry, mode: Mode) -> Result<Look, String> {
    let sts = api(&format!("reading {}", reg.what()), reg.sets.get(&reg.name)).await?;
    let lp = ListParams::default().labels(&reg.selector);
    let list = api(&format!("listing registry pods ({})", reg.selector), reg.pods.list(&lp)).await?;
    Ok(match rollout(&sts, &list.items, &reg.container, mode) {
        Ok(names) => Look::Rolled(names),
        Err(why) => Look::Lagging(why),
    })
}

/// Polls until every pod is Ready on the `mode` template; the timeout error says which pod
/// lagged and why.
async fn wait_rolled(reg: &Registry, mode: Mode, poll: Duration, timeout: Duration) -> Result<Vec<String>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let why = match look(reg, mode).await? {
            Look::Rolled(names) => return Ok(names),
            Look::Lagging(why) => why,
        };
        if Instant::now() + poll > deadline {
            return Err(format!(
                "not every pod of {} ({}) was Ready on the {} template within {}s: {why}",
                reg.what(),
                reg.selector,
                mode.label(),
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(poll).await;
    }
}

/// The pod names (sorted) when the pods are exactly the StatefulSet's replicas, each Ready on its
/// current template in `mode`; else the first reason why not. Every pod the selector matches
/// counts: an extra, older pod would take pushes just the same.
fn rollout(sts: &StatefulSet, pods: &[Pod], container: &str, mode: Mode) -> Result<Vec<String>, String> {
    let status = sts.status.as_ref();
    // Until the controller has seen the latest template, its update revision is the old one.
    if let (Some(seen), Some(current)) = (status.and_then(|s| s.observed_generation), sts.metadata.generation)
        && seen < current
    {
        return Err(format!(
            "the StatefulSet controller has not seen generation {current} yet (only {seen})"
        ));
    }
    let want = replicas(sts);
    if want < 1 {
        return Err(format!("the StatefulSet has {want} replicas"));
    }
    if pods.len() != want as usize {
        return Err(format!("{} pods for {want} replicas", pods.len()));
    }
    let revision = status.and_then(|s| s.update_revision.as_deref());
    let mut names = Vec::with_capacity(pods.len());
    for p in pods {
        if let Some(why) = pod_lag(p, container, mode, revision) {
            return Err(why);
        }
        names.push(pod_name(p).to_string());
    }
    names.sort();
    Ok(names)
}

/// Why pod `p` does not count yet (`None` once it does): terminating, on another revision than
/// `revision`, the wrong read-only variable for `mode`, or not Ready.
fn pod_lag(p: &Pod, container: &str, mode: Mode, revision: Option<&str>) -> Option<String> {
    let name = pod_name(p);
    if p.metadata.deletion_timestamp.is_some() {
        return Some(format!("pod {name} is terminating"));
    }
    if let Some(want) = revision {
        let runs = p.metadata.labels.as_ref().and_then(|l| l.get(REVISION_LABEL));
        if runs.map(String::as_str) != Some(want) {
            return Some(format!(
                "pod {name} runs revision {} ({REVISION_LABEL}), not the StatefulSet's update revision {want}",
                runs.map_or("(none)", String::as_str)
            ));
        }
    }
    let Some(c) = p
        .spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == container))
    else {
        return Some(format!("pod {name} has no container '{container}'"));
    };
    let var = c.env.iter().flatten().find(|e| e.name == READONLY_ENV);
    if let Some(why) = variable_lag(var, mode) {
        return Some(format!("pod {name} {why} in container '{container}'"));
    }
    if !ready(p) {
        return Some(format!("pod {name} is not Running and Ready"));
    }
    None
}

/// Why a container whose read-only variable is `var` does not run the `mode` template. Read-only
/// means exactly `READONLY_VALUE`: any other value may leave the registry taking pushes.
fn variable_lag(var: Option<&EnvVar>, mode: Mode) -> Option<String> {
    match (mode, var) {
        (Mode::ReadOnly, Some(v)) if v.value.as_deref() == Some(READONLY_VALUE) && v.value_from.is_none() => None,
        (Mode::ReadOnly, Some(v)) => Some(format!("has {READONLY_ENV}={}, not {READONLY_VALUE}", shown(v))),
        (Mode::ReadOnly, None) => Some(format!("has no {READONLY_ENV}")),
        (Mode::Writable, None) => None,
        (Mode::Writable, Some(v)) => Some(format!("still has {READONLY_ENV}={}", shown(v))),
    }
}

fn shown(v: &EnvVar) -> String {
    match (&v.value, &v.value_from) {
        (_, Some(_)) => "(valueFrom)".into(),
        (Some(s), None) => s.clone(),
        (None, None) => "(empty)".into(),
    }
}

fn pod_name(p: &Pod) -> &str {
    p.metadata.name.as_deref().unwrap_or("(unnamed)")
}

/// The StatefulSet's desired replicas (Kubernetes' default is 1).
fn replicas(sts: &StatefulSet) -> i32 {
    sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
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

/// Runs a command in the pod; `(success, stdout+stderr)`.
async fn exec(pods: &Api<Pod>, pod: &str, container: &str, cmd: &[&str]) -> Result<(bool, String), String> {
    exec_code(pods, pod, container, cmd)
        .await
        .map(|(code, out)| (code == Some(0), out))
}

/// Runs a command in the pod; `(exit code, stdout+stderr)`: `Some(0)` on success, the code
/// the API server reports for a non-zero exit, `None` when it reports no code.
async fn exec_code(pods: &Api<Pod>, pod: &str, container: &str, cmd: &[&str]) -> Result<(Option<i32>, String), String> {
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
    let code = if ok {
        Some(0)
    } else {
        // A non-zero exit: reason NonZeroExitCode, the code in a cause of reason ExitCode.
        status
            .as_ref()
            .and_then(|s| s.details.as_ref())
            .and_then(|d| d.causes.as_ref())
            .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
            .and_then(|c| c.message.as_deref())
            .and_then(|m| m.trim().parse().ok())
    };
    let mut text = out;
    if !err.is_empty() {
        text.push_str(&err);
    }
    if !ok && let Some(msg) = status.and_then(|s| s.message) {
        text.push_str(&msg);
    }
    Ok((code, text))
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

/// SIGINT, SIGTERM, SIGHUP and SIGQUIT, listened for from before the first patch. A listener replaces the default
/// action (the process ending on the spot, read-only mode left on), and a signal that arrives
/// while nothing awaits it is kept for the next `recv`, so none is lost between steps.
#[cfg(unix)]
struct Interrupts {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    /// A dropped SSH session or closed terminal: without a listener it would end the process
    /// with read-only mode left on.
    hup: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Interrupts {
    fn install() -> Result<Self, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| {
                format!("cannot listen for {name} (needed to switch read-only mode off when stopped); nothing was changed: {e}")
            })
        };
        Ok(Interrupts {
            int: listen(SignalKind::interrupt(), "SIGINT")?,
            term: listen(SignalKind::terminate(), "SIGTERM")?,
            hup: listen(SignalKind::hangup(), "SIGHUP")?,
            quit: listen(SignalKind::quit(), "SIGQUIT")?,
        })
    }

    /// The name of the next signal.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            Some(()) = self.int.recv() => "SIGINT",
            Some(()) = self.term.recv() => "SIGTERM",
            Some(()) = self.hup.recv() => "SIGHUP",
            Some(()) = self.quit.recv() => "SIGQUIT",
            // Every stream ended (the runtime is shutting down): no signal will come.
            else => std::future::pending().await,
        }
    }
}

/// Ctrl-C, listened for from before the first patch (see the Unix version).
#[cfg(not(unix))]
struct Interrupts(tokio::signal::windows::CtrlC);

#[cfg(not(unix))]
impl Interrupts {
    fn install() -> Result<Self, String> {
        tokio::signal::windows::ctrl_c().map(Interrupts).map_err(|e| {
            format!(
                "cannot listen for Ctrl-C (needed to switch read-only mode off when stopped); nothing was changed: {e}"
            )
        })
    }

    async fn recv(&mut self) -> &'static str {
        match self.0.recv().await {
            Some(()) => "Ctrl-C",
            None => std::future::pending().await,
        }
    }
}

/// A StatefulSet pod's ordinal (`<name>-<n>`); names without one sort first.
fn ordinal(pod: &str) -> i64 {
    pod.rsplit_once('-').and_then(|(_, n)| n.parse().ok()).unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn sts(replicas: i32, status: serde_json::Value) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": { "name": "docker-registry", "generation": 2 },
            "spec": { "replicas": replicas, "serviceName": "r",
                "selector": { "matchLabels": { "app": "r" } },
                "template": { "spec": { "containers": [ { "name": "registry" } ] } } },
            "status": status,
        }))
        .unwrap()
    }

    fn pod(name: &str, var: Option<&str>, revision: &str, ready: bool) -> Pod {
        let env: Vec<serde_json::Value> = var
            .map(|v| json!({ "name": READONLY_ENV, "value": v }))
            .into_iter()
            .collect();
        serde_json::from_value(json!({
            "metadata": { "name": name, "labels": { REVISION_LABEL: revision } },
            "spec": { "containers": [ { "name": "registry", "env": env } ] },
            "status": { "phase": "Running",
                "conditions": [ { "type": "Ready", "status": if ready { "True" } else { "False" } } ] },
        }))
        .unwrap()
    }

    #[test]
    fn every_replica_must_be_ready_on_the_read_only_revision() {
        let s = sts(
            2,
            json!({ "replicas": 2, "observedGeneration": 2, "updateRevision": "new" }),
        );
        let good = |n| pod(n, Some(READONLY_VALUE), "new", true);
        let ro = Mode::ReadOnly;
        assert_eq!(
            rollout(&s, &[good("r-1"), good("r-0")], "registry", ro),
            Ok(vec!["r-0".into(), "r-1".into()])
        );
        let lag = |pods: &[Pod]| rollout(&s, pods, "registry", ro).unwrap_err();
        assert!(lag(&[good("r-0")]).contains("1 pods for 2 replicas"));
        assert!(lag(&[good("r-0"), good("r-1"), good("r-2")]).contains("3 pods for 2 replicas"));
        assert!(lag(&[good("r-0"), pod("r-1", None, "new", true)]).contains("pod r-1 has no"));
        let wrong = lag(&[good("r-0"), pod("r-1", Some(r#"{"enabled":false}"#), "new", true)]);
        assert!(wrong.contains(r#"={"enabled":false}, not {"enabled":true}"#), "{wrong}");
        assert!(lag(&[good("r-0"), pod("r-1", Some(READONLY_VALUE), "old", true)]).contains("runs revision old"));
        assert!(lag(&[good("r-0"), pod("r-1", Some(READONLY_VALUE), "new", false)]).contains("not Running and Ready"));
        // The controller has not seen the latest template: "new" may be the old revision.
        let stale = sts(
            2,
            json!({ "replicas": 2, "observedGeneration": 1, "updateRevision": "new" }),
        );
        assert!(
            rollout(&stale, &[good("r-0"), good("r-1")], "registry", ro)
                .unwrap_err()
                .contains("generation 2")
        );
    }

    #[test]
    fn writable_means_no_read_only_variable_at_all() {
        let s = sts(1, json!({ "replicas": 1 }));
        let w = Mode::Writable;
        assert!(rollout(&s, &[pod("r-0", None, "any", true)], "registry", w).is_ok());
        assert!(
            rollout(&s, &[pod("r-0", Some(READONLY_VALUE), "any", true)], "registry", w)
                .unwrap_err()
                .contains("still has")
        );
        // Without an update revision the label is not looked at.
        assert!(
            rollout(
                &s,
                &[pod("r-0", Some(READONLY_VALUE), "any", true)],
                "registry",
                Mode::ReadOnly
            )
            .is_ok()
        );
    }
}
