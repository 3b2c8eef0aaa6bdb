//! Terminal lifecycle and the loop: `select!` over terminal key presses, worker messages and a
//! tick (only while loading or executing); drain everything pending, update, then draw once.
//! The worker task turns [`Cmd`]s into effects through the injected [`Loader`] and [`Executor`].

use crate::app::{self, App, AppConfig, Cmd, DatasetMsg, Msg, Outcome, Plan, RunEnd, keymap};
use crate::dataset::{Dataset, SourceKind, SourceStatus};
use crate::ui::{self, Theme, UiState};
use anyhow::Context as _;
use crossterm::event::{Event, EventStream, KeyEventKind, MouseEventKind};
use futures::future::BoxFuture;
use futures::{FutureExt as _, StreamExt as _};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

pub struct TuiOptions {
    /// Hide and unbind every destructive action.
    pub read_only: bool,
    /// Shown in the status bar; deletions only touch the in-memory demo dataset.
    pub demo: bool,
    /// Shown in the help screen.
    pub log_path: Option<PathBuf>,
    /// Where `w` writes the plan JSON.
    pub plan_path: PathBuf,
    pub mongo_cleanup: bool,
    /// The settings fingerprint plans are bound to, and sources off on purpose.
    pub fingerprint: String,
    pub without: Vec<SourceKind>,
    /// `None`: colour unless `NO_COLOR` is set.
    pub color: Option<bool>,
    /// Capture the mouse: the wheel scrolls like the arrow keys (`--mouse`; off by default so
    /// the terminal's own text selection keeps working).
    pub mouse: bool,
    /// Performs `Cmd::Execute`; `None` runs a dry run through the same messages.
    pub executor: Option<Arc<dyn Executor>>,
}

impl Default for TuiOptions {
    fn default() -> Self {
        TuiOptions {
            read_only: false,
            demo: false,
            log_path: None,
            plan_path: PathBuf::from("registry-cleaner-plan.json"),
            mongo_cleanup: false,
            fingerprint: String::new(),
            without: Vec::new(),
            color: None,
            mouse: false,
            executor: None,
        }
    }
}

/// How loaders and executors report back to the UI while they work.
#[derive(Clone)]
pub struct Progress(UnboundedSender<Msg>);

impl Progress {
    pub fn new(tx: UnboundedSender<Msg>) -> Progress {
        Progress(tx)
    }
    pub fn source(&self, kind: SourceKind, status: SourceStatus) {
        let _ = self.0.send(Msg::SourceStatus(kind, status));
    }
    /// Progress of a source still loading (shown next to its spinner).
    pub fn detail(&self, kind: SourceKind, text: String) {
        let _ = self.0.send(Msg::Progress(kind, text));
    }
    pub fn item(&self, index: usize, outcome: Outcome) {
        let _ = self.0.send(Msg::ItemDone { index, outcome });
    }
    /// The running deletion started a step.
    pub fn step(&self, text: &str) {
        let _ = self.0.send(Msg::RunStep(text.to_string()));
    }
}

/// Reads every source into a [`Dataset`], reporting per-source status as it goes.
pub trait Loader: Send + Sync {
    fn load(&self, progress: Progress) -> BoxFuture<'static, anyhow::Result<Dataset>>;
}

impl<F, Fut> Loader for F
where
    F: Fn(Progress) -> Fut + Send + Sync,
    Fut: Future<Output = anyhow::Result<Dataset>> + Send + 'static,
{
    fn load(&self, progress: Progress) -> BoxFuture<'static, anyhow::Result<Dataset>> {
        self(progress).boxed()
    }
}

/// Executes a confirmed plan — exactly `plan.core`, never a plan rebuilt from newer data —
/// reporting one outcome per item (by index into `plan.items`, which is `plan.core.manifests`),
/// and writes plans for `w`.
pub trait Executor: Send + Sync {
    /// `cancel` is set when the operator quits mid-run: start nothing new, finish and record
    /// what is in flight, then return.
    fn execute(&self, plan: Plan, progress: Progress, cancel: Cancel) -> BoxFuture<'static, RunEnd>;

    /// Writes the `report` JSON `w` froze, which `registry-cleaner delete --plan` executes.
    fn write_plan(&self, path: PathBuf, report: crate::report::json::Report) -> BoxFuture<'static, anyhow::Result<()>> {
        async move { write_plan(&path, &report).await }.boxed()
    }
}

pub mod backend;
pub mod demo_world;

/// Set to stop a running execution between items.
pub type Cancel = Arc<std::sync::atomic::AtomicBool>;

fn cancelled(c: &Cancel) -> bool {
    c.load(std::sync::atomic::Ordering::SeqCst)
}

/// Deletes nothing: every item is reported as "would delete".
pub struct DryRun;

