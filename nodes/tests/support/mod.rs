//! Helpers shared by the integration tests. Each test crate uses a part of them, so the
//! rest would be dead code there.

#![allow(dead_code)]

pub(crate) mod sources;
pub(crate) mod speech;
