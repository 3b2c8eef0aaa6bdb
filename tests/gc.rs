//! `registry-cleaner gc` against a real kube-apiserver. There is no kubelet: pods never run
//! and exec cannot work, so the tests create the StatefulSet's pods themselves, each with the
//! template (env, revision label) they "run" and their status patched Ready/Running. They check
//! that GC execs only when every pod runs the read-only template, that more than one replica is
//! refused without `--allow-replicas`, that read-only mode is switched off again after a failing
//! exec, a timeout, a lost patch answer and SIGINT/SIGTERM (also while the first patch is in
//! flight), and that a missing StatefulSet means a managed registry.

mod support;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const READONLY: &str = "REGISTRY_STORAGE_MAINTENANCE_READONLY";
const READONLY_VALUE: &str = "{\"enabled\":true}";
const LABEL: &str = "app.kubernetes.io/name";

async fn client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

async fn namespace(c: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    Api::<Namespace>::all(c.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
}

/// The registry StatefulSet (`replicas` unset = Kubernetes' default of 1) and, when
/// `update_revision` is given, the status the StatefulSet controller would have written.
async fn statefulset(c: &kube::Client, ns: &str, replicas: Option<i32>, update_revision: Option<&str>) {
    let mut spec = json!({
        "serviceName": "docker-registry",
        "selector": { "matchLabels": { LABEL: "docker-registry" } },
        "template": {
            "metadata": { "labels": { LABEL: "docker-registry" } },
            "spec": { "containers": [ { "name": "registry", "image": "registry:2",
                "env": [ { "name": "REGISTRY_STORAGE_DELETE_ENABLED", "value": "true" } ] } ] }
        }
    });
    if let Some(n) = replicas {
        spec["replicas"] = json!(n);
    }
    let sts: StatefulSet =
        serde_json::from_value(json!({ "metadata": { "name": "docker-registry" }, "spec": spec })).unwrap();
    let sets: Api<StatefulSet> = Api::namespaced(c.clone(), ns);
    sets.create(&PostParams::default(), &sts).await.expect("sts");
    if let Some(rev) = update_revision {
        sets.patch_status(
            "docker-registry",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "replicas": 1, "updateRevision": rev, "currentRevision": rev } })),
        )
        .await
        .expect("sts status");
    }
}

/// A Ready, Running pod of the StatefulSet whose container has `READONLY=<readonly>` (none when
/// `None`) and, when given, the `controller-revision-hash` label of the revision it runs.
async fn pod(c: &kube::Client, ns: &str, name: &str, readonly: Option<&str>, revision: Option<&str>) {
    let mut labels = json!({ LABEL: "docker-registry" });
    if let Some(rev) = revision {
        labels["controller-revision-hash"] = json!(rev);
    }
    let env: Vec<Value> = readonly
        .map(|v| json!({ "name": READONLY, "value": v }))
        .into_iter()
        .collect();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels },
        "spec": { "containers": [ { "name": "registry", "image": "registry:2", "env": env } ] }
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(c.clone(), ns);
    pods.create(&PostParams::default(), &pod).await.expect("pod");
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(
            json!({ "status": { "phase": "Running", "conditions": [ { "type": "Ready", "status": "True" } ] } }),
        ),
    )
    .await
    .expect("pod status");
}

/// Like [`pod`], read-only, and bound to `node` (a fake kubelet: exec reaches it).
async fn pod_on(c: &kube::Client, ns: &str, name: &str, node: &str) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { LABEL: "docker-registry" } },
        "spec": { "nodeName": node, "containers": [ { "name": "registry", "image": "registry:2",
            "env": [ { "name": READONLY, "value": READONLY_VALUE } ] } ] }
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(c.clone(), ns);
    pods.create(&PostParams::default(), &pod).await.expect("pod");
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(
            json!({ "status": { "phase": "Running", "conditions": [ { "type": "Ready", "status": "True" } ] } }),
        ),
    )
    .await
    .expect("pod status");
}

/// The registry StatefulSet and one pod "running" the read-only template.
async fn registry(c: &kube::Client, ns: &str) {
    statefulset(c, ns, None, None).await;
    pod(c, ns, "docker-registry-0", Some(READONLY_VALUE), None).await;
}

fn gc_command(dir: &Path, kubeconfig: &Path, ns: &str, ready_timeout: u32, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_registry-cleaner"));
    c.args([
        "gc",
        "--ready-timeout-secs",
        &ready_timeout.to_string(),
        "--poll-ms",
        "100",
    ])
    .args(extra)
    .current_dir(dir)
    .env("HOME", dir)
    .env("XDG_STATE_HOME", dir.join("state"))
    .env("KUBECONFIG", kubeconfig)
    .env("PLATFORM_NAMESPACE", ns)
    .env_remove("DOMINO_PLATFORM_NAMESPACE")
    .stdin(Stdio::null());
    c
}

