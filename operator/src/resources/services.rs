//! The headless Service (stable pod DNS names for peers, published before
//! pods are ready) and the client Service (TCP, QUIC over UDP, HTTP).

use super::{child_meta, labels, names};
use crate::crd::IggyCluster;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn ports(cluster: &IggyCluster) -> Vec<ServicePort> {
    let l = &cluster.spec.listeners;
    let port = |name: &str, port: i32, protocol: &str| ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::Int(port)),
        protocol: Some(protocol.into()),
        ..Default::default()
    };
    vec![
        port("tcp", l.tcp_port, "TCP"),
        port("quic", l.quic_port, "UDP"),
        port("http", l.http_port, "TCP"),
    ]
}

/// The headless Service (it also carries the replica port peers dial);
/// with `scrape_annotations` it carries the `prometheus.io/*` annotations
/// (it lists every broker pod).
pub fn build_headless_service(cluster: &IggyCluster, scrape_annotations: bool) -> Service {
    let mut metadata = child_meta(cluster, names::headless_service(cluster));
    if scrape_annotations {
        metadata.annotations = Some(super::monitoring::scrape_annotations(cluster));
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(labels::selector(cluster)),
            ports: Some({
                let mut ports = ports(cluster);
                let replica = cluster.spec.listeners.replica_port;
                ports.push(ServicePort {
                    name: Some("replica".into()),
                    port: replica,
                    target_port: Some(IntOrString::Int(replica)),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                });
                ports
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn build_client_service(cluster: &IggyCluster) -> Service {
    Service {
        metadata: child_meta(cluster, names::client_service(cluster)),
        spec: Some(ServiceSpec {
            type_: Some(cluster.spec.listeners.service_type.clone()),
            selector: Some(labels::selector(cluster)),
            ports: Some(ports(cluster)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures::cluster;

    #[test]
    fn quic_is_udp_and_the_headless_service_publishes_unready_pods() {
        let c = cluster(3);
        let headless = build_headless_service(&c, false).spec.unwrap();
        assert_eq!(headless.cluster_ip.as_deref(), Some("None"));
        assert_eq!(headless.publish_not_ready_addresses, Some(true));
        let client = build_client_service(&c).spec.unwrap();
        let ports = client.ports.unwrap();
        let quic = ports
            .iter()
            .find(|p| p.name.as_deref() == Some("quic"))
            .unwrap();
        assert_eq!((quic.port, quic.protocol.as_deref()), (8080, Some("UDP")));
        assert_eq!(client.type_.as_deref(), Some("ClusterIP"));
    }
}
