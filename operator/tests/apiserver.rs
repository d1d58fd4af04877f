//! The operator against a real kube-apiserver (the cluster in KUBECONFIG;
//! `make test` uses the local one from e2e/k8s.sh): the CRDs install, the
//! examples are accepted, invalid resources are rejected with a readable
//! message, reconciling creates and updates every child, status follows the
//! generation, pausing stops changes, and of two operator instances only the
//! leader reconciles.

use iggy_operator::controller::{self, Context};
use iggy_operator::crd::{self, IggyCluster, IggyTopic};
use iggy_operator::metrics::Metrics;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

async fn client() -> Client {
    // As main.rs does: the iggy client links a second rustls provider, so
    // the process must name one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default()
        .await
        .expect("KUBECONFIG must point at a running API server (make test starts one)");
    install_crds(&client).await;
    client
}

async fn install_crds(client: &Client) {
    iggy_operator::crd::install::ensure_crds(client, "iggy-operator-tests")
        .await
        .unwrap();
}

/// A fresh namespace for one test.
struct TestNamespace {
    client: Client,
    name: String,
}

impl TestNamespace {
    async fn new(client: &Client, prefix: &str) -> Self {
        let name = format!("{prefix}-{}", std::process::id());
        let api: Api<Namespace> = Api::all(client.clone());
        let _ = api.delete(&name, &DeleteParams::default()).await;
        // A namespace from an earlier run may still be terminating.
        wait_for("old namespace gone", || async {
            api.get_opt(&name).await.unwrap().is_none()
        })
        .await;
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &namespace)
            .await
            .unwrap();
        Self {
            client: client.clone(),
            name,
        }
    }
}

impl TestNamespace {
    /// Delete the namespace (a failed test leaves it for inspection; the
    /// next run deletes it first).
    async fn delete(self) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let _ = api.delete(&self.name, &DeleteParams::default()).await;
    }
}

async fn wait_for<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for_within(what, WAIT, check).await
}

async fn wait_for_within<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn example<K: serde::de::DeserializeOwned>(file: &str) -> K {
    let path = format!("{}/../examples/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn cluster(name: &str, replicas: i32) -> IggyCluster {
    serde_json::from_value(json!({
        "apiVersion": "iggy.rs/v1alpha1",
        "kind": "IggyCluster",
        "metadata": {"name": name},
        "spec": {"replicas": replicas}
    }))
    .unwrap()
}

/// The API server's message for a rejected request.
fn rejection(result: Result<impl std::fmt::Debug, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(e)) => e.message,
        other => panic!("expected the API server to reject the request, got {other:?}"),
    }
}

#[tokio::test]
async fn examples_are_accepted_and_invalid_resources_are_rejected_with_clear_messages() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "iggy-validate").await;
    let clusters: Api<IggyCluster> = Api::namespaced(client.clone(), &ns.name);
    let topics: Api<IggyTopic> = Api::namespaced(client.clone(), &ns.name);
    let pp = PostParams::default();

    clusters
        .create(&pp, &example("cluster.yaml"))
        .await
        .unwrap();
    let topic: IggyTopic = example("topic.yaml");
    topics.create(&pp, &topic).await.unwrap();

    let message = rejection(clusters.create(&pp, &cluster("zero", 0)).await);
    assert!(message.contains("replicas must be at least 1"), "{message}");

    let strict = PatchParams::apply("tests").validation_strict();
    let unknown = json!({
        "apiVersion": "iggy.rs/v1alpha1", "kind": "IggyCluster",
        "metadata": {"name": "typo"}, "spec": {"replicas": 1, "replicaz": 3}
    });
    let message = rejection(
        clusters
            .patch("typo", &strict, &Patch::Apply(&unknown))
            .await,
    );
    assert!(
        message.contains(".spec.replicaz: field not declared in schema"),
        "{message}"
    );

    let merge = PatchParams::default();
    for (change, expected) in [
        (
            json!({"spec": {"partitions": 6}}),
            "partitions cannot be decreased",
        ),
        (
            json!({"spec": {"name": "renamed"}}),
            "the topic name cannot be changed",
        ),
        (
            json!({"spec": {"stream": "other"}}),
            "the stream of a topic cannot be changed",
        ),
    ] {
        let message = rejection(topics.patch("orders", &merge, &Patch::Merge(change)).await);
        assert!(message.contains(expected), "{message}");
    }
    // Growing is fine.
    topics
        .patch(
            "orders",
            &merge,
            &Patch::Merge(json!({"spec": {"partitions": 24}})),
        )
        .await
        .unwrap();
    // Replication and storage settings the brokers or the StatefulSet
    // could not honour.
    for (spec, expected) in [
        (
            json!({"replication": {"defaultFactor": 1, "minInSync": 2}}),
            "minInSync cannot exceed defaultFactor",
        ),
        (
            json!({"replicas": 2, "replication": {"defaultFactor": 3}}),
            "replication.defaultFactor cannot exceed replicas",
        ),
        (
            json!({"storage": {"persistentVolumeClaimRetentionPolicy": {"whenScaled": "Sometimes"}}}),
            "whenScaled and .whenDeleted are Retain or Delete",
        ),
    ] {
        let message = rejection(
            clusters
                .patch("iggy", &merge, &Patch::Merge(json!({ "spec": spec })))
                .await,
        );
        assert!(message.contains(expected), "{message}");
    }
    ns.delete().await;
}

