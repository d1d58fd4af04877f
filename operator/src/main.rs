//! `iggy-operator`: the Kubernetes operator for Iggy clusters.
//!
//! Skeleton only: the IggyCluster/IggyTopic APIs and controllers are built
//! in later issues (see the README's feature table).

fn main() {
    println!(
        "iggy-operator {}: not implemented yet",
        env!("CARGO_PKG_VERSION")
    );
}
