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
    assert_eq!(ids.len(), 9);
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

/// Splits RFC 4180 CSV into records of fields (quoted fields may hold commas, quotes and line
/// breaks).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && record.is_empty(),
        "CSV ends with a record end"
    );
    records
}

/// issue 12 (reports): on a generated Domino world (registry, SecantusDB, Keycloak fake),
/// every tag candidate of the JSON report names its environment's or model's owner (id from
/// Mongo, username from Keycloak) and `project: null`; `deactivated-owner-environments` has
/// `grouped_by_user`; `--format table` and `--format csv` list every candidate; `--group-by
/// owner` splits exactly the plan's reclaimable bytes into exclusive and shared bytes.
#[test]
fn report_formats_owners_and_groups_on_a_seeded_world() {
    use registry_cleaner::world::{KEEP_REVISIONS, WorldSize};
    let w = world::generate(20_261_202, WorldSize::SMALL);
    let reg = Registry::start();
    let c = RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap();
    let rt = support::runtime();
    rt.block_on(world::push(&c, &w.tags)).expect("push the world");
    let mongo = support::mongo::MongoServer::start();
    rt.block_on(world::seed::mongo(&w, &mongo.uri, "domino"))
        .expect("seed mongo");
    let kc = support::keycloak::KeycloakServer::start(&world::seed::keycloak_seed(&w, "DominoRealm"), 60);
    let dir = tempfile::tempdir().unwrap();
    let keep = KEEP_REVISIONS.to_string();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "report",
            "--without",
            "kubernetes",
            "--keep-revisions",
            &keep,
            "--grace-period-hours",
            "0",
        ];
        args.extend(extra);
        let out = Command::new(env!("CARGO_BIN_EXE_registry-cleaner"))
            .args(&args)
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env("REGISTRY_URL", reg.url())
            .env("MONGODB_URI", &mongo.uri)
            .env("KEYCLOAK_HOST", &kc.url)
            .env("KEYCLOAK_USERNAME", "admin")
            .env("KEYCLOAK_PASSWORD", "admin")
            .env_remove("CONFIG_FILE")
            .env_remove("REGISTRY_USERNAME")
            .env_remove("REGISTRY_PASSWORD")
            .output()
            .expect("run registry-cleaner");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let r: Value = serde_json::from_slice(&run(&[]).stdout).expect("JSON on stdout");
    for s in ["registry", "mongo", "keycloak"] {
        assert_eq!(r["sources"][s]["status"], "ok", "{s}: {}", r["sources"][s]);
    }
    // The owners the world gave each environment and model, and the names Keycloak knows.
    let owners: std::collections::HashMap<String, String> = (w.domino.environments.iter())
        .filter_map(|e| e.owner.map(|o| (e.id.to_string(), o.to_string())))
        .chain(
            w.domino
                .models
                .iter()
                .filter_map(|m| m.owner.map(|o| (m.id.to_string(), o.to_string()))),
        )
        .collect();
    let usernames: std::collections::HashMap<String, String> = (w.keycloak_users.iter())
        .filter_map(|u| u.domino_id.map(|id| (id.to_string(), u.username.clone())))
        .collect();
    let mut tag_candidates = Vec::new();
    let mut checked = 0;
    for cat in r["categories"].as_array().unwrap() {
        for cand in cat["candidates"].as_array().unwrap() {
            if cand.get("collection").is_some() {
                continue; // a Mongo record
            }
            for key in ["owner", "project", "name"] {
                assert!(cand.get(key).is_some(), "{key} missing: {cand}");
            }
            assert_eq!(cand["project"], Value::Null, "never guessed: {cand}");
            // The environment or model a Domino tag belongs to is the ObjectId its name starts
            // with in the current layout (`domino-<env>:<n>` is `<env>-<n>`; `object_id` may
            // name a revision or a version).
            let name = registry_cleaner::model::image::domino_tag(
                cand["repository"].as_str().unwrap(),
                cand["tag"].as_str().unwrap(),
            );
            let want = name.get(..24).and_then(|o| owners.get(o));
            match want {
                Some(owner) => {
                    assert_eq!(cand["owner"]["id"].as_str(), Some(owner.as_str()), "{cand}");
                    if let Some(name) = usernames.get(owner) {
                        assert_eq!(cand["owner"]["username"].as_str(), Some(name.as_str()), "{cand}");
                    }
                    checked += 1;
                }
                None => assert_eq!(cand["owner"], Value::Null, "unknown owner is null: {cand}"),
            }
            tag_candidates.push((
                cat["id"].as_str().unwrap().to_string(),
                format!(
                    "{}:{}",
                    cand["repository"].as_str().unwrap(),
                    cand["tag"].as_str().unwrap()
                ),
            ));
        }
    }
    assert!(checked >= 10, "owners checked on {checked} candidates");
    let deactivated = r["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "deactivated-owner-environments")
        .unwrap();
    let by_user = deactivated["grouped_by_user"].as_object().expect("grouped_by_user");
    let n = deactivated["candidates"].as_array().unwrap().len();
    assert!(n > 0 && !by_user.is_empty(), "{deactivated}");
    let summed: u64 = by_user.values().map(|g| g["tag_count"].as_u64().unwrap()).sum();
    assert_eq!(summed as usize, n, "every candidate under one user: {by_user:?}");
    for (name, g) in by_user {
        let id = g["user_id"].as_str().expect("owner id known");
        assert_eq!(usernames.get(id), Some(name), "keyed by the Keycloak username");
        assert!(g["environment_count"].as_u64().unwrap() >= 1);
        assert_eq!(
            g["environments"].as_array().unwrap().len() as u64,
            g["environment_count"].as_u64().unwrap()
        );
    }

    // CSV: a header, then one record per candidate, in the JSON's order.
    let csv = String::from_utf8(run(&["--format", "csv"]).stdout).unwrap();
    let records = parse_csv(&csv);
    assert_eq!(records[0][..3], ["category", "repository", "tag"]);
    let rows: Vec<(String, String)> = (records[1..].iter())
        .filter(|r| !r[1].starts_with("mongo:"))
        .map(|r| (r[0].clone(), format!("{}:{}", r[1], r[2])))
        .collect();
    assert_eq!(rows, tag_candidates);
    // Table: every candidate on a row of its own, and a totals row per category.
    let table = String::from_utf8(run(&["--format", "table"]).stdout).unwrap();
    for (cat, image) in &tag_candidates {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(cat.as_str()) && l.contains(&format!(" {image} "))),
            "{cat} {image} not in the table"
        );
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("CATEGORY") && l.contains(" CANDIDATES ")),
        "{table}"
    );

    // Grouped by owner: the groups split the plan's bytes, none counted twice.
    let g: Value = serde_json::from_slice(&run(&["--group-by", "owner"]).stdout).unwrap();
    let grouping = &g["grouping"];
    assert_eq!(grouping["by"], "owner");
    let groups = grouping["groups"].as_array().unwrap();
    assert!(groups.len() >= 2, "{grouping}");
    let exclusive: u64 = groups.iter().map(|x| x["exclusive_bytes"].as_u64().unwrap()).sum();
    let joint = grouping["joint_bytes"].as_u64().unwrap();
    assert_eq!(
        joint,
        g["plan"]["reclaimable_bytes"].as_u64().unwrap(),
        "the plan's bytes"
    );
    assert_eq!(exclusive + grouping["shared_total_bytes"].as_u64().unwrap(), joint);
    let distinct: std::collections::BTreeSet<&String> = tag_candidates.iter().map(|(_, t)| t).collect();
    let tags: u64 = groups.iter().map(|x| x["tag_count"].as_u64().unwrap()).sum();
    assert_eq!(tags as usize, distinct.len(), "each candidate tag in one group");
    let grouped_csv = String::from_utf8(run(&["--group-by", "environment", "--format", "csv"]).stdout).unwrap();
    let records = parse_csv(&grouped_csv);
    assert_eq!(records[0][0], "group_by");
    assert!(
        records[1..].iter().all(|r| r[0] == "environment" && r.len() == 8),
        "{grouped_csv}"
    );
}

