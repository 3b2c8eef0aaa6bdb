//! The real binary end to end: `scan`, `report` (live and from a snapshot), selections,
//! `config show`, and exit codes for bad input, against a real registry.

mod support;

use registry_cleaner::sources::registry::{RegistryClient, RegistryOptions};
use registry_cleaner::world::{self, sample_registry};
use serde_json::Value;
use std::process::{Command, Output};
use support::registry::Registry;

const NOW: i64 = 1_760_000_000;

fn bin(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_registry-cleaner"))
        .args(args)
        .current_dir(dir)
        .env_remove("REGISTRY_URL")
        .env_remove("REGISTRY_USERNAME")
        .env_remove("REGISTRY_PASSWORD")
        .env("HOME", dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .expect("run registry-cleaner")
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn pushed_registry() -> Registry {
    let reg = Registry::start();
    let c = RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap();
    support::runtime()
        .block_on(world::push(&c, &sample_registry("dominodatalab", NOW)))
        .expect("push");
    reg
}

#[test]
fn report_follows_the_json_contract_and_records_disabled_sources() {
    let reg = pushed_registry();
    let dir = tempfile::tempdir().unwrap();
    let url = reg.url();
    let r = json(&bin(
        &[
            "report",
            "--registry",
            &url,
            "--without",
            "mongo",
            "--without=kubernetes",
        ],
        dir.path(),
    ));
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["registry"], reg.host());
    // Over the HTTP API untagged manifests are invisible: the report says the bytes are an
    // upper bound where tags were re-pushed.
    let basis = r["space_basis"].as_str().unwrap();
    assert!(
        basis.starts_with("http-api:") && basis.contains("upper bound"),
        "{basis}"
    );
    assert!(r["generated_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r["sources"]["registry"]["status"], "ok");
    assert_eq!(r["sources"]["mongo"]["status"], "disabled");
    assert_eq!(r["sources"]["keycloak"]["status"], "failed");
    assert_eq!(r["without"], serde_json::json!(["mongo", "kubernetes"]));
    let ids: Vec<&str> = r["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 8);
    for c in r["categories"].as_array().unwrap() {
        for key in ["id", "status", "reclaimable_bytes", "candidates", "protected"] {
            assert!(c.get(key).is_some(), "{key} missing in {c}");
        }
    }
    assert!(
        r["plan"]["tags"].as_array().unwrap().is_empty(),
        "no categories with candidates yet"
    );
    assert_eq!(r["plan"]["reclaimable_bytes"], 0);

    // Without config blobs the ages are unknown: every category says the grace period did not apply.
    std::fs::write(dir.path().join("config.yaml"), "registry:\n  fetch_config: false\n").unwrap();
    let r = json(&bin(
        &[
            "report",
            "--registry",
            &url,
            "--without",
            "mongo",
            "--without=kubernetes",
        ],
        dir.path(),
    ));
    let broken = r["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "broken-tags")
        .unwrap();
    assert!(broken["notes"].to_string().contains("fetch_config"), "{broken}");
}

#[test]
fn a_snapshot_reports_the_same_as_a_live_scan_and_a_partial_selection_untags() {
    let reg = pushed_registry();
    let dir = tempfile::tempdir().unwrap();
    let url = reg.url();
    let snap = dir.path().join("snap.json");
    let out = bin(
        &["scan", "--registry", &url, "--output", snap.to_str().unwrap()],
        dir.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sel = "dominodatalab/environment:65a000000000000000000001-3";
    let live = json(&bin(&["report", "--registry", &url, "--select", sel], dir.path()));
    let offline = json(&bin(
        &["report", "--snapshot", snap.to_str().unwrap(), "--select", sel],
        dir.path(),
    ));
    assert_eq!(live["plan"]["tags"], offline["plan"]["tags"]);
    assert_eq!(live["plan"]["reclaimable_bytes"], offline["plan"]["reclaimable_bytes"]);
    let tags: Vec<&str> = live["plan"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    // One of two tags on a digest: only that tag goes (untag), the image stays for its sibling.
    assert_eq!(tags, vec!["65a000000000000000000001-3"]);
    assert_eq!(live["plan"]["manifests"][0]["untag"], true);
    assert_eq!(live["plan"]["reclaimable_bytes"], 0);
    let both = json(&bin(
        &[
            "report",
            "--registry",
            &url,
            "--select",
            sel,
            "--select",
            "dominodatalab/environment:65a000000000000000000001-3-release",
        ],
        dir.path(),
    ));
    assert!(
        both["plan"]["manifests"][0].get("untag").is_none(),
        "both tags: the digest goes"
    );
    assert!(both["plan"]["reclaimable_bytes"].as_u64().unwrap() > 0);

    let file = dir.path().join("select.txt");
    std::fs::write(
        &file,
        "# comment\n\ndominodatalab/environment:65a000000000000000000001-1\nnot-a-tag\n",
    )
    .unwrap();
    let out = bin(
        &[
            "report",
            "--snapshot",
            snap.to_str().unwrap(),
            "--select-file",
            file.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("select.txt:4") && err.contains("not-a-tag"), "{err}");
}

#[test]
fn bad_config_unreachable_registry_and_unknown_category_exit_2_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        "registry:\n  url: x:5000\nmongo:\n  port: many\n",
    )
    .unwrap();
    let out = bin(&["report"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.yaml") && err.contains("mongo.port"), "{err}");

    std::fs::write(dir.path().join("config.yaml"), "").unwrap();
    let port = support::free_port();
    let out = bin(
        &["report", "--registry", &format!("http://127.0.0.1:{port}")],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("127.0.0.1:{port}")));
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout when the report cannot be made"
    );

    let out = bin(
        &["report", "--category", "nope", "--registry", "http://127.0.0.1:1"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken-tags"));
}

#[test]
fn config_show_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_registry-cleaner"))
        .args(["config", "show"])
        .current_dir(dir.path())
        .env("REGISTRY_PASSWORD", "hunter2")
        .env("REGISTRY_USERNAME", "bob")
        .env("MONGODB_PASSWORD", "m0ng0")
        .env("XDG_STATE_HOME", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("username: bob") && !text.contains("hunter2") && !text.contains("m0ng0"),
        "{text}"
    );
    assert!(text.contains("'***'") || text.contains("\"***\"") || text.contains("***"));
}

/// `report --strict` still writes the report, and exits 3 when a category is unavailable (its
/// source was switched off or failed); without `--strict` the same report exits 0.
#[test]
fn report_strict_exits_3_when_a_category_is_unavailable() {
    let reg = pushed_registry();
    let dir = tempfile::tempdir().unwrap();
    let url = reg.url();
    let args = [
        "report",
        "--registry",
        &url,
        "--without",
        "mongo",
        "--without",
        "kubernetes",
        "--without",
        "keycloak",
    ];
    let plain = json(&bin(&args, dir.path()));
    assert!(
        plain["categories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["status"] == "unavailable"),
        "{plain}"
    );
    let mut strict = args.to_vec();
    strict.push("--strict");
    let out = bin(&strict, dir.path());
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("the report is still written");
    assert_eq!(v["categories"], plain["categories"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--strict"));
}

/// issue 11.9: `--ids` takes the shell tool's environments file (`<envId> <rev> …`): the
/// listed revision is kept — a plan selecting it has `delete` skip it, naming the file and
/// line, while the rest of the environment goes; a bad word is an error naming the file and
/// line.
#[test]
fn an_environments_file_in_ids_keeps_the_listed_revisions() {
    let reg = pushed_registry();
    let dir = tempfile::tempdir().unwrap();
    let url = reg.url();
    let ids = dir.path().join("environments");
    std::fs::write(&ids, "# shell tool format\n65a000000000000000000001 2\n").unwrap();
    let ids_arg = ids.display().to_string();
    let plan = dir.path().join("plan.json");
    let plan_arg = plan.display().to_string();
    let common = [
        "--registry",
        url.as_str(),
        "--without",
        "mongo",
        "--without",
        "kubernetes",
        "--without",
        "keycloak",
        "--ids",
        ids_arg.as_str(),
    ];
    let mut report = vec!["report", "--output", plan_arg.as_str()];
    report.extend(common);
    report.extend([
        "--select",
        "dominodatalab/environment:65a000000000000000000001-1",
        "--select",
        "dominodatalab/environment:65a000000000000000000001-2",
    ]);
    let out = bin(&report, dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut delete = vec!["delete", "--plan", plan_arg.as_str()];
    delete.extend(common);
    let r = json(&bin(&delete, dir.path()));
    assert_eq!(r["summary"]["would_delete"], 1, "{r}");
    let items = r["items"].as_array().unwrap();
    let skipped: Vec<&Value> = items.iter().filter(|i| i["reason"].is_string()).collect();
    assert_eq!(skipped.len(), 1, "{r}");
    let why = skipped[0]["reason"].as_str().unwrap();
    assert!(
        why.contains("revision 2 of environment 65a000000000000000000001 is kept by the ids file")
            && why.contains(&format!("{ids_arg}:2")),
        "{why}"
    );

    std::fs::write(&ids, "65a000000000000000000001 2\n65a000000000000000000002 1 two\n").unwrap();
    let out = bin(
        &["report", "--registry", &url, "--without", "mongo", "--ids", &ids_arg],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{ids_arg}:2: \"two\" is not a revision number")),
        "{err}"
    );
}
