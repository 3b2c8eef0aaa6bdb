//! The TUI deletes exactly what the operator confirmed, against a real registry: the plan is
//! frozen in the modal; a reload that lands under the open modal (with a tag pushed that sorts
//! first, so every later tag's position shifts) makes the modal ask again, and confirming
//! deletes the frozen plan's digest and nothing else. `w` writes the tag that was marked.

mod support;

use registry_cleaner::app::{self, Action, App, AppConfig, Cmd, DatasetMsg, Mode, Msg};
use registry_cleaner::dataset::{Dataset, SourceKind};
use registry_cleaner::plan::CategoryId;
use registry_cleaner::settings::{FlagOverrides, Settings};
use registry_cleaner::sources::registry::{RegistryClient, RegistryOptions};
use registry_cleaner::tui::backend::LiveBackend;
use registry_cleaner::tui::{Executor as _, Loader as _, Progress};
use registry_cleaner::world::{self, ImageSpec, LayerSpec, MediaFlavor, TagSpec, TagTarget, sample_registry};
use support::registry::Registry;

const ENV: &str = "dominodatalab/environment";
const X: &str = "65a000000000000000000002-3";

fn settings(url: &str, mongo: &str, dir: &std::path::Path) -> Settings {
    let cfg = dir.join("config.yaml");
    std::fs::write(
        &cfg,
        format!("analysis:\n  output_dir: {}\n", dir.join("out").display()),
    )
    .unwrap();
    let flags = FlagOverrides {
        registry: Some(url.to_string()),
        without: vec![SourceKind::Kubernetes, SourceKind::Keycloak],
        ..FlagOverrides::default()
    };
    let env = [
        ("HOME".to_string(), dir.display().to_string()),
        ("MONGODB_URI".to_string(), mongo.to_string()),
    ]
    .into_iter()
    .collect();
    Settings::load(Some(&cfg), &env, &flags).expect("settings")
}

fn load(rt: &tokio::runtime::Runtime, backend: &LiveBackend) -> Dataset {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    rt.block_on(backend.load(Progress::new(tx))).expect("load")
}

fn send(app: &mut App, msgs: impl IntoIterator<Item = Msg>) -> Vec<Cmd> {
    msgs.into_iter().filter_map(|m| app::update(app, m)).collect()
}

/// A registry with the sample world, the app loaded from it, and `X` marked.
struct World {
    _reg: Registry,
    _mongo: support::mongo::MongoServer,
    rt: tokio::runtime::Runtime,
    client: RegistryClient,
    backend: LiveBackend,
    app: App,
    _dir: tempfile::TempDir,
}

fn world() -> World {
    let reg = Registry::start();
    // An empty Domino database: every tag is unreferenced, so X is a real candidate of the
    // category it is marked under (the delete re-checks that).
    let mongo = support::mongo::MongoServer::start();
    let dir = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    rt.block_on(async {
        let c = mongodb::Client::with_uri_str(&mongo.uri).await.unwrap();
        c.database("domino").create_collection("environments_v2").await.unwrap();
        support::mongo::create_protecting_collections(&c.database("domino")).await;
    });
    let client = RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    rt.block_on(world::push(&client, &sample_registry("dominodatalab", now)))
        .unwrap();
    let settings = settings(&reg.url(), &mongo.uri, dir.path());
    let backend = LiveBackend::new(settings.clone(), None);
    let config = AppConfig {
        plan_path: dir.path().join("plan.json").display().to_string(),
        fingerprint: registry_cleaner::ops::connect::settings_fingerprint(&settings),
        ..AppConfig::default()
    };
    let mut app = App::new(config, now);
    let gen_ = app.load_generation;
    let ds = load(&rt, &backend);
    send(&mut app, [Msg::Loaded(gen_, Box::new(DatasetMsg(ds)))]);
    let data = app.data.as_mut().unwrap();
    let x = data.dataset.inventory.find_tag(ENV, X).expect("X is in the registry");
    let unreferenced = data
        .dataset
        .categories
        .iter()
        .find(|c| c.id == CategoryId::UnreferencedTags)
        .unwrap();
    assert!(unreferenced.candidates.iter().any(|c| c.tag == x), "X is a candidate");
    let inv = data.dataset.inventory.clone();
    data.selection.set(&inv, x, CategoryId::UnreferencedTags, true);
    World {
        _reg: reg,
        _mongo: mongo,
        rt,
        client,
        backend,
        app,
        _dir: dir,
    }
}

