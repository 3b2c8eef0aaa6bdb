//! The layering rule, checked on the source: model ← plan ← {sources, report} ← ops ←
//! {commands, tui} ← main. The pure core (`model/`, `plan/`) names no other module of the
//! crate, so it can be read and tested on its own.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `crate::<module>` a file names (paths in code, `use` lines included).
fn crate_modules(text: &str) -> Vec<String> {
    let mut out = vec![];
    for (i, _) in text.match_indices("crate::") {
        let prev = text[..i].chars().last();
        if prev.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `registry_cleaner::...` is not this
        }
        let rest = &text[i + "crate::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if name.is_empty() {
            // `crate::{a, b}`
            let inner: String = rest.trim_start_matches('{').chars().take_while(|c| *c != '}').collect();
            out.extend(
                inner
                    .split(',')
                    .map(|s| s.trim().split("::").next().unwrap_or("").to_string()),
            );
        } else {
            out.push(name);
        }
    }
    out
}

fn violations(layer: &str, allowed: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    rust_files(&root.join(layer), &mut files);
    files.push(root.join(format!("{layer}.rs")));
    let mut bad = vec![];
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for m in crate_modules(&text) {
            if !m.is_empty() && !allowed.contains(&m.as_str()) {
                bad.push(format!("{}: crate::{m}", f.strip_prefix(&root).unwrap().display()));
            }
        }
    }
    bad.sort();
    bad.dedup();
    bad
}

#[test]
fn the_model_names_only_itself() {
    assert_eq!(violations("model", &["model"]), Vec::<String>::new());
}

#[test]
fn the_plan_names_only_the_model_and_itself() {
    assert_eq!(violations("plan", &["model", "plan"]), Vec::<String>::new());
}

#[test]
fn sources_and_report_stay_below_ops() {
    let allowed = ["model", "plan", "exit", "sources", "report"];
    assert_eq!(violations("sources", &allowed), Vec::<String>::new());
    assert_eq!(violations("report", &allowed), Vec::<String>::new());
}

#[test]
fn ops_never_reaches_up_into_commands_or_the_tui() {
    let allowed = [
        "model", "plan", "exit", "sources", "report", "settings", "ops", "dataset",
    ];
    assert_eq!(violations("ops", &allowed), Vec::<String>::new());
}

#[test]
fn the_checker_sees_a_violation() {
    // The rule above is only as good as the scanner: it must see both spellings.
    assert_eq!(crate_modules("use crate::tui::App;"), vec!["tui"]);
    assert_eq!(crate_modules("use crate::{model::X, ops::Y};"), vec!["model", "ops"]);
    assert!(crate_modules("registry_cleaner::tui").is_empty());
}
