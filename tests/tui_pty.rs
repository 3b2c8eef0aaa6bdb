//! End to end: the real `registry-cleaner tui --demo` in a detached 80×24 tmux session, driven by keys and
//! read back with `capture-pane`. Fails (never skips) when tmux is missing.

use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

struct Session(String);

impl Session {
    fn start() -> Session {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("rc-tui-{}-{n}", std::process::id());
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

    /// A tmux pane format variable (`#{mouse_sgr_flag}`: the program asked for SGR mouse
    /// reports).
    fn pane_flag(&self, var: &str) -> String {
        let out = Command::new("tmux")
            .args(["display-message", "-p", "-t", &self.0, &format!("#{{{var}}}")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
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

/// `--mouse` turns mouse reporting on in the real terminal (tmux sees the request), the wheel
/// moves the cursor like `j`, and quitting turns reporting off again; without `--mouse` the
/// terminal is never asked for mouse reports.
#[test]
fn mouse_wheel_moves_the_cursor_only_with_the_mouse_flag() {
    let s = Session::start();
    s.wait_for("the shell prompt", |sc| sc.contains("READY$"));
    let bin = env!("CARGO_BIN_EXE_registry-cleaner");
    let log = std::env::temp_dir().join(format!("rc-pty-mouse-{}.log", std::process::id()));
    s.literal(&format!(
        "{bin} tui --demo --demo-tags 600 --log-file {}; echo EXITED:$?",
        log.display()
    ));
    s.keys(&["Enter"]);
    s.wait_for("the loaded UI", |sc| {
        sc.contains("keycloak ok") && sc.contains("Categories")
    });
    assert_eq!(
        s.pane_flag("mouse_any_flag"),
        "0",
        "no mouse reports asked for without --mouse"
    );
    s.keys(&["q"]);
    s.wait_for("exit", |sc| sc.contains("EXITED:0"));
    s.literal("clear");
    s.keys(&["Enter"]);

    s.literal(&format!(
        "{bin} tui --demo --demo-tags 600 --mouse --log-file {}; echo EXITED:$?",
        log.display()
    ));
    s.keys(&["Enter"]);
    let before = s.wait_for("the loaded UI", |sc| {
        sc.contains("keycloak ok") && sc.contains("Categories")
    });
    let flags = (
        s.pane_flag("mouse_any_flag"),
        s.pane_flag("mouse_button_flag"),
        s.pane_flag("mouse_standard_flag"),
    );
    assert!(
        flags != ("0".into(), "0".into(), "0".into()),
        "--mouse asked for no mouse reports: {flags:?}"
    );
    // The cursor starts on the kind row: two wheel-down reports (SGR, button 65) move it to the
    // first group, as `j j` does, so the details pane changes.
    s.literal("\x1b[<65;30;10M\x1b[<65;30;10M");
    let after = s.wait_for("the cursor to move", |sc| sc != before);
    assert!(after.contains("space marks every candidate below"), "{after}");
    s.keys(&["q"]);
    s.wait_for("exit", |sc| sc.contains("EXITED:0"));
    let off = (
        s.pane_flag("mouse_any_flag"),
        s.pane_flag("mouse_button_flag"),
        s.pane_flag("mouse_standard_flag"),
    );
    assert_eq!(
        off,
        ("0".into(), "0".into(), "0".into()),
        "mouse reporting left on after quitting"
    );
}
