//! Entry point: parse flags, load settings, start logging, run one command, map the result
//! to an exit code (0 ok, 1 finished with failures, 2 could not run).

use clap::Parser as _;
use registry_cleaner::cli::{Cli, Command, ConfigCommand, LogFormatArg, SourceArg, TuiArgs};
use registry_cleaner::dataset::SourceKind;
use registry_cleaner::headless::{self, CannotRun, EXIT_CANNOT_RUN, EXIT_FAILURES};
use registry_cleaner::settings::{FlagOverrides, Settings, process_env};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Generated from the CLI definition alone: no settings, no logging.
    match &cli.command {
        Some(Command::Completions { shell }) => {
            registry_cleaner::cli::write_completions(*shell, &mut std::io::stdout().lock());
            return ExitCode::SUCCESS;
        }
        Some(Command::Man) => {
            return match registry_cleaner::cli::write_man(&mut std::io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: writing the manual page: {e}");
                    ExitCode::from(EXIT_FAILURES)
                }
            };
        }
        _ => {}
    }
    let g = &cli.global;
    let flags = FlagOverrides {
        registry: g.registry.clone(),
        repository: g.repository.clone(),
        plain_http: g.plain_http,
        insecure: g.insecure,
        ca_cert: g.ca_cert.clone(),
        without: g
            .without
            .iter()
            .map(|s| match s {
                SourceArg::Mongo => SourceKind::Mongo,
                SourceArg::Kubernetes => SourceKind::Kubernetes,
                SourceArg::Keycloak => SourceKind::Keycloak,
            })
            .collect(),
        concurrency: g.concurrency,
        log_file: g.log_file.clone(),
        unused_since_days: g.unused_since_days,
        keep_revisions: g.keep_revisions,
        ids_file: g.ids.clone(),
        all_namespaces: g.all_namespaces,
        kube_contexts: g.kube_context.clone(),
        grace_period_hours: g.grace_period_hours,
        password_file: g.password_file.clone(),
        storage: g.storage.clone(),
    };
    let settings = match Settings::load(g.config.as_deref(), &process_env(), &flags) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CANNOT_RUN);
        }
    };
    use registry_cleaner::logging::{self, Destination, LogFormat, LogOptions};
    use std::io::IsTerminal as _;
    let tui = match &cli.command {
        Some(Command::Tui(_)) => true,
        Some(_) => false,
        None => std::io::stdout().is_terminal(),
    };
    let log_opts = LogOptions {
        file: settings.log_file.clone(),
        format: g.log_format.map(|f| match f {
            LogFormatArg::Json => LogFormat::Json,
            LogFormatArg::Text => LogFormat::Text,
        }),
        verbosity: g.verbose,
        quiet: g.quiet,
        stderr_is_terminal: std::io::stderr().is_terminal(),
        tui,
    };
    let logs = match logging::init(&log_opts) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("warning: logging disabled: {e:#}");
            None
        }
    };
    let on_stderr = logs.as_ref().is_some_and(|l| l.destination == Destination::Stderr);
    if let Some(why) = logs.as_ref().and_then(|l| l.fallback.as_ref()) {
        tracing::warn!("{why}");
    }
    for w in &settings.warnings {
        tracing::warn!(kind = "configuration", "{w}");
        if !on_stderr {
            eprintln!("warning: {w}");
        }
    }
    let log_path = match logs.as_ref().map(|l| &l.destination) {
        Some(Destination::File(p)) => p.clone(),
        _ => logging::default_log_path(),
    };
    let _guard = logs.map(|l| l.guard);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(EXIT_CANNOT_RUN);
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let quiet = g.quiet;
    let result = runtime.block_on(run(&cli, &settings, quiet, now, log_path));
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "command failed");
            eprintln!("error: {e:#}");
            if e.downcast_ref::<CannotRun>().is_some() {
                ExitCode::from(EXIT_CANNOT_RUN)
            } else {
                ExitCode::from(EXIT_FAILURES)
            }
        }
    }
}

