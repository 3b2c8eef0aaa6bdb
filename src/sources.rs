//! I/O adapters: each reads one external system and returns our model types (never client
//! DTOs outside `sources/`). A failure is a value — a reason naming the setting to fix — not a
//! panic.

pub mod keycloak;
pub mod kube;
pub mod mongo;
pub mod registry;
pub mod storage;
