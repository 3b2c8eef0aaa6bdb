//! The category list and the details pane for the node under the cursor.

use super::Theme;
use super::format::{age, bytes, short_digest};
use crate::app::{App, Data, Focus};
use crate::model::{ManifestKind, TagId};
use crate::plan::{CategoryId, CategoryStatus};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};

pub fn categories(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let block = Block::bordered()
        .title(" Categories ")
        .border_style(theme.border(app.focus == Focus::Categories));
    let items: Vec<ListItem> = CategoryId::ALL
        .iter()
        .map(|id| category_item(app, *id, theme))
        .collect();
    let selected = CategoryId::ALL.iter().position(|c| *c == app.category);
    let mut state = ListState::default().with_selected(selected);
    let list = List::new(items).block(block).highlight_style(theme.cursor());
    frame.render_stateful_widget(list, area, &mut state);
}

fn category_item(app: &App, id: CategoryId, theme: &Theme) -> ListItem<'static> {
    let second = match (
        &app.data,
        app.data
            .as_ref()
            .and_then(|d| d.dataset.categories.iter().find(|c| c.id == id)),
    ) {
        (None, _) => Span::styled("  loading…".to_string(), theme.dim()),
        (Some(_), None) => Span::styled("  not computed".to_string(), theme.dim()),
        (Some(_), Some(c)) => match &c.status {
            CategoryStatus::Unavailable(reason) => Span::styled(format!("  unavailable: {reason}"), theme.dim()),
            CategoryStatus::Ok if !c.records.is_empty() || !c.protected_records.is_empty() => Span::raw(format!(
                "  {} records · {} protected",
                c.records.len(),
                c.protected_records.len()
            )),
            CategoryStatus::Ok if !c.revisions.is_empty() || !c.protected_revisions.is_empty() => {
                let b = app
                    .data
                    .as_ref()
                    .and_then(|d| d.category_bytes.get(&id))
                    .copied()
                    .unwrap_or(0);
                Span::raw(format!("  {} manifests · {}", c.revisions.len(), bytes(b)))
            }
            CategoryStatus::Ok => {
                let b = app
                    .data
                    .as_ref()
                    .and_then(|d| d.category_bytes.get(&id))
                    .copied()
                    .unwrap_or(0);
                Span::raw(format!("  {} tags · {}", c.candidates.len(), bytes(b)))
            }
        },
    };
    ListItem::new(vec![Line::from(id.title()), Line::from(second)])
}

pub fn details(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let block = Block::bordered()
        .title(" Details ")
        .border_style(theme.border(app.focus == Focus::Details));
    let row = app
        .shows_list()
        .then(|| app.list_rows().get(app.list_cursor).copied())
        .flatten();
    let lines = match (&app.data, row) {
        (Some(data), Some(r)) if app.shows_untagged() => untagged_details(app, data, r, theme),
        (Some(data), Some(r)) => record_details(app, data, r, theme),
        (data, _) => match data {
            Some(data) => match app.view.row_at(app.view.cursor) {
                Some(row) => tag_details(app, data, row.tag, row.protected, row.index, theme),
                None => node_details(app, data, theme),
            },
            None => vec![],
        },
    };
    // Scrolled no further than its last line stays in view. Wrapped height, over-estimated
    // by one per wrapped line (word wrap can break early), so the end is always reachable.
    let width = usize::from(area.width.saturating_sub(2)).max(1);
    let height: usize = lines
        .iter()
        .map(|l| match l.width() {
            w if w <= width => 1,
            w => w.div_ceil(width) + 1,
        })
        .sum();
    let height = u16::try_from(height).unwrap_or(u16::MAX);
    let para = Paragraph::new(lines).wrap(Wrap { trim: false });
    let top = app
        .details_scroll
        .min(height.saturating_sub(area.height.saturating_sub(2)));
    let block = if top > 0 {
        block.title_bottom(format!(" line {} of {height} ", top + 1))
    } else {
        block
    };
    frame.render_widget(para.scroll((top, 0)).block(block), area);
}

