//! A real Docker Distribution registry (Debian's `docker-registry`, 2.8) on a free loopback
//! port, with deletes enabled and filesystem storage in a temp dir; stoppable for offline GC.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    auth: Option<(String, String)>,
    pub extra_env: Vec<(String, String)>,
}

impl Registry {
    pub fn start() -> Registry {
        Self::start_with(None)
    }

    /// With htpasswd (bcrypt) basic auth for `user:pass`.
    pub fn start_with_basic_auth(user: &str, pass: &str) -> Registry {
        Self::start_with(Some((user.to_string(), pass.to_string())))
    }

    /// With Distribution's S3 driver (`storage_yaml`: the `  s3:` block) instead of files.
    pub fn start_s3(storage_yaml: &str) -> Registry {
        Self::start_config(None, Some(storage_yaml.to_string()))
    }

    fn start_with(auth: Option<(String, String)>) -> Registry {
        Self::start_config(auth, None)
    }

    fn start_config(auth: Option<(String, String)>, s3: Option<String>) -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = super::free_port();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("mkdir");
        let storage = s3.unwrap_or_else(|| format!("  filesystem:\n    rootdirectory: {}\n", data.display()));
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n{storage}  delete:\n    enabled: true\n  cache:\n    blobdescriptor: inmemory\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: test-secret\n"
        );
        std::fs::write(dir.path().join("config.yml"), config).expect("write config");
        if let Some((u, p)) = &auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .expect("htpasswd missing: apt-get install apache2-utils");
            assert!(out.status.success(), "htpasswd failed");
            std::fs::write(dir.path().join("htpasswd"), out.stdout).expect("write htpasswd");
        }
        let mut r = Registry {
            port,
            dir,
            child: None,
            auth,
            extra_env: Vec::new(),
        };
        r.resume();
        r
    }

    /// A second registry on its own port holding a copy of this one's storage (the source is
    /// stopped for the copy and restarted).
    pub fn copy(&mut self) -> Registry {
        self.stop();
        let other = Registry::start();
        let mut other = other;
        other.stop();
        let status = Command::new("cp")
            .arg("-a")
            .arg(self.dir.path().join("data/docker"))
            .arg(other.dir.path().join("data/"))
            .status()
            .expect("cp");
        assert!(status.success());
        other.resume();
        self.resume();
        other
    }

    /// Keeps a copy of the storage as it is now (the server is stopped for the copy), for
    /// [`Registry::reset`].
    pub fn save_state(&mut self) {
        self.stop();
        let saved = self.dir.path().join("saved");
        let _ = std::fs::remove_dir_all(&saved);
        let status = Command::new("cp")
            .arg("-a")
            .arg(self.dir.path().join("data/docker"))
            .arg(&saved)
            .status()
            .expect("cp");
        assert!(status.success());
        self.resume();
    }

    /// Puts the storage saved by [`Registry::save_state`] back (stopped, copied, restarted on
    /// the same port): the next trial starts from the same registry.
    pub fn reset(&mut self) {
        self.stop();
        let data = self.dir.path().join("data/docker");
        std::fs::remove_dir_all(&data).expect("remove storage");
        let status = Command::new("cp")
            .arg("-a")
            .arg(self.dir.path().join("saved"))
            .arg(&data)
            .status()
            .expect("cp");
        assert!(status.success());
        self.resume();
    }

    pub fn binary() -> PathBuf {
        super::server_binary(
            "RC_REGISTRY_BIN",
            "/usr/bin/docker-registry",
            "apt-get install docker-registry",
        )
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server process and waits until `/v2/` answers.
    pub fn resume(&mut self) {
        let mut cmd = Command::new(Self::binary());
        cmd.arg("serve")
            .arg(self.config_path())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(self.dir.path().join("registry.log")).expect("log file"),
            ));
        // Distribution's S3 driver panics when AWS_CA_BUNDLE is set.
        cmd.env_remove("AWS_CA_BUNDLE");
        cmd.envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if self.auth.is_some() {
            cmd.env("REGISTRY_AUTH", "htpasswd")
                .env("REGISTRY_AUTH_HTPASSWD_REALM", "test-registry")
                .env("REGISTRY_AUTH_HTPASSWD_PATH", self.dir.path().join("htpasswd"));
        }
        self.child = Some(cmd.spawn().expect("starting docker-registry"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("docker-registry did not listen on {}; log: {}", self.port, self.log());
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Plain `garbage-collect` (never `--delete-untagged`), with the registry stopped.
    pub fn garbage_collect(&mut self) -> String {
        let was_running = self.child.is_some();
        self.stop();
        let out = Command::new(Self::binary())
            .env_remove("AWS_CA_BUNDLE")
            .arg("garbage-collect")
            .arg(self.config_path())
            .output()
            .expect("garbage-collect");
        assert!(
            out.status.success(),
            "garbage-collect failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if was_running {
            self.resume();
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.dir.path().join("data/docker/registry/v2/blobs")
    }

    /// Sum of every `blobs/**/data` file: what the registry's storage holds.
    pub fn blob_bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(rd) = std::fs::read_dir(p) else { return 0 };
            rd.flatten()
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path)
                    } else if path.file_name().is_some_and(|n| n == "data") {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    } else {
                        0
                    }
                })
                .sum()
        }
        walk(&self.blobs_dir())
    }

    /// The data file of a blob, e.g. to corrupt or remove it.
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.blobs_dir().join("sha256").join(&hex[..2]).join(hex).join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