fn gc(dir: &Path, kubeconfig: &Path, ns: &str, extra: &[&str]) -> Output {
    gc_command(dir, kubeconfig, ns, 2, extra)
        .output()
        .expect("run registry-cleaner gc")
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}); exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn env_names(sts: &StatefulSet) -> Vec<String> {
    sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0]
        .env
        .iter()
        .flatten()
        .map(|e| e.name.clone())
        .collect()
}

/// Whether the StatefulSet's pod template has the read-only variable.
fn template_read_only(rt: &tokio::runtime::Runtime, c: &kube::Client, ns: &str) -> bool {
    let sts = rt
        .block_on(Api::<StatefulSet>::namespaced(c.clone(), ns).get("docker-registry"))
        .expect("get sts");
    env_names(&sts).contains(&READONLY.to_string())
}

fn generation(rt: &tokio::runtime::Runtime, c: &kube::Client, ns: &str) -> i64 {
    rt.block_on(Api::<StatefulSet>::namespaced(c.clone(), ns).get("docker-registry"))
        .expect("get sts")
        .metadata
        .generation
        .expect("generation")
}

/// A failed run that never exec'd: no pod chosen, no GC output, read-only mode off again.
fn assert_no_exec_and_restored(rt: &tokio::runtime::Runtime, c: &kube::Client, ns: &str, out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let r = report(out);
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["pod"], Value::Null, "no pod may be exec'd in: {r}");
    assert_eq!(r["gc_output"], Value::Null, "{r}");
    assert!(!r["error"].as_str().unwrap().contains("exec"), "{r}");
    assert_eq!(r["read_only_restored"], true, "{r}");
    assert!(!template_read_only(rt, c, ns), "read-only left on in {ns}");
    r
}

