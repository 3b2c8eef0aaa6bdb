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

/// An executor whose first item takes a while ("a DELETE in flight") and that checks the
/// cancel flag before starting each next one; it logs what it did.
struct SlowRun(Arc<Mutex<Vec<String>>>);

impl Executor for SlowRun {
    fn execute(&self, plan: Plan, _progress: Progress, cancel: Cancel) -> BoxFuture<'static, RunEnd> {
        let log = self.0.clone();
        async move {
            for i in 0..plan.items.len().max(3) {
                if cancelled(&cancel) {
                    log.lock().unwrap().push("stopped".into());
                    break;
                }
                log.lock().unwrap().push(format!("started {i}"));
                tokio::time::sleep(Duration::from_millis(300)).await;
                log.lock().unwrap().push(format!("finished {i}"));
            }
            RunEnd::default()
        }
        .boxed()
    }
}

#[tokio::test]
async fn quitting_mid_run_waits_for_the_item_in_flight_and_starts_no_other() {
    let (msg_tx, _msg_rx) = unbounded_channel();
    let (cmd_tx, cmd_rx) = unbounded_channel();
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let worker = tokio::spawn(worker(cmd_rx, msg_tx, racing_loader(), Arc::new(SlowRun(log.clone()))));
    let plan = crate::app::Plan {
        core: crate::plan::deletion::build(
            &crate::model::Inventory::default(),
            &mut crate::plan::SpaceEngine::new(&crate::model::Inventory::default()),
            &[],
            "selection",
            "",
            0,
        ),
        registry: String::new(),
        generated_at: 0,
        items: vec![],
        per_category: vec![],
        tag_count: 0,
        untagged_count: 0,
        reclaimable_bytes: 0,
        mongo_cleanup: false,
        hidden_by_filter: 0,
    };
    cmd_tx.send(Cmd::Execute(Box::new(plan))).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    cmd_tx.send(Cmd::Quit).unwrap();
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .unwrap()
        .unwrap();
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        ["started 0", "finished 0", "stopped"],
        "the worker returned only after the item in flight was done"
    );
}
