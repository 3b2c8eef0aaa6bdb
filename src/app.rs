//! The TUI as a pure state machine: `update(&mut App, Msg) -> Option<Cmd>`. No terminal, no
//! await, no I/O: effects are returned as [`Cmd`] values for the loop to hand to the worker.

pub mod keymap;
mod lists;
pub mod mode;
mod selection;
pub mod tree;

pub use keymap::{Action, KeyContext};
pub use lists::{ListRow, UntaggedRow};
pub use mode::{Button, Confirm, Execution, Mode, Outcome, Plan, PlanItem, Recheck, RunEnd, Summary};
pub use selection::Selection;
pub use tree::{Cursor, Matcher, NodeId, SortKey, TreeView};

use crate::dataset::{Dataset, SourceKind, SourceStatus};
use crate::model::TagId;
use crate::plan::{CategoryId, CategoryResult, CategoryStatus, SpaceEngine};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Something that happened: a key (already mapped by the keymap) or a worker report.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(Action),
    Input(char),
    Backspace,
    Tick,
    SourceStatus(SourceKind, SourceStatus),
    /// Progress of a source still loading (e.g. "812/2005 tags, 950/s, ETA 1s").
    Progress(SourceKind, String),
    /// A load finished; the number is the generation of the `Cmd::Load` that asked for it.
    Loaded(u64, Box<DatasetMsg>),
    LoadFailed(u64, String),
    ItemDone {
        index: usize,
        outcome: Outcome,
    },
    /// The running deletion started a step ("loading fresh data ...").
    RunStep(String),
    ExecutionFinished(RunEnd),
    PlanWritten(Result<String, String>),
}

/// A dataset inside a message (wrapped so `Msg` can be compared in tests by identity of time).
#[derive(Debug, Clone)]
pub struct DatasetMsg(pub Dataset);

impl PartialEq for DatasetMsg {
    fn eq(&self, other: &Self) -> bool {
        self.0.generated_at == other.0.generated_at && self.0.inventory.tags == other.0.inventory.tags
    }
}

/// What `w` froze: the plan and the data on screen it was frozen from (shared, not copied).
/// The report around the plan is built off the UI thread ([`PlanToWrite::report`]): at 100k
/// tags that is ~300 ms that no key press should wait for.
#[derive(Clone)]
pub struct PlanToWrite {
    pub dataset: std::sync::Arc<Dataset>,
    pub plan: crate::plan::deletion::Plan,
    pub fingerprint: String,
    pub without: Vec<SourceKind>,
}

impl PlanToWrite {
    /// The report JSON `delete --plan` accepts, holding exactly [`PlanToWrite::plan`].
    pub fn report(&self) -> crate::report::json::Report {
        crate::report::json::build(
            &self.dataset,
            &[],
            &crate::report::json::PlanInput::Frozen(Box::new(self.plan.clone())),
            &self.fingerprint,
            &self.without,
        )
    }
}

impl std::fmt::Debug for PlanToWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PlanToWrite({} manifests, {})",
            self.plan.manifests.len(),
            self.plan.checksum
        )
    }
}

/// Compared by their plans (tests).
impl PartialEq for PlanToWrite {
    fn eq(&self, other: &Self) -> bool {
        self.plan == other.plan
    }
}

/// Something the app wants done outside itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    /// Load every source; a newer generation supersedes an older one still running.
    Load(u64),
    /// Run exactly this frozen plan (its `core`).
    Execute(Box<Plan>),
    /// Write this plan (frozen from the data on screen), in its report, to the file.
    WritePlan(PathBuf, Box<PlanToWrite>),
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Focus {
    Categories,
    #[default]
    Tree,
    Details,
}

/// What the app was started with; no behaviour, just choices.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppConfig {
    pub read_only: bool,
    pub demo: bool,
    /// Shown in the help screen; relative or `~`-shortened by the caller.
    pub log_path: Option<String>,
    pub plan_path: String,
    pub mongo_cleanup: bool,
    /// The settings fingerprint plans are bound to (`ops::connect::settings_fingerprint`).
    pub fingerprint: String,
    /// Sources turned off on purpose, recorded in written plans.
    pub without: Vec<SourceKind>,
}