/// Start the controller in this process with its own metrics.
fn start_controller(
    client: &Client,
    instance: &str,
) -> (Arc<Metrics>, tokio::task::JoinHandle<()>) {
    let metrics = Arc::new(Metrics::default());
    let ctx = Arc::new(Context::new(client.clone(), metrics.clone(), instance));
    (
        metrics,
        tokio::spawn(controller::run(ctx, controller::Scope::Cluster)),
    )
}

fn reconciles(metrics: &Metrics) -> u64 {
    metrics
        .reconciliations
        .with_label_values(&["iggycluster", "ok"])
        .get()
}

#[tokio::test]
async fn reconcile_creates_children_follows_spec_changes_writes_status_and_pauses() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "iggy-reconcile").await;
    let (metrics, controller) = start_controller(&client, "test");
    let clusters: Api<IggyCluster> = Api::namespaced(client.clone(), &ns.name);
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns.name);
    let svc_api: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let pdb_api: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns.name);
    let secret_api: Api<Secret> = Api::namespaced(client.clone(), &ns.name);

    let created = clusters
        .create(&PostParams::default(), &cluster("demo", 3))
        .await
        .unwrap();
    let uid = created.uid().unwrap();

    // Every child appears, owned by the cluster.
    wait_for("the StatefulSet", || async {
        sts_api.get_opt("demo").await.unwrap().is_some()
    })
    .await;
    wait_for("the PDB", || async {
        pdb_api.get_opt("demo").await.unwrap().is_some()
    })
    .await;
    let sts = sts_api.get("demo").await.unwrap();
    let headless = svc_api.get("demo-headless").await.unwrap();
    let client_svc = svc_api.get("demo-client").await.unwrap();
    let config = cm_api.get("demo-config").await.unwrap();
    let secret = secret_api.get("demo-root-credentials").await.unwrap();
    for owners in [
        sts.owner_references(),
        headless.owner_references(),
        client_svc.owner_references(),
        config.owner_references(),
        secret.owner_references(),
        pdb_api.get("demo").await.unwrap().owner_references(),
    ] {
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].uid, uid);
        assert_eq!(owners[0].kind, "IggyCluster");
        assert_eq!(owners[0].controller, Some(true));
    }
    let spec = sts.spec.clone().unwrap();
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(
        spec.update_strategy.unwrap().type_.as_deref(),
        Some("OnDelete")
    );
    assert_eq!(
        headless.spec.unwrap().publish_not_ready_addresses,
        Some(true)
    );
    let quic = client_svc
        .spec
        .unwrap()
        .ports
        .unwrap()
        .into_iter()
        .find(|p| p.name.as_deref() == Some("quic"))
        .unwrap();
    assert_eq!(quic.protocol.as_deref(), Some("UDP"));
    assert!(config.data.unwrap()["broker.toml"].contains("0.0.0.0:8090"));
    assert_eq!(secret.data.unwrap()["username"].0, b"iggy");

    // One cluster: a generated shared secret, the replica port on the
    // headless Service, the brokers told to advertise the client Service's
    // cluster IP.
    let shared = secret_api.get("demo-cluster-secret").await.unwrap();
    assert_eq!(shared.owner_references()[0].uid, uid);
    assert!(shared.data.unwrap()["shared-secret"].0.len() >= 32);
    let headless_ports = svc_api
        .get("demo-headless")
        .await
        .unwrap()
        .spec
        .unwrap()
        .ports
        .unwrap();
    assert!(
        headless_ports
            .iter()
            .any(|p| p.name.as_deref() == Some("replica") && p.port == 9090)
    );
    let cluster_ip = svc_api
        .get("demo-client")
        .await
        .unwrap()
        .spec
        .unwrap()
        .cluster_ip
        .unwrap();
    let env = spec.template.spec.clone().unwrap().containers[0]
        .env
        .clone()
        .unwrap();
    let advertised = env
        .iter()
        .find(|e| e.name == "IGGY_CLUSTER_ADVERTISED_HOST")
        .and_then(|e| e.value.clone());
    assert_eq!(advertised.as_deref(), Some(cluster_ip.as_str()));

    // Status: written for the current generation; not Ready (no volumes can
    // be provisioned on the test cluster, so no broker starts), Progressing.
    wait_for("status for generation 1", || async {
        let c = clusters.get("demo").await.unwrap();
        c.status
            .as_ref()
            .is_some_and(|s| s.observed_generation == c.metadata.generation)
    })
    .await;
    let status = clusters.get("demo").await.unwrap().status.unwrap();
    let condition = |type_: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .cloned()
            .unwrap()
    };
    assert_eq!(condition("Ready").status, "False");
    assert_eq!(condition("Progressing").status, "True");
    assert_eq!(condition("Paused").status, "False");
    assert_eq!(condition("Ready").observed_generation, Some(1));
    assert_eq!(
        status.endpoints.unwrap().tcp,
        format!("demo-client.{}.svc:8090", ns.name)
    );

    // The generated Secret is never overwritten.
    secret_api
        .patch(
            "demo-root-credentials",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"password": "chosen-by-user"}})),
        )
        .await
        .unwrap();

    // Spec changes propagate: replicas, image, config, resources.
    let merge = PatchParams::default();
    clusters
        .patch(
            "demo",
            &merge,
            &Patch::Merge(json!({"spec": {
                "replicas": 1,
                "image": "localhost/iggy-broker:test",
                "config": {"segmentSize": "64MiB"},
                "resources": {"requests": {"cpu": "100m"}}
            }})),
        )
        .await
        .unwrap();
    wait_for("replicas 1 in the StatefulSet", || async {
        sts_api.get("demo").await.unwrap().spec.unwrap().replicas == Some(1)
    })
    .await;
    let sts = sts_api.get("demo").await.unwrap();
    let template = sts.spec.unwrap().template;
    let broker = template.spec.unwrap().containers[0].clone();
    assert_eq!(broker.image.as_deref(), Some("localhost/iggy-broker:test"));
    assert_eq!(broker.resources.unwrap().requests.unwrap()["cpu"].0, "100m");
    assert!(
        cm_api.get("demo-config").await.unwrap().data.unwrap()["broker.toml"]
            .contains("segment_size = \"64MiB\"")
    );
    // One broker needs no disruption budget: it is removed.
    wait_for("the PDB removed", || async {
        pdb_api.get_opt("demo").await.unwrap().is_none()
    })
    .await;
    wait_for("status for generation 2", || async {
        let c = clusters.get("demo").await.unwrap();
        c.status.as_ref().and_then(|s| s.observed_generation) == Some(2)
    })
    .await;
    let password = secret_api
        .get("demo-root-credentials")
        .await
        .unwrap()
        .data
        .unwrap()["password"]
        .clone();
    assert_eq!(password.0, b"chosen-by-user");

    // Pausing stops changes and says so.
    clusters
        .patch(
            "demo",
            &merge,
            &Patch::Merge(
                json!({"metadata": {"annotations": {"iggy.rs/pause-reconciliation": "true"}}}),
            ),
        )
        .await
        .unwrap();
    let paused = |matches: fn(&Condition, Option<i64>) -> bool, generation: Option<i64>| {
        let clusters = clusters.clone();
        async move {
            clusters
                .get("demo")
                .await
                .unwrap()
                .status
                .unwrap()
                .conditions
                .iter()
                .any(|c| c.type_ == "Paused" && matches(c, generation))
        }
    };
    wait_for("Paused=True", || paused(|c, _| c.status == "True", None)).await;
    let generation = clusters
        .patch(
            "demo",
            &merge,
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap()
        .metadata
        .generation;
    // The paused reconcile of the new generation has run: it records that
    // generation on the Paused condition — and changed nothing.
    wait_for("the paused reconcile of the change", || {
        paused(
            |c, generation| c.observed_generation == generation,
            generation,
        )
    })
    .await;
    assert_eq!(
        sts_api.get("demo").await.unwrap().spec.unwrap().replicas,
        Some(1),
        "paused cluster changed"
    );
    clusters
        .patch(
            "demo",
            &merge,
            &Patch::Merge(
                json!({"metadata": {"annotations": {"iggy.rs/pause-reconciliation": null}}}),
            ),
        )
        .await
        .unwrap();
    wait_for("replicas 2 after resuming", || async {
        sts_api.get("demo").await.unwrap().spec.unwrap().replicas == Some(2)
    })
    .await;

    // Significant actions are recorded as Events on the cluster.
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    wait_for("events", || async {
        let reasons: Vec<String> = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.involved_object.uid.as_deref() == Some(uid.as_str()))
            .filter_map(|e| e.reason)
            .collect();
        ["Created", "SecretCreated", "Scaled", "Paused", "Resumed"]
            .iter()
            .all(|r| reasons.iter().any(|x| x == r))
    })
    .await;
    assert!(reconciles(&metrics) > 0);
    controller.abort();
    ns.delete().await;
}

