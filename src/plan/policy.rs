//! Thresholds and switches the categories and protections obey. Built by settings; pure data.

use crate::model::ids_file::IdFilter;
use crate::plan::dataset::SourceKind;
use regex::Regex;
use std::collections::BTreeSet;

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
        }
    }
}
