//! Every screen state rendered into a `TestBackend` at 80×24 and 160×40, as insta snapshots.
//! Time is injected (`DEMO_EPOCH`) and paths are relative, so snapshots are stable.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use registry_cleaner::app::{Action, App, AppConfig, Cursor, DatasetMsg, Mode, Msg, Outcome, update};
use registry_cleaner::dataset::{SourceKind, SourceStatus};
use registry_cleaner::demo::{DEMO_EPOCH, demo_dataset};
use registry_cleaner::plan::{CategoryResult, CategoryStatus};
use registry_cleaner::ui::{self, Theme, UiState};

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 40)];

fn app() -> App {
    app_at(DEMO_EPOCH)
}

fn app_at(now: i64) -> App {
    let config = AppConfig {
        log_path: Some("registry-cleaner.log".into()),
        plan_path: "plan.json".into(),
        ..AppConfig::default()
    };
    App::new(config, now)
}

fn loaded() -> App {
    let mut app = app();
    update(&mut app, Msg::Loaded(0, Box::new(DatasetMsg(demo_dataset(3, 160)))));
    app
}

fn send(app: &mut App, msgs: impl IntoIterator<Item = Msg>) {
    for m in msgs {
        update(app, m);
    }
}

fn key(a: Action) -> Msg {
    Msg::Key(a)
}

/// Opens the first group and puts the cursor on its first row.
fn into_first_group(app: &mut App) {
    send(app, [key(Action::Down), key(Action::Expand), key(Action::Expand)]);
}

/// The screen at 80×24 as text, one line per row.
fn text_80x24(app: &App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let mut ui = UiState::new(Theme { color: false });
    terminal.draw(|f| ui::draw(f, app, &mut ui)).unwrap();
    let buf = terminal.backend().buffer().clone();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn check(name: &str, app: &App) {
    for (w, h) in SIZES {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        let mut ui = UiState::new(Theme { color: false });
        terminal.draw(|f| ui::draw(f, app, &mut ui)).unwrap();
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), terminal.backend());
    }
}

#[test]
fn loading() {
    let mut app = app();
    send(&mut app, [Msg::SourceStatus(SourceKind::Registry, SourceStatus::Ok)]);
    check("loading", &app);
}

#[test]
fn partial_source_failure() {
    let mut app = app();
    let mut data = demo_dataset(3, 160);
    data.sources
        .insert(SourceKind::Mongo, SourceStatus::Failed("connection refused".into()));
    data.sources.insert(SourceKind::Keycloak, SourceStatus::Disabled);
    for c in &mut data.categories {
        if c.id != registry_cleaner::plan::CategoryId::BrokenTags {
            *c = CategoryResult::unavailable(c.id, "mongo failed: connection refused");
        }
    }
    send(&mut app, [Msg::Loaded(0, Box::new(DatasetMsg(data)))]);
    assert!(matches!(
        app.category_result().unwrap().status,
        CategoryStatus::Unavailable(_)
    ));
    check("partial_failure", &app);
}

#[test]
fn browsing_with_marks() {
    let mut app = loaded();
    into_first_group(&mut app);
    send(
        &mut app,
        [
            key(Action::ToggleMark),
            key(Action::Down),
            key(Action::Down),
            key(Action::ToggleMark),
        ],
    );
    check("browse_marks", &app);
}

#[test]
fn filter_active() {
    let mut app = loaded();
    send(&mut app, [key(Action::StartFilter)]);
    send(&mut app, "-1$".chars().map(Msg::Input));
    into_first_group(&mut app);
    check("filter", &app);
}

#[test]
fn protected_tag_details() {
    let mut app = loaded();
    let found = app.view.kinds.iter().enumerate().find_map(|(k, kind)| {
        kind.groups.iter().enumerate().find_map(|(g, group)| {
            group.rows.iter().position(|r| r.protected).map(|r| Cursor {
                kind: k,
                group: Some(g),
                row: Some(r),
            })
        })
    });
    let cursor = found.expect("a protected tag");
    for path in [
        app.view.path(Cursor {
            row: None,
            group: None,
            ..cursor
        }),
        app.view.path(Cursor { row: None, ..cursor }),
    ] {
        app.view.opened.insert(path);
    }
    app.view.cursor = cursor;
    send(&mut app, [key(Action::ToggleMark)]);
    check("protected_details", &app);
}