#[tokio::test]
async fn with_two_operator_instances_only_the_leader_reconciles() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "iggy-leader").await;
    let lease_ns = ns.name.clone();
    let mut instances = Vec::new();
    for name in ["a", "b"] {
        let metrics = Arc::new(Metrics::default());
        let ctx = Arc::new(Context::new(client.clone(), metrics.clone(), name));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let client = client.clone();
        let lease_ns = lease_ns.clone();
        let task = tokio::spawn(async move {
            iggy_operator::leader::run_as_leader(
                client,
                &lease_ns,
                name,
                move || controller::run(ctx.clone(), controller::Scope::Cluster),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .unwrap();
        });
        instances.push((name, metrics, stop, task));
    }
    let clusters: Api<IggyCluster> = Api::namespaced(client.clone(), &ns.name);
    clusters
        .create(&PostParams::default(), &cluster("led", 1))
        .await
        .unwrap();
    wait_for("a reconcile", || async {
        instances.iter().any(|(_, m, _, _)| reconciles(m) > 0)
    })
    .await;
    // A change both instances see: once the leader has reconciled it, a
    // second active instance would have had the same event.
    let generation = clusters
        .patch(
            "led",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap()
        .metadata
        .generation;
    wait_for("the change reconciled", || async {
        let c = clusters.get("led").await.unwrap();
        c.status.as_ref().and_then(|s| s.observed_generation) == generation
    })
    .await;
    let active: Vec<&str> = instances
        .iter()
        .filter(|(_, m, _, _)| reconciles(m) > 0)
        .map(|(n, _, _, _)| *n)
        .collect();
    assert_eq!(
        active.len(),
        1,
        "exactly one instance reconciled, got {active:?}"
    );

    // When the leader stops, the other takes over.
    let leader = active[0];
    let (index, _) = instances
        .iter()
        .enumerate()
        .find(|(_, (n, _, _, _))| *n == leader)
        .unwrap();
    let (_, _, stop, task) = instances.remove(index);
    let _ = stop.send(());
    task.await.unwrap();
    let (_, follower_metrics, follower_stop, follower_task) = instances.remove(0);
    clusters
        .patch(
            "led",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while reconciles(&follower_metrics) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the follower never took over"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = follower_stop.send(());
    follower_task.await.unwrap();
    ns.delete().await;
}

/// A resource whose CRD is never installed.
#[derive(
    kube::CustomResource, schemars::JsonSchema, serde::Serialize, serde::Deserialize, Clone, Debug,
)]
#[kube(
    group = "missing.iggy.rs",
    version = "v1",
    kind = "Missing",
    namespaced
)]
struct MissingSpec {
    field: String,
}

