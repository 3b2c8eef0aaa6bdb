//! TUI frame cost at scale: a dataset of 100k tags loaded into the app, then frames (build
//! the visible tree rows + render into an off-screen 160×50 buffer) while browsing, marking
//! and with a group expanded; plus loading the dataset into the app, and the first frame of an
//! empty app (what the user sees before any data arrives). Run: `cargo bench --bench tui`.

mod common;
use common::arg;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use registry_cleaner::app::keymap::Action;
use registry_cleaner::app::{App, AppConfig, DatasetMsg, Msg, update};
use registry_cleaner::demo::demo_dataset;
use registry_cleaner::ui::{self, Theme, UiState};
use std::time::Instant;

fn frames(
    terminal: &mut Terminal<TestBackend>,
    app: &mut App,
    ui: &mut UiState,
    actions: &[Action],
    n: usize,
) -> (f64, f64) {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        update(app, Msg::Key(actions[i % actions.len()]));
        terminal.draw(|f| ui::draw(f, app, ui)).expect("draw");
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    (samples[samples.len() / 2], samples[(samples.len() - 1) * 99 / 100])
}

fn main() {
    let tags = arg("--tags", 100_000);
    let mut terminal = Terminal::new(TestBackend::new(160, 50)).expect("terminal");
    let mut ui = UiState::new(Theme { color: true });

    let t = Instant::now();
    let mut app = App::new(AppConfig::default(), 1_760_000_000);
    terminal.draw(|f| ui::draw(f, &app, &mut ui)).expect("draw");
    let first_frame_ms = t.elapsed().as_secs_f64() * 1e3;

    let t = Instant::now();
    let data = demo_dataset(7, tags);
    let gen_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    update(&mut app, Msg::Loaded(0, Box::new(DatasetMsg(data))));
    terminal.draw(|f| ui::draw(f, &app, &mut ui)).expect("draw");
    let load_ms = t.elapsed().as_secs_f64() * 1e3;

    let browse = frames(
        &mut terminal,
        &mut app,
        &mut ui,
        &[Action::Down, Action::Down, Action::Up],
        300,
    );
    update(&mut app, Msg::Key(Action::Expand));
    let expanded = frames(
        &mut terminal,
        &mut app,
        &mut ui,
        &[Action::Down, Action::Expand, Action::Down],
        300,
    );
    let marking = frames(
        &mut terminal,
        &mut app,
        &mut ui,
        &[Action::ToggleMark, Action::Down],
        300,
    );
    let t = Instant::now();
    update(&mut app, Msg::Key(Action::MarkAllInView));
    terminal.draw(|f| ui::draw(f, &app, &mut ui)).expect("draw");
    let mark_all_ms = t.elapsed().as_secs_f64() * 1e3;

    // `d` and `w` on everything marked: the plan is frozen in `update`, on the key press; for
    // `w` the report around it is built on the worker (timed apart below).
    let t = Instant::now();
    update(&mut app, Msg::Key(Action::RequestDelete));
    terminal.draw(|f| ui::draw(f, &app, &mut ui)).expect("draw");
    let freeze_ms = t.elapsed().as_secs_f64() * 1e3;
    update(&mut app, Msg::Key(Action::Close));
    let t = Instant::now();
    let cmd = update(&mut app, Msg::Key(Action::WritePlan));
    terminal.draw(|f| ui::draw(f, &app, &mut ui)).expect("draw");
    let write_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    if let Some(registry_cleaner::app::Cmd::WritePlan(_, frozen)) = &cmd {
        std::hint::black_box(frozen.report());
    }
    let report_ms = t.elapsed().as_secs_f64() * 1e3;

    println!("TUI benchmark: {tags} tags, 160×50 off-screen terminal");
    println!("| measurement | p50 | p99 | target |");
    println!("|---|---|---|---|");
    println!("| first frame of an empty app (before data) | {first_frame_ms:.2} ms | | ≤ 150 ms after start |");
    println!(
        "| frame while browsing (key + update + draw) | {:.2} ms | {:.2} ms | ≤ 10 ms |",
        browse.0, browse.1
    );
    println!(
        "| frame while expanding groups | {:.2} ms | {:.2} ms | ≤ 10 ms |",
        expanded.0, expanded.1
    );
    println!(
        "| frame while marking (toggle + live bytes + draw) | {:.2} ms | {:.2} ms | ≤ 10 ms |",
        marking.0, marking.1
    );
    println!("| mark every candidate in view + frame | {mark_all_ms:.1} ms | | ≤ 50 ms |");
    println!("| `d` on all marks: freeze the plan + modal frame | {freeze_ms:.1} ms | | ≤ 50 ms |");
    println!("| `w` on all marks: freeze + frame (UI thread) | {write_ms:.1} ms | | ≤ 50 ms |");
    println!("| `w`: the report around the plan, built on the worker | {report_ms:.1} ms | | off the UI thread |");
    println!("| load dataset into the app + frame (engine, categories) | {load_ms:.0} ms | | (worker, not a frame) |");
    println!("| generate the synthetic dataset | {gen_ms:.0} ms | | (bench setup) |");
}
