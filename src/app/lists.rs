//! The two categories whose rows are not tags: orphaned Mongo references (records whose image
//! is missing) and untagged manifests (revisions no tag reaches; storage inventories only).
//! Each is a flat list walked by `App::list_cursor`: candidates first, then protected rows
//! (shown, never markable), the filter matched against `collection:tag` or
//! `repository@digest`, marks kept in the [`super::Selection`].

use super::{Action, App};
use crate::model::RevId;
use crate::plan::CategoryId;

/// One row of a list category: an index into the category's candidates (`records`,
/// `revisions`) or, when protected, into its protected ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListRow {
    pub index: usize,
    pub protected: bool,
}

/// The untagged manifest a row stands for.
#[derive(Debug, Clone, Copy)]
pub struct UntaggedRow<'a> {
    pub rev: RevId,
    /// Why it is a candidate (empty when protected).
    pub reasons: &'a [String],
    /// What keeps it, when protected.
    pub protected_by: Option<&'a [String]>,
}

impl App {
    /// The orphaned-references category lists Mongo records, not tags: its pane is a list.
    pub fn shows_records(&self) -> bool {
        self.category == CategoryId::OrphanedReferences
    }

    /// The untagged-manifests category lists manifests that have no tag: its pane is a list.
    pub fn shows_untagged(&self) -> bool {
        self.category == CategoryId::UntaggedManifests
    }

    pub fn shows_list(&self) -> bool {
        self.shows_records() || self.shows_untagged()
    }

    /// The rows of the current list category.
    pub fn list_rows(&self) -> Vec<ListRow> {
        if self.shows_untagged() {
            self.untagged_rows()
        } else {
            self.record_rows()
        }
    }

    fn shown(&self, text: &str, group: &str) -> bool {
        self.matcher.as_ref().is_none_or(|m| m.matches(text, group))
    }

    /// The rows of the records list: candidates, then protected records, after the filter
    /// (matched against `collection:tag`).
    pub fn record_rows(&self) -> Vec<ListRow> {
        let Some(cat) = self.category_result() else {
            return vec![];
        };
        let shown = |r: &crate::plan::OrphanRecord| self.shown(&format!("{}:{}", r.collection, r.tag), r.collection);
        let candidates = cat.records.iter().enumerate().filter(|(_, r)| shown(r));
        let protected = cat.protected_records.iter().enumerate().filter(|(_, (r, _))| shown(r));
        candidates
            .map(|(index, _)| ListRow {
                index,
                protected: false,
            })
            .chain(protected.map(|(index, _)| ListRow { index, protected: true }))
            .collect()
    }

    /// The record a row stands for, with the protections of a protected one.
    pub fn record_of(&self, row: ListRow) -> Option<(&crate::plan::OrphanRecord, Option<&[String]>)> {
        let cat = self.category_result()?;
        if row.protected {
            cat.protected_records
                .get(row.index)
                .map(|(r, why)| (r, Some(why.as_slice())))
        } else {
            cat.records.get(row.index).map(|r| (r, None))
        }
    }

    /// `repository@digest` of a revision of the loaded inventory.
    pub fn revision_name(&self, rev: RevId) -> String {
        let Some(data) = &self.data else {
            return String::new();
        };
        let inv = &data.dataset.inventory;
        let r = inv.revision(rev);
        format!("{}@{}", inv.repo(r.repo).name, inv.digests.name(r.manifest))
    }

    /// The rows of the untagged-manifests list: candidates, then protected manifests, after
    /// the filter (matched against `repository@digest`).
    pub fn untagged_rows(&self) -> Vec<ListRow> {
        let Some(cat) = self.category_result() else {
            return vec![];
        };
        let shown = |rev: RevId| {
            let name = self.revision_name(rev);
            let repo = name.split('@').next().unwrap_or_default().to_string();
            self.shown(&name, &repo)
        };
        let candidates = cat.revisions.iter().enumerate().filter(|(_, c)| shown(c.rev));
        let protected = cat
            .protected_revisions
            .iter()
            .enumerate()
            .filter(|(_, (r, _))| shown(*r));
        candidates
            .map(|(index, _)| ListRow {
                index,
                protected: false,
            })
            .chain(protected.map(|(index, _)| ListRow { index, protected: true }))
            .collect()
    }

    /// The untagged manifest a row stands for.
    pub fn untagged_of(&self, row: ListRow) -> Option<UntaggedRow<'_>> {
        let cat = self.category_result()?;
        if row.protected {
            cat.protected_revisions.get(row.index).map(|(rev, why)| UntaggedRow {
                rev: *rev,
                reasons: &[],
                protected_by: Some(why.as_slice()),
            })
        } else {
            cat.revisions.get(row.index).map(|c| UntaggedRow {
                rev: c.rev,
                reasons: &c.reasons,
                protected_by: None,
            })
        }
    }
}

/// Keys on a list category: the cursor walks its rows, space marks one, `a` marks every
/// candidate shown. `true` when the key was for the list.
pub(super) fn update_list(app: &mut App, action: Action) -> bool {
    let rows = app.list_rows();
    let last = rows.len().saturating_sub(1);
    let c = &mut app.list_cursor;
    match action {
        Action::Up => *c = c.saturating_sub(1),
        Action::Down => *c = (*c + 1).min(last),
        Action::PageUp => *c = c.saturating_sub(10),
        Action::PageDown => *c = (*c + 10).min(last),
        Action::Top => *c = 0,
        Action::Bottom => *c = last,
        Action::ToggleMark => {
            let Some(row) = rows.get(app.list_cursor).copied() else {
                return true;
            };
            if row.protected {
                let what = if app.shows_untagged() { "manifest" } else { "record" };
                app.notice = Some(format!("protected: this {what} cannot be selected (see details)"));
                return true;
            }
            toggle(app, row);
        }
        Action::MarkAllInView => {
            for row in rows.iter().filter(|r| !r.protected) {
                set(app, *row, true);
            }
        }
        _ => return false,
    }
    app.details_scroll = 0;
    true
}

fn toggle(app: &mut App, row: ListRow) {
    let on = match (app.shows_untagged(), &app.data) {
        (true, Some(d)) => app
            .untagged_of(row)
            .is_some_and(|u| !d.selection.is_untagged_marked(u.rev)),
        (false, Some(d)) => app
            .record_of(row)
            .is_some_and(|(r, _)| !d.selection.is_record_marked(&(r.collection, r.document_id))),
        (_, None) => return,
    };
    set(app, row, on);
}

fn set(app: &mut App, row: ListRow, on: bool) {
    if app.shows_untagged() {
        let Some(rev) = app.untagged_of(row).map(|u| u.rev) else {
            return;
        };
        if let Some(d) = &mut app.data {
            d.selection.set_untagged(rev, on);
        }
    } else {
        let Some(key) = app.record_of(row).map(|(r, _)| (r.collection, r.document_id)) else {
            return;
        };
        if let Some(d) = &mut app.data {
            d.selection.set_record(key, on);
        }
    }
}
