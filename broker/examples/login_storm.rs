//! A login storm, measured: `ATTACKERS` clients (the official SDK, default
//! settings) keep logging in as `USER` with a wrong password while a client
//! logged in before pings without pause and, every 2 s, a new client logs in
//! with the right password. Prints the refused logins per second, the
//! ping latencies and the right logins' times.
//!
//!   cargo run --release --example login_storm -- ADDRESS USER PASSWORD [ATTACKERS [SECONDS]]
//!
//! e.g. `login_storm 127.0.0.1:8090 iggy iggy 64 20` (docs/benchmarks.md).

use hdrhistogram::Histogram;
use iggy::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

async fn connected(address: &str) -> anyhow::Result<IggyClient> {
    let client = IggyClient::builder()
        .with_tcp()
        .with_server_address(address.to_string())
        .build()?;
    client.connect().await?;
    Ok(client)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [address, user, password, ..] = args.as_slice() else {
        anyhow::bail!("usage: login_storm ADDRESS USER PASSWORD [ATTACKERS [SECONDS]]");
    };
    let attackers: usize = args.get(3).map_or(Ok(64), |a| a.parse())?;
    let seconds: u64 = args.get(4).map_or(Ok(20), |a| a.parse())?;

    let pinger = connected(address).await?;
    pinger.login_user(user, password).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let mut storm = Vec::new();
    for _ in 0..attackers {
        let (address, user, stop, refused) =
            (address.clone(), user.clone(), stop.clone(), refused.clone());
        storm.push(tokio::spawn(async move {
            let mut client = None;
            while !stop.load(Ordering::Relaxed) {
                if client.is_none() {
                    client = connected(&address).await.ok();
                }
                let Some(c) = &client else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                match c.login_user(&user, "not-the-password").await {
                    Err(IggyError::Disconnected) | Err(IggyError::NotConnected) => client = None,
                    Err(_) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => panic!("a wrong password was accepted"),
                }
            }
        }));
    }

    let right_logins = {
        let (address, user, password, stop) = (
            address.clone(),
            user.clone(),
            password.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut times = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let started = Instant::now();
                let outcome = async {
                    let client = connected(&address).await?;
                    client.login_user(&user, &password).await?;
                    anyhow::Ok(())
                }
                .await;
                times.push((started.elapsed(), outcome.is_ok()));
            }
            times
        })
    };

    let mut pings = Histogram::<u64>::new(3)?;
    let started = Instant::now();
    let mut failed_pings = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        let at = Instant::now();
        match pinger.ping().await {
            Ok(()) => pings.record(at.elapsed().as_micros() as u64)?,
            Err(_) => failed_pings += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let right = right_logins.await?;
    for attacker in storm {
        attacker.abort();
    }

    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "{attackers} clients with a wrong password: {:.0} refused logins/s over {elapsed:.1} s",
        refused.load(Ordering::Relaxed) as f64 / elapsed
    );
    println!(
        "logged-in client: {} pings ({failed_pings} failed), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pings.len(),
        ms(pings.value_at_quantile(0.5)),
        ms(pings.value_at_quantile(0.99)),
        ms(pings.max())
    );
    let ok = right.iter().filter(|(_, ok)| *ok).count();
    let slowest = right.iter().map(|(t, _)| *t).max().unwrap_or_default();
    println!(
        "right logins from new clients: {ok} of {} succeeded, slowest {:.0} ms",
        right.len(),
        slowest.as_secs_f64() * 1000.0
    );
    Ok(())
}
