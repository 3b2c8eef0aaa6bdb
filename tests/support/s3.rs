//! A local S3 API server (`moto_server` from PyPI's moto, installed by
//! scripts/setup-test-servers.sh) on a free loopback port, for Distribution's S3 storage
//! driver and the storage source's S3 path. A missing `moto_server` fails the test.

use std::process::{Child, Command, Stdio};

pub const ACCESS_KEY: &str = "test-access-key";
pub const SECRET_KEY: &str = "test-secret-key";
pub const REGION: &str = "us-east-1";

pub struct Moto {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        let bin = super::server_binary(
            "RC_MOTO_SERVER",
            &format!(
                "{}/.cache/registry-cleaner/moto-5.2.5/bin/moto_server",
                std::env::var("HOME").unwrap_or_default()
            ),
            "scripts/setup-test-servers.sh (pip install \"moto[server]==5.2.5\" in a venv)",
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = super::free_port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("moto.log")).expect("log"),
            ))
            .spawn()
            .expect("starting moto_server");
        super::wait_for_port(port, "moto_server");
        Moto { port, child, _dir: dir }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (moto accepts the request unsigned).
    pub fn create_bucket(&self, bucket: &str) {
        let out = Command::new("curl")
            .args(["-sS", "-f", "-X", "PUT", &format!("{}/{bucket}", self.endpoint())])
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "creating bucket {bucket}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The object_store configuration the storage source takes from `AWS_*` variables.
    pub fn config(&self) -> Vec<(&'static str, String)> {
        vec![
            ("aws_access_key_id", ACCESS_KEY.to_string()),
            ("aws_secret_access_key", SECRET_KEY.to_string()),
            ("aws_region", REGION.to_string()),
            ("aws_endpoint", self.endpoint()),
            ("aws_allow_http", "true".to_string()),
        ]
    }

    /// The same as environment variables, for a child process.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }

    /// `storage.s3` for docker-registry's config.yml. Blob GETs are served by the registry
    /// (no redirect to the bucket), so the HTTP scan reads configs as it does on files.
    pub fn registry_storage_yaml(&self, bucket: &str, root: &str) -> String {
        format!(
            "  s3:\n    accesskey: {ACCESS_KEY}\n    secretkey: {SECRET_KEY}\n    region: {REGION}\n    regionendpoint: {}\n    bucket: {bucket}\n    rootdirectory: {root}\n    secure: false\n    v4auth: true\n  redirect:\n    disable: true\n",
            self.endpoint()
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
