//! Async operations shared by the TUI and headless mode: scanning sources into model values,
//! and (later) executing plans.

pub mod scan;