impl Executor for DryRun {
    fn execute(&self, plan: Plan, progress: Progress, cancel: Cancel) -> BoxFuture<'static, RunEnd> {
        async move {
            for i in 0..plan.items.len() {
                if cancelled(&cancel) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                progress.item(i, Outcome::WouldDelete);
            }
            RunEnd {
                reclaimable_bytes: plan.core.reclaimable_bytes,
                notes: vec!["dry run: nothing was deleted".into()],
            }
        }
        .boxed()
    }
}

/// The `--demo` world: a loader serving the bundled demo world (`assets/demo-world.json`, or a
/// world generated for another seed/size), with categories computed by the real core on first
/// load (so the first frame shows at once; sources appear one by one), and an executor that
/// removes deleted tags from that in-memory dataset only.
pub fn demo_backend(seed: u64, tags: usize) -> (Arc<dyn Loader>, Arc<dyn Executor>) {
    let world = DemoWorld {
        data: Arc::new(Mutex::new(None)),
        seed,
        tags,
    };
    (Arc::new(world.clone()), Arc::new(world))
}

#[derive(Clone)]
struct DemoWorld {
    data: Arc<Mutex<Option<Dataset>>>,
    seed: u64,
    tags: usize,
}

impl Loader for DemoWorld {
    fn load(&self, progress: Progress) -> BoxFuture<'static, anyhow::Result<Dataset>> {
        let world = self.clone();
        async move {
            let data = tokio::task::spawn_blocking(move || {
                let mut slot = world
                    .data
                    .lock()
                    .map_err(|_| anyhow::anyhow!("demo dataset poisoned"))?;
                if slot.is_none() {
                    *slot = Some(
                        demo_world::demo_dataset(world.seed, world.tags)
                            .map_err(|e| anyhow::anyhow!("demo dataset: {e}"))?,
                    );
                }
                Ok::<_, anyhow::Error>(slot.clone().expect("just loaded"))
            })
            .await??;
            for kind in SourceKind::ALL {
                tokio::time::sleep(Duration::from_millis(120)).await;
                progress.source(kind, data.sources.get(&kind).cloned().unwrap_or(SourceStatus::Disabled));
            }
            Ok(data)
        }
        .boxed()
    }
}

impl Executor for DemoWorld {
    fn execute(&self, plan: Plan, progress: Progress, cancel: Cancel) -> BoxFuture<'static, RunEnd> {
        let world = self.data.clone();
        async move {
            for i in 0..plan.items.len() {
                if cancelled(&cancel) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                progress.item(i, Outcome::Deleted);
            }
            // The plan names tags, not ids: find them in the dataset as it is now.
            if let Ok(mut slot) = world.lock()
                && let Some(d) = slot.as_mut()
            {
                let inv = &d.inventory;
                let gone: HashSet<_> = (plan.core.manifests.iter())
                    .flat_map(|m| m.tags.iter().filter_map(|t| inv.find_tag(&m.repository, t)))
                    .collect();
                *d = demo_world::without_tags(d, &gone);
            }
            RunEnd {
                reclaimable_bytes: plan.core.reclaimable_bytes,
                notes: vec!["demo: only the in-memory dataset changed".into()],
            }
        }
        .boxed()
    }
}

/// Runs the interactive UI until the user quits. The terminal is restored on every exit path,
/// panics included (the panic hook restores, prints, and ends the process).
pub async fn run_tui(opts: TuiOptions, loader: Arc<dyn Loader>) -> anyhow::Result<()> {
    let color = opts
        .color
        .unwrap_or_else(|| std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()));
    let config = AppConfig {
        read_only: opts.read_only,
        demo: opts.demo,
        log_path: opts.log_path.as_ref().map(|p| p.display().to_string()),
        plan_path: opts.plan_path.display().to_string(),
        mongo_cleanup: opts.mongo_cleanup,
        fingerprint: opts.fingerprint.clone(),
        without: opts.without.clone(),
    };
    let executor = opts.executor.clone().unwrap_or_else(|| Arc::new(DryRun));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut terminal = ratatui::init();
    install_exit_on_panic(opts.mouse);
    if opts.mouse {
        crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture).context("capturing the mouse")?;
    }
    let result = event_loop(
        &mut terminal,
        App::new(config, now),
        UiState::new(Theme { color }),
        loader,
        executor,
    )
    .await;
    if opts.mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    }
    ratatui::restore();
    result
}