#[tokio::test]
async fn a_missing_crd_is_reported_with_how_to_fix_it() {
    let client = client().await;
    controller::check_crds(&client, &controller::Scope::Cluster)
        .await
        .expect("the operator's CRDs are installed");
    let message = controller::check_crd::<Missing>(&client, &controller::Scope::Cluster)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("the Missing CRD (missing.iggy.rs/v1) is not installed"),
        "{message}"
    );
    assert!(message.contains("kubectl apply -f crds/"), "{message}");
}

/// Read an HTTP/1.0 response from the operator's web server.
async fn http_get(address: &str, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    Some(response)
}

#[tokio::test]
async fn the_operator_binary_serves_health_and_metrics_and_reconciles() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "iggy-binary").await;
    let listen = "127.0.0.1:18711";
    let mut operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_iggy-operator"))
        .args([
            "run",
            "--listen",
            listen,
            "--namespace",
            &ns.name,
            "--log-json",
        ])
        .env("POD_NAME", "operator-under-test")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for("/healthz", || async {
        http_get(listen, "/healthz")
            .await
            .is_some_and(|r| r.starts_with("HTTP/1.0 200"))
    })
    .await;
    assert!(
        http_get(listen, "/readyz")
            .await
            .unwrap()
            .starts_with("HTTP/1.0 200")
    );

    let clusters: Api<IggyCluster> = Api::namespaced(client.clone(), &ns.name);
    clusters
        .create(&PostParams::default(), &cluster("bin", 1))
        .await
        .unwrap();
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), &ns.name);
    wait_for("the StatefulSet from the binary", || async {
        sts.get_opt("bin").await.unwrap().is_some()
    })
    .await;
    wait_for("reconcile metrics", || async {
        http_get(listen, "/metrics").await.is_some_and(|m| {
            m.contains("iggy_operator_reconciliations_total{kind=\"iggycluster\",result=\"ok\"}")
        })
    })
    .await;

    // SIGTERM: the operator stops cleanly and releases its lease.
    let pid = operator.id().unwrap() as i32;
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), operator.wait())
        .await
        .expect("the operator exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    ns.delete().await;
}

/// The operator applies its CRDs at start, stamped with its version, and
/// never replaces CRDs stamped by a newer operator.
#[tokio::test]
async fn crds_are_upgraded_but_never_downgraded() {
    use iggy_operator::crd::install::{VERSION_ANNOTATION, ensure_crds};
    let client = client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd::crds()[0].name_any();
    let stamp = |version: &str| json!({"metadata": {"annotations": {VERSION_ANNOTATION: version}}});
    let stamped = |crd: &CustomResourceDefinition| {
        crd.annotations()
            .get(VERSION_ANNOTATION)
            .cloned()
            .unwrap_or_default()
    };

    // An older CRD (as `kubectl apply` of an old release would leave it,
    // here without its printer columns) is replaced by the bundled one.
    let mut old = crds.get(&name).await.unwrap();
    old.annotations_mut()
        .insert(VERSION_ANNOTATION.into(), "0.0.1".into());
    old.spec.versions[0].additional_printer_columns = None;
    crds.replace(&name, &PostParams::default(), &old)
        .await
        .unwrap();
    assert!(
        crds.get(&name).await.unwrap().spec.versions[0]
            .additional_printer_columns
            .is_none()
    );
    ensure_crds(&client, iggy_operator::MANAGER).await.unwrap();
    let upgraded = crds.get(&name).await.unwrap();
    assert_eq!(stamped(&upgraded), env!("CARGO_PKG_VERSION"));
    assert!(
        upgraded.spec.versions[0]
            .additional_printer_columns
            .is_some()
    );

    // A CRD from a newer operator is left exactly as it is.
    crds.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(stamp("99.0.0")),
    )
    .await
    .unwrap();
    let before = crds.get(&name).await.unwrap();
    ensure_crds(&client, iggy_operator::MANAGER).await.unwrap();
    let after = crds.get(&name).await.unwrap();
    assert_eq!(stamped(&after), "99.0.0");
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );

    // Leave the bundled CRD for the other tests.
    crds.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(stamp(env!("CARGO_PKG_VERSION"))),
    )
    .await
    .unwrap();
    ensure_crds(&client, iggy_operator::MANAGER).await.unwrap();
}

/// The Ready condition's reason, if the topic has one.
fn ready_reason(topic: &IggyTopic) -> Option<String> {
    topic
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "False")
        .map(|c| c.reason.clone())
}

