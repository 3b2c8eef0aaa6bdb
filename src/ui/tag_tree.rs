//! The category tree through tui-tree-widget. Items are built only for opened nodes (a closed
//! node gets one placeholder child so it shows as expandable), so a frame costs O(visible rows).

use super::format::{age, bytes};
use super::{Theme, UiState};
use crate::app::tree::{GroupNode, Row};
use crate::app::{App, Focus, NodeId};
use crate::model::{ManifestKind, ObjectId, TagId};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use tui_tree_widget::{Tree, TreeItem};

const PLACEHOLDER: NodeId = NodeId::Tag(TagId(u32::MAX));
/// Groups built on each side of the cursor: a kind with 10k groups costs ~250 items a frame.
/// The window moves in half-window steps, so the view jumps rarely while scrolling.
const WINDOW: usize = 120;

/// The range of groups to build for a kind of `len` groups with the cursor at `center`.
fn window(len: usize, center: usize) -> (usize, usize) {
    if len <= 2 * WINDOW + 1 {
        return (0, len);
    }
    let step = WINDOW / 2;
    let start = (center.saturating_sub(WINDOW) / step * step).min(len - (2 * WINDOW + 1));
    (start, start + 2 * WINDOW + 1)
}

fn more(id: &str, n: usize, what: &str, theme: Theme) -> TreeItem<'static, NodeId> {
    TreeItem::new_leaf(
        NodeId::Group(id.into()),
        Line::from(Span::styled(format!("… {n} more groups {what}"), theme.dim())),
    )
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, ui: &mut UiState) {
    let theme = ui.theme;
    let block = Block::bordered()
        .title(title(app))
        .border_style(theme.border(app.focus == Focus::Tree));
    let Some(data) = &app.data else {
        let spinner = super::bars::spinner(app.spinner);
        let text = match &app.load_error {
            Some(e) => format!("could not load: {e}"),
            None => format!("{spinner} reading the registry and usage sources…"),
        };
        frame.render_widget(Paragraph::new(text).block(block), area);
        return;
    };
    if app.shows_list()
        && app
            .category_result()
            .is_some_and(|c| c.status == crate::plan::CategoryStatus::Ok)
    {
        list(frame, area, app, data, theme);
        return;
    }
    if app.view.is_empty() {
        let text = match app.category_result().map(|c| &c.status) {
            Some(crate::plan::CategoryStatus::Unavailable(reason)) => format!("unavailable: {reason}"),
            _ if app.view.total > 0 => "no tag matches the filter".to_string(),
            _ => "nothing to clean in this category".to_string(),
        };
        frame.render_widget(Paragraph::new(text).style(theme.dim()).block(block), area);
        return;
    }
    sync_state(app, ui);
    let items = items(app, data, theme);
    if let Ok(tree) = Tree::new(&items) {
        let tree = tree.block(block).highlight_style(theme.cursor()).highlight_symbol("");
        frame.render_stateful_widget(tree, area, &mut ui.tree);
    }
}

