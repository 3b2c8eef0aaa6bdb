//! The selected category as a tree: image kind → environment/model group → tags, filtered and
//! sorted once when its inputs change (never per frame), plus the cursor and the opened nodes.
//! Navigation is structural (indices), so a key press costs O(1) whatever the tree size.

use crate::dataset::Dataset;
use crate::model::{ImageKind, ObjectId, TagId};
use crate::plan::{CategoryId, CategoryResult, SpaceEngine};
use regex::Regex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Stable tree identifiers (domain ids), so expansion survives rebuilds and reloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NodeId {
    Kind(ImageKind),
    Group(Arc<str>),
    Tag(TagId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Groups by bytes, tags inside a group by revision (or model version) number: how Domino
    /// lists an environment's revisions.
    #[default]
    Revision,
    Bytes,
    Age,
    Name,
}

impl SortKey {
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Revision => SortKey::Bytes,
            SortKey::Bytes => SortKey::Age,
            SortKey::Age => SortKey::Name,
            SortKey::Name => SortKey::Revision,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Revision => "revision",
            SortKey::Bytes => "bytes",
            SortKey::Age => "age",
            SortKey::Name => "name",
        }
    }
}

/// A compiled `/` filter: a regex over `repository:tag` and the group name; `!` inverts it.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub regex: Regex,
    pub inverse: bool,
}

impl Matcher {
    /// `None` for an empty filter; `Err` with the regex error for an invalid one.
    pub fn parse(text: &str) -> Result<Option<Matcher>, String> {
        let (inverse, pattern) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if pattern.is_empty() {
            return Ok(None);
        }
        let regex = Regex::new(pattern).map_err(|e| e.to_string().lines().last().unwrap_or("invalid").to_string())?;
        Ok(Some(Matcher { regex, inverse }))
    }

    pub fn matches(&self, tag_ref: &str, group: &str) -> bool {
        (self.regex.is_match(tag_ref) || self.regex.is_match(group)) != self.inverse
    }
}

