//! The bottom lines: selection footer, per-source status bar, and key hints (from the keymap).

use super::Theme;
use super::format::bytes;
use crate::app::{App, KeyContext, keymap};
use crate::dataset::SourceStatus;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

const SPINNER: [&str; 4] = ["|", "/", "-", "\\"];

pub fn spinner(tick: usize) -> &'static str {
    SPINNER[tick % SPINNER.len()]
}

pub fn footer(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let Some(data) = &app.data else { return };
    let sel = &data.selection;
    let inv = &data.dataset.inventory;
    let digests = sel.item_count();
    let tags = sel.tag_count(inv);
    let mut spans = vec![
        Span::styled(format!(" Marked {digests} digests · {tags} tags"), theme.marked()),
        Span::raw(format!(" · {} reclaimable after GC", bytes(sel.reclaimable()))),
    ];
    if tags > digests {
        spans.push(Span::styled(
            format!(" (incl. {} sibling tags)", tags - digests),
            theme.dim(),
        ));
    }
    if sel.untagged_count() > 0 {
        spans.push(Span::raw(format!(
            " (incl. {} untagged manifests)",
            sel.untagged_count()
        )));
    }
    if sel.record_count() > 0 {
        spans.push(Span::raw(format!(" · {} Mongo records", sel.record_count())));
    }
    if let Some(n) = &app.notice {
        spans = vec![Span::styled(format!(" {n}"), theme.danger())];
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub fn status(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let mut spans = vec![];
    if app.config.read_only {
        spans.push(Span::styled(" READ-ONLY ", theme.danger()));
    }
    if app.config.demo {
        spans.push(Span::styled(" DEMO ", theme.marked()));
    }
    for (kind, status) in &app.sources {
        let (mark, style, detail) = match status {
            SourceStatus::Loading => (
                spinner(app.spinner),
                theme.marked(),
                app.progress.get(kind).map(|p| format!(" {p}")).unwrap_or_default(),
            ),
            SourceStatus::Ok => ("ok", theme.ok(), String::new()),
            SourceStatus::Failed(r) => ("failed", theme.danger(), format!(": {r}")),
            SourceStatus::Disabled => ("off", theme.dim(), String::new()),
        };
        spans.push(Span::raw(format!(" {} ", kind.as_str())));
        spans.push(Span::styled(format!("{mark}{detail}"), style));
    }
    if let Some(data) = &app.data {
        spans.push(Span::styled(
            format!("  {}", data.dataset.inventory.registry),
            theme.dim(),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub fn hints(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let ctx = app.key_context();
    let mut spans = vec![];
    if ctx == KeyContext::Filter || (!app.filter.text.is_empty() && ctx == KeyContext::Browse) {
        let cursor = if ctx == KeyContext::Filter { "█" } else { "" };
        spans.push(Span::styled(format!(" /{}{cursor} ", app.filter.text), theme.key()));
        match &app.filter.error {
            Some(e) => spans.push(Span::styled(format!("{e} "), theme.danger())),
            None => spans.push(Span::raw(format!("{} matches ", app.view.shown))),
        }
    }
    for (key, hint) in keymap::hints(ctx, app.config.read_only) {
        spans.push(Span::styled(format!(" {key}"), theme.key()));
        spans.push(Span::raw(format!(" {hint}")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