/// ratatui's hook restores the terminal and prints; then end the process, because tokio
/// would otherwise swallow a worker panic and leave a half-dead UI.
fn install_exit_on_panic(mouse: bool) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!("panic: {info}");
        if mouse {
            let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
        }
        previous(info);
        std::process::exit(101);
    }));
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    mut app: App,
    mut ui: UiState,
    loader: Arc<dyn Loader>,
    executor: Arc<dyn Executor>,
) -> anyhow::Result<()> {
    let (msg_tx, mut msg_rx) = unbounded_channel();
    let (cmd_tx, cmd_rx) = unbounded_channel();
    let worker = tokio::spawn(worker(cmd_rx, msg_tx, loader, executor));
    let _ = cmd_tx.send(app.start_load());
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(120));
    terminal
        .draw(|f| ui::draw(f, &app, &mut ui))
        .context("drawing the first frame")?;
    loop {
        let mut msgs = Vec::new();
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(key))) if key.kind == KeyEventKind::Press => {
                    msgs.extend(keymap::map_key(app.key_context(), key, app.config.read_only));
                }
                Some(Ok(Event::Mouse(m))) => {
                    let wheel = match m.kind {
                        MouseEventKind::ScrollUp => Some(keymap::Wheel::Up),
                        MouseEventKind::ScrollDown => Some(keymap::Wheel::Down),
                        _ => None,
                    };
                    msgs.extend(wheel.and_then(|w| keymap::map_wheel(app.key_context(), w, app.config.read_only)));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e).context("reading terminal events"),
                None => break,
            },
            Some(msg) = msg_rx.recv() => msgs.push(msg),
            _ = tick.tick(), if app.needs_tick() => msgs.push(Msg::Tick),
        }
        while let Ok(msg) = msg_rx.try_recv() {
            msgs.push(msg);
        }
        for msg in msgs {
            match app::update(&mut app, msg) {
                Some(Cmd::Quit) => {
                    // A run in flight is told to stop and finishes what it started, so every
                    // DELETE the registry acknowledges is in the audit log before we exit.
                    if matches!(app.mode, app::Mode::Executing(_)) {
                        app.notice = Some("stopping: finishing the deletes in flight and recording them…".into());
                        terminal.draw(|f| ui::draw(f, &app, &mut ui)).context("drawing")?;
                    }
                    let _ = cmd_tx.send(Cmd::Quit);
                    if tokio::time::timeout(QUIT_WAIT, worker).await.is_err() {
                        tracing::error!("the run did not stop within {QUIT_WAIT:?}; exiting anyway");
                    }
                    return Ok(());
                }
                Some(cmd) => {
                    let _ = cmd_tx.send(cmd);
                }
                None => {}
            }
        }
        if worker.is_finished() {
            anyhow::bail!("the background worker stopped unexpectedly");
        }
        terminal.draw(|f| ui::draw(f, &app, &mut ui)).context("drawing")?;
    }
    Ok(())
}

/// Turns commands into effects. Loads are single-flight: a newer `Cmd::Load` aborts the one
/// still running (loads only read), and the app drops any result whose generation is old.
pub async fn worker(
    mut cmds: UnboundedReceiver<Cmd>,
    tx: UnboundedSender<Msg>,
    loader: Arc<dyn Loader>,
    executor: Arc<dyn Executor>,
) {
    let mut current_load: Option<tokio::task::JoinHandle<()>> = None;
    let mut current_run: Option<(tokio::task::JoinHandle<()>, Cancel)> = None;
    while let Some(cmd) = cmds.recv().await {
        let tx = tx.clone();
        match cmd {
            Cmd::Load(generation) => {
                if let Some(old) = current_load.take() {
                    old.abort();
                }
                let fut = loader.load(Progress(tx.clone()));
                current_load = Some(tokio::spawn(async move {
                    let msg = match fut.await {
                        Ok(d) => Msg::Loaded(generation, Box::new(DatasetMsg(d))),
                        Err(e) => Msg::LoadFailed(generation, format!("{e:#}")),
                    };
                    let _ = tx.send(msg);
                }));
            }
            Cmd::Execute(plan) => {
                let cancel: Cancel = Arc::default();
                let fut = executor.execute(*plan, Progress(tx.clone()), cancel.clone());
                let handle = tokio::spawn(async move {
                    let end = fut.await;
                    let _ = tx.send(Msg::ExecutionFinished(end));
                });
                current_run = Some((handle, cancel));
            }
            Cmd::WritePlan(path, frozen) => {
                let shown = path.display().to_string();
                let result = match tokio::task::spawn_blocking(move || frozen.report()).await {
                    Ok(report) => executor.write_plan(path, report).await.map(|()| shown),
                    Err(e) => Err(anyhow::anyhow!("building the plan's report: {e}")),
                };
                let _ = tx.send(Msg::PlanWritten(result.map_err(|e| format!("{e:#}"))));
            }
            Cmd::Quit => {
                if let Some((handle, cancel)) = current_run.take() {
                    cancel.store(true, std::sync::atomic::Ordering::SeqCst);
                    let _ = handle.await;
                }
                break;
            }
        }
    }
}

/// How long quitting waits for a cancelled run to finish its in-flight deletes.
const QUIT_WAIT: Duration = Duration::from_secs(180);

async fn write_plan(path: &std::path::Path, report: &crate::report::json::Report) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(report).context("serializing the plan")?;
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || crate::report::json::write_atomic(&path, &json).map(|()| path))
        .await?
        .map(|_| ())
        .context("writing the plan")
}

#[cfg(test)]
mod tests;