#[tokio::test]
async fn an_iggy_topic_gets_a_finalizer_a_status_that_says_why_and_is_deleted_without_its_cluster()
{
    let client = client().await;
    let ns = TestNamespace::new(&client, "topic").await;
    let (_metrics, controller) = start_controller(&client, "topic-test");
    let topics: Api<IggyTopic> = Api::namespaced(client.clone(), &ns.name);
    let topic: IggyTopic = example("topic.yaml");
    let name = topic.name_any();
    topics.create(&PostParams::default(), &topic).await.unwrap();

    // No cluster of that name: the finalizer is on, the status says so.
    wait_for("the finalizer and Ready=False ClusterNotFound", || async {
        let topic = topics.get(&name).await.unwrap();
        topic
            .finalizers()
            .iter()
            .any(|f| f == controller::topic::FINALIZER)
            && ready_reason(&topic).as_deref() == Some("ClusterNotFound")
    })
    .await;

    // A cluster that is not Ready (paused, so it never starts brokers).
    let mut paused = cluster(&topic.spec.cluster_ref, 3);
    paused
        .annotations_mut()
        .insert(controller::cluster::PAUSE_ANNOTATION.into(), "true".into());
    let clusters: Api<IggyCluster> = Api::namespaced(client.clone(), &ns.name);
    clusters
        .create(&PostParams::default(), &paused)
        .await
        .unwrap();
    // Woken by the cluster's creation, not by its next look a minute on.
    wait_for_within(
        "Ready=False ClusterNotReady",
        Duration::from_secs(15),
        || async {
            ready_reason(&topics.get(&name).await.unwrap()).as_deref() == Some("ClusterNotReady")
        },
    )
    .await;

    // A spec the API server accepts but the broker could not: Degraded.
    topics
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"messageExpiry": "a week"}})),
        )
        .await
        .unwrap();
    wait_for("Ready=False InvalidSpec and Degraded", || async {
        let topic = topics.get(&name).await.unwrap();
        let degraded = topic.status.as_ref().is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Degraded" && c.status == "True" && c.message.contains("messageExpiry")
            })
        });
        ready_reason(&topic).as_deref() == Some("InvalidSpec") && degraded
    })
    .await;

    // Nothing was created in a broker: deleting the resource completes.
    topics
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the IggyTopic gone", || async {
        topics.get_opt(&name).await.unwrap().is_none()
    })
    .await;
    controller.abort();
    ns.delete().await;
}

/// The cluster's `Degraded` condition as `(status, reason, message)`.
async fn degraded(clusters: &Api<IggyCluster>, name: &str) -> Option<(String, String, String)> {
    let cluster = clusters.get(name).await.ok()?;
    cluster
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Degraded")
        .map(|c| (c.status, c.reason, c.message))
}

