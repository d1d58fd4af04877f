//! The `iggy-operator` binary: `run` (the default) starts the controllers
//! behind leader election plus the metrics/health server; `crdgen` prints
//! the CRDs.

use clap::{Parser, Subcommand};
use iggy_operator::controller::{self, Context};
use iggy_operator::{crd, leader, metrics::Metrics, web};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Parser)]
#[command(
    name = "iggy-operator",
    version,
    about = "Kubernetes operator for Iggy clusters"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator (default).
    Run(RunArgs),
    /// Write the CustomResourceDefinitions as YAML: one file per CRD into
    /// `--out DIR`, or all of them to standard output.
    Crdgen {
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// GET an `http://` URL and exit 0 on a 2xx answer (containing
    /// `--expect` when given). Used by the chart's `helm test` pod, since
    /// the image has no shell or curl.
    Probe {
        url: String,
        #[arg(long)]
        expect: Option<String>,
        #[arg(long, default_value = "10")]
        timeout_seconds: u64,
    },
}

#[derive(Parser, Default)]
struct RunArgs {
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, env = "IGGY_OPERATOR_LISTEN", default_value = "0.0.0.0:8080")]
    listen: String,
    /// Namespace of the leader-election Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    namespace: String,
    /// Identity in the Lease (the pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Reconcile without leader election (single replica, development).
    #[arg(long)]
    no_leader_election: bool,
    /// Log as JSON.
    #[arg(long, env = "IGGY_OPERATOR_LOG_JSON")]
    log_json: bool,
    /// Do not install or upgrade the CRDs at start (they are managed
    /// elsewhere, or the operator may not write CRDs); only check them.
    #[arg(long, env = "IGGY_OPERATOR_NO_CRD_INSTALL")]
    no_crd_install: bool,
    /// Watch only these namespaces (comma-separated); all when empty. The
    /// chart gives the operator a Role in each instead of a ClusterRole.
    #[arg(long, env = "IGGY_OPERATOR_WATCH_NAMESPACES", value_delimiter = ',')]
    watch_namespaces: Vec<String>,
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_json);
    let client = kube::Client::try_default().await?;
    if !args.no_crd_install {
        iggy_operator::crd::install::ensure_crds(&client, iggy_operator::MANAGER).await?;
    }
    let scope = controller::Scope::from_namespaces(args.watch_namespaces.clone());
    tracing::info!(?scope, "watching");
    controller::check_crds(&client, &scope).await?;
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("iggy-operator-{}", std::process::id()));
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(true));
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let server = axum::serve(
        listener,
        web::router(web::WebState {
            metrics: metrics.clone(),
            ready: ready.clone(),
        }),
    )
    .with_graceful_shutdown(shutdown_signal());
    let server = tokio::spawn(async move { server.await });

    let ctx = Arc::new(Context::new(client.clone(), metrics.clone(), &identity));
    if args.no_leader_election {
        let _leading = metrics.leading();
        controller::run(ctx, scope).await;
    } else {
        leader::run_as_leader(
            client,
            &args.namespace,
            &identity,
            move || {
                let (ctx, scope) = (ctx.clone(), scope.clone());
                async move {
                    let _leading = ctx.metrics.leading();
                    controller::run(ctx, scope).await
                }
            },
            shutdown_signal(),
        )
        .await?;
    }
    ready.store(false, Ordering::Relaxed);
    server.abort();
    tracing::info!("operator stopped");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // kube's TLS uses rustls with ring; when the workspace is built together
    // (the images are), feature unification also enables aws-lc-rs and
    // rustls can no longer pick a provider by itself.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    match args.command {
        Some(Command::Crdgen { out }) => {
            for (file, yaml) in crd::crd_files() {
                match &out {
                    Some(dir) => std::fs::write(dir.join(&file), yaml)?,
                    None => print!("---\n{yaml}"),
                }
            }
            Ok(())
        }
        Some(Command::Run(run_args)) => run(run_args).await,
        Some(Command::Probe {
            url,
            expect,
            timeout_seconds,
        }) => {
            let timeout = std::time::Duration::from_secs(timeout_seconds);
            let body = tokio::time::timeout(timeout, iggy_operator::probe::get(&url))
                .await
                .map_err(|_| anyhow::anyhow!("GET {url}: no answer within {timeout:?}"))??;
            if let Some(text) = expect
                && !body.contains(&text)
            {
                anyhow::bail!("GET {url}: the answer does not contain {text:?}");
            }
            println!("GET {url}: ok");
            Ok(())
        }
        None => run(RunArgs::parse_from(["iggy-operator"])).await,
    }
}
