//! The native operations, named like the store modules of `storage-core/src/stores/`.

pub(crate) mod webhook;
