//! The Keycloak fake (`scripts/test-servers/fake_keycloak.py`) per test, on a free port.

use std::process::{Child, Command, Stdio};

pub struct KeycloakServer {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl KeycloakServer {
    /// `seed` is the fake's seed JSON; tokens live `token_lifespan` seconds.
    pub fn start(seed: &serde_json::Value, token_lifespan: u64) -> KeycloakServer {
        Self::start_with(seed, token_lifespan, None)
    }

    /// Over HTTPS with `(cert chain, key)` PEM files.
    pub fn start_tls(
        seed: &serde_json::Value,
        token_lifespan: u64,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> KeycloakServer {
        Self::start_with(seed, token_lifespan, Some((cert, key)))
    }

    /// With extra arguments for the fake (e.g. `--insert-while-paging N`).
    pub fn start_args(seed: &serde_json::Value, token_lifespan: u64, extra: &[&str]) -> KeycloakServer {
        Self::start_full(seed, token_lifespan, None, extra)
    }

    fn start_with(
        seed: &serde_json::Value,
        token_lifespan: u64,
        tls: Option<(&std::path::Path, &std::path::Path)>,
    ) -> KeycloakServer {
        Self::start_full(seed, token_lifespan, tls, &[])
    }

    fn start_full(
        seed: &serde_json::Value,
        token_lifespan: u64,
        tls: Option<(&std::path::Path, &std::path::Path)>,
        extra: &[&str],
    ) -> KeycloakServer {
        let script = super::repo_path("scripts/test-servers/fake_keycloak.py");
        assert!(script.exists(), "{} missing", script.display());
        let dir = tempfile::tempdir().expect("temp dir");
        let seed_path = dir.path().join("seed.json");
        std::fs::write(&seed_path, seed.to_string()).expect("write seed");
        let port = super::free_port();
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--token-lifespan",
                &token_lifespan.to_string(),
                "--seed",
            ])
            .arg(&seed_path)
            .args(extra);
        if let Some((cert, key)) = tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 fake_keycloak.py");
        super::wait_for_port(port, "fake keycloak");
        KeycloakServer {
            child,
            url: format!("{}://127.0.0.1:{port}", if tls.is_some() { "https" } else { "http" }),
            _dir: dir,
        }
    }
}

impl Drop for KeycloakServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
