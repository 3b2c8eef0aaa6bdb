//! Serde wire types, versioned, built from model/plan values with no logic beyond conversion:
//! the inventory snapshot (`scan --output`) and the report/plan JSON (`report`).

pub mod json;
pub mod snapshot;

/// RFC 3339 (UTC, seconds) for a Unix time.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

pub fn parse_rfc3339(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}