/// A loaded dataset with the engine and marks that belong to it.
#[derive(Debug, Clone)]
pub struct Data {
    /// Shared with a `w` in flight (its report is built on the worker).
    pub dataset: std::sync::Arc<Dataset>,
    pub selection: Selection,
    /// Reclaimable bytes if every candidate of the category were deleted, by category.
    pub category_bytes: HashMap<CategoryId, u64>,
    /// The same for every group of every category (`tree::group_bytes`).
    pub group_bytes: tree::GroupBytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterState {
    pub text: String,
    pub editing: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Help,
    QuitPrompt,
}

#[derive(Debug, Clone)]
pub struct App {
    pub config: AppConfig,
    /// Injected clock (Unix seconds) for ages; never read from the system here.
    pub now: i64,
    pub sources: BTreeMap<SourceKind, SourceStatus>,
    /// Progress text of sources still loading, shown next to their spinner.
    pub progress: BTreeMap<SourceKind, String>,
    pub data: Option<Data>,
    pub load_error: Option<String>,
    pub mode: Mode,
    pub focus: Focus,
    pub category: CategoryId,
    pub filter: FilterState,
    matcher: Option<Matcher>,
    pub sort: SortKey,
    pub view: TreeView,
    pub overlay: Option<Overlay>,
    pub spinner: usize,
    pub notice: Option<String>,
    /// First outcome line shown in the execution view.
    pub outcome_scroll: usize,
    /// First line of the help overlay shown (it scrolls when the terminal is shorter).
    pub help_scroll: u16,
    /// First line of the details pane shown (it scrolls when focused); reset when the
    /// cursor moves.
    pub details_scroll: u16,
    /// The row under the cursor in a list category (orphaned references, untagged
    /// manifests: `lists`), whose rows are not tags.
    pub list_cursor: usize,
    /// Generation of the newest load asked for; results of older ones are dropped.
    pub load_generation: u64,
}

impl App {
    pub fn new(config: AppConfig, now: i64) -> Self {
        App {
            config,
            now,
            sources: SourceKind::ALL
                .into_iter()
                .map(|k| (k, SourceStatus::Loading))
                .collect(),
            progress: BTreeMap::new(),
            data: None,
            load_error: None,
            mode: Mode::Browse,
            focus: Focus::Tree,
            category: CategoryId::ALL[0],
            filter: FilterState::default(),
            matcher: None,
            sort: SortKey::Revision,
            view: TreeView::default(),
            overlay: None,
            spinner: 0,
            notice: None,
            outcome_scroll: 0,
            help_scroll: 0,
            details_scroll: 0,
            list_cursor: 0,
            load_generation: 0,
        }
    }

    /// Asks for a load that supersedes every earlier one.
    pub fn start_load(&mut self) -> Cmd {
        self.load_generation += 1;
        for s in self.sources.values_mut() {
            *s = SourceStatus::Loading;
        }
        Cmd::Load(self.load_generation)
    }

    /// Whether the loop should tick (spinner, progress).
    pub fn needs_tick(&self) -> bool {
        self.is_loading() || matches!(self.mode, Mode::Executing(_))
    }

    pub fn is_loading(&self) -> bool {
        self.sources.values().any(|s| *s == SourceStatus::Loading)
    }

    /// Which key table applies now.
    pub fn key_context(&self) -> KeyContext {
        match (&self.overlay, &self.mode) {
            (Some(Overlay::QuitPrompt), _) => KeyContext::QuitPrompt,
            (Some(Overlay::Help), _) => KeyContext::Help,
            (None, Mode::Confirm(_)) => KeyContext::Confirm,
            (None, Mode::Executing(_)) => KeyContext::Executing,
            (None, Mode::Done(_)) => KeyContext::Done,
            (None, Mode::Browse) if self.filter.editing => KeyContext::Filter,
            (None, Mode::Browse) => KeyContext::Browse,
        }
    }

    pub fn category_result(&self) -> Option<&CategoryResult> {
        self.data
            .as_ref()?
            .dataset
            .categories
            .iter()
            .find(|c| c.id == self.category)
    }