/// One tag row: protected rows are shown but cannot be marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub tag: TagId,
    pub protected: bool,
    /// Index into the category's `candidates` or `protected` list.
    pub index: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupNode {
    pub name: Arc<str>,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindNode {
    pub kind: ImageKind,
    pub groups: Vec<GroupNode>,
    pub tags: usize,
}

/// Where the cursor is: a kind, a group in it, or a row in that group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    pub kind: usize,
    pub group: Option<usize>,
    pub row: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct TreeView {
    pub kinds: Vec<KindNode>,
    /// Tags shown (after the filter) and tags in the category.
    pub shown: usize,
    pub total: usize,
    pub opened: HashSet<Vec<NodeId>>,
    pub cursor: Cursor,
}

impl TreeView {
    /// Groups the category's candidates and protected tags; cost O(category · log).
    pub fn build(
        data: &Dataset,
        engine: &SpaceEngine,
        cat: &CategoryResult,
        filter: Option<&Matcher>,
        sort: SortKey,
    ) -> Self {
        let inv = &data.inventory;
        let mut by_kind: BTreeMap<ImageKind, HashMap<Arc<str>, Vec<Row>>> = BTreeMap::new();
        let rows = cat.candidates.iter().enumerate().map(|(i, c)| Row {
            tag: c.tag,
            protected: false,
            index: i,
        });
        let prot = cat.protected.iter().enumerate().map(|(i, p)| Row {
            tag: p.tag,
            protected: true,
            index: i,
        });
        let mut shown = 0;
        let mut total = 0;
        let mut names: HashMap<String, Arc<str>> = HashMap::new();
        for row in rows.chain(prot) {
            total += 1;
            let group = group_name(data, cat.id, row.tag);
            if let Some(m) = filter
                && !m.matches(&inv.tag_ref(row.tag), &group)
            {
                continue;
            }
            shown += 1;
            let name = names.entry(group).or_insert_with_key(|k| Arc::from(k.as_str())).clone();
            let kind = inv.repo(inv.tag(row.tag).repo).kind;
            by_kind.entry(kind).or_default().entry(name).or_default().push(row);
        }
        let kinds = by_kind
            .into_iter()
            .map(|(kind, groups)| {
                let mut groups: Vec<GroupNode> = groups
                    .into_iter()
                    .map(|(name, rows)| GroupNode { name, rows })
                    .collect();
                for g in &mut groups {
                    sort_rows(data, engine, &mut g.rows, sort);
                }
                sort_groups(data, engine, &mut groups, sort);
                let tags = groups.iter().map(|g| g.rows.len()).sum();
                KindNode { kind, groups, tags }
            })
            .collect();
        TreeView {
            kinds,
            shown,
            total,
            opened: HashSet::new(),
            cursor: Cursor::default(),
        }
    }

    /// Rebuilt contents keep the opened nodes and, when it still exists, the cursor's node.
    pub fn replace_keeping_view(&mut self, mut new: TreeView) {
        let path = self.path(self.cursor);
        new.opened = std::mem::take(&mut self.opened);
        new.cursor = new.find(&path).unwrap_or_default();
        *self = new;
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// The identifier path of a cursor, as tui-tree-widget addresses nodes.
    pub fn path(&self, c: Cursor) -> Vec<NodeId> {
        let Some(k) = self.kinds.get(c.kind) else {
            return vec![];
        };
        let mut out = vec![NodeId::Kind(k.kind)];
        if let Some(g) = c.group.and_then(|g| k.groups.get(g)) {
            out.push(NodeId::Group(g.name.clone()));
            if let Some(r) = c.row.and_then(|r| g.rows.get(r)) {
                out.push(NodeId::Tag(r.tag));
            }
        }
        out
    }

    fn find(&self, path: &[NodeId]) -> Option<Cursor> {
        let NodeId::Kind(kind) = path.first()? else {
            return None;
        };
        let k = self.kinds.iter().position(|n| n.kind == *kind)?;
        let mut c = Cursor {
            kind: k,
            group: None,
            row: None,
        };
        if let Some(NodeId::Group(name)) = path.get(1) {
            let groups = &self.kinds[k].groups;
            let Some(g) = groups.iter().position(|n| n.name == *name) else {
                return Some(c);
            };
            c.group = Some(g);
            if let Some(NodeId::Tag(t)) = path.get(2) {
                c.row = groups[g].rows.iter().position(|r| r.tag == *t);
            }
        }
        Some(c)
    }

    pub fn row_at(&self, c: Cursor) -> Option<&Row> {
        self.kinds.get(c.kind)?.groups.get(c.group?)?.rows.get(c.row?)
    }

    pub fn group_at(&self, c: Cursor) -> Option<&GroupNode> {
        self.kinds.get(c.kind)?.groups.get(c.group?)
    }

    fn is_open(&self, c: Cursor) -> bool {
        self.opened.contains(&self.path(c))
    }

    /// Rows under the cursor's node (itself for a row).
    pub fn rows_under(&self, c: Cursor) -> Vec<Row> {
        let Some(k) = self.kinds.get(c.kind) else {
            return vec![];
        };
        match (c.group, c.row) {
            (Some(g), Some(r)) => k
                .groups
                .get(g)
                .and_then(|g| g.rows.get(r))
                .copied()
                .into_iter()
                .collect(),
            (Some(g), None) => k.groups.get(g).map(|g| g.rows.clone()).unwrap_or_default(),
            (None, _) => k.groups.iter().flat_map(|g| g.rows.iter().copied()).collect(),
        }
    }

    pub fn all_rows(&self) -> impl Iterator<Item = &Row> {
        self.kinds
            .iter()
            .flat_map(|k| k.groups.iter().flat_map(|g| g.rows.iter()))
    }

    pub fn down(&mut self) {
        let c = self.cursor;
        let Some(k) = self.kinds.get(c.kind) else {
            return;
        };
        let next = match (c.group, c.row) {
            (None, _) if self.is_open(c) && !k.groups.is_empty() => Some(Cursor { group: Some(0), ..c }),
            (None, _) => self.next_kind(c),
            (Some(g), None) if self.is_open(c) && !k.groups[g].rows.is_empty() => Some(Cursor { row: Some(0), ..c }),
            (Some(g), None) => self.next_group(c.kind, g),
            (Some(g), Some(r)) if r + 1 < k.groups[g].rows.len() => Some(Cursor { row: Some(r + 1), ..c }),
            (Some(g), Some(_)) => self.next_group(c.kind, g),
        };
        if let Some(n) = next {
            self.cursor = n;
        }
    }

    pub fn up(&mut self) {
        let c = self.cursor;
        self.cursor = match (c.group, c.row) {
            (Some(_), Some(r)) if r > 0 => Cursor { row: Some(r - 1), ..c },
            (Some(_), Some(_)) => Cursor { row: None, ..c },
            (Some(g), None) if g > 0 => self.last_visible(Cursor {
                group: Some(g - 1),
                row: None,
                ..c
            }),
            (Some(_), None) => Cursor {
                group: None,
                row: None,
                ..c
            },
            (None, _) if c.kind > 0 => self.last_visible(Cursor {
                kind: c.kind - 1,
                group: None,
                row: None,
            }),
            (None, _) => c,
        };
    }

    pub fn top(&mut self) {
        self.cursor = Cursor::default();
    }

    pub fn bottom(&mut self) {
        if let Some(last) = self.kinds.len().checked_sub(1) {
            self.cursor = self.last_visible(Cursor {
                kind: last,
                group: None,
                row: None,
            });
        }
    }

    /// `l`: open the node, or step into it when already open.
    pub fn expand(&mut self) {
        if self.cursor.row.is_some() {
            return;
        }
        if !self.opened.insert(self.path(self.cursor)) {
            self.down();
        }
    }

    /// `h`: close the node, or go to its parent.
    pub fn collapse(&mut self) {
        let c = self.cursor;
        if c.row.is_none() && self.opened.remove(&self.path(c)) {
            return;
        }
        self.cursor = match (c.group, c.row) {
            (Some(_), Some(_)) => Cursor { row: None, ..c },
            (Some(_), None) => Cursor { group: None, ..c },
            (None, _) => c,
        };
    }

    pub fn toggle_open(&mut self) {
        if self.cursor.row.is_some() {
            return;
        }
        let path = self.path(self.cursor);
        if !self.opened.remove(&path) {
            self.opened.insert(path);
        }
    }

    fn next_kind(&self, c: Cursor) -> Option<Cursor> {
        (c.kind + 1 < self.kinds.len()).then_some(Cursor {
            kind: c.kind + 1,
            group: None,
            row: None,
        })
    }

    fn next_group(&self, kind: usize, g: usize) -> Option<Cursor> {
        if g + 1 < self.kinds[kind].groups.len() {
            return Some(Cursor {
                kind,
                group: Some(g + 1),
                row: None,
            });
        }
        self.next_kind(Cursor {
            kind,
            group: None,
            row: None,
        })
    }

    fn last_visible(&self, c: Cursor) -> Cursor {
        let k = &self.kinds[c.kind];
        match c.group {
            None if self.is_open(c) && !k.groups.is_empty() => self.last_visible(Cursor {
                group: Some(k.groups.len() - 1),
                ..c
            }),
            Some(g) if self.is_open(c) && !k.groups[g].rows.is_empty() => Cursor {
                row: Some(k.groups[g].rows.len() - 1),
                ..c
            },
            _ => c,
        }
    }
}

/// The environment/model a tag belongs to: its label, else its ObjectId, else its repository.
/// The group a tag is shown under: its environment or model (name, else ObjectId, else
/// repository) — except in the deactivated-owners category, which is a per-owner view (the
/// original's `grouped_by_user`): one group per owner, environments listed in the details.
pub fn group_name(data: &Dataset, category: CategoryId, tag: TagId) -> String {
    if category == CategoryId::DeactivatedOwnerEnvironments {
        let owner = data.labels.get(&tag).and_then(|l| l.owner.clone());
        return format!("owner {}", owner.as_deref().unwrap_or("unknown"));
    }
    if let Some(g) = data.labels.get(&tag).and_then(|l| l.group.clone()) {
        return g;
    }
    let t = data.inventory.tag(tag);
    match ObjectId::prefix_of_tag(&data.inventory.domino_tag(tag)) {
        Some(id) => id.to_string(),
        None => data.inventory.repo(t.repo).name.clone(),
    }
}

/// What GC frees if every candidate of one group (of one category) is deleted and nothing
/// else, computed jointly (a layer shared inside the group counts once, one shared with
/// another group not at all). Keyed by category, image kind and group name.
pub type GroupBytes = HashMap<(CategoryId, ImageKind, String), u64>;

/// [`GroupBytes`] for every category: one pass over each category's candidates on a scratch
/// copy of `engine` (computed at load, never per frame or per filter keystroke).
pub fn group_bytes(data: &Dataset, engine: &SpaceEngine) -> GroupBytes {
    let mut engine = engine.clone();
    engine.clear();
    let mut out = GroupBytes::new();
    for cat in &data.categories {
        let mut groups: HashMap<(ImageKind, String), Vec<crate::model::RevId>> = HashMap::new();
        for c in &cat.candidates {
            let kind = data.inventory.repo(data.inventory.tag(c.tag).repo).kind;
            let revs = groups.entry((kind, group_name(data, cat.id, c.tag))).or_default();
            revs.extend(data.inventory.tag(c.tag).revision());
        }
        for ((kind, name), revs) in groups {
            for r in &revs {
                engine.set_selected(*r, true);
            }
            out.insert((cat.id, kind, name), engine.reclaimable());
            for r in &revs {
                engine.set_selected(*r, false);
            }
        }
    }
    out
}

fn tag_bytes(data: &Dataset, engine: &SpaceEngine, tag: TagId) -> u64 {
    data.inventory
        .tag(tag)
        .revision()
        .map_or(0, |r| engine.exclusive_bytes(r))
}

fn tag_created(data: &Dataset, tag: TagId) -> i64 {
    data.inventory
        .tag(tag)
        .revision()
        .and_then(|r| data.inventory.created(r))
        .unwrap_or(i64::MAX)
}

fn sort_rows(data: &Dataset, engine: &SpaceEngine, rows: &mut [Row], sort: SortKey) {
    let name = |r: &Row| data.inventory.tag(r.tag).name.clone();
    match sort {
        // Numbered tags in number order, then any others by name.
        SortKey::Revision => rows.sort_by_cached_key(|r| {
            let number = crate::model::image::revision_number(&data.inventory.domino_tag(r.tag));
            (number.is_none(), number, name(r))
        }),
        SortKey::Bytes => rows.sort_by_cached_key(|r| (std::cmp::Reverse(tag_bytes(data, engine, r.tag)), name(r))),
        SortKey::Age => rows.sort_by_cached_key(|r| (tag_created(data, r.tag), name(r))),
        SortKey::Name => rows.sort_by_cached_key(name),
    }
}

fn sort_groups(data: &Dataset, engine: &SpaceEngine, groups: &mut [GroupNode], sort: SortKey) {
    match sort {
        SortKey::Bytes | SortKey::Revision => groups.sort_by_cached_key(|g| {
            let bytes: u64 = g.rows.iter().map(|r| tag_bytes(data, engine, r.tag)).sum();
            (std::cmp::Reverse(bytes), g.name.clone())
        }),
        SortKey::Age => groups.sort_by_cached_key(|g| {
            (
                g.rows
                    .iter()
                    .map(|r| tag_created(data, r.tag))
                    .min()
                    .unwrap_or(i64::MAX),
                g.name.clone(),
            )
        }),
        SortKey::Name => groups.sort_by(|a, b| a.name.cmp(&b.name)),
    }
}
