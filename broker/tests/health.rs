//! The HTTP health endpoints that Kubernetes probes.

mod common;

use common::TestBroker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(address: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn ping_healthz_and_readyz_answer() {
    let broker = TestBroker::start();
    let http = broker
        .http_address
        .expect("the HTTP listener is on by default");
    let ping = get(http, "/ping").await;
    assert!(
        ping.starts_with("HTTP/1.0 200") && ping.ends_with("pong"),
        "{ping}"
    );
    assert!(get(http, "/healthz").await.starts_with("HTTP/1.0 200"));
    let ready = get(http, "/readyz").await;
    assert!(
        ready.starts_with("HTTP/1.0 200") && ready.ends_with("ready"),
        "{ready}"
    );
    assert!(get(http, "/nope").await.starts_with("HTTP/1.0 404"));
}
