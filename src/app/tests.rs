//! `update` driven by message sequences on a small demo dataset, asserting states and commands.

use super::*;
use crate::demo::demo_dataset;

fn config() -> AppConfig {
    AppConfig {
        plan_path: "plan.json".into(),
        ..AppConfig::default()
    }
}

fn loaded_app(config: AppConfig) -> App {
    let mut app = App::new(config, crate::demo::DEMO_EPOCH);
    assert_eq!(
        update(&mut app, Msg::Loaded(0, Box::new(DatasetMsg(demo_dataset(1, 80))))),
        None
    );
    app
}

fn send(app: &mut App, msgs: impl IntoIterator<Item = Msg>) -> Vec<Cmd> {
    msgs.into_iter().filter_map(|m| update(app, m)).collect()
}

fn key(a: Action) -> Msg {
    Msg::Key(a)
}

fn first_row(app: &mut App, protected: bool) -> TagId {
    let (c, row) = find_row(&app.view, protected).expect("a row of that kind");
    app.view.cursor = c;
    row
}

fn find_row(view: &TreeView, protected: bool) -> Option<(Cursor, TagId)> {
    for (k, kind) in view.kinds.iter().enumerate() {
        for (g, group) in kind.groups.iter().enumerate() {
            if let Some(r) = group.rows.iter().position(|r| r.protected == protected) {
                return Some((
                    Cursor {
                        kind: k,
                        group: Some(g),
                        row: Some(r),
                    },
                    group.rows[r].tag,
                ));
            }
        }
    }
    None
}

fn reclaimable(app: &App) -> u64 {
    app.data.as_ref().unwrap().selection.reclaimable()
}

#[test]
fn starts_loading_then_shows_the_first_category_with_a_single_kind_opened() {
    let mut app = App::new(config(), 0);
    assert!(app.is_loading() && app.needs_tick());
    send(
        &mut app,
        [Msg::SourceStatus(
            SourceKind::Mongo,
            SourceStatus::Failed("auth failed".into()),
        )],
    );
    assert_eq!(
        app.sources[&SourceKind::Mongo],
        SourceStatus::Failed("auth failed".into())
    );
    send(&mut app, [Msg::Loaded(0, Box::new(DatasetMsg(demo_dataset(1, 80))))]);
    assert!(!app.is_loading());
    assert_eq!(app.category, CategoryId::ArchivedEnvironments);
    assert_eq!(app.view.kinds.len(), 1);
    assert!(
        app.view
            .opened
            .contains(&vec![NodeId::Kind(crate::model::ImageKind::Environment)])
    );
    assert_eq!(app.view.shown, app.view.total);
}

#[test]
fn marking_a_tag_adds_its_exclusive_bytes_and_unmarking_returns_to_zero() {
    let mut app = loaded_app(config());
    let tag = first_row(&mut app, false);
    let rev = app
        .data
        .as_ref()
        .unwrap()
        .dataset
        .inventory
        .tag(tag)
        .revision()
        .unwrap();
    let exclusive = app.data.as_ref().unwrap().selection.engine().exclusive_bytes(rev);
    assert_eq!(send(&mut app, [key(Action::ToggleMark)]), vec![]);
    assert_eq!(reclaimable(&app), exclusive);
    assert!(exclusive > 0);
    send(&mut app, [key(Action::ToggleMark)]);
    assert_eq!(reclaimable(&app), 0);
}

#[test]
fn a_protected_tag_cannot_be_marked_and_the_notice_says_why() {
    let mut app = loaded_app(config());
    let tag = first_row(&mut app, true);
    send(&mut app, [key(Action::ToggleMark)]);
    let data = app.data.as_ref().unwrap();
    assert!(!data.selection.is_marked(&data.dataset.inventory, tag));
    assert!(app.notice.as_deref().unwrap().starts_with("protected"));
}

#[test]
fn marking_a_group_marks_its_candidates_and_again_clears_them() {
    let mut app = loaded_app(config());
    app.view.cursor = Cursor {
        kind: 0,
        group: Some(0),
        row: None,
    };
    let rows = app.view.rows_under(app.view.cursor);
    send(&mut app, [key(Action::ToggleMark)]);
    let data = app.data.as_ref().unwrap();
    let inv = &data.dataset.inventory;
    assert!(rows.iter().all(|r| r.protected != data.selection.is_marked(inv, r.tag)));
    send(&mut app, [key(Action::ToggleMark)]);
    assert!(app.data.as_ref().unwrap().selection.is_empty());
}

