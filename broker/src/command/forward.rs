//! Partition commands for a partition another broker leads are sent there
//! over the inter-broker transport (data lane) and its answer relayed, so
//! a client can reach every partition through any broker.
//!
//! The forwarded request carries who is asking (user and consumer-group
//! member) and how far this broker has applied the metadata; the partition's
//! broker catches up that far before serving it, so it sees the group
//! membership and offsets the client just changed. A forwarded request is
//! never forwarded again.

use super::Context;
use crate::cluster::transport::{Lane, PeerError, Request, Response};
use crate::error::{Error, Result};
use bytes::{Bytes, BytesMut};
use std::time::Duration;

/// A forwarded request that takes longer than this fails (the SDK's own
/// request timeout is 30 s).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(20);

/// Run command `code` with `body` on broker `to` and append its reply body
/// to `out`.
pub async fn to_broker(
    ctx: &Context<'_>,
    to: u32,
    code: u32,
    body: Bytes,
    out: &mut BytesMut,
) -> Result<()> {
    if ctx.session.forwarded {
        // Nothing was done: the SDK retries once the roster settles.
        return Err(Error::NotEnoughReplicas(format!(
            "forwarded here, but node {to} leads the partition now"
        )));
    }
    let peers = ctx
        .broker
        .peers
        .as_ref()
        .ok_or_else(|| Error::PartitionUnavailable(format!("node {to} is not a peer")))?;
    let command = iggy_binary_protocol::lookup_command(code).map_or("unknown", |c| c.name);
    ctx.broker
        .metrics
        .forwarded
        .with_label_values(&[command])
        .inc();
    let request = Request::Client {
        code,
        user_id: ctx.session.user_id.ok_or(Error::Unauthenticated)?,
        member: ctx.member(),
        applied: ctx.broker.metadata.applied_index(),
    };
    match peers
        .call(to, Lane::Data, &request, body, FORWARD_TIMEOUT)
        .await
    {
        Ok((Response::Client { status: 0 }, reply)) => {
            out.extend_from_slice(&reply);
            Ok(())
        }
        Ok((Response::Client { status }, _)) => Err(Error::Rejected {
            code: status,
            message: format!("refused by node {to} (status {status})"),
        }),
        Ok((other, _)) => Err(Error::PartitionUnavailable(format!(
            "node {to} answered {other:?}"
        ))),
        // Never sent: safe to retry (a new leader is being chosen).
        Err(e @ PeerError::Unreachable(..)) => Err(Error::NotEnoughReplicas(format!(
            "{e} (the partition's broker is down or cut off)"
        ))),
        Err(e) => Err(Error::PartitionUnavailable(e.to_string())),
    }
}
