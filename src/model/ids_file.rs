//! The `--ids FILE` format (domain.md §2): one ObjectId per line, optionally typed with a
//! case-insensitive prefix (`environment:`, `revision:`, `model:`, `version:` and their
//! spellings); a bare id applies to both environments and models. `#` comments and blank lines
//! are skipped. The shell tool's `environments` file is accepted too: `<envId> <rev> <rev> …`,
//! where the whole numbers after an environment id are revisions to keep (their tags
//! `<envId>-<rev>` are protected) while the rest of the environment is in scope. Unlike the original (which skipped bad lines with a warning), a bad line is an
//! error naming the file, the line and the problem: a typo must not silently widen or narrow a
//! deletion. Pure: the caller reads the file.

use super::image::{ObjectId, tag_belongs_to};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What kind of record an id in the file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdKind {
    Environment,
    EnvironmentRevision,
    Model,
    ModelVersion,
}

impl IdKind {
    fn from_prefix(prefix: &str) -> Option<IdKind> {
        match prefix.to_ascii_lowercase().as_str() {
            "environment" | "env" => Some(IdKind::Environment),
            "environmentrevision" | "environment_revision" | "envrevision" | "env_rev" | "envrev" | "revision" => {
                Some(IdKind::EnvironmentRevision)
            }
            "model" => Some(IdKind::Model),
            "modelversion" | "model_version" | "model_ver" | "modelver" | "version" => Some(IdKind::ModelVersion),
            _ => None,
        }
    }
}

/// Parsed ids per kind; a bare id is in both `environments` and `models`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdFilter {
    pub environments: BTreeSet<ObjectId>,
    pub revisions: BTreeSet<ObjectId>,
    pub models: BTreeSet<ObjectId>,
    pub versions: BTreeSet<ObjectId>,
    /// The shell tool's revisions to keep: environment → revision number → the line naming it.
    pub keep: BTreeMap<ObjectId, BTreeMap<u64, usize>>,
    /// The file, for protection reasons.
    pub file: String,
}

impl IdFilter {
    pub fn is_empty(&self) -> bool {
        self.environments.is_empty() && self.revisions.is_empty() && self.models.is_empty() && self.versions.is_empty()
    }

    pub fn count(&self, kind: IdKind) -> usize {
        self.set(kind).len()
    }

    fn set(&self, kind: IdKind) -> &BTreeSet<ObjectId> {
        match kind {
            IdKind::Environment => &self.environments,
            IdKind::EnvironmentRevision => &self.revisions,
            IdKind::Model => &self.models,
            IdKind::ModelVersion => &self.versions,
        }
    }

    fn insert(&mut self, kind: IdKind, id: ObjectId) {
        match kind {
            IdKind::Environment => self.environments.insert(id),
            IdKind::EnvironmentRevision => self.revisions.insert(id),
            IdKind::Model => self.models.insert(id),
            IdKind::ModelVersion => self.versions.insert(id),
        };
    }

    /// The kept revision a tag is, as `(environment, revision, line)`: the tag is exactly
    /// `<envId>-<rev>` for a listed revision (Domino's environment tag, domain.md §2).
    pub fn kept_revision(&self, tag: &str) -> Option<(ObjectId, u64, usize)> {
        let (id, rev) = tag.split_once('-')?;
        let id = ObjectId::parse(id).ok()?;
        if rev.is_empty() || !rev.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let rev: u64 = rev.parse().ok()?;
        let line = *self.keep.get(&id)?.get(&rev)?;
        Some((id, rev, line))
    }

    /// Whether a registry tag belongs to one of the environment or model ids (prefix rule with
    /// a dash). Revision and version ids are resolved to tags through Mongo, not by prefix:
    /// real tags start with the environment id, not the revision id (domain.md §11).
    pub fn matches_tag(&self, tag: &str) -> bool {
        self.environments
            .iter()
            .chain(&self.models)
            .any(|id| tag_belongs_to(tag, id))
    }
}

/// A line that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdsFileError {
    pub file: String,
    pub line: usize,
    pub problem: String,
}

impl fmt::Display for IdsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.problem)
    }
}

impl std::error::Error for IdsFileError {}

