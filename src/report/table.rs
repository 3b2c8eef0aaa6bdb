//! The report as text: an aligned table for people, CSV (RFC 4180) for spreadsheets, and the
//! short summary `report` prints on a terminal's stderr. Rendered from the JSON report value
//! only, so every format says the same thing.

use super::json::{CandidateEntry, CategoryReport, GroupingReport, Report};

/// One row per candidate: category, image, owner, project, exclusive bytes, reason.
const CANDIDATE_HEADER: [&str; 6] = ["CATEGORY", "IMAGE", "OWNER", "PROJECT", "EXCLUSIVE", "REASON"];

fn owner_text(c: &super::json::CandidateReport) -> String {
    match &c.owner {
        Some(o) => o.username.clone().unwrap_or_else(|| o.id.clone()),
        None => String::new(),
    }
}

/// Rows of `(category, image, owner, project, exclusive bytes, reason)`; Mongo records
/// (orphaned references) show as `mongo <collection> <id>` and free no registry bytes.
fn candidate_rows(c: &CategoryReport) -> Vec<[String; 6]> {
    c.candidates
        .iter()
        .map(|e| match e {
            CandidateEntry::Tag(t) => [
                c.id.clone(),
                format!("{}:{}", t.repository, t.tag),
                owner_text(t),
                t.project.clone().unwrap_or_default(),
                t.exclusive_bytes.to_string(),
                t.reasons.join("; "),
            ],
            CandidateEntry::Record(r) => [
                c.id.clone(),
                format!("mongo {} {} ({})", r.collection, r.document_id, r.tag),
                String::new(),
                String::new(),
                "0".into(),
                r.reasons.join("; "),
            ],
            CandidateEntry::Manifest(m) => [
                c.id.clone(),
                format!("{}@{}", m.repository, m.digest),
                String::new(),
                String::new(),
                m.exclusive_bytes.to_string(),
                m.reasons.join("; "),
            ],
        })
        .collect()
}

/// `1.5 GiB`-style size for people (binary units, one decimal).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Left-aligned columns separated by two spaces; a cell's line breaks become spaces.
fn aligned(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let clean = |s: &str| s.replace(['\n', '\r'], " ");
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| clean(c)).collect()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let last = cells.len() - 1;
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i].saturating_sub(c.chars().count());
            if right.contains(&i) {
                out.push_str(&" ".repeat(pad));
                out.push_str(c);
            } else {
                out.push_str(c);
                if i != last {
                    out.push_str(&" ".repeat(pad));
                }
            }
            if i != last {
                out.push_str("  ");
            }
        }
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in &rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// The table: every candidate, then per-category totals and the plan's. With a grouping, the
/// groups instead of the candidates.
pub fn table(r: &Report) -> String {
    if let Some(g) = &r.grouping {
        return grouping_table(g);
    }
    let rows: Vec<Vec<String>> = (r.categories.iter())
        .flat_map(candidate_rows)
        .map(|mut row| {
            row[4] = human_bytes(row[4].parse().unwrap_or(0));
            row.to_vec()
        })
        .collect();
    let mut out = aligned(&CANDIDATE_HEADER, &rows, &[4]);
    out.push('\n');
    let totals: Vec<Vec<String>> = (r.categories.iter())
        .map(|c| {
            vec![
                c.id.clone(),
                c.status.clone(),
                c.candidates.len().to_string(),
                c.protected.len().to_string(),
                human_bytes(c.reclaimable_bytes),
                c.reclaimable_bytes.to_string(),
            ]
        })
        .collect();
    out.push_str(&aligned(
        &["CATEGORY", "STATUS", "CANDIDATES", "PROTECTED", "RECLAIMABLE", "BYTES"],
        &totals,
        &[2, 3, 4, 5],
    ));
    out.push_str(&format!(
        "\nplan: {} tags, {} reclaimable ({} bytes; shared layers counted once)\n",
        r.plan.tags.len(),
        human_bytes(r.plan.reclaimable_bytes),
        r.plan.reclaimable_bytes
    ));
    out
}