fn confirming() -> App {
    let mut app = loaded();
    send(&mut app, [key(Action::MarkAllInView), key(Action::StartFilter)]);
    send(&mut app, "-2$".chars().map(Msg::Input));
    send(&mut app, [key(Action::AcceptFilter), key(Action::RequestDelete)]);
    assert!(matches!(app.mode, Mode::Confirm(_)));
    app
}

#[test]
fn confirm_modal() {
    let mut app = confirming();
    send(&mut app, [key(Action::SwitchButton), Msg::Input('d'), Msg::Input('e')]);
    check("confirm", &app);
}

fn executing() -> App {
    let mut app = confirming();
    send(&mut app, [key(Action::SwitchButton)]);
    send(&mut app, "delete".chars().map(Msg::Input));
    send(&mut app, [key(Action::Confirm)]);
    assert!(matches!(app.mode, Mode::Executing(_)));
    send(
        &mut app,
        [
            Msg::ItemDone {
                index: 0,
                outcome: Outcome::Deleted,
            },
            Msg::ItemDone {
                index: 1,
                outcome: Outcome::Failed("HTTP 405: deletion disabled in the registry".into()),
            },
            Msg::ItemDone {
                index: 2,
                outcome: Outcome::Deleted,
            },
            Msg::Tick,
        ],
    );
    app
}

#[test]
fn executing_progress() {
    check("executing", &executing());
}

#[test]
fn done_summary() {
    let mut app = executing();
    let n = match &app.mode {
        Mode::Executing(e) => e.outcomes.len(),
        _ => unreachable!(),
    };
    send(
        &mut app,
        (3..n - 1).map(|index| Msg::ItemDone {
            index,
            outcome: Outcome::Deleted,
        }),
    );
    let bytes = match &app.mode {
        Mode::Executing(e) => e.plan.reclaimable_bytes,
        _ => unreachable!(),
    };
    let end = registry_cleaner::app::RunEnd {
        reclaimable_bytes: bytes,
        notes: vec!["audit log: reports/audit.jsonl".into()],
    };
    send(&mut app, [Msg::ExecutionFinished(end)]);
    assert!(matches!(app.mode, Mode::Done(_)));
    check("done", &app);
}

#[test]
fn help_screen() {
    let mut app = loaded();
    send(&mut app, [key(Action::Help)]);
    check("help", &app);
}

#[test]
fn read_only_help_hides_delete() {
    let mut app = app();
    app.config.read_only = true;
    send(
        &mut app,
        [
            Msg::Loaded(0, Box::new(DatasetMsg(demo_dataset(3, 160)))),
            key(Action::Help),
        ],
    );
    check("help_read_only", &app);
}

/// At 80×24 the help is taller than the screen: scrolling reaches its last line (the plan
/// path), which the unscrolled help does not show; scrolling past the end stays at the end.
#[test]
fn help_scrolls_to_its_last_line_at_80x24() {
    let text = text_80x24;
    let mut app = loaded();
    send(&mut app, [key(Action::Help)]);
    assert!(!text(&app).contains("plan file (w)"), "the help fits: nothing to prove");
    send(&mut app, (0..60).map(|_| key(Action::Down)));
    let end = text(&app);
    assert!(end.contains("plan file (w): plan.json"), "{end}");
    assert!(end.contains("j/k scroll"), "{end}");
    check("help_scrolled_to_end", &app);
    send(&mut app, [key(Action::Close)]);
    assert_eq!(app.help_scroll, 0);
}

