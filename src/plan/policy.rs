//! Thresholds and switches the categories and protections obey. Built by settings; pure data.

use crate::model::ids_file::IdFilter;
use crate::plan::dataset::SourceKind;
use regex::Regex;
use std::collections::BTreeSet;

/// Added to the grace period when it runs from a push time read off storage: the link's
/// modification time comes from the storage's clock (an NFS server, S3), and a clock behind
/// this host's would make a fresh push look older than it is. Five minutes covers the skew of
/// unsynchronised hosts that NTP keeps within seconds, with a wide margin.
pub const STORAGE_CLOCK_ALLOWANCE_SECS: i64 = 300;

#[derive(Debug, Clone)]
pub struct Policy {
    /// Newest built revisions kept per environment by `old-revisions` (≥ 1).
    pub keep_revisions: usize,
    /// Runs older than this many days stop protecting a tag; `None` = every run counts.
    pub unused_since_days: Option<u32>,
    /// A tag pushed less than this many seconds ago is never a candidate (a build may be
    /// about to record it in Mongo).
    pub grace_period_secs: i64,
    /// `repository:tag` patterns that are never deleted.
    pub protect: Vec<Regex>,
    /// Sources turned off on purpose (`--without kubernetes`).
    pub without: BTreeSet<SourceKind>,
    /// `--ids FILE`: restrict candidates to these environments, models, revisions, versions.
    pub only_ids: Option<IdFilter>,
    /// Other names of the scanned registry's host (`registry.aliases`, lowercase) that Mongo
    /// may record in a repository: a record naming another host is never an orphan here.
    pub registry_aliases: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            keep_revisions: 5,
            unused_since_days: None,
            grace_period_secs: 2 * 3600,
            protect: Vec::new(),
            without: BTreeSet::new(),
            only_ids: None,
            registry_aliases: Vec::new(),
        }
    }
}
