//! Pure data: what the registry (and later Mongo, Kubernetes, Keycloak) hold, as plain values.
//! No I/O, no clock, no tokio; everything here can be built in a test from literals.

pub mod digest;
pub mod domino;
pub mod ids_file;
pub mod image;
pub mod inventory;
pub mod secret;
pub mod timefmt;
pub mod users;
pub mod workloads;

pub use digest::{DigestId, Digests};
pub use image::{ImageKind, ObjectId};
pub use inventory::{
    Blob, BlobRole, Inventory, InventoryBuilder, Manifest, ManifestKind, Platform, RepoId, Repository, RevId, Revision,
    Tag, TagId, TagState,
};
