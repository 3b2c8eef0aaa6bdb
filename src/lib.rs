//! registry-cleaner: reclaim space in the Docker registry behind a Domino Data Lab installation
//! without breaking a running workload. See ARCHITECTURE.md for the code map.

pub mod app;
pub mod cli;
pub mod dataset;
pub mod demo;
pub mod headless;
pub mod logging;
pub mod model;
pub mod ops;
pub mod plan;
pub mod report;
pub mod settings;
pub mod sources;
pub mod tui;
pub mod ui;
pub mod world;
