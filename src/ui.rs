//! Rendering only: reads `&App` and draws; the only state it changes is widget view state
//! ([`UiState`]: the tree widget's scroll offset, synced from the app's cursor and opened set).

mod bars;
mod format;
mod overlays;
mod panes;
mod tag_tree;
mod theme;

pub use format::{age, bytes};
pub use theme::Theme;

use crate::app::{App, Mode, NodeId, Overlay};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use tui_tree_widget::TreeState;

/// Widget view state that outlives a frame.
#[derive(Debug, Default)]
pub struct UiState {
    pub tree: TreeState<NodeId>,
    pub theme: Theme,
}

impl UiState {
    pub fn new(theme: Theme) -> Self {
        UiState {
            tree: TreeState::default(),
            theme,
        }
    }
}

/// Wide screens put the details pane beside the tree instead of under it.
const WIDE: u16 = 120;

pub fn draw(frame: &mut Frame, app: &App, ui: &mut UiState) {
    let [main, footer, status, hints] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    match &app.mode {
        Mode::Executing(exec) | Mode::Done(exec) => overlays::execution(frame, main, app, exec, &ui.theme),
        Mode::Browse | Mode::Confirm(_) => browse(frame, main, app, ui),
    }
    bars::footer(frame, footer, app, &ui.theme);
    bars::status(frame, status, app, &ui.theme);
    bars::hints(frame, hints, app, &ui.theme);
    if let Mode::Confirm(c) = &app.mode {
        overlays::confirm(frame, main, app, c, &ui.theme);
    }
    match app.overlay {
        Some(Overlay::Help) => overlays::help(frame, main, app, &ui.theme),
        Some(Overlay::QuitPrompt) => overlays::quit_prompt(frame, main, &ui.theme),
        None => {}
    }
}

fn browse(frame: &mut Frame, area: Rect, app: &App, ui: &mut UiState) {
    let wide = area.width >= WIDE;
    let cat_width = if wide { 36 } else { 30 };
    let [cats, rest] = Layout::horizontal([Constraint::Length(cat_width), Constraint::Min(0)]).areas(area);
    panes::categories(frame, cats, app, &ui.theme);
    let (tree, details) = if wide {
        let [t, d] = Layout::horizontal([Constraint::Min(0), Constraint::Percentage(42)]).areas(rest);
        (t, d)
    } else {
        let [t, d] = Layout::vertical([Constraint::Min(0), Constraint::Length(9)]).areas(rest);
        (t, d)
    };
    tag_tree::render(frame, tree, app, ui);
    panes::details(frame, details, app, &ui.theme);
}