#[tokio::test]
async fn storage_grows_on_the_claims_and_a_shrink_or_a_fixed_class_is_refused() {
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    use k8s_openapi::api::storage::v1::StorageClass;
    let client = client().await;
    let ns = TestNamespace::new(&client, "iggy-storage").await;
    let (_metrics, controller) = start_controller(&client, "test");
    let pid = std::process::id();
    let classes: Api<StorageClass> = Api::all(client.clone());
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns.name);
    let clusters: Api<IggyCluster> = Api::namespaced(client.clone(), &ns.name);
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns.name);
    let pp = PostParams::default();
    let (grows, fixed) = (format!("iggy-grows-{pid}"), format!("iggy-fixed-{pid}"));
    for (name, expandable) in [(&grows, true), (&fixed, false)] {
        let _ = classes.delete(name, &DeleteParams::default()).await;
        let class: StorageClass = serde_json::from_value(json!({
            "metadata": {"name": name},
            "provisioner": "example.com/none",
            "allowVolumeExpansion": expandable
        }))
        .unwrap();
        classes.create(&pp, &class).await.unwrap();
    }
    // A bound claim per cluster, made before its StatefulSet (which adopts
    // it), as a provisioner would have made it.
    for (cluster_name, class) in [("vol", &grows), ("fix", &fixed)] {
        let pv = format!("iggy-{cluster_name}-{pid}");
        let claim = format!("data-{cluster_name}-0");
        let _ = volumes.delete(&pv, &DeleteParams::default()).await;
        let volume: PersistentVolume = serde_json::from_value(json!({
            "metadata": {"name": pv},
            "spec": {
                "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                "storageClassName": class, "hostPath": {"path": format!("/tmp/{pv}")},
                "claimRef": {"namespace": ns.name, "name": claim}
            }
        }))
        .unwrap();
        volumes.create(&pp, &volume).await.unwrap();
        let owner = cluster(cluster_name, 1);
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": claim, "labels": iggy_operator::resources::labels::selector(&owner)},
            "spec": {
                "accessModes": ["ReadWriteOnce"], "storageClassName": class, "volumeName": pv,
                "resources": {"requests": {"storage": "1Gi"}}
            }
        }))
        .unwrap();
        claims.create(&pp, &pvc).await.unwrap();
        claims
            .patch_status(
                &claim,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}}),
                ),
            )
            .await
            .unwrap();
        let mut owner = owner;
        owner.spec.storage.size = "1Gi".into();
        owner.spec.storage.storage_class_name = Some(class.clone());
        clusters.create(&pp, &owner).await.unwrap();
    }
    wait_for("both StatefulSets", || async {
        sts_api.get_opt("vol").await.unwrap().is_some()
            && sts_api.get_opt("fix").await.unwrap().is_some()
    })
    .await;

    let resize = |size: &str| Patch::Merge(json!({"spec": {"storage": {"size": size}}}));
    let requested = |pvc: PersistentVolumeClaim| {
        pvc.spec.unwrap().resources.unwrap().requests.unwrap()["storage"]
            .0
            .clone()
    };
    // Larger on a class that can expand: the claim grows; the StatefulSet's
    // template (which cannot change) keeps its size.
    clusters
        .patch("vol", &PatchParams::default(), &resize("2Gi"))
        .await
        .unwrap();
    wait_for("the claim asks for 2Gi", || async {
        requested(claims.get("data-vol-0").await.unwrap()) == "2Gi"
    })
    .await;
    let template = sts_api
        .get("vol")
        .await
        .unwrap()
        .spec
        .unwrap()
        .volume_claim_templates
        .unwrap();
    assert_eq!(
        template[0]
            .spec
            .as_ref()
            .unwrap()
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap()["storage"]
            .0,
        "1Gi"
    );
    // Smaller: refused, nothing changes.
    clusters
        .patch("vol", &PatchParams::default(), &resize("1Gi"))
        .await
        .unwrap();
    wait_for("Degraded: StorageChangeRefused (shrink)", || async {
        degraded(&clusters, "vol")
            .await
            .is_some_and(|(status, reason, message)| {
                status == "True"
                    && reason == "StorageChangeRefused"
                    && message.contains("cannot shrink")
            })
    })
    .await;
    assert_eq!(requested(claims.get("data-vol-0").await.unwrap()), "2Gi");
    // Larger on a class that cannot expand: refused, nothing changes.
    clusters
        .patch("fix", &PatchParams::default(), &resize("2Gi"))
        .await
        .unwrap();
    wait_for("Degraded: StorageChangeRefused (fixed class)", || async {
        degraded(&clusters, "fix")
            .await
            .is_some_and(|(status, reason, message)| {
                status == "True"
                    && reason == "StorageChangeRefused"
                    && message.contains("does not allow volume expansion")
            })
    })
    .await;
    assert_eq!(requested(claims.get("data-fix-0").await.unwrap()), "1Gi");

    controller.abort();
    ns.delete().await;
    for name in [&grows, &fixed] {
        let _ = classes.delete(name, &DeleteParams::default()).await;
    }
    for cluster_name in ["vol", "fix"] {
        let _ = volumes
            .delete(
                &format!("iggy-{cluster_name}-{pid}"),
                &DeleteParams::default(),
            )
            .await;
    }
}

/// A Secret's key as text.
async fn secret_text(secrets: &Api<Secret>, name: &str, key: &str) -> Option<String> {
    let secret = secrets.get_opt(name).await.ok()??;
    let value = secret.data?.remove(key)?;
    Some(String::from_utf8(value.0).unwrap())
}

async fn config_text(maps: &Api<ConfigMap>, name: &str, key: &str) -> Option<String> {
    maps.get_opt(name).await.ok()??.data?.remove(key)
}

/// Wake the cluster's reconcile (the clock moved; nothing else did).
async fn poke(clusters: &Api<IggyCluster>, name: &str, value: &str) {
    clusters
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"test/poke": value}}})),
        )
        .await
        .unwrap();
}

fn tls_cluster(name: &str, replicas: i32, tls: serde_json::Value) -> IggyCluster {
    let mut c = cluster(name, replicas);
    c.spec.tls = Some(serde_json::from_value(tls).unwrap());
    c
}