#[test]
fn a_failing_exec_still_switches_read_only_mode_off_and_reports_the_failure() {
    let k = support::kube::shared();
    let rt = support::runtime();
    let c = rt.block_on(client(&k.kubeconfig));
    rt.block_on(namespace(&c, "gc-fail"));
    rt.block_on(registry(&c, "gc-fail"));
    let dir = tempfile::tempdir().unwrap();

    // Dry run: the steps, nothing patched, never --delete-untagged.
    let out = gc(dir.path(), &k.kubeconfig, "gc-fail", &["--dry-run"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dry = report(&out);
    let steps = dry["steps"].to_string();
    assert!(
        steps.contains("registry garbage-collect /etc/docker/registry/config.yml"),
        "{steps}"
    );
    assert!(steps.contains("restarts the registry pod"), "{steps}");
    assert!(!steps.contains("garbage-collect --delete-untagged"), "{steps}");
    let sets: Api<StatefulSet> = Api::namespaced(c.clone(), "gc-fail");
    assert!(!env_names(&rt.block_on(sets.get("docker-registry")).unwrap()).contains(&READONLY.to_string()));

    let out = gc(dir.path(), &k.kubeconfig, "gc-fail", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let r = report(&out);
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["pod"], "docker-registry-0", "{r}");
    assert_eq!(r["read_only_restored"], true, "{r}");
    assert!(r["error"].as_str().unwrap().contains("exec"), "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("read-only mode was switched off again"),
        "{r}"
    );
    let env = env_names(&rt.block_on(sets.get("docker-registry")).unwrap());
    assert!(!env.contains(&READONLY.to_string()), "{env:?}");
    assert!(
        env.contains(&"REGISTRY_STORAGE_DELETE_ENABLED".to_string()),
        "other env kept: {env:?}"
    );
}

#[test]
fn no_exec_while_one_of_two_replicas_lacks_the_read_only_variable() {
    let k = support::kube::shared();
    let rt = support::runtime();
    let c = rt.block_on(client(&k.kubeconfig));
    let ns = "gc-one-stale";
    rt.block_on(namespace(&c, ns));
    rt.block_on(statefulset(&c, ns, Some(2), None));
    rt.block_on(pod(&c, ns, "docker-registry-0", Some(READONLY_VALUE), None));
    // Still on the old template: it would take pushes while GC deletes their blobs.
    rt.block_on(pod(&c, ns, "docker-registry-1", None, None));
    let dir = tempfile::tempdir().unwrap();
    let out = gc(dir.path(), &k.kubeconfig, ns, &["--allow-replicas"]);
    let r = assert_no_exec_and_restored(&rt, &c, ns, &out);
    let err = r["error"].as_str().unwrap();
    assert!(err.contains("docker-registry-1") && err.contains(READONLY), "{r}");
}

#[test]
fn no_exec_when_the_read_only_variable_has_another_value() {
    let k = support::kube::shared();
    let rt = support::runtime();
    let c = rt.block_on(client(&k.kubeconfig));
    let ns = "gc-wrong-value";
    rt.block_on(namespace(&c, ns));
    rt.block_on(statefulset(&c, ns, None, None));
    // The variable's name, but a writable registry.
    rt.block_on(pod(&c, ns, "docker-registry-0", Some("{\"enabled\":false}"), None));
    let dir = tempfile::tempdir().unwrap();
    let out = gc(dir.path(), &k.kubeconfig, ns, &[]);
    let r = assert_no_exec_and_restored(&rt, &c, ns, &out);
    assert!(r["error"].as_str().unwrap().contains("{\"enabled\":false}"), "{r}");
}

#[test]
fn no_exec_while_a_pod_runs_an_older_revision() {
    let k = support::kube::shared();
    let rt = support::runtime();
    let c = rt.block_on(client(&k.kubeconfig));
    let ns = "gc-old-revision";
    rt.block_on(namespace(&c, ns));
    rt.block_on(statefulset(&c, ns, None, Some("docker-registry-new")));
    rt.block_on(pod(
        &c,
        ns,
        "docker-registry-0",
        Some(READONLY_VALUE),
        Some("docker-registry-old"),
    ));
    let dir = tempfile::tempdir().unwrap();
    let out = gc(dir.path(), &k.kubeconfig, ns, &[]);
    let r = assert_no_exec_and_restored(&rt, &c, ns, &out);
    assert!(r["error"].as_str().unwrap().contains("docker-registry-old"), "{r}");
}

#[test]
fn more_than_one_replica_is_refused_before_any_patch_without_allow_replicas() {
    let k = support::kube::shared();
    let rt = support::runtime();
    let c = rt.block_on(client(&k.kubeconfig));
    let ns = "gc-replicas";
    rt.block_on(namespace(&c, ns));
    rt.block_on(statefulset(&c, ns, Some(2), None));
    rt.block_on(pod(&c, ns, "docker-registry-0", Some(READONLY_VALUE), None));
    rt.block_on(pod(&c, ns, "docker-registry-1", Some(READONLY_VALUE), None));
    let before = generation(&rt, &c, ns);
    let dir = tempfile::tempdir().unwrap();
    let out = gc(dir.path(), &k.kubeconfig, ns, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("2 replicas") && stderr.contains("--allow-replicas"),
        "{stderr}"
    );
    assert_eq!(generation(&rt, &c, ns), before, "the StatefulSet was patched");
    assert!(!template_read_only(&rt, &c, ns));
}

/// A TCP relay in front of the kube-apiserver (TLS passes through untouched) that delivers every
/// byte of the server's answers `lag` late, and can cut every open connection. That is how a
/// test gets between the server applying a PATCH and gc seeing its answer, or loses the answer.
struct Relay {
    port: u16,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    fn start(rt: &tokio::runtime::Runtime, upstream: u16, lag: Duration) -> Relay {
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind relay");
        let port = listener.local_addr().unwrap().port();
        let (cut, cut_rx) = tokio::sync::watch::channel(0u64);
        rt.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut cut_rx = cut_rx.clone();
                // Only cuts from now on end this connection.
                cut_rx.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::select! {
                        _ = lagged_copy(cr, sw, Duration::ZERO) => {}
                        _ = lagged_copy(sr, cw, lag) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Relay { port, cut }
    }

    /// Drops every open connection (and whatever answers they still hold).
    fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

/// Copies `from` to `to`, each chunk written `lag` after it was read (in order).
async fn lagged_copy(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, lag: Duration) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0u8; 16 << 10];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 || tx.send((tokio::time::Instant::now() + lag, buf[..n].to_vec())).is_err() {
                break;
            }
        }
    };
    let write = async {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
    };
    tokio::join!(read, write);
}

/// A copy of `kubeconfig` that reaches the API server through `relay`.
fn relayed_kubeconfig(kubeconfig: &Path, relay: &Relay, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("server line")
        .to_string();
    let path = dir.join("kubeconfig-relayed");
    std::fs::write(
        &path,
        text.replace(&server, &format!("https://127.0.0.1:{}", relay.port)),
    )
    .unwrap();
    path
}

fn api_port(kubeconfig: &Path) -> u16 {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("server line");
    server.rsplit(':').next().unwrap().parse().expect("port")
}

