//! Docker Distribution / OCI registry HTTP API: catalog and tag listing with pagination,
//! manifests and config blobs, deletes by digest, and (for tests and the demo) pushes.

mod auth;
mod client;
pub mod manifest;

pub use auth::{Credentials, docker_config_auths, docker_config_credentials, registry_key};
pub use client::{
    DeleteAnswer, MANIFEST_UNKNOWN, ManifestResponse, RegistryClient, RegistryError, RegistryOptions, RequestStats,
};
pub use manifest::{
    ACCEPT_MANIFESTS, ParsedManifest, add_manifest, broken_reason, parse_config_created, parse_manifest,
};
/// Header parsers of outside input, exposed for `tests/fuzz.rs`.
#[doc(hidden)]
pub use {
    auth::{Challenge, parse_challenge},
    client::next_link,
};
