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
    let config = AppConfig {
        log_path: Some("registry-cleaner.log".into()),
        plan_path: "plan.json".into(),
        ..AppConfig::default()
    };
    App::new(config, DEMO_EPOCH)
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
