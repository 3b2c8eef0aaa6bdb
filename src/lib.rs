//! registry-cleaner: reclaim space in the Docker registry behind a Domino Data Lab installation
//! without breaking a running workload. See ARCHITECTURE.md for the code map.

pub mod app;
pub mod dataset;
pub mod demo;
pub mod model;
pub mod plan;
pub mod tui;
pub mod ui;
pub mod world;