impl World {
    fn digest_of(&self, tag: &str) -> Option<String> {
        self.rt.block_on(self.client.head_manifest(ENV, tag)).unwrap()
    }

    /// Pushes a tag that sorts before every other one, onto a new image, then reloads.
    fn push_first_tag_and_reload(&mut self) {
        let img = ImageSpec {
            layers: vec![LayerSpec {
                seed: 77_777,
                size: 5_000,
            }],
            created: self.app.now,
            flavor: MediaFlavor::Docker,
            architecture: "amd64".into(),
            label: "first".into(),
        };
        let spec = TagSpec {
            repository: ENV.into(),
            tag: "000-first".into(),
            target: TagTarget::Image(img),
        };
        self.rt.block_on(world::push(&self.client, &[spec])).unwrap();
        let cmd = self.app.start_load();
        let Cmd::Load(generation) = cmd else { panic!() };
        let ds = load(&self.rt, &self.backend);
        send(&mut self.app, [Msg::Loaded(generation, Box::new(DatasetMsg(ds)))]);
    }

    /// Every tag of the environment repository with its digest.
    fn env_tags(&self) -> Vec<(String, Option<String>)> {
        let tags = self.rt.block_on(self.client.tags(ENV)).unwrap();
        tags.into_iter().map(|t| (t.clone(), self.digest_of(&t))).collect()
    }
}

#[test]
fn a_reload_under_the_open_modal_asks_again_and_confirming_deletes_only_the_frozen_digest() {
    let mut w = world();
    let x_digest = w.digest_of(X).expect("X resolves");
    send(&mut w.app, [Msg::Key(Action::RequestDelete)]);
    let Mode::Confirm(c) = &w.app.mode else {
        panic!("the modal opens")
    };
    assert_eq!(c.plan.core.manifests.len(), 1);
    assert_eq!(c.plan.core.manifests[0].digest, x_digest);
    // The operator starts typing; then the data reloads under the modal.
    let word = c.plan.confirmation_word();
    send(&mut w.app, [Msg::Key(Action::SwitchButton)]);
    send(&mut w.app, word.chars().map(Msg::Input));
    w.push_first_tag_and_reload();
    let Mode::Confirm(c) = &w.app.mode else {
        panic!("still confirming")
    };
    let recheck = c.stale.clone().expect("the modal says the data was reloaded");
    assert_eq!(recheck.delete, 1, "{recheck:?}");
    assert!(c.typed.is_empty(), "asked again: what was typed is cleared");
    assert_eq!(
        c.plan.core.manifests[0].digest, x_digest,
        "the frozen plan is unchanged"
    );
    assert_eq!(c.focus, app::Button::Cancel, "asked again: focus back on Cancel");
    // Typing again confirms.
    send(&mut w.app, [Msg::Key(Action::SwitchButton)]);
    let cmds = send(
        &mut w.app,
        word.chars().map(Msg::Input).chain([Msg::Key(Action::Confirm)]),
    );
    let [Cmd::Execute(plan)] = cmds.as_slice() else {
        panic!("{cmds:?}")
    };
    let before = w.env_tags();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let end = w.rt.block_on(
        w.backend
            .execute((**plan).clone(), Progress::new(tx), Default::default()),
    );
    let mut outcomes = vec![];
    while let Ok(m) = rx.try_recv() {
        if let Msg::ItemDone { index, outcome } = m {
            outcomes.push((index, outcome));
        }
    }
    assert_eq!(outcomes, vec![(0, app::Outcome::Deleted)], "{end:?}");
    let after = w.env_tags();
    for (tag, digest) in &before {
        let now = after.iter().find(|(t, _)| t == tag).and_then(|(_, d)| d.clone());
        if digest.as_deref() == Some(x_digest.as_str()) {
            assert_eq!(now, None, "{tag} (on X's digest) is gone");
        } else {
            assert_eq!(&now, digest, "{tag} is untouched");
        }
    }
    assert!(end.reclaimable_bytes > 0, "{end:?}");
    let audit = std::fs::read_to_string(w._dir.path().join("out/audit.jsonl")).unwrap();
    let actions: Vec<&str> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(
            |v| match (v["action"].as_str().unwrap(), v["result"].as_str().unwrap()) {
                ("plan-start", _) => "start",
                ("plan-end", _) => "end",
                // The write-ahead line, fsynced before the DELETE is sent.
                (_, "started") => "intent",
                _ => "delete",
            },
        )
        .collect();
    assert_eq!(actions, ["start", "intent", "delete", "end"], "{audit}");
}

