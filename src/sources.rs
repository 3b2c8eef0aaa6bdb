//! I/O adapters: one module per external system. Each returns our model types; nothing outside
//! `sources/` names a client crate's types.

pub mod registry;
