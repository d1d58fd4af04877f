//! The inter-broker transport: its own listener (`cluster.replica_address`,
//! port 9090 by default), an authenticated handshake, versioned framing,
//! and concurrent requests over each connection.
//!
//! - [`handshake`]: mutual proof of the cluster's shared secret; peers of
//!   another cluster, with another secret or speaking anything else are
//!   refused (and logged).
//! - [`frame`]: `[length][kind][request id][meta][body]` frames.
//! - [`messages`]: the requests and responses.
//! - [`client`]: calling a peer; [`server`]: serving peers.
//! - [`repeats`]: warnings of refusals that every retry repeats.
//!
//! With `[cluster.tls]` every connection is mutual TLS first
//! (`crate::tls::peer`), and the handshake runs inside it.

pub mod client;
pub mod frame;
pub mod handshake;
pub mod messages;
pub(crate) mod repeats;
pub mod server;

pub use client::{Lane, PeerClient, PeerError};
pub use messages::{Request, Response};
pub use server::Handler;

use tokio::io::{AsyncRead, AsyncWrite};

/// A connection between brokers: plain TCP, or TLS over it.
pub trait PeerIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> PeerIo for T {}
pub type PeerStream = Box<dyn PeerIo>;
