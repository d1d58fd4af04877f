//! The `iggy-broker` binary: parse flags, load configuration, set up logging,
//! and run the server (which creates the root user on first start) until
//! SIGINT or SIGTERM.

use clap::Parser;
use iggy_broker::broker::Broker;
use iggy_broker::config::Config;
use iggy_broker::server::RootUser;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "iggy-broker",
    version,
    about = "An Iggy-compatible message-streaming broker"
)]
struct Args {
    /// TOML configuration file (also `IGGY_CONFIG_PATH`).
    #[arg(long, env = "IGGY_CONFIG_PATH")]
    config: Option<PathBuf>,
    /// Delete the data directory before starting.
    #[arg(long)]
    fresh: bool,
    /// On first start, create the root user as iggy/iggy (development only).
    #[arg(long)]
    with_default_root_credentials: bool,
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // openraft narrates every election at info; its warnings suffice.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Root credentials for the first start: both variables, or neither.
fn root_credentials(default_credentials: bool) -> anyhow::Result<(String, String, bool)> {
    let username = std::env::var("IGGY_ROOT_USERNAME").ok();
    let password = std::env::var("IGGY_ROOT_PASSWORD").ok();
    match (username, password) {
        (Some(u), Some(p)) => Ok((u, p, false)),
        (None, None) if default_credentials => Ok(("iggy".into(), "iggy".into(), false)),
        (None, None) => Ok(("iggy".into(), iggy_broker::auth::random_password(), true)),
        _ => anyhow::bail!(
            "invalid configuration: IGGY_ROOT_USERNAME and IGGY_ROOT_PASSWORD must be set together"
        ),
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

fn main() -> anyhow::Result<()> {
    iggy_broker::memory::tune_allocator();
    let args = Args::parse();
    let config = match Config::load(args.config.as_deref(), std::env::vars()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    init_logging(&config.system.log_format);
    if args.fresh && config.system.path.exists() {
        tracing::warn!("--fresh: deleting {}", config.system.path.display());
        std::fs::remove_dir_all(&config.system.path)?;
    }
    let (username, password, generated) = root_credentials(args.with_default_root_credentials)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let broker = Arc::new(Broker::open(config).await?);
        let root = RootUser {
            username,
            password,
            generated,
        };
        iggy_broker::server::run(broker, root, shutdown_signal()).await
    })
}
