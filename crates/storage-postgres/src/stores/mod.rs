//! The native operations, named like the store modules of `storage-core/src/stores/`.

pub(crate) mod job_queue;
pub(crate) mod webhook;
