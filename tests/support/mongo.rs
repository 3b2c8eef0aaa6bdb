//! A SecantusDB (`secantusd-rs`) server per test, on a free port, with a fresh storage dir.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct MongoServer {
    child: Child,
    pub uri: String,
    _dir: tempfile::TempDir,
}

impl MongoServer {
    pub fn start() -> MongoServer {
        let bin = super::binary(
            "RC_MONGO_BIN",
            "/root/.cache/registry-cleaner/secantus-0.6.0b17/bin/secantusd-rs",
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--cache-size",
                "256M",
                "--storage-path",
            ])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start secantusd-rs");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("secantusd-rs exited before listening")
                .expect("read output");
            if let Some(addr) = line.split("listening on ").nth(1) {
                break addr
                    .trim()
                    .rsplit(':')
                    .next()
                    .expect("port")
                    .parse::<u16>()
                    .expect("numeric port");
            }
        };
        // Keep draining output so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        MongoServer {
            child,
            uri: format!("mongodb://127.0.0.1:{port}/domino?directConnection=true"),
            _dir: dir,
        }
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates every collection whose absence fails the Mongo source (empty), as a fresh Domino
/// install has them; tests that seed only a few collections call it first.
pub async fn create_protecting_collections(db: &mongodb::Database) {
    let have = db.list_collection_names().await.expect("list collections");
    for (name, _) in registry_cleaner::model::domino::PROTECTING_COLLECTIONS {
        if !have.iter().any(|h| h == name) {
            db.create_collection(*name).await.expect("create collection");
        }
    }
}