#[test]
fn delete_freezes_a_plan_with_focus_on_cancel_and_enter_cancels() {
    let mut app = loaded_app(config());
    assert_eq!(send(&mut app, [key(Action::RequestDelete)]), vec![]);
    assert_eq!(app.mode, Mode::Browse, "nothing marked");
    send(&mut app, [key(Action::MarkAllInView), key(Action::RequestDelete)]);
    let Mode::Confirm(c) = &app.mode else {
        panic!("confirm expected, got {:?}", app.mode)
    };
    assert_eq!(c.focus, Button::Cancel);
    assert_eq!(c.plan.reclaimable_bytes, reclaimable(&app));
    assert_eq!(
        c.plan.tag_count,
        app.data
            .as_ref()
            .unwrap()
            .selection
            .tag_count(&app.data.as_ref().unwrap().dataset.inventory)
    );
    assert_eq!(c.plan.hidden_by_filter, 0);
    assert_eq!(send(&mut app, [key(Action::Confirm)]), vec![]);
    assert_eq!(app.mode, Mode::Browse);
}

#[test]
fn confirming_needs_the_delete_button_and_the_typed_word_then_executes_the_frozen_plan() {
    let mut app = loaded_app(config());
    first_row(&mut app, false);
    send(
        &mut app,
        [
            key(Action::ToggleMark),
            key(Action::RequestDelete),
            key(Action::SwitchButton),
            key(Action::Confirm),
        ],
    );
    assert!(matches!(app.mode, Mode::Confirm(_)), "word not typed yet");
    let Mode::Confirm(c) = &app.mode else { unreachable!() };
    let word = c.plan.confirmation_word();
    let plan = c.plan.clone();
    assert_eq!(word, plan.tag_count.to_string());
    let cmds = send(&mut app, word.chars().map(Msg::Input).chain([key(Action::Confirm)]));
    assert_eq!(cmds, vec![Cmd::Execute(Box::new(plan.clone()))]);
    assert_eq!(
        app.mode,
        Mode::Executing(Execution {
            plan: plan.clone(),
            outcomes: vec![None; plan.items.len()],
            summary: None,
            step: None,
        })
    );
    let cmds = send(
        &mut app,
        [
            Msg::ItemDone {
                index: 0,
                outcome: Outcome::Deleted,
            },
            Msg::ExecutionFinished(RunEnd {
                reclaimable_bytes: plan.reclaimable_bytes,
                notes: vec![],
            }),
        ],
    );
    assert_eq!(cmds, vec![Cmd::Load(1)], "reload after a real deletion");
    let Mode::Done(exec) = &app.mode else { panic!() };
    let summary = exec.summary.clone().unwrap();
    assert_eq!(
        summary,
        Summary {
            deleted: 1,
            reclaimable_bytes: plan.reclaimable_bytes,
            ..Summary::default()
        }
    );
    assert!(app.data.as_ref().unwrap().selection.is_empty());
    send(&mut app, [key(Action::Close)]);
    assert_eq!(app.mode, Mode::Browse);
}

#[test]
fn the_filter_narrows_the_tree_live_and_inverse_shows_the_rest() {
    let mut app = loaded_app(config());
    let total = app.view.total;
    send(&mut app, [key(Action::StartFilter)]);
    assert_eq!(app.key_context(), KeyContext::Filter);
    send(&mut app, "-1$".chars().map(Msg::Input));
    let shown = app.view.shown;
    assert!(shown < total && shown > 0, "{shown} of {total}");
    send(&mut app, [key(Action::Top)]);
    send(&mut app, [Msg::Key(Action::AcceptFilter)]);
    assert_eq!(app.key_context(), KeyContext::Browse);
    app.filter.editing = true;
    app.filter.text.insert(0, '!');
    let text = app.filter.text.clone();
    set_filter(&mut app, text);
    assert_eq!(app.view.shown, total - shown);
    send(&mut app, [Msg::Input('(')]);
    assert!(app.filter.error.is_some(), "invalid regex is reported, not applied");
    send(&mut app, [key(Action::CancelFilter)]);
    assert_eq!((app.view.shown, app.filter.editing), (total, false));
}

