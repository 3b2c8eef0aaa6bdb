//! registry-cleaner: reclaim space in the Docker registry behind a Domino Data Lab installation
//! without breaking a running workload. See ARCHITECTURE.md for the code map.

pub mod dataset;
pub mod model;
pub mod plan;
pub mod sources;
pub mod world;