/// A list category: `[x] collection  tag` per orphaned record, or `[x] repository  digest
/// bytes  pushed` per untagged manifest; protected ones `[P]`, the cursor's row kept in view.
fn list(frame: &mut Frame, area: Rect, app: &App, data: &crate::app::Data, theme: Theme) {
    let rows = app.list_rows();
    let (what, marked) = if app.shows_untagged() {
        ("manifests", data.selection.untagged_count())
    } else {
        ("records", data.selection.record_count())
    };
    let title = format!(" {} {} {what} · {marked} marked ", app.category.title(), rows.len());
    let block = Block::bordered()
        .title(title)
        .border_style(theme.border(app.focus == Focus::Tree));
    if rows.is_empty() {
        let text = if app.filter.text.is_empty() {
            "nothing to clean in this category".to_string()
        } else {
            format!("no {} matches the filter", &what[..what.len() - 1])
        };
        frame.render_widget(Paragraph::new(text).style(theme.dim()).block(block), area);
        return;
    }
    let height = usize::from(area.height.saturating_sub(2)).max(1);
    let cursor = app.list_cursor.min(rows.len() - 1);
    let top = cursor.saturating_sub(height - 1);
    let lines: Vec<Line<'static>> = rows
        .iter()
        .enumerate()
        .skip(top)
        .take(height)
        .filter_map(|(i, row)| {
            let (text, marked) = if app.shows_untagged() {
                let u = app.untagged_of(*row)?;
                (untagged_line(data, u.rev), data.selection.is_untagged_marked(u.rev))
            } else {
                let (r, _) = app.record_of(*row)?;
                let marked = data.selection.is_record_marked(&(r.collection, r.document_id));
                (format!("{:<22} {}", r.collection, short_tag(&r.tag)), marked)
            };
            let mark = match (row.protected, marked) {
                (true, _) => "[P]",
                (false, true) => "[x]",
                (false, false) => "[ ]",
            };
            let style = if i == cursor && app.focus == Focus::Tree {
                theme.cursor()
            } else if row.protected {
                theme.dim()
            } else {
                ratatui::style::Style::new()
            };
            Some(Line::styled(format!("{mark} {text}"), style))
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// `repository  sha256:0123456789ab  bytes  pushed <date>` of an untagged manifest; the
/// bytes are what deleting it alone frees.
fn untagged_line(data: &crate::app::Data, rev: crate::model::RevId) -> String {
    let inv = &data.dataset.inventory;
    let r = inv.revision(rev);
    let digest = inv.digests.name(r.manifest);
    let short = digest.get(..19).unwrap_or(digest);
    let pushed = r
        .pushed
        .map(|t| {
            let when = crate::model::timefmt::rfc3339(t);
            format!("  pushed {}", when.get(..10).unwrap_or(&when))
        })
        .unwrap_or_default();
    let bytes = super::format::bytes(data.selection.engine().exclusive_bytes(rev));
    format!("{:<28} {short}  {bytes:>9}{pushed}", inv.repo(r.repo).name)
}

fn title(app: &App) -> Line<'static> {
    let name = app.category.title();
    let mut spans = vec![Span::raw(format!(" {name} "))];
    if let Some(c) = app.category_result() {
        let prot = c.protected.len();
        spans.push(Span::raw(format!(
            "{}/{} · {prot} protected · by {} ",
            app.view.shown,
            app.view.total,
            app.sort.as_str()
        )));
    }
    Line::from(spans)
}

/// Makes the widget's opened set and selection follow the app's.
fn sync_state(app: &App, ui: &mut UiState) {
    let stale: Vec<Vec<NodeId>> = ui
        .tree
        .opened()
        .iter()
        .filter(|p| !app.view.opened.contains(*p))
        .cloned()
        .collect();
    for p in stale {
        ui.tree.close(&p);
    }
    for p in &app.view.opened {
        ui.tree.open(p.clone());
    }
    let path = app.view.path(app.view.cursor);
    if ui.tree.selected() != path.as_slice() {
        ui.tree.select(path);
    }
}

fn items(app: &App, data: &crate::app::Data, theme: Theme) -> Vec<TreeItem<'static, NodeId>> {
    let mut out = Vec::with_capacity(app.view.kinds.len());
    for (k, kind) in app.view.kinds.iter().enumerate() {
        let kind_path = vec![NodeId::Kind(kind.kind)];
        let text = Line::from(vec![
            Span::styled(kind.kind.as_str().to_string(), theme.title()),
            Span::styled(
                format!("  {} groups · {} tags", kind.groups.len(), kind.tags),
                theme.dim(),
            ),
        ]);
        let children = if app.view.opened.contains(&kind_path) {
            let center = if app.view.cursor.kind == k {
                app.view.cursor.group.unwrap_or(0)
            } else {
                0
            };
            let (start, end) = window(kind.groups.len(), center);
            let mut children = Vec::with_capacity(end - start + 2);
            if start > 0 {
                children.push(more("\u{0}above", start, "above", theme));
            }
            children.extend(
                kind.groups[start..end]
                    .iter()
                    .map(|g| group_item(app, data, &kind_path, g, theme)),
            );
            if end < kind.groups.len() {
                children.push(more("\u{0}below", kind.groups.len() - end, "below", theme));
            }
            children
        } else {
            vec![TreeItem::new_leaf(PLACEHOLDER, "")]
        };
        if let Ok(item) = TreeItem::new(NodeId::Kind(kind.kind), text, children) {
            out.push(item);
        }
    }
    out
}

fn group_item(
    app: &App,
    data: &crate::app::Data,
    parent: &[NodeId],
    group: &GroupNode,
    theme: Theme,
) -> TreeItem<'static, NodeId> {
    let id = NodeId::Group(group.name.clone());
    let mut path = parent.to_vec();
    path.push(id.clone());
    let mut spans = vec![
        Span::raw(group.name.to_string()),
        Span::styled(format!("  {} tags", group.rows.len()), theme.dim()),
    ];
    // Its candidates' joint reclaimable bytes (protected tags add nothing).
    if let Some(kind) = parent.first().and_then(|n| match n {
        NodeId::Kind(k) => Some(*k),
        _ => None,
    }) && let Some(b) = data.group_bytes.get(&(app.category, kind, group.name.to_string()))
    {
        spans.push(Span::styled(format!(" · {}", bytes(*b)), theme.dim()));
    }
    let text = Line::from(spans);
    let children = if app.view.opened.contains(&path) {
        group
            .rows
            .iter()
            .map(|r| TreeItem::new_leaf(NodeId::Tag(r.tag), row_line(app, data, r, theme)))
            .collect()
    } else {
        vec![TreeItem::new_leaf(PLACEHOLDER, "")]
    };
    TreeItem::new(id, text, children).unwrap_or_else(|_| TreeItem::new_leaf(NodeId::Group(group.name.clone()), "?"))
}

