//! Leader election through a `coordination.k8s.io` Lease: of several
//! operator replicas only the holder of the lease reconciles.

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use std::future::Future;
use tokio::sync::watch;

/// Lease name shared by every replica of the operator.
pub const LEASE_NAME: &str = "iggy-operator-leader";
/// Seconds a lease is held without renewal before another replica takes it.
pub const LEASE_DURATION_SECONDS: u64 = 15;
/// Seconds before expiry at which the holder renews.
pub const LEASE_GRACE_SECONDS: u64 = 5;

/// Run `work` only while this replica holds the lease; when leadership is
/// lost `work` is cancelled and we wait to win it again. Returns when
/// `shutdown` resolves.
pub async fn run_as_leader<W, F>(
    client: Client,
    namespace: &str,
    identity: &str,
    mut work: W,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()>
where
    W: FnMut() -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let manager = LeaseManagerBuilder::new(client, LEASE_NAME)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(LEASE_DURATION_SECONDS)
        .with_grace(LEASE_GRACE_SECONDS)
        // One field manager per replica: the lease is taken with a
        // server-side apply, which refuses a second holder only when the
        // holder's field belongs to another manager. With one shared name
        // two replicas starting together both "took" a free lease and both
        // reconciled until the next renewal (seen in the two-instance test).
        .with_field_manager(format!("{}-{identity}", crate::MANAGER))
        .build()
        .await?;
    let (mut is_leader, lease_task) = manager.watch().await;
    tokio::pin!(shutdown);
    loop {
        if wait_until(&mut is_leader, true, &mut shutdown).await {
            break;
        }
        tracing::info!(identity, "acquired leadership; reconciling");
        let task = tokio::spawn(work());
        let stopped = wait_until(&mut is_leader, false, &mut shutdown).await;
        task.abort();
        if stopped {
            break;
        }
        tracing::warn!(identity, "lost leadership; stopped reconciling");
    }
    // Dropping the receiver makes the lease task release the lease.
    drop(is_leader);
    let _ = lease_task.await;
    Ok(())
}

/// Wait until the leadership flag equals `value`; true if `shutdown` fired.
async fn wait_until(
    is_leader: &mut watch::Receiver<bool>,
    value: bool,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> bool {
    while *is_leader.borrow_and_update() != value {
        tokio::select! {
            changed = is_leader.changed() => if changed.is_err() { return true; },
            _ = shutdown.as_mut() => return true,
        }
    }
    false
}
