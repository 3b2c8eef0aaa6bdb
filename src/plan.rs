//! Pure decisions: Inventory × Policy × Selection → candidates, reclaimable bytes, plans.
//! No I/O, no clock (`now` is a parameter), no tokio, no client crates.

pub mod categories;
pub mod category;
pub mod dataset;
pub mod deletion;
pub mod evaluate;
pub mod grouping;
pub mod inputs;
pub mod lookup;
pub mod mongo_cleanup;
pub mod policy;
pub mod protection;
pub mod recheck;
pub mod space;
pub mod usage;

pub use category::{Candidate, CategoryId, CategoryResult, CategoryStatus, OrphanRecord, ProtectedTag};
pub use evaluate::evaluate;
pub use inputs::{SourceState, SourcesData};
pub use policy::Policy;
pub use space::{SpaceEngine, reclaimable_from_scratch};

#[cfg(test)]
mod storage_tests;
