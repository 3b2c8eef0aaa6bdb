//! `delete --mongo-cleanup` and `restore` end to end: a real registry and a real SecantusDB,
//! plans made by the real binary, documents gone and backed up, parents with children kept,
//! restore (twice: the second is a no-op), and an injected DELETE failure keeping its records.

mod support;

use mongodb::bson::{DateTime, Document, doc, oid::ObjectId as BsonId};
use registry_cleaner::sources::registry::{RegistryClient, RegistryOptions};
use registry_cleaner::world;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use support::mongo::MongoServer;
use support::proxy::{Fault, Proxy};
use support::registry::Registry;

use support::mongo_world::{CREATED_MS, ENV, MODEL, env_tag, id, model_tag, seed, specs};

async fn ids(uri: &str, coll: &str) -> Vec<BsonId> {
    use futures::TryStreamExt as _;
    let client = mongodb::Client::with_uri_str(uri).await.expect("connect");
    let docs: Vec<Document> = client
        .database("domino")
        .collection::<Document>(coll)
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let mut out: Vec<BsonId> = docs.iter().map(|d| d.get_object_id("_id").unwrap()).collect();
    out.sort();
    out
}

async fn get(uri: &str, coll: &str, n: u8) -> Option<Document> {
    let client = mongodb::Client::with_uri_str(uri).await.expect("connect");
    client
        .database("domino")
        .collection::<Document>(coll)
        .find_one(doc! { "_id": id(n) })
        .await
        .unwrap()
}

fn cmd(dir: &Path, url: &str, mongo: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_registry-cleaner"));
    c.args(args)
        .args(["--registry", url, "--without", "kubernetes", "--without", "keycloak"])
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("MONGODB_URI", mongo)
        .env_remove("REGISTRY_URL")
        .env_remove("MONGODB_USERNAME")
        .env_remove("MONGODB_PASSWORD")
        .stdin(Stdio::null());
    c
}

fn run(dir: &Path, url: &str, mongo: &str, args: &[&str]) -> Output {
    cmd(dir, url, mongo, args).output().expect("run registry-cleaner")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}); exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    json(out)
}

/// `delete --plan P --apply --force --mongo-cleanup --backup B [--audit-log A]`.
fn apply_cleanup(dir: &Path, url: &str, mongo: &str, plan: &str, backup: &Path, audit: Option<&Path>) -> Output {
    let mut args = vec![
        "delete",
        "--plan",
        plan,
        "--apply",
        "--force",
        "--mongo-cleanup",
        "--backup",
        backup.to_str().unwrap(),
    ];
    if let Some(a) = audit {
        args.extend(["--audit-log", a.to_str().unwrap()]);
    }
    run(dir, url, mongo, &args)
}

fn push(url: &str) {
    support::runtime()
        .block_on(world::push(
            &RegistryClient::new(RegistryOptions::new(url)).unwrap(),
            &specs(),
        ))
        .unwrap();
}

