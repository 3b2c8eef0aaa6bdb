//! One real kube-apiserver (+ etcd) per test binary, started by
//! `scripts/test-servers/start-kube-apiserver.sh` on free ports (~5.5 s). Tests share it and
//! use unique namespaces. A watchdog shell stops both processes, by pid, when the test binary
//! exits (statics are never dropped).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

pub struct KubeServer {
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

static SERVER: OnceLock<KubeServer> = OnceLock::new();

pub fn shared() -> &'static KubeServer {
    SERVER.get_or_init(start)
}

fn start() -> KubeServer {
    let apiserver = super::binary(
        "RC_KUBE_APISERVER",
        "/root/.cache/registry-cleaner/kube-apiserver-1.20.2-debian-bookworm/kube-apiserver",
    );
    let etcd = super::binary("RC_ETCD_BIN", "/usr/bin/etcd");
    let etcd_dir = etcd.parent().expect("etcd dir").to_path_buf();
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("k8s");
    // etcd needs two consecutive ports (client, peer); retry if a pair is taken.
    let (port, etcd_port) = loop {
        let p = super::free_port();
        if std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            break (super::free_port(), p);
        }
    };
    let path = format!("{}:{}", etcd_dir.display(), std::env::var("PATH").unwrap_or_default());
    let status = Command::new("bash")
        .arg(super::repo_path("scripts/test-servers/start-kube-apiserver.sh"))
        .arg(&apiserver)
        .arg(&state)
        .arg(port.to_string())
        .env("ETCD_PORT", etcd_port.to_string())
        .env("PATH", path)
        .status()
        .expect("run start-kube-apiserver.sh");
    assert!(
        status.success(),
        "kube-apiserver did not start; see {}",
        state.display()
    );
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; kill $(cat {s}/apiserver.pid) $(cat {s}/etcd.pid) 2>/dev/null; sleep 2; rm -rf {d}",
        pid = std::process::id(),
        s = state.display(),
        d = dir.path().display()
    );
    // The watchdog outlives this process on purpose; nothing here should wait for it.
    #[allow(clippy::zombie_processes)]
    let _watchdog = Command::new("sh")
        .args(["-c", &watchdog])
        .spawn()
        .expect("start watchdog");
    KubeServer {
        kubeconfig: state.join("kubeconfig"),
        _dir: dir,
    }
}

/// Creates namespace `name` on the shared server (it must not exist yet).
pub async fn create_namespace(client: &kube::Client, name: &str) {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, PostParams};
    let mut n = Namespace::default();
    n.metadata.name = Some(name.into());
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &n)
        .await
        .unwrap_or_else(|e| panic!("namespace {name}: {e}"));
}
