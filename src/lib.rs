//! registry-cleaner: reclaim space in the Docker registry behind a Domino Data Lab installation
//! without breaking a running workload. See ARCHITECTURE.md for the code map.

pub mod app;
pub mod cli;
/// Small synthetic datasets for UI tests and snapshots (test kit).
#[cfg(any(test, feature = "testkit"))]
pub mod demo;
pub mod exit;
pub mod headless;
pub mod logging;
pub mod model;
pub mod ops;
pub mod plan;
/// Kept at the crate root for callers: the dataset is pure data owned by the core.
pub use plan::dataset;
pub mod report;
pub mod settings;
pub mod sources;
pub mod tui;
pub mod ui;
/// Deterministic Domino worlds, image builders and pushers for tests and benches (test kit).
#[cfg(any(test, feature = "testkit"))]
pub mod world;