/// `--help` ends with the exit codes and examples and names the variable behind each flag a
/// variable can set; `completions <shell>` and `man` are generated from the same definition and
/// need no valid configuration.
#[test]
fn help_completions_and_man_come_from_the_cli_definition() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.yaml"), "registry: [not, a, mapping]\n").unwrap();
    let out = bin(&["--help"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let help = String::from_utf8(out.stdout).unwrap();
    for want in [
        "Exit codes:",
        "0  done",
        "2  cannot run",
        "3  `delete --apply` deleted nothing it planned",
        "Examples:",
        "registry-cleaner report --format table --group-by owner",
        "[env: CONFIG_FILE]",
        "[env: REGISTRY_URL]",
        "[env: REPOSITORY]",
        "[env: REGISTRY_PASSWORD_FILE]",
        "[env: LOG_FORMAT",
    ] {
        assert!(help.contains(want), "{want:?} not in --help:\n{help}");
    }
    let report_help = String::from_utf8(bin(&["report", "--help"], dir.path()).stdout).unwrap();
    assert!(
        report_help.contains("--format <FORMAT>") && report_help.contains("[possible values: json, table, csv]"),
        "{report_help}"
    );
    assert!(report_help.contains("--group-by <KEY>") && report_help.contains("owner, project, environment"));

    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef registry-cleaner"),
        ("fish", "complete -c registry-cleaner"),
        ("elvish", "registry-cleaner"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = bin(&["completions", shell], dir.path());
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(marker), "{shell}: {marker:?} missing");
        assert!(
            text.contains("group-by") && text.contains("doctor"),
            "{shell}: flags and commands"
        );
    }
    let out = bin(&["completions", "tcsh"], dir.path());
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");

    let out = bin(&["man"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let man = String::from_utf8(out.stdout).unwrap();
    assert!(man.starts_with(".ie") || man.contains(".TH registry-cleaner"), "{man}");
    assert!(
        man.contains(".TH registry-cleaner") && man.contains("Exit codes"),
        "roff with the after-help"
    );
    assert!(
        man.contains("\\-\\-registry") && man.contains("completions"),
        "flags and commands"
    );
}

/// The help text states the default concurrency the settings actually use (it once said 16
/// while the default was 8).
#[test]
fn the_concurrency_default_in_help_is_the_one_settings_use() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin(&["--help"], dir.path());
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let at = help.find("--concurrency").expect("--concurrency in --help");
    let para = &help[at..help[at..].find("\n\n").map_or(help.len(), |e| at + e)];
    let want = format!("default {}", registry_cleaner::settings::DEFAULT_CONCURRENCY);
    assert!(para.contains(&want), "{para}");
}