async fn run(
    cli: &Cli,
    settings: &Settings,
    quiet: bool,
    now: i64,
    log_path: std::path::PathBuf,
) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal as _;
    let default_tui = Command::Tui(TuiArgs::default_for_terminal());
    let command = match &cli.command {
        Some(c) => Some(c),
        None if std::io::stdout().is_terminal() => Some(&default_tui),
        None => None,
    };
    // Registry credentials from the Kubernetes secret, for the commands that talk to it.
    let needs_registry = match command {
        Some(Command::Tui(a)) => !a.demo && a.snapshot.is_none(),
        Some(Command::Scan(_) | Command::Delete(_) | Command::MongoCleanup(_)) => true,
        Some(Command::Report(a)) => a.snapshot.is_none(),
        _ => false,
    };
    let resolved;
    let settings = if needs_registry {
        resolved = registry_cleaner::ops::registry_secret::resolve(settings).await?;
        &resolved
    } else {
        settings
    };
    match command {
        Some(Command::Tui(a)) => run_tui(settings, a, log_path).await?,
        Some(Command::Scan(a)) => headless::scan_command(settings, a.output.as_deref(), quiet, now).await?,
        Some(Command::Report(a)) => {
            let code = headless::report(settings, a, quiet, now).await?;
            if code != 0 {
                return Ok(ExitCode::from(code));
            }
        }
        Some(Command::Delete(a)) => {
            let code = headless::delete::run(settings, a, quiet, now).await?;
            if code != 0 {
                return Ok(ExitCode::from(code));
            }
        }
        Some(Command::Restore(a)) => headless::maintenance::run_restore(settings, a).await?,
        Some(Command::MongoCleanup(a)) => {
            if !headless::maintenance::run_mongo_cleanup(settings, a, now).await? {
                return Ok(ExitCode::from(EXIT_FAILURES));
            }
        }
        Some(Command::Gc(a)) => {
            if !headless::maintenance::run_gc(settings, a).await? {
                return Ok(ExitCode::from(EXIT_FAILURES));
            }
        }
        Some(Command::Doctor(a)) => {
            if !headless::maintenance::run_doctor(settings, a).await? {
                return Ok(ExitCode::from(EXIT_FAILURES));
            }
        }
        Some(Command::Config {
            command: ConfigCommand::Show,
        }) => headless::write_output(None, serde_saphyr::to_string(settings)?.as_bytes())?,
        Some(Command::Completions { .. } | Command::Man) => {} // answered before settings load
        None => return Err(anyhow::anyhow!(CannotRun("no command given; try --help".into()))),
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_tui(settings: &Settings, args: &TuiArgs, log_path: std::path::PathBuf) -> anyhow::Result<()> {
    use registry_cleaner::tui::{self, TuiOptions, backend::LiveBackend};
    let mut opts = TuiOptions {
        read_only: args.read_only,
        demo: args.demo,
        log_path: Some(log_path),
        plan_path: args.plan_output.clone(),
        fingerprint: if args.demo {
            "demo".into()
        } else {
            registry_cleaner::ops::connect::settings_fingerprint(settings)
        },
        without: settings.without.iter().copied().collect(),
        mouse: args.mouse,
        ..TuiOptions::default()
    };
    if args.demo {
        let (loader, executor) = tui::demo_backend(args.demo_seed, args.demo_tags);
        opts.executor = Some(executor);
        return tui::run_tui(opts, loader).await;
    }
    let backend = std::sync::Arc::new(LiveBackend::new(settings.clone(), args.snapshot.clone()));
    // A snapshot is a picture of the past: browse and plan from it, but never delete from it.
    opts.read_only |= args.snapshot.is_some();
    opts.executor = Some(backend.clone());
    tui::run_tui(opts, backend).await
}
