//! Raft's RPCs over the inter-broker transport (control lane).

use super::TypeConfig;
use crate::cluster::Peers;
use crate::cluster::transport::{Lane, PeerError, Request, Response};
use bytes::Bytes;
use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use std::sync::Arc;

type RpcError<E = openraft::error::Infallible> = RPCError<u64, BasicNode, RaftError<u64, E>>;

#[derive(Clone)]
pub struct Network {
    peers: Option<Arc<Peers>>,
}

impl Network {
    /// `None`: a standalone broker, which never calls anyone.
    pub fn new(peers: Option<Arc<Peers>>) -> Self {
        Self { peers }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> Self::Network {
        PeerNetwork {
            peers: self.peers.clone(),
            target: target as u32,
        }
    }
}

pub struct PeerNetwork {
    peers: Option<Arc<Peers>>,
    target: u32,
}

impl PeerNetwork {
    async fn call<E: std::error::Error>(
        &self,
        request: Request,
        body: Bytes,
        option: &RPCOption,
    ) -> Result<(Response, Bytes), RpcError<E>> {
        let Some(peers) = &self.peers else {
            let e = PeerError::Unreachable(self.target, "standalone broker".into());
            return Err(RPCError::Unreachable(Unreachable::new(&e)));
        };
        peers
            .call(
                self.target,
                Lane::Control,
                &request,
                body,
                option.hard_ttl(),
            )
            .await
            .map_err(|e| match e {
                PeerError::Unreachable(..) | PeerError::Timeout(..) => {
                    RPCError::Unreachable(Unreachable::new(&e))
                }
                PeerError::Disconnected(..) | PeerError::Remote(..) => {
                    RPCError::Network(NetworkError::new(&e))
                }
            })
    }

    fn unexpected<E: std::error::Error>(&self, response: &Response) -> RpcError<E> {
        let e = PeerError::Remote(self.target, format!("unexpected answer {response:?}"));
        RPCError::Network(NetworkError::new(&e))
    }
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcError> {
        match self
            .call(Request::AppendEntries(rpc), Bytes::new(), &option)
            .await?
        {
            (Response::AppendEntries(Ok(r)), _) => Ok(r),
            (Response::AppendEntries(Err(e)), _) => Err(RPCError::RemoteError(RemoteError::new(
                self.target as u64,
                e,
            ))),
            (other, _) => Err(self.unexpected(&other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        mut rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RpcError<InstallSnapshotError>> {
        // The chunk travels as the frame body, not as JSON numbers.
        let data = Bytes::from(std::mem::take(&mut rpc.data));
        match self
            .call(Request::InstallSnapshot(rpc), data, &option)
            .await?
        {
            (Response::InstallSnapshot(Ok(r)), _) => Ok(r),
            (Response::InstallSnapshot(Err(e)), _) => Err(RPCError::RemoteError(RemoteError::new(
                self.target as u64,
                e,
            ))),
            (other, _) => Err(self.unexpected(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RpcError> {
        match self.call(Request::Vote(rpc), Bytes::new(), &option).await? {
            (Response::Vote(Ok(r)), _) => Ok(r),
            (Response::Vote(Err(e)), _) => Err(RPCError::RemoteError(RemoteError::new(
                self.target as u64,
                e,
            ))),
            (other, _) => Err(self.unexpected(&other)),
        }
    }
}