fn plan(dir: &Path, url: &str, mongo: &str, select: &[String]) -> String {
    let path = dir.join("plan.json");
    let mut args: Vec<&str> = vec!["report", "--output", path.to_str().unwrap()];
    for s in select {
        args.push("--select");
        args.push(s);
    }
    let out = run(dir, url, mongo, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path.to_str().unwrap().to_string()
}

/// Env 1 and model 50 completely, one revision of env 2 and one version of model 60.
fn selection() -> Vec<String> {
    vec![
        format!("{ENV}:{}", env_tag(1, 1)),
        format!("{ENV}:{}", env_tag(1, 2)),
        format!("{ENV}:{}", env_tag(2, 1)),
        format!("{MODEL}:{}", model_tag(50, 1)),
        format!("{MODEL}:{}", model_tag(50, 2)),
        format!("{MODEL}:{}", model_tag(60, 1)),
    ]
}

#[test]
fn mongo_cleanup_deletes_children_then_parents_backs_up_and_restore_brings_them_back() {
    let reg = Registry::start();
    let mongo = MongoServer::start();
    let rt = support::runtime();
    rt.block_on(seed(&mongo.uri));
    let url = reg.url();
    push(&url);
    let dir = tempfile::tempdir().unwrap();
    let p = plan(dir.path(), &url, &mongo.uri, &selection());

    // Dry run: shows what would go, deletes nothing.
    let dry = ok_json(&run(
        dir.path(),
        &url,
        &mongo.uri,
        &["delete", "--plan", &p, "--mongo-cleanup"],
    ));
    assert_eq!(dry["mongo"]["dry_run"], true);
    assert_eq!(dry["mongo"]["would_delete"], 8, "{}", dry["mongo"]);
    assert_eq!(rt.block_on(ids(&mongo.uri, "environment_revisions")).len(), 4);

    let backup = dir.path().join("backup.jsonl");
    let audit = dir.path().join("audit.jsonl");
    let applied = ok_json(&apply_cleanup(dir.path(), &url, &mongo.uri, &p, &backup, Some(&audit)));
    assert_eq!(applied["summary"]["deleted"], 6, "{applied}");
    let m = &applied["mongo"];
    assert_eq!(m["failed"], 0, "{m}");
    assert_eq!(m["deleted"]["model_versions"], 3, "{m}");
    assert_eq!(m["deleted"]["models"], 1, "{m}");
    assert_eq!(m["deleted"]["environment_revisions"], 3, "{m}");
    assert_eq!(m["deleted"]["environments_v2"], 1, "{m}");
    assert_eq!(m["backup"], backup.to_str().unwrap());
    // Parents with remaining children stay, with the reason.
    let kept: Vec<&Value> = m["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["result"] == "skipped")
        .collect();
    assert_eq!(kept.len(), 2, "{m}");
    assert!(
        kept.iter()
            .all(|i| i["reason"].as_str().unwrap().contains("still exists")),
        "{m}"
    );

    assert_eq!(rt.block_on(ids(&mongo.uri, "environments_v2")), vec![id(2)]);
    assert_eq!(rt.block_on(ids(&mongo.uri, "environment_revisions")), vec![id(22)]);
    assert_eq!(rt.block_on(ids(&mongo.uri, "models")), vec![id(60)]);
    assert_eq!(rt.block_on(ids(&mongo.uri, "model_versions")), vec![id(62)]);

    // The backup holds exactly the deleted documents, children before parents.
    let lines: Vec<Value> = std::fs::read_to_string(&backup)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    let order: Vec<&str> = lines.iter().map(|l| l["collection"].as_str().unwrap()).collect();
    assert_eq!(
        order,
        [
            "model_versions",
            "model_versions",
            "model_versions",
            "models",
            "environment_revisions",
            "environment_revisions",
            "environment_revisions",
            "environments_v2"
        ]
    );
    assert_eq!(lines[7]["document"]["_id"]["$oid"], id(1).to_hex());
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(
        audit_text
            .lines()
            .filter(|l| l.contains("\"action\":\"mongo-delete\""))
            .count(),
        10
    );

    // Restore brings every document back, field for field.
    let restored = ok_json(&run(
        dir.path(),
        &url,
        &mongo.uri,
        &["restore", "--backup", backup.to_str().unwrap()],
    ));
    assert_eq!(restored["already_present"], 0, "{restored}");
    assert_eq!(restored["restored"]["environment_revisions"], 3, "{restored}");
    assert_eq!(rt.block_on(ids(&mongo.uri, "environments_v2")).len(), 2);
    assert_eq!(rt.block_on(ids(&mongo.uri, "environment_revisions")).len(), 4);
    assert_eq!(rt.block_on(ids(&mongo.uri, "models")).len(), 2);
    assert_eq!(rt.block_on(ids(&mongo.uri, "model_versions")).len(), 4);
    let env = rt.block_on(get(&mongo.uri, "environments_v2", 1)).unwrap();
    assert_eq!(env.get_object_id("activeRevisionId").unwrap(), id(12));
    assert_eq!(env.get_datetime("created").unwrap(), &DateTime::from_millis(CREATED_MS));
    let v = rt.block_on(get(&mongo.uri, "model_versions", 51)).unwrap();
    assert_eq!(
        v.get_document("modelId").unwrap().get_object_id("value").unwrap(),
        id(50)
    );

    // A second restore is a no-op.
    let again = ok_json(&run(
        dir.path(),
        &url,
        &mongo.uri,
        &["restore", "--backup", backup.to_str().unwrap()],
    ));
    assert_eq!(again["already_present"], 8, "{again}");
    assert_eq!(again["restored"], serde_json::json!({}), "{again}");
    assert_eq!(rt.block_on(ids(&mongo.uri, "environments_v2")).len(), 2);

    // Re-running the same plan (resume): the images are already gone, and so are the
    // records — restored ones are deleted again, nothing else is touched.
    let rerun = ok_json(&run(
        dir.path(),
        &url,
        &mongo.uri,
        &[
            "delete",
            "--plan",
            &p,
            "--apply",
            "--force",
            "--mongo-cleanup",
            "--backup",
            dir.path().join("b2.jsonl").to_str().unwrap(),
        ],
    ));
    assert_eq!(rerun["summary"]["already_deleted"], 6, "{rerun}");
    assert_eq!(rt.block_on(ids(&mongo.uri, "environments_v2")), vec![id(2)]);
    assert_eq!(rt.block_on(ids(&mongo.uri, "model_versions")), vec![id(62)]);
}

#[test]
fn a_failed_registry_delete_keeps_its_mongo_records() {
    let reg = Registry::start();
    let mongo = MongoServer::start();
    let rt = support::runtime();
    rt.block_on(seed(&mongo.uri));
    push(&reg.url());
    // Every DELETE of a manifest fails with 500, except the pre-flight probe (sha256:000…).
    let broken = Arc::new(|_n: u64, m: &str, path: &str| {
        if m == "DELETE" && path.contains("/model/manifests/") {
            Fault::Status(500, None)
        } else {
            Fault::Pass
        }
    });
    let proxy = Proxy::start(&rt, reg.url(), broken);
    let url = proxy.url();
    let dir = tempfile::tempdir().unwrap();
    let p = plan(dir.path(), &url, &mongo.uri, &selection());
    let backup = dir.path().join("backup.jsonl");
    let out = apply_cleanup(dir.path(), &url, &mongo.uri, &p, &backup, None);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    assert_eq!(v["summary"]["failed"], 3, "{v}");
    assert_eq!(v["summary"]["deleted"], 3, "{v}");
    // Model records stay: versions and models; the environment side went.
    assert_eq!(rt.block_on(ids(&mongo.uri, "model_versions")).len(), 4);
    assert_eq!(rt.block_on(ids(&mongo.uri, "models")).len(), 2);
    assert_eq!(rt.block_on(ids(&mongo.uri, "environment_revisions")), vec![id(22)]);
    // Env 1 goes: only archived model 50 names it, and its versions do not protect revisions.
    assert_eq!(rt.block_on(ids(&mongo.uri, "environments_v2")), vec![id(2)]);
    let text = std::fs::read_to_string(&backup).unwrap();
    assert!(!text.contains("\"model_versions\""), "{text}");
}

#[test]
fn restore_of_a_missing_or_malformed_backup_is_a_clear_error() {
    let mongo = MongoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.jsonl");
    let out = run(
        dir.path(),
        "http://127.0.0.1:9",
        &mongo.uri,
        &["restore", "--backup", missing.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope.jsonl: backup file not found"), "{err}");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"collection\":\"models\",\"document\":{\"_id\":{\"$oid\":\"66000000000000000000000b\"}}}\n{oops\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        "http://127.0.0.1:9",
        &mongo.uri,
        &["restore", "--backup", bad.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl:2: not a backup line"), "{err}");
    // Nothing was inserted from a file that did not parse.
    assert!(support::runtime().block_on(ids(&mongo.uri, "models")).is_empty());
}

/// Every collection's `_id`s.
async fn all_ids(uri: &str) -> std::collections::BTreeMap<String, Vec<BsonId>> {
    let client = mongodb::Client::with_uri_str(uri).await.expect("connect");
    let mut out = std::collections::BTreeMap::new();
    for c in client.database("domino").list_collection_names().await.unwrap() {
        out.insert(c.clone(), ids(uri, &c).await);
    }
    out
}

/// (collection, _id) of every backed-up document, in file order.
fn backed_up(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| {
            (
                v["collection"].as_str().unwrap().to_string(),
                v["document"]["_id"].to_string(),
            )
        })
        .collect()
}

/// The TUI's confirmed run with the Mongo switch on (Ctrl-O in the modal) goes through the
/// same delete run as `delete --plan --apply --mongo-cleanup`: on two identical worlds it
/// removes and backs up the same documents, and writes the same audit framing.
#[test]
fn the_tui_run_with_mongo_cleanup_matches_headless_on_the_same_world() {
    use registry_cleaner::app::{self, Action, App, AppConfig, Cmd, DatasetMsg, Mode, Msg};
    use registry_cleaner::plan::CategoryId;
    use registry_cleaner::settings::{FlagOverrides, Settings};
    use registry_cleaner::tui::{Executor as _, Loader as _, Progress, backend::LiveBackend};

    let rt = support::runtime();
    let worlds: Vec<(Registry, MongoServer)> = (0..2)
        .map(|_| {
            let reg = Registry::start();
            let mongo = MongoServer::start();
            rt.block_on(seed(&mongo.uri));
            push(&reg.url());
            (reg, mongo)
        })
        .collect();

    // Headless on world 0.
    let (reg, mongo) = &worlds[0];
    let hdir = tempfile::tempdir().unwrap();
    let p = plan(hdir.path(), &reg.url(), &mongo.uri, &selection());
    let backup = hdir.path().join("backup.jsonl");
    let audit = hdir.path().join("audit.jsonl");
    let headless = ok_json(&apply_cleanup(
        hdir.path(),
        &reg.url(),
        &mongo.uri,
        &p,
        &backup,
        Some(&audit),
    ));

    // The TUI on world 1: the same tags marked, Ctrl-O, typed confirmation.
    let (reg, mongo) = &worlds[1];
    let tdir = tempfile::tempdir().unwrap();
    let cfg = tdir.path().join("config.yaml");
    let out_dir = tdir.path().join("out");
    std::fs::write(&cfg, format!("analysis:\n  output_dir: {}\n", out_dir.display())).unwrap();
    let flags = FlagOverrides {
        registry: Some(reg.url()),
        without: vec![
            registry_cleaner::dataset::SourceKind::Kubernetes,
            registry_cleaner::dataset::SourceKind::Keycloak,
        ],
        ..FlagOverrides::default()
    };
    let env = [
        ("HOME".to_string(), tdir.path().display().to_string()),
        ("MONGODB_URI".to_string(), mongo.uri.clone()),
    ]
    .into_iter()
    .collect();
    let settings = Settings::load(Some(&cfg), &env, &flags).expect("settings");
    let backend = LiveBackend::new(settings.clone(), None);
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let ds = rt.block_on(backend.load(Progress::new(tx))).expect("load");
    let config = AppConfig {
        fingerprint: registry_cleaner::ops::connect::settings_fingerprint(&settings),
        ..AppConfig::default()
    };
    let mut app = App::new(config, ds.generated_at);
    let generation = app.load_generation;
    app::update(&mut app, Msg::Loaded(generation, Box::new(DatasetMsg(ds))));
    let data = app.data.as_mut().unwrap();
    let inv = data.dataset.inventory.clone();
    for s in selection() {
        let (repo, tag) = s.rsplit_once(':').unwrap();
        let t = inv.find_tag(repo, tag).expect("selected tag exists");
        let category = if repo == MODEL {
            CategoryId::ArchivedModels
        } else {
            CategoryId::ArchivedEnvironments
        };
        data.selection.set(&inv, t, category, true);
    }
    app::update(&mut app, Msg::Key(Action::RequestDelete));
    app::update(&mut app, Msg::Key(Action::ToggleMongo));
    app::update(&mut app, Msg::Key(Action::SwitchButton));
    let Mode::Confirm(c) = &app.mode else { panic!("modal") };
    assert!(c.plan.core.mongo_cleanup, "Ctrl-O switched the plan's Mongo step on");
    let word = c.plan.confirmation_word();
    let mut cmd = None;
    for m in word.chars().map(Msg::Input).chain([Msg::Key(Action::Confirm)]) {
        cmd = app::update(&mut app, m).or(cmd);
    }
    let Some(Cmd::Execute(plan)) = cmd else {
        panic!("{cmd:?}")
    };
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let end = rt.block_on(backend.execute(*plan, Progress::new(tx), Default::default()));
    assert!(
        end.notes
            .iter()
            .any(|n| n.starts_with("Mongo cleanup: 8 documents deleted, 0 failed")),
        "{end:?}"
    );

    assert_eq!(headless["mongo"]["failed"], 0, "{headless}");
    assert_eq!(
        rt.block_on(all_ids(&worlds[0].1.uri)),
        rt.block_on(all_ids(&worlds[1].1.uri)),
        "the same documents remain"
    );
    let tui_backup = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("mongo-backup-"))
        .expect("the TUI's run backed up to the output directory");
    assert_eq!(
        backed_up(&backup),
        backed_up(&tui_backup),
        "the same documents backed up"
    );
    assert_eq!(
        headless["reclaimable_bytes_after_gc"].as_u64().unwrap(),
        end.reclaimable_bytes,
        "the same bytes after GC"
    );
    let framing = |p: &Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["action"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .filter(|a| a.starts_with("plan-"))
            .collect()
    };
    assert_eq!(framing(&audit), ["plan-start", "plan-end"]);
    assert_eq!(framing(&out_dir.join("audit.jsonl")), ["plan-start", "plan-end"]);
}

/// Makes the plan through a proxy that passes everything, then arms `rule` and runs the plan
/// with the Mongo cleanup; returns the results, the exit status, and Mongo before and after.
fn apply_through(
    rule: impl Fn(u64, &str, &str) -> Fault + Send + Sync + 'static,
) -> (Value, std::process::ExitStatus, BTreeIds, BTreeIds) {
    let reg = Registry::start();
    let mongo = MongoServer::start();
    let rt = support::runtime();
    rt.block_on(seed(&mongo.uri));
    push(&reg.url());
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let a = armed.clone();
    let proxy = Proxy::start(
        &rt,
        reg.url(),
        Arc::new(move |n: u64, m: &str, path: &str| {
            if a.load(std::sync::atomic::Ordering::SeqCst) {
                rule(n, m, path)
            } else {
                Fault::Pass
            }
        }),
    );
    let url = proxy.url();
    let dir = tempfile::tempdir().unwrap();
    let p = plan(dir.path(), &url, &mongo.uri, &selection());
    let before = rt.block_on(all_ids(&mongo.uri));
    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let backup = dir.path().join("backup.jsonl");
    let out = apply_cleanup(dir.path(), &url, &mongo.uri, &p, &backup, None);
    let after = rt.block_on(all_ids(&mongo.uri));
    (json(&out), out.status, before, after)
}

type BTreeIds = std::collections::BTreeMap<String, Vec<BsonId>>;

/// A front that answers every manifest DELETE with a bare 404 and deletes nothing: no item
/// may count as "already deleted", no Mongo record of an image that still exists may go.
#[test]
fn a_bare_404_to_delete_is_not_gone_and_keeps_every_mongo_record() {
    let rule = |_n: u64, m: &str, _path: &str| {
        if m == "DELETE" {
            Fault::Status(404, None)
        } else {
            Fault::Pass
        }
    };
    let (v, status, before, after) = apply_through(rule);
    assert_eq!(status.code(), Some(1), "{v}");
    assert_eq!(v["summary"]["already_deleted"], 0, "{v}");
    assert_eq!(v["summary"]["deleted"], 0, "{v}");
    assert_eq!(v["summary"]["failed"], v["items"].as_array().unwrap().len(), "{v}");
    assert_eq!(before, after, "no Mongo document was deleted");
}

/// A tags/list that 404s during the delete's fresh scan hides the repository: its manifests
/// are absent from the scan but still served, so they fail (never "already deleted") and their
/// Mongo records stay.
#[test]
fn a_tags_list_404_hides_nothing_into_already_deleted() {
    let rule = |_n: u64, m: &str, path: &str| {
        if m == "GET" && path.contains("/environment/tags/list") {
            Fault::Status(404, None)
        } else {
            Fault::Pass
        }
    };
    let (v, status, before, after) = apply_through(rule);
    assert_eq!(status.code(), Some(1), "{v}");
    let items = v["items"].as_array().unwrap();
    let env_items: Vec<&Value> = items.iter().filter(|i| i["repository"] == ENV).collect();
    assert!(!env_items.is_empty());
    assert!(env_items.iter().all(|i| i["result"] == "failed"), "{v}");
    for coll in ["environment_revisions", "environments_v2"] {
        assert_eq!(
            before[coll], after[coll],
            "{coll}: no record of a still-served image went"
        );
    }
}

/// An environment un-archived after the report is no longer a candidate of the category it was
/// planned under: its tags are skipped at delete time (the plan's 24 h do not override it).
#[test]
fn an_environment_unarchived_after_the_report_keeps_its_tags() {
    let reg = Registry::start();
    let mongo = MongoServer::start();
    let rt = support::runtime();
    rt.block_on(seed(&mongo.uri));
    let url = reg.url();
    push(&url);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    let out = run(
        dir.path(),
        &url,
        &mongo.uri,
        &[
            "report",
            "--category",
            "archived-environments",
            "--output",
            path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let planned: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let env1: Vec<String> = [env_tag(1, 1), env_tag(1, 2)].into();
    let tags: Vec<&str> = planned["plan"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    assert!(
        env1.iter().all(|t| tags.contains(&t.as_str())),
        "env 1 is planned: {tags:?}"
    );
    // Someone un-archives environment 1.
    rt.block_on(async {
        let c = mongodb::Client::with_uri_str(&mongo.uri).await.unwrap();
        c.database("domino")
            .collection::<Document>("environments_v2")
            .update_one(doc! { "_id": id(1) }, doc! { "$set": { "isArchived": false } })
            .await
            .unwrap();
    });
    let out = run(
        dir.path(),
        &url,
        &mongo.uri,
        &["delete", "--plan", path.to_str().unwrap(), "--apply", "--force"],
    );
    let v = json(&out);
    let mut not_candidate = 0;
    for i in v["items"].as_array().unwrap() {
        let on_env1 = i["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| env1.iter().any(|e| t == e.as_str()));
        if on_env1 {
            // Un-archived and used by nothing, it is no candidate of archived-environments any
            // more (as an unused environment it would go whole, but it was not planned so).
            assert_eq!(i["result"], "skipped", "{i}");
            if i["reason"]
                .as_str()
                .unwrap()
                .contains("no longer a candidate of archived-environments")
            {
                not_candidate += 1;
            }
        }
    }
    assert_eq!(not_candidate, 2, "{v}");
    let c = RegistryClient::new(RegistryOptions::new(&url)).unwrap();
    for t in &env1 {
        assert!(rt.block_on(c.head_manifest(ENV, t)).unwrap().is_some(), "{t} kept");
    }
    // Environment 2 is still archived: its planned tags went.
    assert!(
        rt.block_on(c.head_manifest(ENV, &env_tag(2, 1))).unwrap().is_none(),
        "{v}"
    );
}

/// Deletes `repo:tag`'s manifest straight through the API ("by other means").
fn delete_by_other_means(url: &str, repo: &str, tag: &str) {
    let client = RegistryClient::new(RegistryOptions::new(url)).unwrap();
    support::runtime().block_on(async {
        let digest = client.head_manifest(repo, tag).await.unwrap().expect("tag exists");
        assert!(client.delete_manifest(repo, &digest).await.unwrap());
    });
}

/// issue 11.11: `mongo-cleanup --file` deletes (backed up) only the records of listed images
/// confirmed gone, keeps records something needs and records of images still present, and
/// `restore` brings them back.
#[test]
fn mongo_cleanup_from_a_tag_file_deletes_only_records_of_images_confirmed_gone() {
    let reg = Registry::start();
    let mongo = MongoServer::start();
    let rt = support::runtime();
    rt.block_on(seed(&mongo.uri));
    push(&reg.url());
    let url = reg.url();
    delete_by_other_means(&url, ENV, &env_tag(1, 1));
    delete_by_other_means(&url, ENV, &env_tag(1, 2));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tags.txt");
    std::fs::write(
        &file,
        format!(
            "# removed by hand last week\n{ENV}:{}\ndocker-registry:5000/{ENV}:{}   trailing words ignored\n\n{ENV}:{}\n{}\n",
            env_tag(1, 1),
            env_tag(1, 2),
            env_tag(2, 1),
            id(50).to_hex()
        ),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let before = rt.block_on(all_ids(&mongo.uri));
    let v = ok_json(&run(dir.path(), &url, &mongo.uri, &["mongo-cleanup", "--file", f]));
    assert_eq!(v["dry_run"], true, "{v}");
    let state = |image: &str| {
        v["listed"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["image"] == image)
            .map(|l| l["state"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{image} not listed: {v}"))
    };
    assert_eq!(state(&format!("{ENV}:{}", env_tag(1, 1))), "gone");
    assert_eq!(state(&format!("{ENV}:{}", env_tag(1, 2))), "gone");
    assert_eq!(state(&format!("{ENV}:{}", env_tag(2, 1))), "present");
    // The id line expands to model 50's recorded slugs (short form); their full tags exist.
    assert_eq!(state(&format!("{MODEL}:{}-v1", id(50).to_hex())), "present");
    assert_eq!(v["mongo"]["would_delete"], 1, "only revision 11: {v}");
    assert_eq!(before, rt.block_on(all_ids(&mongo.uri)), "a dry run changes nothing");
    let item = |id_: u8| {
        v["mongo"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id(id_).to_hex())
            .cloned()
            .unwrap_or_else(|| panic!("no item {id_}: {v}"))
    };
    // Revision 12 is the environment's active revision: orphaned-references keeps it.
    assert!(
        item(12)["reason"].as_str().unwrap().contains("kept: active revision"),
        "{v}"
    );
    // Environment 1 keeps its active revision, so it stays.
    assert!(
        item(1)["reason"].as_str().unwrap().contains("1 revision(s) remain"),
        "{v}"
    );

    let backup = dir.path().join("b.jsonl");
    let out = run(
        dir.path(),
        &url,
        &mongo.uri,
        &[
            "mongo-cleanup",
            "--file",
            f,
            "--apply",
            "--force",
            "--backup",
            backup.to_str().unwrap(),
        ],
    );
    let v = ok_json(&out);
    assert_eq!(v["mongo"]["deleted"]["environment_revisions"], 1, "{v}");
    assert!(rt.block_on(get(&mongo.uri, "environment_revisions", 11)).is_none());
    for (coll, n) in [
        ("environment_revisions", 12),
        ("environment_revisions", 21),
        ("environments_v2", 1),
        ("model_versions", 51),
    ] {
        assert!(rt.block_on(get(&mongo.uri, coll, n)).is_some(), "{coll} {n} must stay");
    }
    assert_eq!(
        backed_up(&backup),
        vec![(
            "environment_revisions".to_string(),
            format!("{{\"$oid\":\"{}\"}}", id(11).to_hex())
        )]
    );
    let out = run(
        dir.path(),
        &url,
        &mongo.uri,
        &["restore", "--backup", backup.to_str().unwrap()],
    );
    ok_json(&out);
    assert_eq!(before, rt.block_on(all_ids(&mongo.uri)), "restore brings it back");
}

/// A GET answered with a bare 404 (no MANIFEST_UNKNOWN) does not confirm an image is gone:
/// nothing is deleted. A line that is not a Domino image is a line-exact error (exit 2).
#[test]
fn mongo_cleanup_from_a_tag_file_fails_closed() {
    let reg = Registry::start();
    let mongo = MongoServer::start();
    let rt = support::runtime();
    rt.block_on(seed(&mongo.uri));
    push(&reg.url());
    delete_by_other_means(&reg.url(), ENV, &env_tag(1, 1));
    let gone = format!("/manifests/{}", env_tag(1, 1));
    let proxy = Proxy::start(
        &rt,
        reg.url(),
        Arc::new(move |_n: u64, _m: &str, path: &str| {
            if path.ends_with(&gone) {
                Fault::Status(404, None)
            } else {
                Fault::Pass
            }
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tags.txt");
    std::fs::write(&file, format!("{ENV}:{}\n", env_tag(1, 1))).unwrap();
    let before = rt.block_on(all_ids(&mongo.uri));
    let f = file.to_str().unwrap();
    let v = ok_json(&run(
        dir.path(),
        &proxy.url(),
        &mongo.uri,
        &["mongo-cleanup", "--file", f, "--apply", "--force"],
    ));
    assert_eq!(v["listed"][0]["state"], "unconfirmed", "{v}");
    assert_eq!(before, rt.block_on(all_ids(&mongo.uri)), "{v}");
    for (text, want) in [
        (
            "library/redis:7\n",
            ":1: \"library/redis:7\": library/redis is not an environment or model repository",
        ),
        (&*format!("# ok\n{ENV}@sha256:{}\n", "a".repeat(64)), ":2: "),
        (&*format!("{ENV}:bad!tag\n"), "is not a valid tag"),
    ] {
        std::fs::write(&file, text).unwrap();
        let out = run(dir.path(), &reg.url(), &mongo.uri, &["mongo-cleanup", "--file", f]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{text}: {err}");
    }
}

/// issue 11.10: orphaned references are planned (`report --category orphaned-references`) and
/// deleted by `delete --plan --apply --mongo-cleanup`, backed up, each re-checked on the fresh
/// data: one whose image came back after the report stays. Without --mongo-cleanup nothing in
/// Mongo changes; `restore` brings the deleted one back.
#[test]
fn orphaned_references_are_planned_re_checked_and_deleted_with_backup() {
    let reg = Registry::start();
    let mongo = MongoServer::start();
    let rt = support::runtime();
    rt.block_on(seed(&mongo.uri));
    push(&reg.url());
    let url = reg.url();
    // Revision 21 (not active) and version 61 lose their images by other means.
    delete_by_other_means(&url, ENV, &env_tag(2, 1));
    delete_by_other_means(&url, MODEL, &model_tag(60, 1));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orphans.json");
    let out = run(
        dir.path(),
        &url,
        &mongo.uri,
        &[
            "report",
            "--category",
            "orphaned-references",
            "--output",
            path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut planned: Vec<String> = report["plan"]["records"]
        .as_array()
        .unwrap_or_else(|| panic!("no records in the plan: {}", report["plan"]))
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["collection"].as_str().unwrap(),
                r["document_id"].as_str().unwrap()
            )
        })
        .collect();
    planned.sort();
    assert_eq!(
        planned,
        vec![
            format!("environment_revisions/{}", id(21).to_hex()),
            format!("model_versions/{}", id(61).to_hex())
        ]
    );
    let p = path.to_str().unwrap();
    let before = rt.block_on(all_ids(&mongo.uri));
    // A dry run and a run without --mongo-cleanup change nothing in Mongo.
    let v = ok_json(&run(
        dir.path(),
        &url,
        &mongo.uri,
        &["delete", "--plan", p, "--mongo-cleanup"],
    ));
    assert_eq!(v["references"]["would_delete"], 2, "{v}");
    let v = json(&run(
        dir.path(),
        &url,
        &mongo.uri,
        &["delete", "--plan", p, "--apply", "--force"],
    ));
    assert_eq!(v["references"]["skipped"], 2, "{v}");
    assert!(
        v["references"]["items"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("only with --mongo-cleanup"),
        "{v}"
    );
    assert_eq!(before, rt.block_on(all_ids(&mongo.uri)));
    // The revision's image comes back before the run: its record is no orphan any more.
    push(&url);
    delete_by_other_means(&url, MODEL, &model_tag(60, 1));
    let backup = dir.path().join("refs.jsonl");
    let out = apply_cleanup(dir.path(), &url, &mongo.uri, p, &backup, None);
    let v = ok_json(&out);
    assert_eq!(v["references"]["deleted"]["model_versions"], 1, "{v}");
    let rev = v["references"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id(21).to_hex())
        .cloned()
        .unwrap();
    assert_eq!(rev["result"], "skipped", "{v}");
    assert!(
        rev["reason"]
            .as_str()
            .unwrap()
            .contains("no longer an orphaned reference"),
        "{rev}"
    );
    assert!(rt.block_on(get(&mongo.uri, "model_versions", 61)).is_none());
    assert!(rt.block_on(get(&mongo.uri, "environment_revisions", 21)).is_some());
    assert_eq!(
        backed_up(&backup),
        vec![(
            "model_versions".to_string(),
            format!("{{\"$oid\":\"{}\"}}", id(61).to_hex())
        )]
    );
    ok_json(&run(
        dir.path(),
        &url,
        &mongo.uri,
        &["restore", "--backup", backup.to_str().unwrap()],
    ));
    assert_eq!(before, rt.block_on(all_ids(&mongo.uri)));
}
