//! Modal screens: the delete confirmation, execution progress and summary, help, quit prompt.

use super::Theme;
use super::format::bytes;
use crate::app::{App, Button, Confirm, Execution, KeyContext, Outcome, keymap};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Gauge, Paragraph, Wrap};

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

pub fn confirm(frame: &mut Frame, area: Rect, app: &App, c: &Confirm, theme: &Theme) {
    let plan = &c.plan;
    let mut lines = vec![Line::from(format!(
        "{} tags in {} digests · {} reclaimable after GC",
        plan.tag_count,
        plan.items.len(),
        bytes(plan.reclaimable_bytes)
    ))];
    // Tag counts per category; a category whose manifests carry no tag (untagged-manifests)
    // has no row: its manifests are listed below.
    let with_tags: Vec<_> = plan
        .per_category
        .iter()
        .filter(|pc| pc.environments + pc.models + pc.other > 0)
        .collect();
    if !with_tags.is_empty() {
        lines.push(Line::styled(
            format!("{:<26}{:>6}{:>7}{:>7}", "category", "envs", "models", "other"),
            theme.dim(),
        ));
    }
    for pc in with_tags {
        let title = pc.category.title();
        lines.push(Line::from(format!(
            "{title:<26}{:>6}{:>7}{:>7}",
            pc.environments, pc.models, pc.other
        )));
    }
    let with_siblings: Vec<_> = plan.items.iter().filter(|i| !i.siblings.is_empty()).collect();
    if !with_siblings.is_empty() {
        lines.push(Line::styled("these tags go too (same digest):", theme.marked()));
        for i in with_siblings.iter().take(3) {
            lines.push(Line::from(format!("  {} → {}", i.tags[0], i.siblings.join(", "))));
        }
        if with_siblings.len() > 3 {
            lines.push(Line::from(format!("  … and {} more", with_siblings.len() - 3)));
        }
    }
    let untagged: Vec<_> = plan
        .core
        .manifests
        .iter()
        .filter(|m| m.tags.is_empty() && m.child_of.is_none())
        .collect();
    if !untagged.is_empty() {
        lines.push(Line::from(format!(
            "{} untagged manifests by digest (each re-checked on fresh storage):",
            untagged.len()
        )));
        for m in untagged.iter().take(3) {
            let short = m.digest.get(..19).unwrap_or(&m.digest);
            lines.push(Line::from(format!("  {}@{short}", m.repository)));
        }
        if untagged.len() > 3 {
            lines.push(Line::from(format!("  … and {} more", untagged.len() - 3)));
        }
    }
    let mongo = if plan.mongo_cleanup { "on" } else { "off" };
    lines.push(Line::from(format!("Mongo reference cleanup: {mongo} (^o toggles)")));
    let records = plan.core.records.len();
    if records > 0 {
        lines.push(Line::from(format!(
            "{records} orphaned Mongo records (backed up first, each re-checked):"
        )));
        for r in plan.core.records.iter().take(3) {
            lines.push(Line::from(format!("  {} {} ({})", r.collection, r.document_id, r.tag)));
        }
        if records > 3 {
            lines.push(Line::from(format!("  … and {} more", records - 3)));
        }
        if !plan.mongo_cleanup {
            lines.push(Line::styled(
                "  Mongo cleanup is off: they stay; ^o to delete them",
                theme.danger(),
            ));
        }
    }
    if plan.hidden_by_filter > 0 {
        let n = plan.hidden_by_filter;
        lines.push(Line::styled(
            format!("{n} marked digests are hidden by the current view"),
            theme.danger(),
        ));
    }
    if let Some(r) = &c.stale {
        lines.push(Line::styled(
            "the data was reloaded: this plan is unchanged, but on the new data it",
            theme.danger(),
        ));
        lines.push(Line::styled(
            format!(
                "would delete {} · skip {} · {} not in the new scan — confirm again",
                r.delete, r.skipped_count, r.already_gone
            ),
            theme.danger(),
        ));
        for why in &r.skipped {
            lines.push(Line::styled(format!("  skip {why}"), theme.dim()));
        }
    }
    lines.push(Line::from(vec![
        Span::raw(format!("type {} to confirm: ", plan.confirmation_word())),
        Span::styled(format!("{}█", c.typed), theme.key()),
    ]));
    let button = |label: &str, b: Button| {
        let style = if c.focus == b {
            theme.cursor()
        } else {
            ratatui::style::Style::new()
        };
        Span::styled(format!("[ {label} ]"), style)
    };
    lines.push(Line::from(vec![
        Span::raw("      "),
        button("Cancel", Button::Cancel),
        Span::raw("   "),
        button("Delete", Button::Delete),
    ]));
    let height = lines.len() as u16 + 2;
    let rect = centered(area, 68, height);
    let title = if app.config.demo {
        " Delete (demo: in memory only) "
    } else {
        " Delete marked tags? "
    };
    let block = Block::bordered().title(title).border_style(theme.danger());
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), rect);
}