#[test]
fn w_after_a_reload_that_shifts_every_tag_writes_the_marked_tag() {
    let mut w = world();
    let x_digest = w.digest_of(X).unwrap();
    w.push_first_tag_and_reload();
    let cmds = send(&mut w.app, [Msg::Key(Action::WritePlan)]);
    let [Cmd::WritePlan(path, frozen)] = cmds.as_slice() else {
        panic!("{cmds:?}")
    };
    let report = frozen.report();
    let digests: Vec<&str> = report.plan.manifests.iter().map(|m| m.digest.as_str()).collect();
    assert_eq!(digests, vec![x_digest.as_str()]);
    let tags: Vec<&str> = report.plan.tags.iter().map(|t| t.tag.as_str()).collect();
    assert_eq!(tags, vec![X]);
    w.rt.block_on(w.backend.write_plan(path.clone(), report.clone()))
        .unwrap();
    let written: registry_cleaner::report::json::Report =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(written.plan, report.plan, "the file holds the plan that was frozen");
}

#[test]
fn a_mark_never_moves_to_another_image_when_its_tag_is_re_pushed() {
    let mut w = world();
    // X is re-pushed with another image between the mark and the reload.
    let img = ImageSpec {
        layers: vec![LayerSpec {
            seed: 88_888,
            size: 6_000,
        }],
        created: w.app.now,
        flavor: MediaFlavor::Docker,
        architecture: "amd64".into(),
        label: "moved".into(),
    };
    let spec = TagSpec {
        repository: ENV.into(),
        tag: X.into(),
        target: TagTarget::Image(img),
    };
    w.rt.block_on(world::push(&w.client, &[spec])).unwrap();
    let Cmd::Load(generation) = w.app.start_load() else {
        panic!()
    };
    let ds = load(&w.rt, &w.backend);
    send(&mut w.app, [Msg::Loaded(generation, Box::new(DatasetMsg(ds)))]);
    assert!(
        w.app.data.as_ref().unwrap().selection.is_empty(),
        "the mark was dropped"
    );
    assert!(
        w.app.notice.as_deref().unwrap_or_default().contains("1 marks dropped"),
        "{:?}",
        w.app.notice
    );
    let cmds = send(&mut w.app, [Msg::Key(Action::RequestDelete)]);
    assert!(cmds.is_empty() && w.app.mode == Mode::Browse, "nothing to confirm");
}

