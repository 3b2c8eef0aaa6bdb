//! Async operations shared by the TUI and headless mode: scanning sources into model values,
//! and executing plans (the only code that deletes).

pub mod audit;
pub mod connect;
pub mod delete_run;
pub mod doctor;
pub mod execute;
pub mod gc;
pub mod killpoint;
pub mod last_look;
pub mod load;
pub mod metrics;
pub mod mongo_cleanup;
pub mod progress;
pub mod references;
pub mod registry_secret;
pub mod scan;
pub mod scan_cache;
pub mod tag_file;
pub mod untag;
