use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A loader whose first load is slow and every later one fast; each dataset carries the
/// call number in `generated_at`, so the test sees which load the app shows.
fn racing_loader() -> Arc<dyn Loader> {
    let calls = Arc::new(AtomicUsize::new(0));
    Arc::new(move |_p: Progress| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            let delay = if n == 0 { 400 } else { 20 };
            tokio::time::sleep(Duration::from_millis(delay)).await;
            Ok(Dataset {
                generated_at: n as i64 + 1,
                ..Dataset::default()
            })
        }
    })
}

#[tokio::test]
async fn two_reloads_in_a_row_show_the_second() {
    let (msg_tx, mut msg_rx) = unbounded_channel();
    let (cmd_tx, cmd_rx) = unbounded_channel();
    let worker = tokio::spawn(worker(cmd_rx, msg_tx, racing_loader(), Arc::new(DryRun)));
    let mut app = App::new(AppConfig::default(), 0);
    // `r`, then `r` again while the first (slow) load still runs.
    for _ in 0..2 {
        let cmd = app::update(&mut app, Msg::Key(app::Action::Reload)).expect("reload is a command");
        cmd_tx.send(cmd).unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(900);
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, msg_rx.recv()).await {
        app::update(&mut app, msg);
    }
    let shown = app.data.as_ref().expect("a dataset is shown").dataset.generated_at;
    assert_eq!(shown, 2, "the second request's dataset is shown, not the slower first");
    worker.abort();
}
