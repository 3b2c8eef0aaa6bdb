//! Pure decisions: Inventory × Policy × Selection → candidates, reclaimable bytes, plans.
//! No I/O, no clock (`now` is a parameter), no tokio, no client crates.

pub mod category;
pub mod recheck;
pub mod space;

pub use category::{Candidate, CategoryId, CategoryResult, CategoryStatus, ProtectedTag};
pub use space::{SpaceEngine, reclaimable_from_scratch};
