//! `restore --backup FILE` (re-insert the Mongo documents `delete --mongo-cleanup` backed up)
//! and `gc` (garbage-collect an in-cluster registry).

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
