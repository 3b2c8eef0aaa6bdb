//! Test harness: real servers started on free loopback ports with fresh state directories.
//! A missing server binary fails the test with the install hint; nothing skips silently.
#![allow(dead_code)]

pub mod keycloak;
pub mod kube;
pub mod mongo;
pub mod proxy;
pub mod registry;

use std::net::TcpListener;
use std::path::PathBuf;

/// A free loopback port (bound and released; servers bind it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// A server binary from `var`, else the default path; panics with how to install it.
pub fn server_binary(var: &str, default: &str, install_hint: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.exists(),
        "{} not found (set {var}); install it with: {install_hint}",
        path.display()
    );
    path
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16, what: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{what} did not listen on port {port} within 10 s");
}

/// A server binary from `var`, else the default path; panics (fails the test) if missing.
pub fn binary(var: &str, default: &str) -> PathBuf {
    server_binary(var, default, "scripts/setup-test-servers.sh")
}