fn group_rows(g: &GroupingReport) -> Vec<Vec<String>> {
    g.groups
        .iter()
        .map(|x| {
            vec![
                x.name
                    .clone()
                    .or_else(|| x.id.clone())
                    .unwrap_or_else(|| "(unknown)".into()),
                x.id.clone().unwrap_or_default(),
                x.tag_count.to_string(),
                x.environment_count.to_string(),
                x.model_count.to_string(),
                x.exclusive_bytes.to_string(),
                x.shared_bytes.to_string(),
            ]
        })
        .collect()
}

const GROUP_HEADER: [&str; 7] = ["GROUP", "ID", "TAGS", "ENVIRONMENTS", "MODELS", "EXCLUSIVE", "SHARED"];

fn grouping_table(g: &GroupingReport) -> String {
    let rows: Vec<Vec<String>> = group_rows(g)
        .into_iter()
        .map(|mut r| {
            for i in [5, 6] {
                r[i] = human_bytes(r[i].parse().unwrap_or(0));
            }
            r
        })
        .collect();
    let mut header = GROUP_HEADER;
    header[0] = match g.by.as_str() {
        "owner" => "OWNER",
        "project" => "PROJECT",
        _ => "ENVIRONMENT",
    };
    let mut out = aligned(&header, &rows, &[2, 3, 4, 5, 6]);
    out.push_str(&format!(
        "\n{} tags in {} groups by {}: {} if all are deleted = exclusive per group + {} shared between groups (counted once)\n",
        g.tags,
        g.groups.len(),
        g.by,
        human_bytes(g.joint_bytes),
        human_bytes(g.shared_total_bytes),
    ));
    if g.overlapping_revisions > 0 {
        out.push_str(&format!(
            "{} images have tags in more than one group; their bytes count in each\n",
            g.overlapping_revisions
        ));
    }
    out
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote, CR or LF; quotes doubled.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_line(cells: &[String], out: &mut String) {
    let line: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

/// CSV with a header row, CRLF line ends: one row per candidate (exact bytes), or with a
/// grouping one row per group.
pub fn csv(r: &Report) -> String {
    let mut out = String::new();
    if let Some(g) = &r.grouping {
        let header = [
            "group_by",
            "id",
            "name",
            "tag_count",
            "environment_count",
            "model_count",
            "exclusive_bytes",
            "shared_bytes",
        ];
        csv_line(&header.map(String::from), &mut out);
        for x in &g.groups {
            csv_line(
                &[
                    g.by.clone(),
                    x.id.clone().unwrap_or_default(),
                    x.name.clone().unwrap_or_default(),
                    x.tag_count.to_string(),
                    x.environment_count.to_string(),
                    x.model_count.to_string(),
                    x.exclusive_bytes.to_string(),
                    x.shared_bytes.to_string(),
                ],
                &mut out,
            );
        }
        return out;
    }
    let header = [
        "category",
        "repository",
        "tag",
        "digest",
        "owner_id",
        "owner",
        "project",
        "name",
        "exclusive_bytes",
        "reasons",
    ];
    csv_line(&header.map(String::from), &mut out);
    for c in &r.categories {
        for e in &c.candidates {
            let row = match e {
                CandidateEntry::Tag(t) => [
                    c.id.clone(),
                    t.repository.clone(),
                    t.tag.clone(),
                    t.digest.clone().unwrap_or_default(),
                    t.owner.as_ref().map(|o| o.id.clone()).unwrap_or_default(),
                    t.owner.as_ref().and_then(|o| o.username.clone()).unwrap_or_default(),
                    t.project.clone().unwrap_or_default(),
                    t.name.clone().unwrap_or_default(),
                    t.exclusive_bytes.to_string(),
                    t.reasons.join("; "),
                ],
                CandidateEntry::Record(rec) => [
                    c.id.clone(),
                    format!("mongo:{}", rec.collection),
                    rec.tag.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    rec.document_id.clone(),
                    "0".into(),
                    rec.reasons.join("; "),
                ],
                CandidateEntry::Manifest(m) => [
                    c.id.clone(),
                    m.repository.clone(),
                    String::new(),
                    m.digest.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    m.exclusive_bytes.to_string(),
                    m.reasons.join("; "),
                ],
            };
            csv_line(&row, &mut out);
        }
    }
    out
}

/// A few lines for a person at a terminal (the JSON goes to stdout or the file).
pub fn summary(r: &Report) -> String {
    let mut out = String::new();
    for c in &r.categories {
        let what = if c.status == "ok" {
            format!(
                "{} candidates, {} protected, {} reclaimable",
                c.candidates.len(),
                c.protected.len(),
                human_bytes(c.reclaimable_bytes)
            )
        } else {
            format!("{}: {}", c.status, c.reason.as_deref().unwrap_or(""))
        };
        out.push_str(&format!("{:<32} {what}\n", c.id));
    }
    out.push_str(&format!(
        "plan: {} tags, {} reclaimable\n",
        r.plan.tags.len(),
        human_bytes(r.plan.reclaimable_bytes)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json::{CandidateReport, GroupReport, OwnerReport, RecordReport};

    fn report() -> Report {
        let cand = |tag: &str, owner: Option<(&str, Option<&str>)>, bytes: u64, reason: &str| {
            CandidateEntry::Tag(CandidateReport {
                repository: "dominodatalab/environment".into(),
                tag: tag.into(),
                digest: Some("sha256:aa".into()),
                kind: "environment".into(),
                object_id: None,
                exclusive_bytes: bytes,
                siblings: vec![],
                reasons: vec![reason.into()],
                owner: owner.map(|(id, u)| OwnerReport {
                    id: id.into(),
                    username: u.map(String::from),
                }),
                project: None,
                name: Some("Spark, \"big\"".into()),
            })
        };
        let mut r = crate::report::json::build(
            &crate::plan::dataset::Dataset::default(),
            &[],
            &crate::report::json::PlanInput::Categories,
            "fp",
            &[],
        );
        r.categories.clear();
        r.categories.push(CategoryReport {
            id: "archived-environments".into(),
            status: "ok".into(),
            reason: None,
            reclaimable_bytes: 3 << 20,
            candidates: vec![
                cand(
                    "e1-1",
                    Some(("66aa", Some("ann"))),
                    2 << 20,
                    "environment archived, 2024",
                ),
                cand("e1-2", None, 512, "line one\nline \"two\""),
            ],
            protected: vec![],
            protected_records: vec![],
            notes: vec![],
            grouped_by_user: Default::default(),
        });
        r.categories.push(CategoryReport {
            id: "orphaned-references".into(),
            status: "ok".into(),
            reason: None,
            reclaimable_bytes: 0,
            candidates: vec![CandidateEntry::Record(RecordReport {
                collection: "environment_revisions".into(),
                document_id: "66bb".into(),
                tag: "x-1".into(),
                reasons: vec!["image is not in the registry".into()],
            })],
            protected: vec![],
            protected_records: vec![],
            notes: vec![],
            grouped_by_user: Default::default(),
        });
        r
    }

    #[test]
    fn csv_quotes_commas_quotes_and_line_breaks_per_rfc_4180() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\rhere"), "\"cr\rhere\"");
        let text = csv(&report());
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "category,repository,tag,digest,owner_id,owner,project,name,exclusive_bytes,reasons"
        );
        assert_eq!(
            lines[1],
            "archived-environments,dominodatalab/environment,e1-1,sha256:aa,66aa,ann,,\"Spark, \"\"big\"\"\",2097152,\"environment archived, 2024\""
        );
        // The newline inside a quoted field is data, not a record end.
        assert_eq!(
            lines[2],
            "archived-environments,dominodatalab/environment,e1-2,sha256:aa,,,,\"Spark, \"\"big\"\"\",512,\"line one\nline \"\"two\"\"\""
        );
        assert_eq!(
            lines[3],
            "orphaned-references,mongo:environment_revisions,x-1,,,,,66bb,0,image is not in the registry"
        );
        assert_eq!(lines[4], "", "every record ends in CRLF");
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn the_table_has_a_row_per_candidate_and_totals_per_category() {
        let text = table(&report());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("CATEGORY") && lines[0].contains("OWNER") && lines[0].ends_with("REASON"));
        assert!(
            lines[1].starts_with("archived-environments  dominodatalab/environment:e1-1")
                && lines[1].contains(" ann ")
                && lines[1].contains("2.0 MiB")
                && lines[1].ends_with("environment archived, 2024"),
            "{text}"
        );
        assert!(
            lines[2].ends_with("line one line \"two\""),
            "a line break never splits a row: {text}"
        );
        assert!(lines[3].contains("mongo environment_revisions 66bb (x-1)"), "{text}");
        // The EXCLUSIVE column is right-aligned: every row's value ends at the same column.
        let end = lines[0].find("EXCLUSIVE").unwrap() + "EXCLUSIVE".len();
        for l in &lines[1..4] {
            assert_eq!(&l[end..end + 2], "  ", "{l}");
        }
        let totals = (lines.iter())
            .position(|l| l.starts_with("CATEGORY") && l.contains("CANDIDATES"))
            .unwrap();
        assert!(lines[totals + 1].starts_with("archived-environments") && lines[totals + 1].ends_with("3145728"));
        assert!(lines[totals + 1].contains("3.0 MiB"), "{text}");
        assert!(lines[totals + 2].starts_with("orphaned-references"));
        assert!(text.ends_with("plan: 0 tags, 0 B reclaimable (0 bytes; shared layers counted once)\n"));
    }

    #[test]
    fn a_grouping_renders_as_group_rows_in_both_formats() {
        let mut r = report();
        r.grouping = Some(GroupingReport {
            by: "owner".into(),
            tags: 3,
            joint_bytes: 9000,
            shared_total_bytes: 5000,
            overlapping_revisions: 0,
            groups: vec![
                GroupReport {
                    id: Some("66aa".into()),
                    name: Some("ann, jr".into()),
                    tag_count: 2,
                    environment_count: 1,
                    model_count: 0,
                    exclusive_bytes: 3000,
                    shared_bytes: 5000,
                },
                GroupReport {
                    id: None,
                    name: None,
                    tag_count: 1,
                    environment_count: 1,
                    model_count: 0,
                    exclusive_bytes: 1000,
                    shared_bytes: 0,
                },
            ],
        });
        let text = csv(&r);
        assert_eq!(
            text,
            "group_by,id,name,tag_count,environment_count,model_count,exclusive_bytes,shared_bytes\r\n\
             owner,66aa,\"ann, jr\",2,1,0,3000,5000\r\n\
             owner,,,1,1,0,1000,0\r\n"
        );
        let t = table(&r);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("OWNER") && lines[0].ends_with("SHARED"), "{t}");
        assert!(lines[1].starts_with("ann, jr") && lines[1].ends_with("4.9 KiB"), "{t}");
        assert!(lines[2].starts_with("(unknown)"), "{t}");
        assert!(
            t.contains("3 tags in 2 groups by owner: 8.8 KiB if all are deleted"),
            "{t}"
        );
    }

    #[test]
    fn sizes_for_people_use_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn the_terminal_summary_names_every_category_and_the_plan() {
        let s = summary(&report());
        assert!(
            s.contains("archived-environments") && s.contains("2 candidates, 0 protected, 3.0 MiB reclaimable"),
            "{s}"
        );
        assert!(
            s.contains("orphaned-references") && s.ends_with("plan: 0 tags, 0 B reclaimable\n"),
            "{s}"
        );
    }
}
