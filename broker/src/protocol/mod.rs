//! The binary protocols: the 0.11 framing (256-byte VSR-style request/reply
//! headers around the payloads `iggy_binary_protocol` defines) and the
//! legacy 0.10 framing (`legacy`).
//!
//! This module turns bytes into request headers and replies into bytes; it
//! knows nothing about streams, users or storage.

pub mod frame;
pub mod legacy;
pub mod reply;

pub use frame::{FrameError, RequestFrame, read_frame};
