//! Human units for bytes and ages.

/// `1.2 GiB`, `340 MiB`, `512 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v >= 100.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Age of `created` at `now`: `5h`, `12d`, `7mo`, `2y`; `?` when unknown.
pub fn age(created: Option<i64>, now: i64) -> String {
    let Some(c) = created else { return "?".into() };
    let secs = now.saturating_sub(c).max(0);
    let days = secs / 86_400;
    match days {
        0 => format!("{}h", secs / 3600),
        1..=59 => format!("{days}d"),
        60..=729 => format!("{}mo", days / 30),
        _ => format!("{}y", days / 365),
    }
}

/// `sha256:0123456789ab…` for narrow panes.
pub fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) if hex.len() > 16 => format!("{alg}:{}…", &hex[..16]),
        _ => d.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_naturally() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(340 << 20), "340 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(age(Some(0), 3 * 86_400), "3d");
        assert_eq!(age(Some(0), 400 * 86_400), "13mo");
        assert_eq!(age(None, 0), "?");
    }

    #[test]
    fn a_creation_time_from_a_snapshot_file_cannot_overflow_the_age() {
        // `created` comes from the snapshot file as any i64.
        assert_eq!(
            age(Some(i64::MIN), 1_760_000_000),
            format!("{}y", i64::MAX / 86_400 / 365)
        );
        assert_eq!(age(Some(i64::MAX), 1_760_000_000), "0h");
    }
}