/// Domino tags start with the 24-hex ObjectId shared by the whole group: abbreviate it.
pub(super) fn short_tag(name: &str) -> String {
    match ObjectId::prefix_of_tag(name) {
        Some(_) => format!("{}…{}", &name[..8], &name[24..]),
        None => name.to_string(),
    }
}

/// `[x]  120 MiB  34d  <tag>  +1 idx`: fixed-width fields first so a narrow pane clips the tag.
fn row_line(app: &App, data: &crate::app::Data, row: &Row, theme: Theme) -> Line<'static> {
    let inv = &data.dataset.inventory;
    let tag = inv.tag(row.tag);
    let rev = tag.revision();
    let marked = data.selection.is_marked(inv, row.tag);
    let (mark, style) = match (row.protected, marked) {
        (true, _) => ("[P]", theme.protected()),
        (false, true) => ("[x]", theme.marked()),
        (false, false) => ("[ ]", ratatui::style::Style::new()),
    };
    let size = rev.map_or(0, |r| data.selection.engine().exclusive_bytes(r));
    let created = rev.and_then(|r| inv.created(r));
    let mut spans = vec![
        Span::styled(
            format!("{mark} {:>9} {:>4} ", bytes(size), age(created, app.now)),
            style,
        ),
        Span::styled(short_tag(&tag.name), style),
    ];
    let mut markers = vec![];
    if let Some(r) = rev {
        let siblings = inv.revision(r).tags.len() - 1;
        if siblings > 0 {
            markers.push(format!("+{siblings} sibling"));
        }
        if inv
            .manifest(inv.revision(r).manifest)
            .is_some_and(|m| matches!(m.kind, ManifestKind::Index { .. }))
        {
            markers.push("multi-arch".into());
        }
        if data.selection.engine().is_held_by_index(r) {
            markers.push("held by index".into());
        }
    } else {
        markers.push("broken".into());
    }
    if !markers.is_empty() {
        spans.push(Span::styled(format!("  {}", markers.join(" ")), theme.dim()));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::window;

    #[test]
    fn the_group_window_follows_the_cursor_and_stays_in_bounds() {
        assert_eq!(window(10, 5), (0, 10));
        let (s, e) = window(10_000, 5_000);
        assert!(s <= 5_000 && 5_000 < e && e - s == 241);
        let (s, e) = window(10_000, 9_999);
        assert_eq!((s, e), (10_000 - 241, 10_000));
        assert_eq!(window(10_000, 0), (0, 241));
    }
}
