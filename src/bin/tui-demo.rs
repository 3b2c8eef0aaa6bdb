//! Temporary entry for manual testing: the TUI over the synthetic demo dataset.
//! `tui-demo [--read-only] [--tags N] [--seed N]`; the real entry is `registry-cleaner tui --demo`.

use registry_cleaner::tui::{TuiOptions, demo_backend, run_tui};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (loader, executor) = demo_backend(value("--seed", 42), value("--tags", 3000) as usize);
    let opts = TuiOptions {
        read_only: args.iter().any(|a| a == "--read-only"),
        demo: true,
        executor: Some(executor),
        ..TuiOptions::default()
    };
    run_tui(opts, loader).await
}
