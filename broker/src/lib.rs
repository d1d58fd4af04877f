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
//! - [`http`]: the HTTP listener (health endpoints, metrics, the REST API
//!   and the cluster admin API).
//! - [`protocol`]: the wire framings: 0.11 (256-byte request/reply headers)
//!   and legacy 0.10 (`[length][code]`).
//! - [`command`]: one handler per command, grouped by area; `command::legacy`
//!   adapts 0.10 requests and replies to them.
//! - [`buffers`]: reading frames into buffers without zeroing them.
//! - [`session`]: per-connection state (client id, logged-in user).
//! - [`clients`]: this broker's client connections.
//! - [`broker`]: what connections work on (metadata, partitions,
//!   clients) and start-up.
//! - [`metadata`]: the replicated metadata — state, commands, the
//!   deterministic apply step, and the service that reads and writes it.
//! - [`cluster`]: N brokers as one: the inter-broker transport, the
//!   metadata group on openraft, peers and their health, the roster.
//! - [`partitions`]: the partitions held here and the metadata's side
//!   effects on them (directories, incarnations, the trash).
//! - [`replication`]: partition replicas — followers fetching from the
//!   leader, the committed offset, in-sync sets, elections, reassignment.
//! - [`storage`]: segments, sparse indexes, leader epochs, recovery,
//!   record files.
//! - [`retention`]: the cleaner enforcing message expiry and topic size.
//! - [`tls`]: certificates for TLS listeners, reloaded when they change.
//! - [`auth`]: passwords, personal access tokens, permission rules.
//! - [`config`]: configuration file, environment overrides, validation.
//! - [`metrics`]: Prometheus metrics.
//! - [`memory`]: the allocator's thresholds, and freed memory given back
//!   to the operating system.
//! - [`error`]: the error type and its wire status codes.

pub mod auth;
pub mod broker;
pub mod buffers;
pub mod clients;
pub mod cluster;
pub mod command;
pub mod config;
pub mod connection;
pub mod error;
pub mod http;
pub mod memory;
pub mod metadata;
pub mod metrics;
pub mod partitions;
pub mod protocol;
pub mod replication;
pub mod retention;
pub mod server;
pub mod session;
pub mod storage;
pub mod tls;

pub use error::{Error, Result};
