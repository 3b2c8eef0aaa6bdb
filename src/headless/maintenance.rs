//! `restore --backup FILE` (re-insert the Mongo documents `delete --mongo-cleanup` backed up)
//! `mongo-cleanup --file` (records of images removed by other means) and `gc` (garbage-collect an
//! in-cluster registry).

use super::{CannotRun, write_output};
use crate::cli::{GcArgs, RestoreArgs};
use crate::ops::mongo_cleanup::{read_backup, restore};
use crate::settings::Settings;
use anyhow::anyhow;

/// Re-inserts every backed-up document; existing `_id`s are left as they are and counted.
pub async fn run_restore(settings: &Settings, args: &RestoreArgs) -> anyhow::Result<()> {
    if !args.backup.is_file() {
        return Err(CannotRun(format!("{}: backup file not found", args.backup.display())).into());
    }
    let docs = read_backup(&args.backup).map_err(CannotRun)?;
    let ms = crate::ops::load::mongo_settings(settings).await;
    let db = crate::sources::mongo::connect(&ms)
        .await
        .map_err(|e| CannotRun(e.to_string()))?;
    let summary = restore(&db, &args.backup, docs)
        .await
        .map_err(|e| anyhow!("restore: {e}"))?;
    write_output(None, &serde_json::to_vec_pretty(&summary)?)
}

/// Runs `mongo-cleanup --file`; `Ok(false)` = a record failed (exit 1).
pub async fn run_mongo_cleanup(
    settings: &Settings,
    args: &crate::cli::MongoCleanupArgs,
    now: i64,
) -> anyhow::Result<bool> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    let text = std::fs::read_to_string(&args.file).map_err(|e| CannotRun(format!("{}: {e}", args.file.display())))?;
    let entries = crate::plan::mongo_cleanup::parse_tag_file(
        &args.file.display().to_string(),
        &text,
        &settings.registry.repository,
    )
    .map_err(CannotRun)?;
    if entries.is_empty() {
        return Err(CannotRun(format!("{}: lists no image", args.file.display())).into());
    }
    if args.apply && !args.force && !std::io::stdin().is_terminal() {
        return Err(CannotRun("--apply without --force needs a terminal to confirm".into()).into());
    }
    let backup = (args.backup.clone())
        .unwrap_or_else(|| crate::ops::mongo_cleanup::default_backup_path(&settings.output_dir, now));
    let audit = (args.audit_log.clone()).unwrap_or_else(|| settings.output_dir.join("audit.jsonl"));
    let confirm = |n: usize| {
        if args.force {
            return true;
        }
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "About to delete {n} Mongo documents (backed up to {}). Type {n} to confirm: ",
            backup.display()
        );
        let _ = err.flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == n.to_string()
    };
    let r = crate::ops::tag_file::run(settings, &entries, args.apply, &backup, &audit, &confirm, now).await?;
    write_output(None, &serde_json::to_vec_pretty(&r)?)?;
    Ok(!r.failed())
}

/// Runs `gc`; `Ok(false)` = finished with a failure (exit 1).
pub async fn run_gc(settings: &Settings, args: &GcArgs) -> anyhow::Result<bool> {
    let report = crate::ops::gc::run(settings, &args.into()).await.map_err(CannotRun)?;
    let ok = report.ok;
    write_output(None, &serde_json::to_vec_pretty(&report)?)?;
    Ok(ok)
}

/// Runs `doctor`; `Ok(false)` = a check failed (exit 1). Registry credentials from a secret are
/// resolved here, so a secret that cannot be read is a failed check rather than an exit 2.
pub async fn run_doctor(settings: &Settings, args: &crate::cli::DoctorArgs) -> anyhow::Result<bool> {
    use crate::ops::doctor::{self, Check, Status};
    let (resolved, secret_check) = match crate::ops::registry_secret::resolve(settings).await {
        Ok(s) => (s, None),
        Err(e) => (
            settings.clone(),
            Some(Check {
                check: "registry credentials secret".into(),
                status: Status::Fail,
                detail: e.to_string(),
                fix: Some("check registry.auth_secret / REGISTRY_AUTH_SECRET and get on that secret".into()),
            }),
        ),
    };
    let mut checks = doctor::run(&resolved).await;
    if let Some(c) = secret_check {
        checks.insert(1, c);
    }
    if args.json {
        write_output(None, &serde_json::to_vec_pretty(&checks)?)?;
    } else {
        print!("{}", doctor::table(&checks));
    }
    Ok(!doctor::failed(&checks))
}