#[test]
fn marks_hidden_by_the_filter_are_counted_in_the_plan() {
    let mut app = loaded_app(config());
    send(&mut app, [key(Action::MarkAllInView), key(Action::StartFilter)]);
    send(&mut app, "^nothing-matches$".chars().map(Msg::Input));
    send(&mut app, [key(Action::AcceptFilter), key(Action::RequestDelete)]);
    let Mode::Confirm(c) = &app.mode else { panic!() };
    assert_eq!(c.plan.hidden_by_filter, c.plan.items.len());
}

#[test]
fn read_only_never_reaches_the_confirmation() {
    let mut app = loaded_app(AppConfig {
        read_only: true,
        ..config()
    });
    send(&mut app, [key(Action::MarkAllInView), key(Action::RequestDelete)]);
    assert_eq!(app.mode, Mode::Browse);
}

#[test]
fn quitting_during_execution_asks_first() {
    let mut app = loaded_app(config());
    send(
        &mut app,
        [
            key(Action::MarkAllInView),
            key(Action::RequestDelete),
            key(Action::SwitchButton),
        ],
    );
    let Mode::Confirm(c) = &app.mode else { panic!() };
    let word = c.plan.confirmation_word();
    send(&mut app, word.chars().map(Msg::Input).chain([key(Action::Confirm)]));
    assert_eq!(send(&mut app, [key(Action::Quit)]), vec![]);
    assert_eq!(app.overlay, Some(Overlay::QuitPrompt));
    assert_eq!(send(&mut app, [key(Action::Close)]), vec![]);
    assert_eq!(app.overlay, None);
    assert_eq!(
        send(&mut app, [key(Action::Quit), key(Action::ForceQuit)]),
        vec![Cmd::Quit]
    );
}

#[test]
fn write_plan_and_reload_are_commands() {
    let mut app = loaded_app(config());
    send(&mut app, [key(Action::MarkAllInView)]);
    let cmds = send(&mut app, [key(Action::WritePlan), key(Action::Reload)]);
    assert!(
        matches!(&cmds[0], Cmd::WritePlan(p, frozen) if p.as_os_str() == "plan.json" && !frozen.plan.manifests.is_empty() && frozen.report().plan == frozen.plan)
    );
    assert_eq!(cmds[1], Cmd::Load(1));
    assert!(app.is_loading());
}

#[test]
fn reload_keeps_marks_by_tag_name() {
    let mut app = loaded_app(config());
    send(&mut app, [key(Action::MarkAllInView)]);
    let before = reclaimable(&app);
    send(&mut app, [Msg::Loaded(0, Box::new(DatasetMsg(demo_dataset(1, 80))))]);
    assert_eq!(reclaimable(&app), before);
}

#[test]
fn categories_focus_moves_between_categories_and_rebuilds_the_tree() {
    let mut app = loaded_app(config());
    send(
        &mut app,
        [key(Action::FocusNext), key(Action::FocusNext), key(Action::Down)],
    );
    assert_eq!(app.focus, Focus::Categories);
    assert_eq!(app.category, CategoryId::ArchivedModels);
    assert_eq!(app.view.kinds[0].kind, crate::model::ImageKind::Model);
    send(&mut app, [key(Action::Open)]);
    assert_eq!(app.focus, Focus::Tree);
}

#[test]
fn tree_navigation_walks_opened_nodes_only() {
    let mut app = loaded_app(config());
    assert_eq!(app.view.cursor, Cursor::default());
    send(&mut app, [key(Action::Down)]);
    assert_eq!(
        app.view.cursor,
        Cursor {
            kind: 0,
            group: Some(0),
            row: None
        }
    );
    send(&mut app, [key(Action::Down)]);
    assert_eq!(
        app.view.cursor,
        Cursor {
            kind: 0,
            group: Some(1),
            row: None
        },
        "group 0 is closed"
    );
    send(&mut app, [key(Action::Up), key(Action::Expand), key(Action::Expand)]);
    assert_eq!(
        app.view.cursor,
        Cursor {
            kind: 0,
            group: Some(0),
            row: Some(0)
        }
    );
    send(&mut app, [key(Action::Collapse), key(Action::Collapse)]);
    assert_eq!(
        app.view.cursor,
        Cursor {
            kind: 0,
            group: Some(0),
            row: None
        }
    );
    send(&mut app, [key(Action::Bottom)]);
    let last = app.view.kinds[0].groups.len() - 1;
    assert_eq!(
        app.view.cursor,
        Cursor {
            kind: 0,
            group: Some(last),
            row: None
        }
    );
}

