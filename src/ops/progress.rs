//! Progress without a terminal (a pod, a CronJob, a pipe): at most one line every 10 s with
//! done/total, rate and ETA, logged as an `info` event (a JSON line a collector can parse when
//! logs are JSON), plus one line when the work ends. On a terminal, [`bar`] draws a live bar
//! (indicatif) with rate and ETA on stderr instead.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a line is written.
pub const EVERY: Duration = Duration::from_secs(10);

pub struct Ticker {
    what: String,
    every: Duration,
    started: Instant,
    last: Mutex<Option<Instant>>,
}

impl Ticker {
    pub fn new(what: impl Into<String>) -> Ticker {
        Ticker::with_interval(what, EVERY, Instant::now())
    }

    pub fn with_interval(what: impl Into<String>, every: Duration, started: Instant) -> Ticker {
        Ticker {
            what: what.into(),
            every,
            started,
            last: Mutex::new(None),
        }
    }

    /// Logs a line when `every` has passed since the start or the last line.
    pub fn update(&self, done: usize, total: usize) {
        if let Some(line) = self.tick_at(Instant::now(), done, total) {
            self.log(&line, done, total);
        }
    }

    /// Like `update`, with the caller's own text for the line (built only when one is due).
    pub fn update_with(&self, done: usize, total: usize, text: impl FnOnce() -> String) {
        if self.tick_at(Instant::now(), done, total).is_some() {
            self.log(&text(), done, total);
        }
    }

    /// Always logs the final line.
    pub fn finish(&self, done: usize, total: usize) {
        let line = line(&self.what, done, total, self.started.elapsed());
        self.log(&line, done, total);
    }

    /// The line due at `now`, if any (and marks it written).
    pub fn tick_at(&self, now: Instant, done: usize, total: usize) -> Option<String> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let since = now.saturating_duration_since(last.unwrap_or(self.started));
        if since < self.every {
            return None;
        }
        *last = Some(now);
        Some(line(
            &self.what,
            done,
            total,
            now.saturating_duration_since(self.started),
        ))
    }

    fn log(&self, line: &str, done: usize, total: usize) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let (rate, eta) = rate_eta(done, total, elapsed);
        tracing::info!(
            kind = "progress",
            what = %self.what,
            done,
            total,
            rate,
            eta_secs = eta.unwrap_or(-1.0),
            "{line}"
        );
    }
}

fn rate_eta(done: usize, total: usize, elapsed_secs: f64) -> (f64, Option<f64>) {
    let rate = if elapsed_secs > 0.0 {
        done as f64 / elapsed_secs
    } else {
        0.0
    };
    let eta = (rate > 0.0 && total >= done).then(|| (total - done) as f64 / rate);
    (rate, eta)
}

/// "delete: 120/400 (3.0/s, ETA 93s)".
pub fn line(what: &str, done: usize, total: usize, elapsed: Duration) -> String {
    let (rate, eta) = rate_eta(done, total, elapsed.as_secs_f64());
    let eta = eta.map(|s| format!(", ETA {s:.0}s")).unwrap_or_default();
    format!("{what}: {done}/{total} ({rate:.1}/s{eta})")
}

/// A live progress bar on stderr (drawn only when stderr is a terminal): `what`, the bar,
/// done/total, rate, ETA and a message.
pub fn bar(what: &str, total: usize) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::with_draw_target(Some(total as u64), indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} ({per_sec}, ETA {eta}) {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_prefix(what.to_string());
    pb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_rate_and_eta() {
        let t0 = Instant::now();
        let t = Ticker::with_interval("delete", Duration::from_secs(10), t0);
        assert_eq!(t.tick_at(t0 + Duration::from_secs(3), 3, 40), None);
        assert_eq!(
            t.tick_at(t0 + Duration::from_secs(10), 20, 40).as_deref(),
            Some("delete: 20/40 (2.0/s, ETA 10s)")
        );
        // The next line is due 10 s after the last one, not after the start.
        assert_eq!(t.tick_at(t0 + Duration::from_secs(19), 30, 40), None);
        assert!(t.tick_at(t0 + Duration::from_secs(20), 30, 40).is_some());
        assert_eq!(line("scan", 0, 5, Duration::ZERO), "scan: 0/5 (0.0/s)");
    }
}