#[tokio::test]
async fn tls_certificates_are_issued_renewed_by_time_and_on_request_and_refusals_say_why() {
    use iggy_operator::resources::certificates::{inspect, inspect_bundle, issue, new_ca};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::SystemTime;
    const DAY: u64 = 86_400;
    let client = client().await;
    let ns = TestNamespace::new(&client, "iggy-tls").await;
    let skew = Arc::new(AtomicU64::new(0));
    let start = |skew: Arc<AtomicU64>| {
        let ctx = Context::new(client.clone(), Arc::new(Metrics::default()), "test").with_clock(
            move || SystemTime::now() + Duration::from_secs(skew.load(Ordering::Relaxed)),
        );
        tokio::spawn(controller::run(
            Arc::new(ctx),
            controller::Scope::Namespaces(vec![ns.name.clone()]),
        ))
    };
    let controller = start(skew.clone());
    let clusters: Api<IggyCluster> = Api::namespaced(client.clone(), &ns.name);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns.name);
    let pp = PostParams::default();

    // Operator mode: a CA, a certificate per broker, the bundle published.
    let tls = json!({"validity": "10d", "renewBefore": "2d", "caValidity": "30d"});
    clusters
        .create(&pp, &tls_cluster("secure", 2, tls))
        .await
        .unwrap();
    wait_for("the brokers' certificates", || async {
        secret_text(&secrets, "secure-broker-tls", "secure-1.crt")
            .await
            .is_some()
    })
    .await;
    let ca = secret_text(&secrets, "secure-ca", "tls.crt").await.unwrap();
    let ca_subject = inspect(&ca).unwrap().subject;
    let first = secret_text(&secrets, "secure-broker-tls", "secure-1.crt")
        .await
        .unwrap();
    let info = inspect(&first).unwrap();
    assert_eq!(info.issuer, ca_subject);
    for name in [
        format!("secure-1.secure-headless.{}.svc.cluster.local", ns.name),
        "secure-1.secure-headless".to_string(),
        format!("secure-client.{}", ns.name),
        format!("secure-client.{}.svc", ns.name),
        format!("secure-headless.{}.svc", ns.name),
    ] {
        assert!(info.names.contains(&name), "{name} in {:?}", info.names);
    }
    assert!(
        secret_text(&secrets, "secure-broker-tls", "secure-1.key")
            .await
            .is_some()
    );
    assert_eq!(
        secret_text(&secrets, "secure-broker-tls", "ca.crt").await,
        Some(ca.clone())
    );
    wait_for("the published CA bundle", || async {
        config_text(&maps, "secure-ca-bundle", "ca.crt").await == Some(ca.clone())
            && secret_text(&secrets, "secure-ca-bundle", "ca.crt").await == Some(ca.clone())
    })
    .await;
    let sts = sts_api.get("secure").await.unwrap();
    let pod = sts.spec.unwrap().template.spec.unwrap();
    let broker = &pod.containers[0];
    assert!(pod.volumes.unwrap().iter().any(|v| {
        v.secret
            .as_ref()
            .is_some_and(|s| s.secret_name.as_deref() == Some("secure-broker-tls"))
    }));
    assert_eq!(
        broker
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .scheme
            .as_deref(),
        Some("HTTPS")
    );
    assert!(
        broker
            .env
            .as_ref()
            .unwrap()
            .iter()
            .any(|e| e.name == "IGGY_CLUSTER_TLS_CA_FILE")
    );
    wait_for("TLS in the status", || async {
        clusters
            .get("secure")
            .await
            .unwrap()
            .status
            .and_then(|s| s.tls)
            .is_some_and(|t| {
                t.brokers.len() == 2
                    && t.ca_not_after.len() == 1
                    && t.connection
                        .is_some_and(|c| c.contains("tls_domain=secure-client."))
            })
    })
    .await;

    // Renewed by time: ten days' validity, renewed two days ahead.
    skew.store(8 * DAY + 3600, Ordering::Relaxed);
    poke(&clusters, "secure", "1").await;
    wait_for("a renewal when the clock says so", || async {
        secret_text(&secrets, "secure-broker-tls", "secure-1.crt").await != Some(first.clone())
    })
    .await;
    let renewed = secret_text(&secrets, "secure-broker-tls", "secure-1.crt")
        .await
        .unwrap();
    assert!(inspect(&renewed).unwrap().not_after > info.not_after);
    // And on request.
    clusters
        .patch(
            "secure",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"iggy.rs/renew-certificates": "now"}}}),
            ),
        )
        .await
        .unwrap();
    wait_for("a renewal on request", || async {
        secret_text(&secrets, "secure-broker-tls", "secure-0.crt")
            .await
            .is_some_and(|c| c != renewed)
            && secret_text(&secrets, "secure-broker-tls", "secure-1.crt").await
                != Some(renewed.clone())
    })
    .await;
    // A CA rotation on request starts by trusting both CAs; the brokers
    // (not running here) never report trusting the new one, so it waits
    // there, and says so.
    clusters
        .patch(
            "secure",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"iggy.rs/rotate-ca": "now"}}})),
        )
        .await
        .unwrap();
    wait_for("both CAs published", || async {
        config_text(&maps, "secure-ca-bundle", "ca.crt")
            .await
            .is_some_and(|bundle| inspect_bundle(&bundle).unwrap().len() == 2)
    })
    .await;
    wait_for("Progressing: CertificateRotation", || async {
        clusters
            .get("secure")
            .await
            .unwrap()
            .status
            .is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "Progressing"
                        && c.reason == "CertificateRotation"
                        && c.message.contains("trust the new one")
                })
            })
    })
    .await;
    let signer = secret_text(&secrets, "secure-broker-tls", "secure-0.crt")
        .await
        .unwrap();
    assert_eq!(
        inspect(&signer).unwrap().issuer,
        ca_subject,
        "the old CA signs until every broker trusts the new one"
    );

    // Secret mode: refused with a reason until the Secret is complete,
    // then its CA is published, and followed when it changes.
    clusters
        .create(
            &pp,
            &tls_cluster(
                "mine",
                1,
                json!({"mode": "Secret", "secretName": "mine-tls"}),
            ),
        )
        .await
        .unwrap();
    wait_for("Degraded: TLSSecretMissing", || async {
        degraded(&clusters, "mine")
            .await
            .is_some_and(|(s, reason, _)| s == "True" && reason == "TLSSecretMissing")
    })
    .await;
    let now = SystemTime::now();
    let user_ca = new_ca("user", now, Duration::from_secs(30 * DAY)).unwrap();
    let leaf = issue(
        &user_ca,
        "iggy",
        &["iggy.example.com".into()],
        now,
        Duration::from_secs(DAY),
    )
    .unwrap();
    let user_secret = |ca: Option<&str>| -> Secret {
        let mut data = serde_json::Map::new();
        data.insert("tls.crt".into(), json!(&leaf.cert_pem));
        data.insert("tls.key".into(), json!(&leaf.key_pem));
        if let Some(ca) = ca {
            data.insert("ca.crt".into(), json!(ca));
        }
        serde_json::from_value(json!({"metadata": {"name": "mine-tls"}, "stringData": data}))
            .unwrap()
    };
    secrets.create(&pp, &user_secret(None)).await.unwrap();
    wait_for("Degraded: TLSSecretInvalid naming ca.crt", || async {
        degraded(&clusters, "mine")
            .await
            .is_some_and(|(s, reason, message)| {
                s == "True" && reason == "TLSSecretInvalid" && message.contains("ca.crt")
            })
    })
    .await;
    secrets
        .replace("mine-tls", &pp, &user_secret(Some(&user_ca.cert_pem)))
        .await
        .unwrap();
    wait_for("the user's CA published", || async {
        config_text(&maps, "mine-ca-bundle", "ca.crt")
            .await
            .as_deref()
            == Some(user_ca.cert_pem.as_str())
    })
    .await;
    let next_ca = new_ca("user", now, Duration::from_secs(60 * DAY)).unwrap();
    secrets
        .replace("mine-tls", &pp, &user_secret(Some(&next_ca.cert_pem)))
        .await
        .unwrap();
    wait_for("a change of the user's Secret followed", || async {
        config_text(&maps, "mine-ca-bundle", "ca.crt")
            .await
            .as_deref()
            == Some(next_ca.cert_pem.as_str())
    })
    .await;

    // CertManager mode without cert-manager: refused with a reason.
    clusters
        .create(
            &pp,
            &tls_cluster(
                "cm",
                1,
                json!({"mode": "CertManager", "issuerRef": {"name": "corp"}}),
            ),
        )
        .await
        .unwrap();
    wait_for("Degraded: CertManagerMissing", || async {
        degraded(&clusters, "cm")
            .await
            .is_some_and(|(s, reason, _)| s == "True" && reason == "CertManagerMissing")
    })
    .await;

    // With cert-manager's Certificate CRD served (its schema here, no
    // cert-manager running): the Certificate is made, and the Secret it
    // would write is followed.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let certificate_crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "certificates.cert-manager.io"},
        "spec": {
            "group": "cert-manager.io",
            "names": {"kind": "Certificate", "plural": "certificates", "singular": "certificate", "listKind": "CertificateList"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    }))
    .unwrap();
    let installed_here = match crds.create(&pp, &certificate_crd).await {
        Ok(_) => true,
        Err(kube::Error::Api(e)) if e.code == 409 => false,
        Err(e) => panic!("{e}"),
    };
    let certificates: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns.name,
        &iggy_operator::resources::tls::certificate_resource(),
    );
    wait_for("the Certificate CRD served", || async {
        certificates.list(&ListParams::default()).await.is_ok()
    })
    .await;
    // A fresh operator (its discovery answers are cached).
    controller.abort();
    let controller = start(skew.clone());
    poke(&clusters, "cm", "1").await;
    wait_for("the brokers' Certificate", || async {
        certificates.get_opt("cm-brokers").await.unwrap().is_some()
    })
    .await;
    let certificate = certificates.get("cm-brokers").await.unwrap();
    let spec = &certificate.data["spec"];
    assert_eq!(spec["secretName"], "cm-broker-tls");
    assert_eq!(spec["issuerRef"]["name"], "corp");
    assert!(
        spec["dnsNames"]
            .as_array()
            .unwrap()
            .contains(&json!(format!(
                "cm-0.cm-headless.{}.svc.cluster.local",
                ns.name
            )))
    );
    assert!(
        spec["usages"]
            .as_array()
            .unwrap()
            .contains(&json!("client auth"))
    );
    // cert-manager's part, done by hand: the Secret with tls.crt and ca.crt.
    let issued: Secret = serde_json::from_value(json!({
        "metadata": {"name": "cm-broker-tls"},
        "stringData": {"tls.crt": &leaf.cert_pem, "tls.key": &leaf.key_pem, "ca.crt": &user_ca.cert_pem}
    }))
    .unwrap();
    secrets.create(&pp, &issued).await.unwrap();
    wait_for("cert-manager's CA published", || async {
        config_text(&maps, "cm-ca-bundle", "ca.crt")
            .await
            .as_deref()
            == Some(user_ca.cert_pem.as_str())
    })
    .await;
    // A forced renewal asks cert-manager to re-issue: Issuing=True on the
    // Certificate (what `cmctl renew` does), once per annotation value.
    let issuing = || async {
        let certificate = certificates.get("cm-brokers").await.unwrap();
        certificate.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Issuing")
            .cloned()
    };
    assert_eq!(issuing().await, None);
    clusters
        .patch(
            "cm",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"iggy.rs/renew-certificates": "1"}}}),
            ),
        )
        .await
        .unwrap();
    wait_for("Issuing=True on request", || async {
        issuing()
            .await
            .is_some_and(|c| c["status"] == "True" && c["reason"] == "ManuallyTriggered")
    })
    .await;
    wait_for("the request remembered", || async {
        certificates
            .get("cm-brokers")
            .await
            .unwrap()
            .annotations()
            .get("iggy.rs/renewed-for")
            .map(String::as_str)
            == Some("1")
    })
    .await;

    controller.abort();
    ns.delete().await;
    if installed_here {
        let _ = crds
            .delete("certificates.cert-manager.io", &DeleteParams::default())
            .await;
    }
}