#[test]
fn a_superseded_load_result_is_dropped() {
    let mut app = loaded_app(config());
    let before = app.data.as_ref().unwrap().dataset.generated_at;
    let old = app.load_generation;
    let Cmd::Load(newer) = app.start_load() else { panic!() };
    assert!(newer > old);
    let mut stale = (*app.data.as_ref().unwrap().dataset).clone();
    stale.generated_at = before - 100;
    assert_eq!(update(&mut app, Msg::Loaded(old, Box::new(DatasetMsg(stale)))), None);
    assert_eq!(
        app.data.as_ref().unwrap().dataset.generated_at,
        before,
        "old generation dropped"
    );
}

#[test]
fn tags_inside_a_group_are_in_revision_number_order_by_default() {
    let app = loaded_app(config());
    assert_eq!(app.sort, SortKey::Revision);
    let inv = &app.data.as_ref().unwrap().dataset.inventory;
    let mut numbered_groups = 0;
    for kind in &app.view.kinds {
        for group in &kind.groups {
            let numbers: Vec<Option<u64>> = group
                .rows
                .iter()
                .map(|r| crate::model::image::revision_number(&inv.domino_tag(r.tag)))
                .collect();
            // Numbered first, ascending as numbers (10 after 9, not after 1); unnumbered last.
            let mut sorted = numbers.clone();
            sorted.sort_by_key(|n| (n.is_none(), *n));
            assert_eq!(numbers, sorted, "group {}", group.name);
            if numbers.iter().flatten().count() > 1 {
                numbered_groups += 1;
            }
        }
    }
    assert!(
        numbered_groups > 0,
        "the demo category has groups with several revisions"
    );
}

/// A group row's bytes are what marking that whole group frees, for every group of the view
/// (shared layers inside the group counted once), and are not a sum of per-tag bytes when
/// its tags share layers.
#[test]
fn each_group_shows_what_marking_the_whole_group_frees() {
    let mut app = loaded_app(config());
    let mut checked = 0;
    for k in 0..app.view.kinds.len() {
        for g in 0..app.view.kinds[k].groups.len() {
            let cursor = Cursor {
                kind: k,
                group: Some(g),
                row: None,
            };
            app.view.cursor = cursor;
            let key3 = (
                app.category,
                app.view.kinds[k].kind,
                app.view.kinds[k].groups[g].name.to_string(),
            );
            let shown = app.data.as_ref().unwrap().group_bytes.get(&key3).copied();
            let has_candidates = app.view.rows_under(cursor).iter().any(|r| !r.protected);
            send(&mut app, [key(Action::ToggleMark)]);
            if has_candidates {
                assert_eq!(shown, Some(reclaimable(&app)), "group {:?}", key3);
                checked += 1;
            }
            send(&mut app, [key(Action::ClearMarks)]);
        }
    }
    assert!(checked > 1, "{checked}");
}

/// The deactivated-owners category is a per-owner view: one group per owner, holding exactly
/// that owner's tags, with the owner's joint reclaimable bytes.
#[test]
fn deactivated_owners_are_grouped_by_owner() {
    let mut app = loaded_app(config());
    app.category = CategoryId::DeactivatedOwnerEnvironments;
    app.rebuild_view();
    let data = app.data.as_ref().unwrap();
    let mut groups = 0;
    for kind in &app.view.kinds {
        for g in &kind.groups {
            let owner = g.name.strip_prefix("owner ").expect("an owner group");
            for r in &g.rows {
                let label = data.dataset.labels.get(&r.tag).and_then(|l| l.owner.clone());
                assert_eq!(label.as_deref().unwrap_or("unknown"), owner);
            }
            if g.rows.iter().any(|r| !r.protected) {
                assert!(
                    data.group_bytes
                        .contains_key(&(app.category, kind.kind, g.name.to_string()))
                );
            }
            groups += 1;
        }
    }
    assert!(groups > 0, "the demo has deactivated owners' environments");
}

