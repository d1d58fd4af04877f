//! The 0.11 binary protocol: 256-byte VSR-style request/reply headers around
//! the payloads `iggy_binary_protocol` defines.
//!
//! This module turns bytes into request headers and replies into bytes; it
//! knows nothing about streams, users or storage.

pub mod frame;
pub mod reply;

pub use frame::{FrameError, RequestFrame, read_frame};
