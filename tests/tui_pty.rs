//! End to end: the real `registry-cleaner tui --demo` in a detached 80×24 tmux session, driven by keys and
//! read back with `capture-pane`. Fails (never skips) when tmux is missing.

use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

struct Session(String);

impl Session {
    fn start() -> Session {
        let name = format!("rc-tui-{}", std::process::id());
        let status = Command::new("tmux")
            .args(["new-session", "-d", "-s", &name, "-x", "80", "-y", "24"])
            .args([
                "env",
                "PS1=READY$ ",
                "TERM=xterm-256color",
                "bash",
                "--norc",
                "--noprofile",
            ])
            .status()
            .expect("tmux must be installed to run this test");
        assert!(status.success(), "tmux new-session failed");
        Session(name)
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.0])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn literal(&self, text: &str) {
        let status = Command::new("tmux")
            .args(["send-keys", "-l", "-t", &self.0, text])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until `pred` holds for the screen, or fails with the last screen.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}; screen:\n{screen}"
            );
            sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).status();
    }
}

fn footer(screen: &str) -> String {
    screen
        .lines()
        .find(|l| l.contains("reclaimable after GC"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn filter_mark_confirm_cancel_and_quit_in_a_real_terminal() {
    let s = Session::start();
    s.wait_for("the shell prompt", |sc| sc.contains("READY$"));
    let bin = env!("CARGO_BIN_EXE_registry-cleaner");
    let log = std::env::temp_dir().join(format!("rc-pty-{}.log", std::process::id()));
    s.literal(&format!(
        "{bin} tui --demo --demo-tags 600 --log-file {}; echo EXITED:$?",
        log.display()
    ));
    s.keys(&["Enter"]);
    let screen = s.wait_for("the loaded UI", |sc| {
        sc.contains("keycloak ok") && sc.contains("Categories")
    });
    assert!(footer(&screen).contains("0 B reclaimable"), "{screen}");

    s.literal("/-1$");
    let screen = s.wait_for("the filter with a live match count", |sc| {
        sc.contains("/-1$") && sc.contains("matches")
    });
    assert!(!screen.contains(" 104 matches"), "the count is live:\n{screen}");
    s.keys(&["Enter", "j", "Space"]);
    let screen = s.wait_for("the footer to change", |sc| !footer(sc).contains(" 0 B reclaimable"));
    let marked = footer(&screen);
    assert!(marked.contains("Marked 1 digests"), "{screen}");

    s.keys(&["d"]);
    s.wait_for("the confirmation modal", |sc| {
        sc.contains("to confirm") && sc.contains("[ Cancel ]")
    });
    s.keys(&["Escape"]);
    let screen = s.wait_for("the modal to close", |sc| !sc.contains("[ Cancel ]"));
    assert_eq!(footer(&screen), marked, "cancel keeps the selection");

    s.keys(&["q"]);
    let screen = s.wait_for("exit and the prompt", |sc| {
        sc.contains("EXITED:0") && sc.trim_end().ends_with("READY$")
    });
    assert!(
        !screen.contains("Categories"),
        "alternate screen left behind:\n{screen}"
    );
}