fn orphan(n: u8) -> crate::plan::OrphanRecord {
    crate::plan::OrphanRecord {
        collection: "environment_revisions",
        document_id: crate::model::ObjectId::from_bytes([n; 12]),
        tag: format!("{}-{n}", crate::model::ObjectId::from_bytes([0xab; 12])),
        reasons: vec!["its image is missing from the registry".into()],
    }
}

/// The demo dataset with an orphaned-references result of `records` (and one protected).
fn with_orphans(records: &[u8]) -> Dataset {
    let mut ds = demo_dataset(1, 80);
    let mut cat = CategoryResult::new(CategoryId::OrphanedReferences, CategoryStatus::Ok);
    cat.records = records.iter().map(|n| orphan(*n)).collect();
    cat.protected_records = vec![(orphan(99), vec!["a running workspace uses it".into()])];
    ds.categories.retain(|c| c.id != CategoryId::OrphanedReferences);
    ds.categories.push(cat);
    ds
}

#[test]
fn orphaned_records_are_marked_in_their_own_list_and_go_into_the_frozen_plan() {
    let mut app = App::new(config(), crate::demo::DEMO_EPOCH);
    send(
        &mut app,
        [Msg::Loaded(0, Box::new(DatasetMsg(with_orphans(&[1, 2, 3]))))],
    );
    app.category = CategoryId::OrphanedReferences;
    assert_eq!(app.record_rows().len(), 4, "three candidates and one protected");
    send(
        &mut app,
        [
            key(Action::ToggleMark),
            key(Action::Down),
            key(Action::Down),
            key(Action::ToggleMark),
        ],
    );
    let sel = &app.data.as_ref().unwrap().selection;
    assert_eq!(sel.record_count(), 2);
    assert!(sel.is_record_marked(&("environment_revisions", orphan(1).document_id)));
    assert!(sel.is_record_marked(&("environment_revisions", orphan(3).document_id)));
    // The protected row (last) cannot be marked, and says why.
    send(&mut app, [key(Action::Bottom), key(Action::ToggleMark)]);
    assert_eq!(app.data.as_ref().unwrap().selection.record_count(), 2);
    assert!(app.notice.as_deref().unwrap_or_default().contains("protected"));
    send(&mut app, [key(Action::RequestDelete)]);
    let Mode::Confirm(c) = &app.mode else {
        panic!("no confirmation")
    };
    let ids: Vec<&str> = c.plan.core.records.iter().map(|r| r.document_id.as_str()).collect();
    assert_eq!(
        ids,
        [orphan(1).document_id.to_string(), orphan(3).document_id.to_string()]
    );
    assert_eq!(c.plan.confirmation_word(), "2");
    assert!(c.plan.items.is_empty(), "records only: no manifest goes");
}

#[test]
fn a_marked_record_survives_a_reload_only_while_it_is_still_orphaned() {
    let mut app = App::new(config(), crate::demo::DEMO_EPOCH);
    send(&mut app, [Msg::Loaded(0, Box::new(DatasetMsg(with_orphans(&[1, 2]))))]);
    app.category = CategoryId::OrphanedReferences;
    send(&mut app, [key(Action::MarkAllInView)]);
    assert_eq!(
        app.data.as_ref().unwrap().selection.record_count(),
        2,
        "a marks both candidates, not the protected one"
    );
    let Cmd::Load(generation) = app.start_load() else {
        panic!()
    };
    // Record 2's image came back: it is no orphan any more.
    send(
        &mut app,
        [Msg::Loaded(generation, Box::new(DatasetMsg(with_orphans(&[1]))))],
    );
    let sel = &app.data.as_ref().unwrap().selection;
    assert_eq!(sel.record_count(), 1);
    assert!(sel.is_record_marked(&("environment_revisions", orphan(1).document_id)));
    assert!(app.notice.as_deref().unwrap_or_default().contains("1 marks dropped"));
}

use crate::demo::{STORAGE_DEMO_EPOCH as STORAGE_NOW, storage_demo_dataset as storage_dataset};