/// The details pane scrolls when focused: at 80×24 the layer list of the tag with the most
/// layers runs past the pane; End shows its last layer, and moving the cursor starts over.
#[test]
fn details_scroll_to_the_last_layer_when_focused() {
    let text = text_80x24;
    let mut app = loaded();
    let inv = app.data.as_ref().unwrap().dataset.inventory.clone();
    let layers_of = |tag| {
        let rev = inv.tag(tag).revision()?;
        match &inv.manifest(inv.revision(rev).manifest)?.kind {
            registry_cleaner::model::ManifestKind::Image { layers, .. } => Some(layers.clone()),
            _ => None,
        }
    };
    let mut best: Option<(Cursor, usize)> = None;
    for (k, kind) in app.view.kinds.iter().enumerate() {
        for (g, group) in kind.groups.iter().enumerate() {
            for (r, row) in group.rows.iter().enumerate() {
                let n = layers_of(row.tag).map_or(0, |l| l.len());
                if best.is_none_or(|(_, m)| n > m) {
                    best = Some((
                        Cursor {
                            kind: k,
                            group: Some(g),
                            row: Some(r),
                        },
                        n,
                    ));
                }
            }
        }
    }
    let (cursor, _) = best.unwrap();
    app.view.opened.insert(app.view.path(Cursor {
        row: None,
        group: None,
        ..cursor
    }));
    app.view.opened.insert(app.view.path(Cursor { row: None, ..cursor }));
    app.view.cursor = cursor;
    let tag = app.view.row_at(cursor).unwrap().tag;
    let last = layers_of(tag).unwrap().last().unwrap().digest;
    let hex = &inv.digests.name(last)["sha256:".len()..][..16];
    assert!(!text(&app).contains(hex), "the whole layer list fits: nothing to prove");
    send(&mut app, [key(Action::FocusNext)]);
    assert_eq!(app.focus, registry_cleaner::app::Focus::Details);
    send(&mut app, [key(Action::Bottom)]);
    let end = text(&app);
    assert!(end.contains(hex), "{end}");
    assert!(end.contains(" of "), "the pane says where it is: {end}");
    // Back to the tree: a cursor move shows the next tag's details from the top.
    send(
        &mut app,
        [key(Action::FocusNext), key(Action::FocusNext), key(Action::Down)],
    );
    assert_eq!(app.focus, registry_cleaner::app::Focus::Tree);
    assert_eq!(app.details_scroll, 0);
}

/// The orphaned-references category as a list of Mongo records (one marked, one protected),
/// its details, and the confirmation that warns while Mongo cleanup is off.
#[test]
fn orphaned_records_list_and_confirmation() {
    use registry_cleaner::model::ObjectId;
    use registry_cleaner::plan::OrphanRecord;
    let rec = |n: u8| OrphanRecord {
        collection: "model_versions",
        document_id: ObjectId::from_bytes([n; 12]),
        tag: format!("{}-v{n}-1700000000_ab12", ObjectId::from_bytes([0xcd; 12])),
        reasons: vec!["its image is missing from the registry".into()],
    };
    let mut ds = demo_dataset(3, 160);
    let mut cat = CategoryResult::new(
        registry_cleaner::plan::CategoryId::OrphanedReferences,
        CategoryStatus::Ok,
    );
    cat.records = vec![rec(1), rec(2)];
    cat.protected_records = vec![(rec(3), vec!["the revision is pinned by a scheduled job".into()])];
    ds.categories.retain(|c| c.id != cat.id);
    ds.categories.push(cat);
    let mut app = app();
    send(&mut app, [Msg::Loaded(0, Box::new(DatasetMsg(ds)))]);
    app.category = registry_cleaner::plan::CategoryId::OrphanedReferences;
    send(&mut app, [key(Action::ToggleMark)]);
    check("orphaned_records", &app);
    send(&mut app, [key(Action::RequestDelete)]);
    check("orphaned_records_confirm", &app);
}

/// The untagged-manifests category of a storage inventory: a list of manifests by digest (two
/// candidates, one in its push-time grace period), one marked, its details, and the confirmation.
#[test]
fn untagged_manifests_list_and_confirmation() {
    use registry_cleaner::demo::{STORAGE_DEMO_EPOCH, storage_demo_dataset};
    let mut app = app_at(STORAGE_DEMO_EPOCH);
    send(
        &mut app,
        [Msg::Loaded(0, Box::new(DatasetMsg(storage_demo_dataset(false))))],
    );
    app.category = registry_cleaner::plan::CategoryId::UntaggedManifests;
    send(&mut app, [key(Action::ToggleMark)]);
    check("untagged_manifests", &app);
    send(&mut app, [key(Action::RequestDelete)]);
    check("untagged_manifests_confirm", &app);
}