/// issue 11.10 in the TUI: the orphaned-references category lists Mongo records; one is marked
/// (a protected one cannot be), the modal counts it in the word to type and warns while Mongo
/// cleanup is off, and confirming with cleanup on deletes exactly that document (backed up)
/// through the same delete run as headless mode, against the real registry and SecantusDB.
#[test]
fn an_orphaned_reference_is_marked_confirmed_and_deleted_from_the_tui() {
    use support::mongo_world::{MODEL, id, model_tag, seed, specs};
    let reg = Registry::start();
    let mongo = support::mongo::MongoServer::start();
    let rt = support::runtime();
    rt.block_on(seed(&mongo.uri));
    let client = RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap();
    rt.block_on(world::push(&client, &specs())).unwrap();
    // Version 61's image goes by other means: its model_versions record is orphaned.
    rt.block_on(async {
        let d = client
            .head_manifest(MODEL, &model_tag(60, 1))
            .await
            .unwrap()
            .expect("tag");
        assert!(client.delete_manifest(MODEL, &d).await.unwrap());
    });
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&reg.url(), &mongo.uri, dir.path());
    let backend = LiveBackend::new(settings.clone(), None);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut app = App::new(
        AppConfig {
            plan_path: dir.path().join("plan.json").display().to_string(),
            fingerprint: registry_cleaner::ops::connect::settings_fingerprint(&settings),
            ..AppConfig::default()
        },
        now,
    );
    let ds = load(&rt, &backend);
    let generation = app.load_generation;
    send(&mut app, [Msg::Loaded(generation, Box::new(DatasetMsg(ds)))]);
    app.category = CategoryId::OrphanedReferences;
    let rows = app.record_rows();
    let target = id(61).to_hex();
    let at = rows
        .iter()
        .position(|r| {
            app.record_of(*r)
                .is_some_and(|(rec, _)| rec.document_id.to_string() == target && !r.protected)
        })
        .unwrap_or_else(|| panic!("version 61 is an orphaned reference: {rows:?}"));
    send(&mut app, (0..at).map(|_| Msg::Key(Action::Down)));
    send(&mut app, [Msg::Key(Action::ToggleMark)]);
    assert_eq!(app.data.as_ref().unwrap().selection.record_count(), 1);
    if let Some(p) = rows.iter().position(|r| r.protected) {
        app.list_cursor = p;
        send(&mut app, [Msg::Key(Action::ToggleMark)]);
        assert_eq!(
            app.data.as_ref().unwrap().selection.record_count(),
            1,
            "a protected record was marked"
        );
    }
    send(&mut app, [Msg::Key(Action::RequestDelete)]);
    let Mode::Confirm(c) = &app.mode else {
        panic!("no confirmation: {:?}", app.notice)
    };
    assert_eq!(c.plan.core.records.len(), 1);
    assert_eq!(c.plan.core.records[0].document_id, target);
    assert_eq!(c.plan.confirmation_word(), "1");
    assert!(!c.plan.mongo_cleanup);
    let cmds = send(
        &mut app,
        [
            Msg::Key(Action::ToggleMongo),
            Msg::Input('1'),
            Msg::Key(Action::SwitchButton),
            Msg::Key(Action::Confirm),
        ],
    );
    let plan = cmds
        .into_iter()
        .find_map(|c| match c {
            Cmd::Execute(p) => Some(p),
            _ => None,
        })
        .expect("confirming executes the frozen plan");
    assert!(plan.core.mongo_cleanup);
    let before = rt.block_on(async {
        let c = mongodb::Client::with_uri_str(&mongo.uri).await.unwrap();
        c.database("domino")
            .collection::<mongodb::bson::Document>("model_versions")
            .count_documents(mongodb::bson::doc! {})
            .await
            .unwrap()
    });
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let end = rt.block_on(backend.execute(
        *plan,
        Progress::new(tx),
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    ));
    assert!(
        end.notes
            .iter()
            .any(|n| n.contains("orphaned Mongo references: 1 documents deleted")),
        "{:?}",
        end.notes
    );
    let (gone, after) = rt.block_on(async {
        let c = mongodb::Client::with_uri_str(&mongo.uri).await.unwrap();
        let coll = c
            .database("domino")
            .collection::<mongodb::bson::Document>("model_versions");
        (
            coll.find_one(mongodb::bson::doc! { "_id": id(61) })
                .await
                .unwrap()
                .is_none(),
            coll.count_documents(mongodb::bson::doc! {}).await.unwrap(),
        )
    });
    assert!(gone, "the marked record is deleted");
    assert_eq!(after + 1, before, "nothing else in model_versions went");
}