fn untagged_digests(app: &App) -> Vec<String> {
    let Mode::Confirm(c) = &app.mode else {
        panic!("no confirmation")
    };
    c.plan
        .core
        .manifests
        .iter()
        .filter(|m| m.tags.is_empty())
        .map(|m| m.digest[7..8].to_string())
        .collect()
}

#[test]
fn untagged_manifests_are_marked_in_their_own_list_and_go_into_the_frozen_plan() {
    let mut app = App::new(config(), STORAGE_NOW);
    send(&mut app, [Msg::Loaded(0, Box::new(DatasetMsg(storage_dataset(false))))]);
    app.category = CategoryId::UntaggedManifests;
    let rows = app.list_rows();
    assert_eq!(rows.len(), 3, "two candidates and one protected: {rows:?}");
    assert!(rows[2].protected);
    let names: Vec<String> = rows
        .iter()
        .map(|r| app.revision_name(app.untagged_of(*r).unwrap().rev))
        .collect();
    assert!(
        names[0].ends_with(&"a".repeat(64)) && names[1].ends_with(&"b".repeat(64)),
        "{names:?}"
    );
    let why = app.untagged_of(rows[2]).unwrap().protected_by.unwrap().join("; ");
    assert!(why.contains("pushed 1 minutes ago"), "{why}");
    // The protected one cannot be marked, and says why.
    send(&mut app, [key(Action::Bottom), key(Action::ToggleMark)]);
    assert!(
        app.notice
            .as_deref()
            .unwrap_or_default()
            .contains("this manifest cannot be selected")
    );
    assert_eq!(app.data.as_ref().unwrap().selection.untagged_count(), 0);
    // Mark `a` alone: what it alone frees (manifest, config, its 2000-byte layer).
    send(&mut app, [key(Action::Top), key(Action::ToggleMark)]);
    assert_eq!(reclaimable(&app), 10 + 1 + 2000);
    // `a` marks every candidate shown, never the protected one.
    send(&mut app, [key(Action::MarkAllInView)]);
    assert_eq!(app.data.as_ref().unwrap().selection.untagged_count(), 2);
    assert_eq!(reclaimable(&app), (10 + 1 + 2000) + (10 + 1 + 3000));
    send(&mut app, [key(Action::RequestDelete)]);
    assert_eq!(untagged_digests(&app), ["a", "b"]);
    let Mode::Confirm(c) = &app.mode else { panic!() };
    assert!(
        c.plan
            .core
            .manifests
            .iter()
            .all(|m| m.categories == [CategoryId::UntaggedManifests])
    );
    assert_eq!((c.plan.untagged_count, c.plan.tag_count), (2, 0));
    assert_eq!(c.plan.confirmation_word(), "2");
    assert_eq!(c.plan.hidden_by_filter, 0, "both are in view");
    assert_eq!(c.plan.reclaimable_bytes, reclaimable(&app));
    // Frozen from another category's view, the modal says they are hidden.
    send(&mut app, [key(Action::Close)]);
    app.category = CategoryId::BrokenTags;
    send(&mut app, [key(Action::RequestDelete)]);
    let Mode::Confirm(c) = &app.mode else { panic!() };
    assert_eq!(c.plan.hidden_by_filter, 2);
}

#[test]
fn a_marked_untagged_manifest_survives_a_reload_only_while_it_is_still_a_candidate() {
    let mut app = App::new(config(), STORAGE_NOW);
    send(&mut app, [Msg::Loaded(0, Box::new(DatasetMsg(storage_dataset(false))))]);
    app.category = CategoryId::UntaggedManifests;
    send(&mut app, [key(Action::MarkAllInView)]);
    let Cmd::Load(generation) = app.start_load() else {
        panic!()
    };
    // `a` was tagged again since: its mark is dropped, `b`'s stays.
    send(
        &mut app,
        [Msg::Loaded(generation, Box::new(DatasetMsg(storage_dataset(true))))],
    );
    let sel = &app.data.as_ref().unwrap().selection;
    assert_eq!(sel.untagged_count(), 1);
    assert!(app.notice.as_deref().unwrap_or_default().contains("1 marks dropped"));
    assert_eq!(reclaimable(&app), 10 + 1 + 3000);
    send(&mut app, [key(Action::RequestDelete)]);
    assert_eq!(untagged_digests(&app), ["b"]);
}