pub fn execution(frame: &mut Frame, area: Rect, app: &App, exec: &Execution, theme: &Theme) {
    let [gauge, list] = Layout::vertical([Constraint::Length(3), Constraint::Min(0)]).areas(area);
    let total = exec.outcomes.len().max(1);
    let done = exec.done();
    let label = format!("{done}/{} items", exec.outcomes.len());
    let title = if exec.summary.is_some() {
        " Finished "
    } else {
        " Deleting "
    };
    let g = Gauge::default()
        .block(Block::bordered().title(title))
        .gauge_style(theme.marked())
        .ratio(done as f64 / total as f64)
        .label(label);
    frame.render_widget(g, gauge);
    let mut lines = vec![];
    if let Some(s) = &exec.summary {
        lines.extend(summary_lines(s, theme));
    } else if let Some(step) = &exec.step {
        lines.push(Line::styled(step.clone(), theme.dim()));
    }
    for (item, outcome) in exec.plan.items.iter().zip(&exec.outcomes).skip(app.outcome_scroll) {
        let repo = item.repository.rsplit('/').next().unwrap_or_default();
        let tags: Vec<String> = item.tags.iter().map(|t| super::tag_tree::short_tag(t)).collect();
        let name = format!("{repo}:{} ", tags.join(","));
        let (mark, style, text) = match outcome {
            None => ("·", theme.dim(), "pending".to_string()),
            Some(Outcome::Deleted) => ("✓", theme.ok(), "deleted".to_string()),
            Some(Outcome::Untagged) => ("✓", theme.ok(), "untagged (the image stays)".to_string()),
            Some(Outcome::AlreadyGone) => ("✓", theme.ok(), "already gone (confirmed)".to_string()),
            Some(Outcome::WouldDelete) => ("✓", theme.ok(), "would delete (dry run)".to_string()),
            Some(Outcome::Failed(r)) => ("✗", theme.danger(), format!("failed: {r}")),
            Some(Outcome::Skipped(r)) => ("-", theme.dim(), format!("skipped: {r}")),
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{mark} "), style),
            Span::raw(name),
            Span::styled(text, style),
        ]));
    }
    let block = Block::bordered().title(" Outcomes ");
    frame.render_widget(Paragraph::new(lines).block(block), list);
}

fn summary_lines(s: &crate::app::Summary, theme: &Theme) -> Vec<Line<'static>> {
    let mut out = vec![];
    if s.would_delete > 0 && s.deleted == 0 {
        out.push(Line::styled(
            format!("Dry run: nothing was deleted; {} would be.", s.would_delete),
            theme.marked(),
        ));
    } else {
        out.push(Line::from(format!(
            "Deleted {} · already gone {} · failed {} · skipped {}",
            s.deleted, s.already_gone, s.failed, s.skipped
        )));
    }
    out.push(Line::from(format!(
        "{} reclaimable after GC",
        bytes(s.reclaimable_bytes)
    )));
    for note in &s.notes {
        out.push(Line::styled(note.clone(), theme.dim()));
    }
    out.push(Line::styled(
        "Next step: run the registry garbage collector to free the space.",
        theme.title(),
    ));
    out.push(Line::from(""));
    out
}

pub fn help(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let mut lines = vec![];
    for (keys, what) in keymap::help(KeyContext::Browse, app.config.read_only) {
        lines.push(Line::from(vec![
            Span::styled(format!("{keys:<14}"), theme.key()),
            Span::raw(what),
        ]));
    }
    lines.push(Line::from(""));
    let log = app
        .config
        .log_path
        .clone()
        .unwrap_or_else(|| "none (set --log-file)".into());
    lines.push(Line::from(format!("log file: {log}")));
    lines.push(Line::from(format!("plan file (w): {}", app.config.plan_path)));
    let total = lines.len() as u16;
    let rect = centered(area, 64, total + 2);
    // Shorter than its text (80×24 with every binding): it scrolls, and the title says where.
    let inner = rect.height.saturating_sub(2);
    let top = app.help_scroll.min(total.saturating_sub(inner));
    let title = if inner < total {
        format!(
            " Help {}-{} of {total} (j/k scroll, esc closes) ",
            top + 1,
            (top + inner).min(total)
        )
    } else {
        " Help (esc closes) ".to_string()
    };
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((top, 0))
            .block(Block::bordered().title(title)),
        rect,
    );
}

pub fn quit_prompt(frame: &mut Frame, area: Rect, theme: &Theme) {
    let rect = centered(area, 50, 4);
    let lines = vec![
        Line::from("A deletion is running."),
        Line::from("Quit anyway? y quits, n keeps running"),
    ];
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().border_style(theme.danger())),
        rect,
    );
}
