//! Serde wire types, versioned, built from model/plan values with no logic beyond conversion:
//! the inventory snapshot (`scan --output`) and the report/plan JSON (`report`).

pub mod files;
pub mod json;
pub mod snapshot;
pub mod table;

pub use crate::model::timefmt::{parse_rfc3339, rfc3339};