/// Parses the contents of an ids file; `file` names it in errors and protection reasons.
pub fn parse_ids_file(file: &str, contents: &str) -> Result<IdFilter, IdsFileError> {
    let mut out = IdFilter {
        file: file.to_string(),
        ..IdFilter::default()
    };
    for (i, raw) in contents.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |problem: String| IdsFileError {
            file: file.to_string(),
            line: i + 1,
            problem,
        };
        let (kind, rest) = match line.split_once(':') {
            Some((prefix, rest)) => {
                let kind = IdKind::from_prefix(prefix.trim()).ok_or_else(|| {
                    err(format!(
                        "unknown prefix {:?} (use environment:, revision:, model: or version:)",
                        prefix.trim()
                    ))
                })?;
                (Some(kind), rest)
            }
            None => (None, line),
        };
        let mut words = rest.split_whitespace();
        let id = ObjectId::parse(words.next().unwrap_or("")).map_err(err)?;
        let revisions: Vec<&str> = words.collect();
        if revisions.is_empty() {
            match kind {
                Some(kind) => out.insert(kind, id),
                None => {
                    out.insert(IdKind::Environment, id);
                    out.insert(IdKind::Model, id);
                }
            }
            continue;
        }
        // `<envId> <rev> …`: the shell tool's environments file names environments only, so
        // the id is not also a model id; numbers after another kind mean nothing we can keep.
        if kind.is_some_and(|k| k != IdKind::Environment) {
            return Err(err(format!(
                "revision numbers to keep may follow only an environment id (`<envId> <rev> <rev> …`), not a {} id",
                rest_kind_name(kind)
            )));
        }
        for word in revisions {
            let rev = word
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| word.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| {
                    err(format!(
                        "{word:?} is not a revision number (after an environment id only whole numbers may follow: the revisions to keep)"
                    ))
                })?;
            out.keep.entry(id).or_default().entry(rev).or_insert(i + 1);
        }
        out.insert(IdKind::Environment, id);
    }
    Ok(out)
}