/// One orphaned Mongo reference: what it is, why it is a candidate (or what protects it), and
/// what deleting it takes.
fn record_details(app: &App, data: &Data, row: crate::app::ListRow, theme: &Theme) -> Vec<Line<'static>> {
    let Some((r, protected_by)) = app.record_of(row) else {
        return vec![];
    };
    let mut lines = vec![
        Line::styled(format!("{} {}", r.collection, r.document_id), theme.title()),
        Line::from(format!("names image tag {}", r.tag)),
    ];
    match protected_by {
        Some(why) => lines.push(Line::from(vec![
            Span::styled("PROTECTED ", theme.protected()),
            Span::raw(format!("cannot be selected: {}", why.join("; "))),
        ])),
        None => lines.push(Line::from(format!("why: {}", r.reasons.join("; ")))),
    }
    if data.selection.is_record_marked(&(r.collection, r.document_id)) {
        lines.push(Line::styled("marked", theme.marked()));
    }
    lines.push(Line::styled(
        "goes only with Mongo cleanup on (^o in the confirmation), backed up first; re-checked on fresh data: still orphaned, image confirmed missing",
        theme.dim(),
    ));
    lines
}

/// One untagged manifest: what it is, when it was pushed, why it is a candidate (or what
/// protects it), what deleting it alone frees, and how the delete is guarded.
fn untagged_details(app: &App, data: &Data, row: crate::app::ListRow, theme: &Theme) -> Vec<Line<'static>> {
    let Some(u) = app.untagged_of(row) else {
        return vec![];
    };
    let inv = &data.dataset.inventory;
    let r = inv.revision(u.rev);
    let kind = match inv.manifest(r.manifest) {
        Some(m) if m.is_index() => "untagged index",
        _ => "untagged manifest",
    };
    let pushed = r.pushed.map_or("push time unknown".to_string(), |t| {
        format!("pushed {}", crate::model::timefmt::rfc3339(t))
    });
    let mut lines = vec![
        Line::styled(app.revision_name(u.rev), theme.title()),
        Line::from(format!("{kind} · {pushed}")),
    ];
    match u.protected_by {
        Some(why) => lines.push(Line::from(vec![
            Span::styled("PROTECTED ", theme.protected()),
            Span::raw(format!("cannot be selected: {}", why.join("; "))),
        ])),
        None => lines.push(Line::from(format!("why: {}", u.reasons.join("; ")))),
    }
    lines.push(Line::from(format!(
        "frees {} after GC if deleted alone",
        bytes(data.selection.engine().exclusive_bytes(u.rev))
    )));
    if data.selection.is_untagged_marked(u.rev) {
        lines.push(Line::styled("marked", theme.marked()));
    }
    lines.push(Line::styled(
        "deleted by digest; re-checked on fresh storage (still untagged, listed by no index, not protected) and by an HTTP last look at every tag of its repository",
        theme.dim(),
    ));
    lines
}

fn node_details(app: &App, data: &Data, theme: &Theme) -> Vec<Line<'static>> {
    let rows = app.view.rows_under(app.view.cursor);
    let inv = &data.dataset.inventory;
    let prot = rows.iter().filter(|r| r.protected).count();
    let marked = rows.iter().filter(|r| data.selection.is_marked(inv, r.tag)).count();
    let name = match app.view.group_at(app.view.cursor) {
        Some(g) => g.name.to_string(),
        None => app
            .view
            .kinds
            .get(app.view.cursor.kind)
            .map_or(String::new(), |k| k.kind.as_str().to_string()),
    };
    let owner = rows
        .first()
        .and_then(|r| data.dataset.labels.get(&r.tag))
        .and_then(|l| l.owner.clone());
    let mut lines = vec![
        Line::styled(name, theme.title()),
        Line::from(format!(
            "{} tags: {} candidates, {prot} protected, {marked} marked",
            rows.len(),
            rows.len() - prot
        )),
    ];
    if let (Some(o), true) = (owner, app.view.cursor.group.is_some()) {
        lines.push(Line::from(format!("owner: {o}")));
    }
    // The per-owner view: which environments (or models) the owner's tags belong to.
    if app.category == crate::plan::CategoryId::DeactivatedOwnerEnvironments && app.view.cursor.group.is_some() {
        let mut envs: Vec<String> = rows
            .iter()
            .map(|r| {
                data.dataset
                    .labels
                    .get(&r.tag)
                    .and_then(|l| l.group.clone())
                    .unwrap_or_else(|| inv.repo(inv.tag(r.tag).repo).name.clone())
            })
            .collect();
        envs.sort();
        envs.dedup();
        lines.push(Line::from(format!("{} environments: {}", envs.len(), envs.join(", "))));
    }
    lines.push(Line::styled("space marks every candidate below", theme.dim()));
    lines
}