/// Waits until the StatefulSet's template has the read-only variable (the first patch reached
/// the server), watching the server directly, not through gc's relay.
fn wait_for_first_patch(rt: &tokio::runtime::Runtime, c: &kube::Client, ns: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !template_read_only(rt, c, ns) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("gc exited ({status}) before its first patch reached the server");
        }
        assert!(
            Instant::now() < deadline,
            "gc did not patch the StatefulSet within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{sig} failed");
}

fn wait_exit(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("gc did not exit within 60 s of the signal");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Where in the run the signal arrives.
#[derive(Clone, Copy, Debug)]
enum When {
    /// The server has applied the first patch; its answer is still on the way to gc.
    FirstPatchInFlight,
    /// gc waits for the pods to run the read-only template (they never will: no kubelet).
    WaitingForReadiness,
}

/// gc is stopped by `sig` at `when`; read-only mode must end up off and the run reported failed.
fn signal_switches_read_only_off(ns: &str, sig: &str, when: When) {
    let k = support::kube::shared();
    let rt = support::runtime();
    let c = rt.block_on(client(&k.kubeconfig));
    rt.block_on(namespace(&c, ns));
    rt.block_on(statefulset(&c, ns, None, None));
    rt.block_on(pod(&c, ns, "docker-registry-0", None, None));
    let dir = tempfile::tempdir().unwrap();
    let relay;
    let kubeconfig = match when {
        When::FirstPatchInFlight => {
            relay = Relay::start(&rt, api_port(&k.kubeconfig), Duration::from_millis(1500));
            relayed_kubeconfig(&k.kubeconfig, &relay, dir.path())
        }
        When::WaitingForReadiness => k.kubeconfig.clone(),
    };
    let mut child = gc_command(dir.path(), &kubeconfig, ns, 60, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gc");
    wait_for_first_patch(&rt, &c, ns, &mut child);
    if let When::WaitingForReadiness = when {
        // Past the patch's answer and into the polling.
        std::thread::sleep(Duration::from_millis(500));
    }
    signal(&child, sig);
    let out = wait_exit(child);
    assert!(
        !template_read_only(&rt, &c, ns),
        "{sig} {when:?} left read-only mode on; gc exited {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let r = report(&out);
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["read_only_restored"], true, "{r}");
    assert!(r["error"].as_str().unwrap().contains(sig), "{r}");
    assert_eq!(r["pod"], Value::Null, "{r}");
}

#[test]
fn sigterm_while_the_first_patch_is_in_flight_switches_read_only_off() {
    signal_switches_read_only_off("gc-term-patch", "TERM", When::FirstPatchInFlight);
}

#[test]
fn sigint_while_the_first_patch_is_in_flight_switches_read_only_off() {
    signal_switches_read_only_off("gc-int-patch", "INT", When::FirstPatchInFlight);
}

#[test]
fn sigterm_while_waiting_for_readiness_switches_read_only_off() {
    signal_switches_read_only_off("gc-term-wait", "TERM", When::WaitingForReadiness);
}

#[test]
fn sigint_while_waiting_for_readiness_switches_read_only_off() {
    signal_switches_read_only_off("gc-int-wait", "INT", When::WaitingForReadiness);
}

/// A dropped SSH session (SIGHUP) must not leave the registry read-only either.
#[test]
fn sighup_while_waiting_for_readiness_switches_read_only_off() {
    signal_switches_read_only_off("gc-hup-wait", "HUP", When::WaitingForReadiness);
}

#[test]
fn a_first_patch_whose_answer_is_lost_is_undone() {
    let k = support::kube::shared();
    let rt = support::runtime();
    let c = rt.block_on(client(&k.kubeconfig));
    let ns = "gc-lost-answer";
    rt.block_on(namespace(&c, ns));
    rt.block_on(statefulset(&c, ns, None, None));
    rt.block_on(pod(&c, ns, "docker-registry-0", None, None));
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(&rt, api_port(&k.kubeconfig), Duration::from_millis(1500));
    let kubeconfig = relayed_kubeconfig(&k.kubeconfig, &relay, dir.path());
    let mut child = gc_command(dir.path(), &kubeconfig, ns, 60, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gc");
    // The server applied the patch; gc gets a broken connection instead of the answer.
    wait_for_first_patch(&rt, &c, ns, &mut child);
    relay.cut();
    let out = wait_exit(child);
    assert!(
        !template_read_only(&rt, &c, ns),
        "a lost patch answer left read-only mode on; gc exited {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let r = report(&out);
    assert_eq!(r["read_only_restored"], true, "{r}");
    assert!(r["error"].as_str().unwrap().contains("read-only"), "{r}");
}

#[test]
fn no_statefulset_means_a_managed_registry_that_collects_itself() {
    let k = support::kube::shared();
    let rt = support::runtime();
    let c = rt.block_on(client(&k.kubeconfig));
    rt.block_on(namespace(&c, "gc-managed"));
    let dir = tempfile::tempdir().unwrap();
    let out = gc(dir.path(), &k.kubeconfig, "gc-managed", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = report(&out);
    assert_eq!(r["managed"], true, "{r}");
    assert!(r["message"].as_str().unwrap().contains("external or managed"), "{r}");
}

/// gc is stopped by SIGTERM while `registry garbage-collect` runs over the exec API (a fake
/// kubelet behind the real API server plays the container). Closing the exec stream does not
/// end a remote process, so gc must stop it (`pkill -f`) and see it gone (`pgrep -f` exits 1)
/// before it switches read-only mode off. Without that step garbage-collect is still running
/// after the run, and it ends (if ever) with the registry writable.
fn interrupted_exec(ns: &str, node: &str, unkillable: bool) -> (Value, support::kubelet::Kubelet) {
    let k = support::kube::shared();
    let rt = support::runtime();
    let c = rt.block_on(client(&k.kubeconfig));
    rt.block_on(namespace(&c, ns));
    rt.block_on(statefulset(&c, ns, None, None));
    let kubelet = support::kubelet::Kubelet::start(&rt, &c, node, ns);
    kubelet
        .state
        .unkillable
        .store(unkillable, std::sync::atomic::Ordering::SeqCst);
    rt.block_on(pod_on(&c, ns, "docker-registry-0", &kubelet.node));
    let dir = tempfile::tempdir().unwrap();
    let mut child = gc_command(dir.path(), &k.kubeconfig, ns, 2, &["--no-measure"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gc");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kubelet.state.gc_running.load(std::sync::atomic::Ordering::SeqCst) {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "gc exited ({status}) before garbage-collect ran: {} {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(Instant::now() < deadline, "garbage-collect was not exec'd within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, "TERM");
    let out = wait_exit(child);
    assert!(
        !template_read_only(&rt, &c, ns),
        "read-only left on: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let r = report(&out);
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["read_only_restored"], true, "{r}");
    assert_eq!(r["pod"], "docker-registry-0", "{r}");
    (r, kubelet)
}

#[test]
fn an_interrupted_garbage_collect_is_stopped_before_read_only_mode_is_switched_off() {
    let (r, kubelet) = interrupted_exec("gc-exec-term", "gc-fake-node-1", false);
    let st = &kubelet.state;
    assert!(
        !st.gc_running.load(std::sync::atomic::Ordering::SeqCst),
        "garbage-collect still runs after gc exited: {r}"
    );
    assert_eq!(
        *st.ended_while_read_only.lock().unwrap(),
        Some(true),
        "garbage-collect ended after read-only mode was switched off: {r}"
    );
    assert_eq!(r["gc_stopped"], true, "{r}");
    let cmds: Vec<String> = kubelet.commands().iter().map(|c| c.join(" ")).collect();
    // First the look for an earlier garbage-collect (none), then ours, then the stop.
    assert!(cmds[0].starts_with("pgrep -f"), "{cmds:?}");
    assert_eq!(
        cmds[1], "registry garbage-collect /etc/docker/registry/config.yml",
        "{cmds:?}"
    );
    assert!(
        cmds[2].starts_with("pkill -f") && cmds[3].starts_with("pgrep -f"),
        "{cmds:?}"
    );
    assert_eq!(r["earlier_gc_stopped"], Value::Null, "{r}");
    assert!(r["error"].as_str().unwrap().contains("SIGTERM"), "{r}");
}

/// When garbage-collect cannot be shown stopped (pkill does nothing here), gc still switches
/// read-only mode off after a bounded wait (30 s), and says plainly that it may still run.
#[test]
fn a_garbage_collect_that_cannot_be_stopped_is_reported_as_maybe_running() {
    let (r, kubelet) = interrupted_exec("gc-exec-unkillable", "gc-fake-node-2", true);
    assert_eq!(r["gc_stopped"], false, "{r}");
    let msg = r["message"].as_str().unwrap();
    assert!(msg.contains("MAY STILL BE RUNNING in pod docker-registry-0"), "{r}");
    let err = r["error"].as_str().unwrap();
    assert!(err.contains("pgrep still finds it") && err.contains("kubectl"), "{r}");
    assert!(kubelet.state.gc_running.load(std::sync::atomic::Ordering::SeqCst));
}