fn rest_kind_name(kind: Option<IdKind>) -> &'static str {
    match kind {
        Some(IdKind::EnvironmentRevision) => "revision",
        Some(IdKind::Model) => "model",
        Some(IdKind::ModelVersion) => "model version",
        Some(IdKind::Environment) | None => "environment",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "507f1f77bcf86cd799439011";
    const B: &str = "507f1f77bcf86cd799439012";

    fn parse(s: &str) -> Result<IdFilter, IdsFileError> {
        parse_ids_file("ids.txt", s)
    }

    fn counts(f: &IdFilter) -> [usize; 4] {
        [
            IdKind::Environment,
            IdKind::EnvironmentRevision,
            IdKind::Model,
            IdKind::ModelVersion,
        ]
        .map(|k| f.count(k))
    }

    #[test]
    fn typed_prefixes_and_their_spellings_are_case_insensitive() {
        let revs = [
            "environmentRevision",
            "environment_revision",
            "envrevision",
            "env_rev",
            "envrev",
        ];
        let text: String = revs
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{p}:507f1f77bcf86cd79943901{i}\n"))
            .collect();
        assert_eq!(counts(&parse(&text).unwrap()), [0, 5, 0, 0]);
        let vers = ["modelVersion", "model_version", "model_ver", "modelver"];
        let text: String = vers
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{p}:507f1f77bcf86cd79943901{i}\n"))
            .collect();
        assert_eq!(counts(&parse(&text).unwrap()), [0, 0, 0, 4]);
        assert_eq!(
            counts(&parse(&format!("environment:{A}\nenv:{B}\n")).unwrap()),
            [2, 0, 0, 0]
        );
        assert_eq!(
            counts(&parse(&format!("ENVIRONMENT:{A}\nModel:{B}\nENVIRONMENTREVISION:{A}")).unwrap()),
            [1, 1, 1, 0]
        );
    }

    #[test]
    fn bare_ids_apply_to_environments_and_models() {
        let f = parse(&format!("{A}\nmodel:{B}\n")).unwrap();
        assert_eq!(counts(&f), [1, 0, 2, 0]);
        assert!(f.environments.contains(&ObjectId::parse(A).unwrap()));
    }

    #[test]
    fn comments_and_blank_lines_are_skipped_and_ids_lowercased() {
        let f = parse(&format!(
            "# comment\n   # indented comment\n\n   \n{}\n",
            A.to_uppercase()
        ))
        .unwrap();
        assert_eq!(f.environments.iter().next().unwrap().to_string(), A);
        assert!(parse("# only comments\n\n").unwrap().is_empty());
    }

    #[test]
    fn a_bad_line_is_an_error_naming_file_line_and_problem() {
        let cases = [
            (format!("{A}\ninvalid_id\n"), 2, "not 24 characters"),
            (
                "\n\nenvironment:507f1f77bcf86cd79943901g".to_string(),
                3,
                "not a valid hexadecimal",
            ),
            (format!("unknown:{A}"), 1, "unknown prefix"),
            ("model:".to_string(), 1, "is required"),
            (format!("{}1", A), 1, "not 24 characters"),
        ];
        for (text, line, problem) in cases {
            let e = parse(&text).unwrap_err();
            assert_eq!((e.file.as_str(), e.line), ("ids.txt", line), "{text}");
            assert!(e.to_string().starts_with(&format!("ids.txt:{line}: ")), "{e}");
            assert!(e.problem.contains(problem), "{e}");
        }
    }

    /// issue 11.9: the shell tool's `environments` file, `<envId> <rev> <rev> …`.
    #[test]
    fn the_shell_tools_environments_file_keeps_the_listed_revisions() {
        let a = ObjectId::parse(A).unwrap();
        let b = ObjectId::parse(B).unwrap();
        // (file, environments, models, kept (env, rev, line)) per case.
        type Case = (String, Vec<ObjectId>, Vec<ObjectId>, Vec<(ObjectId, u64, usize)>);
        let cases: Vec<Case> = vec![
            (format!("{A} 3 5\n"), vec![a], vec![], vec![(a, 3, 1), (a, 5, 1)]),
            (format!("{A}\t7   8 \n"), vec![a], vec![], vec![(a, 7, 1), (a, 8, 1)]),
            (
                format!("# env file\n{A} 1\nenvironment:{B} 2\nmodel:{A}\n"),
                vec![a, b],
                vec![a],
                vec![(a, 1, 2), (b, 2, 3)],
            ),
            // The same revision twice: the first line is the one named.
            (format!("{A} 4\n{A} 4 6\n"), vec![a], vec![], vec![(a, 4, 1), (a, 6, 2)]),
            (format!("env: {A} 2\n"), vec![a], vec![], vec![(a, 2, 1)]),
            (format!("{A}\n"), vec![a], vec![a], vec![]),
        ];
        for (text, envs, models, kept) in cases {
            let f = parse(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(f.environments.iter().copied().collect::<Vec<_>>(), envs, "{text:?}");
            assert_eq!(f.models.iter().copied().collect::<Vec<_>>(), models, "{text:?}");
            let got: Vec<(ObjectId, u64, usize)> = f
                .keep
                .iter()
                .flat_map(|(e, revs)| revs.iter().map(move |(r, l)| (*e, *r, *l)))
                .collect();
            assert_eq!(got, kept, "{text:?}");
        }
        let f = parse(&format!("{A} 3 10\n")).unwrap();
        assert_eq!(f.kept_revision(&format!("{A}-3")), Some((a, 3, 1)));
        assert_eq!(f.kept_revision(&format!("{A}-10")), Some((a, 10, 1)));
        for tag in [
            format!("{A}-4"),
            format!("{A}-30"),
            format!("{A}-3-x"),
            format!("{A}-"),
            format!("{B}-3"),
            A.to_string(),
        ] {
            assert_eq!(f.kept_revision(&tag), None, "{tag}");
        }
        // Everything else stays a line-exact error.
        let bad = [
            (format!("{A} 3 x\n"), 1, "\"x\" is not a revision number"),
            (format!("{A}\n{A} -1\n"), 2, "\"-1\" is not a revision number"),
            (format!("\n{A} 2.5\n"), 2, "\"2.5\" is not a revision number"),
            (format!("{A} 99999999999999999999999\n"), 1, "is not a revision number"),
            (format!("model:{A} 3\n"), 1, "not a model id"),
            (format!("revision:{A} 3\n"), 1, "not a revision id"),
            (format!("version:{A} 3\n"), 1, "not a model version id"),
            ("notanid 3\n".to_string(), 1, "not 24 characters"),
            (format!("{A} 3 # keep\n"), 1, "\"#\" is not a revision number"),
        ];
        for (text, line, problem) in bad {
            let e = parse(&text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.problem.contains(problem), "{text:?}: {e}");
        }
    }

    #[test]
    fn tags_match_environment_and_model_ids_by_dash_prefix() {
        let f = parse(&format!("environment:{A}")).unwrap();
        for tag in [A.to_string(), format!("{A}-1"), format!("{A}-v2")] {
            assert!(f.matches_tag(&tag), "{tag}");
        }
        for tag in [format!("{B}-1"), format!("prefix-{A}"), format!("{A}1")] {
            assert!(!f.matches_tag(&tag), "{tag}");
        }
        let two = parse(&format!("env:{A}\nenv:{B}")).unwrap();
        let tags = [
            format!("{A}-1"),
            format!("{B}-1"),
            "507f1f77bcf86cd799439013-1".to_string(),
        ];
        assert_eq!(tags.iter().filter(|t| two.matches_tag(t)).count(), 2);
    }
}
