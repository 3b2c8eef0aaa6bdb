//! Test servers started by the tests themselves: each on a free loopback port with a fresh
//! temp dir. A missing server binary fails the test (never a skip).
#![allow(dead_code)]

pub mod keycloak;
pub mod kube;
pub mod mongo;

use std::net::TcpListener;
use std::path::PathBuf;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// A server binary from `var`, else the default path; panics (fails the test) if missing.
pub fn binary(var: &str, default: &str) -> PathBuf {
    let path = PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.to_string()));
    assert!(
        path.exists(),
        "test server binary {} not found (set {var})",
        path.display()
    );
    path
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