fn tag_details(app: &App, data: &Data, tag: TagId, protected: bool, index: usize, theme: &Theme) -> Vec<Line<'static>> {
    let inv = &data.dataset.inventory;
    let cat = app.category_result();
    let mut lines = vec![Line::styled(inv.tag_ref(tag), theme.title())];
    if protected {
        let by = cat
            .and_then(|c| c.protected.get(index))
            .map(|p| p.protected_by.join("; "))
            .unwrap_or_default();
        lines.push(Line::from(vec![
            Span::styled("PROTECTED ", theme.protected()),
            Span::raw(format!("cannot be selected: {by}")),
        ]));
    } else if let Some(c) = cat.and_then(|c| c.candidates.get(index)) {
        lines.push(Line::from(format!("why: {}", c.reasons.join("; "))));
    }
    if let Some(label) = data.dataset.labels.get(&tag) {
        let group = label.group.clone().unwrap_or_default();
        let owner = label.owner.clone().unwrap_or_else(|| "?".into());
        lines.push(Line::from(format!("{group} · owner {owner}")));
        // Evidence already given as the protection or the reason is not repeated.
        let said: Vec<&str> = cat
            .and_then(|c| {
                if protected {
                    c.protected
                        .get(index)
                        .map(|p| p.protected_by.iter().map(String::as_str).collect())
                } else {
                    c.candidates
                        .get(index)
                        .map(|c| c.reasons.iter().map(String::as_str).collect())
                }
            })
            .unwrap_or_default();
        for e in label
            .evidence
            .iter()
            .filter(|e| !said.iter().any(|s| s.contains(e.as_str())))
        {
            lines.push(Line::styled(format!("evidence: {e}"), theme.dim()));
        }
    }
    let siblings: Vec<String> = inv.siblings(tag).iter().map(|t| inv.tag(*t).name.clone()).collect();
    if !siblings.is_empty() {
        lines.push(Line::styled(
            format!("goes with it (same digest): {}", siblings.join(", ")),
            theme.marked(),
        ));
    }
    match &inv.tag(tag).state {
        crate::model::TagState::Broken { digest, reason } => {
            lines.push(Line::styled(format!("broken: {reason}"), theme.danger()));
            if let Some(d) = digest {
                lines.push(Line::from(format!("digest {}", short_digest(inv.digests.name(*d)))));
            }
        }
        crate::model::TagState::Ok(rev) => manifest_lines(app, data, *rev, &mut lines),
    }
    lines
}

fn manifest_lines(app: &App, data: &Data, rev: crate::model::RevId, lines: &mut Vec<Line<'static>>) {
    let inv = &data.dataset.inventory;
    let digest = inv.revision(rev).manifest;
    lines.push(Line::from(format!(
        "digest {} · {} exclusive · age {}",
        short_digest(inv.digests.name(digest)),
        bytes(data.selection.engine().exclusive_bytes(rev)),
        age(inv.created(rev), app.now)
    )));
    let Some(m) = inv.manifest(digest) else { return };
    lines.push(Line::from(format!("type {}", m.media_type)));
    match &m.kind {
        ManifestKind::Index { children } => {
            let platforms: Vec<String> = children
                .iter()
                .map(|(_, p)| p.as_ref().map_or("unknown".to_string(), |p| p.to_string()))
                .collect();
            lines.push(Line::from(format!("platforms: {}", platforms.join(", "))));
        }
        ManifestKind::Image { config, layers } => {
            lines.push(Line::from(format!(
                "{} layers, config {}",
                layers.len(),
                bytes(config.size)
            )));
            for l in layers {
                lines.push(Line::from(format!(
                    "  {:>9}  {}",
                    bytes(l.size),
                    short_digest(inv.digests.name(l.digest))
                )));
            }
        }
    }
}
