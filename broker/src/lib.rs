//! `iggy-broker`: an Iggy-compatible message-streaming broker.
//!
//! # Layout
//!
//! Data flows one way: transport → protocol decode → command handlers →
//! broker state (metadata, partitions) → storage.
//!
//! - [`server`]: start-up, the TCP accept loop, graceful shutdown.
//! - [`connection`]: one client connection: detect the protocol generation
//!   from its first bytes, then read a frame, run it, reply.
//! - [`http`]: the HTTP listener (health endpoints).
//! - [`protocol`]: the wire framings: 0.11 (256-byte request/reply headers)
//!   and legacy 0.10 (`[length][code]`).
//! - [`command`]: one handler per command, grouped by area; `command::legacy`
//!   adapts 0.10 requests and replies to them.
//! - [`session`]: per-connection state (client id, logged-in user).
//! - [`broker`]: the shared state and the operations handlers call.
//! - [`metadata`]: the metadata state machine and its durable log.
//! - [`partition`]: a partition at run time: log and consumer offsets.
//! - [`consumer_groups`]: group membership and partition assignment.
//! - [`storage`]: segments, sparse indexes, recovery, the metadata WAL.
//! - [`retention`]: the cleaner enforcing message expiry and topic size.
//! - [`tls`]: certificates for TLS listeners, reloaded when they change.
//! - [`auth`]: passwords, personal access tokens, permission rules.
//! - [`config`]: configuration file, environment overrides, validation.
//! - [`metrics`]: Prometheus metrics.
//! - [`error`]: the error type and its wire status codes.

pub mod auth;
pub mod broker;
pub mod command;
pub mod config;
pub mod connection;
pub mod consumer_groups;
pub mod error;
pub mod http;
pub mod metadata;
pub mod metrics;
pub mod partition;
pub mod protocol;
pub mod retention;
pub mod server;
pub mod session;
pub mod storage;
pub mod tls;

pub use error::{Error, Result};