    fn rebuild_view(&mut self) {
        let Some(data) = &self.data else { return };
        let new = match data.dataset.categories.iter().find(|c| c.id == self.category) {
            Some(cat) => TreeView::build(
                &data.dataset,
                data.selection.engine(),
                cat,
                self.matcher.as_ref(),
                self.sort,
            ),
            None => TreeView::default(),
        };
        self.view.replace_keeping_view(new);
        if self.view.opened.is_empty() && self.view.kinds.len() == 1 {
            self.view.opened.insert(self.view.path(Cursor::default()));
        }
    }
}

/// Applies one message; returns the effect to perform, if any.
pub fn update(app: &mut App, msg: Msg) -> Option<Cmd> {
    match msg {
        Msg::Key(action) => update_key(app, action),
        Msg::Input(c) => {
            text_input(app, Some(c));
            None
        }
        Msg::Backspace => {
            text_input(app, None);
            None
        }
        Msg::Tick => {
            app.spinner = app.spinner.wrapping_add(1);
            None
        }
        Msg::SourceStatus(kind, status) => {
            if status != SourceStatus::Loading {
                app.progress.remove(&kind);
            }
            app.sources.insert(kind, status);
            None
        }
        Msg::Progress(kind, text) => {
            app.progress.insert(kind, text);
            None
        }
        Msg::Loaded(generation, _) | Msg::LoadFailed(generation, _) if generation != app.load_generation => {
            tracing::debug!("dropping the result of superseded load {generation}");
            None
        }
        Msg::Loaded(_, dataset) => {
            loaded(app, dataset.0);
            None
        }
        Msg::LoadFailed(_, reason) => {
            for status in app.sources.values_mut() {
                if *status == SourceStatus::Loading {
                    *status = SourceStatus::Failed(reason.clone());
                }
            }
            app.load_error = Some(reason);
            None
        }
        Msg::ItemDone { index, outcome } => {
            if let Mode::Executing(exec) = &mut app.mode
                && let Some(slot) = exec.outcomes.get_mut(index)
            {
                *slot = Some(outcome);
            }
            None
        }
        Msg::RunStep(text) => {
            if let Mode::Executing(exec) = &mut app.mode {
                exec.step = Some(text);
            }
            None
        }
        Msg::ExecutionFinished(end) => execution_finished(app, end),
        Msg::PlanWritten(result) => {
            app.notice = Some(match result {
                Ok(path) => format!("plan written to {path}"),
                Err(e) => format!("could not write the plan: {e}"),
            });
            None
        }
    }
}

fn update_key(app: &mut App, action: Action) -> Option<Cmd> {
    match app.key_context() {
        KeyContext::QuitPrompt => match action {
            Action::ForceQuit => Some(Cmd::Quit),
            _ => {
                app.overlay = None;
                None
            }
        },
        KeyContext::Help => {
            match action {
                Action::Down => app.help_scroll = (app.help_scroll + 1).min(help_line_count(app).saturating_sub(1)),
                Action::Up => app.help_scroll = app.help_scroll.saturating_sub(1),
                _ => {
                    app.overlay = None;
                    app.help_scroll = 0;
                }
            }
            None
        }
        KeyContext::Confirm => update_confirm(app, action),
        KeyContext::Executing => match action {
            Action::Quit | Action::ForceQuit => {
                app.overlay = Some(Overlay::QuitPrompt);
                None
            }
            other => scroll_outcomes(app, other),
        },
        KeyContext::Done => match action {
            Action::Quit | Action::ForceQuit => Some(Cmd::Quit),
            Action::Close => {
                app.mode = Mode::Browse;
                app.outcome_scroll = 0;
                None
            }
            other => scroll_outcomes(app, other),
        },
        KeyContext::Filter => {
            match action {
                Action::AcceptFilter => app.filter.editing = false,
                Action::CancelFilter => set_filter(app, String::new()),
                Action::Quit => return Some(Cmd::Quit),
                _ => {}
            }
            None
        }
        KeyContext::Browse => update_browse(app, action),
    }
}

fn update_browse(app: &mut App, action: Action) -> Option<Cmd> {
    app.notice = None;
    if app.shows_list() && app.focus == Focus::Tree && lists::update_list(app, action) {
        return None;
    }
    match action {
        Action::Up | Action::Down | Action::PageUp | Action::PageDown | Action::Top | Action::Bottom => {
            move_cursor(app, action);
        }
        Action::Expand if app.focus == Focus::Categories => app.focus = Focus::Tree,
        Action::Expand => app.view.expand(),
        Action::Collapse if app.focus == Focus::Tree && app.view.cursor == Cursor::default() => {
            app.view.collapse();
        }
        Action::Collapse => app.view.collapse(),
        Action::Open if app.focus == Focus::Categories => app.focus = Focus::Tree,
        Action::Open => app.view.toggle_open(),
        Action::FocusNext => {
            app.focus = match app.focus {
                Focus::Categories => Focus::Tree,
                Focus::Tree => Focus::Details,
                Focus::Details => Focus::Categories,
            }
        }
        Action::ToggleMark => toggle_mark(app),
        Action::MarkAllInView => mark_all_in_view(app),
        Action::ClearMarks => {
            if let Some(d) = &mut app.data {
                d.selection.clear();
            }
        }
        Action::StartFilter => {
            app.filter.editing = true;
            app.focus = Focus::Tree;
        }
        Action::CancelFilter => set_filter(app, String::new()),
        Action::AcceptFilter => app.filter.editing = false,
        Action::CycleSort => {
            app.sort = app.sort.next();
            app.rebuild_view();
        }
        Action::Reload => return Some(app.start_load()),
        Action::RequestDelete => request_delete(app),
        Action::WritePlan => {
            // Frozen from the data on screen and written as it is: the file and the screen
            // can never disagree, whatever reloads later.
            let plan = build_plan(app)?;
            let data = app.data.as_ref()?;
            return Some(Cmd::WritePlan(
                PathBuf::from(&app.config.plan_path),
                Box::new(PlanToWrite {
                    dataset: data.dataset.clone(),
                    plan: plan.core,
                    fingerprint: app.config.fingerprint.clone(),
                    without: app.config.without.clone(),
                }),
            ));
        }
        Action::Help => app.overlay = Some(Overlay::Help),
        Action::Quit | Action::ForceQuit => return Some(Cmd::Quit),
        Action::Close | Action::SwitchButton | Action::Confirm | Action::ToggleMongo => {}
    }
    None
}

fn move_cursor(app: &mut App, action: Action) {
    if app.focus == Focus::Details {
        // The details pane scrolls (its layer list can be longer than the pane); the clamp
        // to its length happens where it is drawn, which knows the wrapped height.
        let s = &mut app.details_scroll;
        *s = match action {
            Action::Up => s.saturating_sub(1),
            Action::Down => s.saturating_add(1),
            Action::PageUp => s.saturating_sub(10),
            Action::PageDown => s.saturating_add(10),
            Action::Top => 0,
            _ => u16::MAX,
        };
        return;
    }
    app.details_scroll = 0;
    if app.focus == Focus::Categories {
        let i = CategoryId::ALL.iter().position(|c| *c == app.category).unwrap_or(0);
        let n = CategoryId::ALL.len();
        let j = match action {
            Action::Up => i.saturating_sub(1),
            Action::Down => (i + 1).min(n - 1),
            Action::Top | Action::PageUp => 0,
            _ => n - 1,
        };
        if i != j {
            app.category = CategoryId::ALL[j];
            app.list_cursor = 0;
            app.view = TreeView::default();
            app.rebuild_view();
        }
        return;
    }
    let steps = if matches!(action, Action::PageUp | Action::PageDown) {
        10
    } else {
        1
    };
    for _ in 0..steps {
        match action {
            Action::Up | Action::PageUp => app.view.up(),
            Action::Down | Action::PageDown => app.view.down(),
            Action::Top => app.view.top(),
            _ => app.view.bottom(),
        }
    }
}

fn toggle_mark(app: &mut App) {
    let Some(data) = &mut app.data else { return };
    let rows = app.view.rows_under(app.view.cursor);
    let marks: Vec<TagId> = rows.iter().filter(|r| !r.protected).map(|r| r.tag).collect();
    if marks.is_empty() {
        if rows.iter().any(|r| r.protected) {
            app.notice = Some("protected: this tag cannot be selected (see details)".into());
        }
        return;
    }
    let inv = &data.dataset.inventory;
    let all_marked = marks.iter().all(|t| data.selection.is_marked(inv, *t));
    for t in marks {
        data.selection
            .set(&data.dataset.inventory, t, app.category, !all_marked);
    }
}

fn mark_all_in_view(app: &mut App) {
    let Some(data) = &mut app.data else { return };
    for row in app.view.all_rows().filter(|r| !r.protected) {
        data.selection.set(&data.dataset.inventory, row.tag, app.category, true);
    }
}

fn set_filter(app: &mut App, text: String) {
    match Matcher::parse(&text) {
        Ok(m) => {
            app.matcher = m;
            app.filter.error = None;
        }
        Err(e) => app.filter.error = Some(e),
    }
    if text.is_empty() {
        app.filter.editing = false;
    }
    app.filter.text = text;
    app.list_cursor = 0;
    app.rebuild_view();
}

fn text_input(app: &mut App, c: Option<char>) {
    if let Mode::Confirm(confirm) = &mut app.mode {
        match c {
            Some(c) => confirm.typed.push(c),
            None => {
                confirm.typed.pop();
            }
        }
        return;
    }
    if app.filter.editing {
        let mut text = app.filter.text.clone();
        match c {
            Some(c) => text.push(c),
            None => {
                text.pop();
            }
        }
        let keep_editing = true;
        set_filter(app, text);
        app.filter.editing = keep_editing;
    }
}

fn loaded(app: &mut App, dataset: Dataset) {
    let previous = app.data.take();
    for (kind, status) in &dataset.sources {
        app.sources.insert(*kind, status.clone());
    }
    let mut selection = Selection::new(SpaceEngine::new(&dataset.inventory));
    if let Some(prev) = &previous {
        let mut dropped = selection.carry_over(
            &prev.dataset.inventory,
            &prev.selection,
            &dataset.inventory,
            &dataset.protections,
        );
        // A marked reference stays marked only while the new data still lists it as orphaned.
        let orphans: std::collections::HashSet<selection::RecordKey> = dataset
            .categories
            .iter()
            .filter(|c| c.id == CategoryId::OrphanedReferences)
            .flat_map(|c| c.records.iter().map(|r| (r.collection, r.document_id)))
            .collect();
        for key in prev.selection.records() {
            if orphans.contains(key) {
                selection.set_record(*key, true);
            } else {
                dropped += 1;
            }
        }
        // A marked untagged manifest stays marked only while the new data still proposes it
        // (by repository and digest: ids change on reload).
        dropped += selection.carry_over_untagged(&prev.dataset.inventory, &prev.selection, &dataset);
        if dropped > 0 {
            app.notice = Some(format!(
                "{dropped} marks dropped on reload: their tag now names another digest, or is protected, or the record is no longer orphaned, or the manifest no longer an untagged candidate"
            ));
        }
    }
    let category_bytes = category_bytes(&dataset, selection.engine());
    let group_bytes = tree::group_bytes(&dataset, selection.engine());
    app.data = Some(Data {
        dataset: std::sync::Arc::new(dataset),
        selection,
        category_bytes,
        group_bytes,
    });
    app.load_error = None;
    if let (Mode::Confirm(c), Some(data)) = (&mut app.mode, &app.data) {
        // The plan stays exactly as confirmed-to-be; say what the newer data makes of it and
        // ask again.
        c.stale = Some(recheck_on(&c.plan, &data.dataset));
        c.typed.clear();
        c.focus = Button::Cancel;
    }
    app.rebuild_view();
}

/// Reclaimable bytes per category if all its candidates went: one pass over its candidates.
fn category_bytes(dataset: &Dataset, engine: &SpaceEngine) -> HashMap<CategoryId, u64> {
    let mut engine = engine.clone();
    engine.clear();
    let mut out = HashMap::new();
    for cat in &dataset.categories {
        if cat.status != CategoryStatus::Ok {
            continue;
        }
        let revs: Vec<_> = cat
            .candidates
            .iter()
            .filter_map(|c| dataset.inventory.tag(c.tag).revision())
            .chain(cat.revisions.iter().map(|c| c.rev))
            .collect();
        for r in &revs {
            engine.set_selected(*r, true);
        }
        out.insert(cat.id, engine.reclaimable());
        for r in &revs {
            engine.set_selected(*r, false);
        }
    }
    out
}

fn build_plan(app: &mut App) -> Option<Plan> {
    let data = app.data.as_ref()?;
    if data.selection.is_empty() {
        app.notice = Some("nothing marked: mark tags with space first".into());
        return None;
    }
    let visible: std::collections::HashSet<TagId> = app.view.all_rows().map(|r| r.tag).collect();
    // Untagged manifests are in view only in their own list (and through the filter).
    let visible_untagged: std::collections::HashSet<crate::model::RevId> = if app.shows_untagged() {
        app.list_rows()
            .into_iter()
            .filter_map(|r| app.untagged_of(r).map(|u| u.rev))
            .collect()
    } else {
        Default::default()
    };
    Some(data.selection.plan(
        &data.dataset,
        &visible,
        &visible_untagged,
        app.config.mongo_cleanup,
        &app.config.fingerprint,
    ))
}

fn request_delete(app: &mut App) {
    if app.config.read_only {
        return;
    }
    if let Some(plan) = build_plan(app) {
        app.mode = Mode::Confirm(Confirm {
            plan,
            focus: Button::Cancel,
            typed: String::new(),
            stale: None,
        });
    }
}

fn update_confirm(app: &mut App, action: Action) -> Option<Cmd> {
    let Mode::Confirm(confirm) = &mut app.mode else {
        return None;
    };
    match action {
        Action::SwitchButton => {
            confirm.focus = match confirm.focus {
                Button::Cancel => Button::Delete,
                Button::Delete => Button::Cancel,
            }
        }
        Action::ToggleMongo => {
            // The confirmation covers the Mongo step too: changing it asks again.
            let on = !confirm.plan.mongo_cleanup;
            confirm.plan.set_mongo_cleanup(on);
            confirm.typed.clear();
        }
        Action::Confirm
            if confirm.focus == Button::Delete && confirm.typed.trim() == confirm.plan.confirmation_word() =>
        {
            let plan = confirm.plan.clone();
            let outcomes = vec![None; plan.items.len()];
            app.mode = Mode::Executing(Execution {
                plan: plan.clone(),
                outcomes,
                summary: None,
                step: None,
            });
            app.outcome_scroll = 0;
            return Some(Cmd::Execute(Box::new(plan)));
        }
        Action::Confirm if confirm.focus == Button::Delete => {
            app.notice = Some(format!("type {} to confirm", confirm.plan.confirmation_word()));
        }
        Action::Confirm | Action::Close => app.mode = Mode::Browse,
        Action::Quit | Action::ForceQuit => return Some(Cmd::Quit),
        _ => {}
    }
    None
}

/// Lines of the help overlay: every browse binding, a blank line, the log and plan paths.
pub fn help_line_count(app: &App) -> u16 {
    (keymap::help(KeyContext::Browse, app.config.read_only).len() + 3) as u16
}

fn scroll_outcomes(app: &mut App, action: Action) -> Option<Cmd> {
    match action {
        Action::Down => app.outcome_scroll += 1,
        Action::Up => app.outcome_scroll = app.outcome_scroll.saturating_sub(1),
        _ => {}
    }
    None
}

fn execution_finished(app: &mut App, end: RunEnd) -> Option<Cmd> {
    let Mode::Executing(exec) = &mut app.mode else {
        return None;
    };
    let mut summary = Summary {
        reclaimable_bytes: end.reclaimable_bytes,
        notes: end.notes,
        ..Summary::default()
    };
    for outcome in &exec.outcomes {
        match outcome {
            Some(Outcome::Deleted) | Some(Outcome::Untagged) => summary.deleted += 1,
            Some(Outcome::AlreadyGone) => summary.already_gone += 1,
            Some(Outcome::WouldDelete) => summary.would_delete += 1,
            Some(Outcome::Failed(_)) => summary.failed += 1,
            Some(Outcome::Skipped(_)) | None => summary.skipped += 1,
        }
    }
    let real = summary.deleted > 0;
    exec.summary = Some(summary);
    let exec = exec.clone();
    app.mode = Mode::Done(exec);
    if let Some(d) = &mut app.data {
        d.selection.clear();
    }
    // The registry changed: read it again behind the summary.
    real.then(|| app.start_load())
}

/// The frozen plan re-checked on a newer dataset: the same pure re-check the run performs.
fn recheck_on(plan: &Plan, ds: &Dataset) -> Recheck {
    use crate::plan::recheck::{Verdict, membership, recheck};
    let protected: HashMap<TagId, Vec<String>> = ds.protections.iter().map(|(t, r)| (*t, r.clone())).collect();
    let verdicts = recheck(
        &plan.core.manifests,
        &ds.inventory,
        &protected,
        &membership(&ds.categories),
    );
    let mut out = Recheck::default();
    for (m, v) in plan.core.manifests.iter().zip(&verdicts) {
        match v {
            Verdict::Delete => out.delete += 1,
            Verdict::AlreadyDeleted => out.already_gone += 1,
            Verdict::Skip(why) => {
                out.skipped_count += 1;
                if out.skipped.len() < 3 {
                    out.skipped
                        .push(format!("{}@{}: {why}", m.repository, short_digest(&m.digest)));
                }
            }
        }
    }
    out
}

fn short_digest(d: &str) -> &str {
    d.get(..19).unwrap_or(d)
}

#[cfg(test)]
mod tests;
