//! `scripts/test-servers/kube-apiserver-from-debian-source.sh --print-deb-src`: the deb-src
//! entries it adds are derived from the machine's own apt sources (deb822 files and one-line
//! `sources.list`), never a fixed archive host. Run on fixture directories; nothing is installed.

use std::path::Path;
use std::process::Command;

fn derive(dir: &Path, list: &Path) -> (bool, String, String) {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-servers/kube-apiserver-from-debian-source.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg("--print-deb-src")
        .env("APT_SOURCES_DIR", dir)
        .env("APT_SOURCES_LIST", list)
        .output()
        .expect("run bash");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn deb_src_entries_mirror_the_machines_own_deb_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sources.list.d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("mirror.sources"),
        "Types: deb\n# a comment inside the stanza\nURIs: http://mirror.internal/debian\nSuites: trixie trixie-updates\n\
         Components: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
         Types: deb\nURIs: http://disabled.example/debian\nSuites: trixie\nComponents: main\nEnabled: no\n\n\
         Types: deb-src\nURIs: http://already-src.example/debian\nSuites: trixie\nComponents: main\n",
    )
    .unwrap();
    std::fs::write(dir.join("ignored.list.disabled"), "deb http://never.example/ x main\n").unwrap();
    let list = tmp.path().join("sources.list");
    std::fs::write(
        &list,
        "# comment\ndeb [arch=amd64 signed-by=/etc/apt/keyrings/corp.gpg] https://apt.corp.example/debian bookworm main non-free\n\
         deb-src http://src-only.example/debian bookworm main\ndeb http://plain.example/debian bookworm main\n",
    )
    .unwrap();
    let (ok, out, err) = derive(&dir, &list);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "Types: deb-src\nURIs: http://mirror.internal/debian\nSuites: trixie trixie-updates\nComponents: main contrib\n\
         Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
         Types: deb-src\nURIs: https://apt.corp.example/debian\nSuites: bookworm\nComponents: main non-free\n\
         Signed-By: /etc/apt/keyrings/corp.gpg\n\n\
         Types: deb-src\nURIs: http://plain.example/debian\nSuites: bookworm\nComponents: main\n"
    );
    assert!(!out.contains("deb.debian.org"), "no fixed host: {out}");
}

#[test]
fn no_deb_source_at_all_is_an_error_naming_where_it_looked() {
    let tmp = tempfile::tempdir().unwrap();
    let list = tmp.path().join("sources.list");
    let (ok, out, err) = derive(tmp.path(), &list);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.contains("no enabled deb source") && err.contains("sources.list"),
        "{err}"
    );
}
