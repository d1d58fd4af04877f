//! REST API authentication with the official SDK's HTTP client: access
//! tokens expire, refreshing and logging out revoke the old token, personal
//! access tokens log in, and permissions apply as on every transport.

mod common;

use common::*;
use iggy::http::http_client::HttpClient;
use iggy::prelude::*;
use std::time::Duration;

fn http_client(broker: &TestBroker) -> HttpClient {
    HttpClient::new(&format!("http://{}", broker.http_address.unwrap())).unwrap()
}

/// The status line of a GET with `token`.
async fn status_with(broker: &TestBroker, path: &str, token: &str) -> String {
    let response = http_get_with(
        broker.http_address.unwrap(),
        path,
        &format!("Authorization: Bearer {token}\r\n"),
    )
    .await;
    response.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_and_revoked() {
    let broker = TestBroker::start();
    let client = http_client(&broker);
    let identity = client.login_user("iggy", "iggy").await.unwrap();
    let first = identity.access_token.unwrap();
    assert!(first.expiry > 0);
    assert!(
        status_with(&broker, "/streams", &first.token)
            .await
            .contains("200")
    );

    // Refreshing issues a new token and revokes the presented one.
    let refreshed = client.refresh_access_token().await.unwrap();
    let second = refreshed.access_token.unwrap().token;
    assert_ne!(second, first.token);
    assert!(
        status_with(&broker, "/streams", &first.token)
            .await
            .contains("401")
    );
    client.create_stream("s").await.unwrap();

    // Logging out revokes the current token.
    client.logout_user().await.unwrap();
    assert!(
        status_with(&broker, "/streams", &second)
            .await
            .contains("401")
    );
    assert!(
        status_with(&broker, "/streams", "garbage")
            .await
            .contains("401")
    );

    // A wrong password is refused.
    let err = http_client(&broker)
        .login_user("iggy", "wrong")
        .await
        .unwrap_err();
    assert_eq!(err.as_code(), IggyError::Unauthenticated.as_code());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire() {
    let broker = TestBroker::start_with(&[("IGGY_HTTP_JWT_EXPIRY", "1s")]);
    let client = http_client(&broker);
    client.login_user("iggy", "iggy").await.unwrap();
    client.get_streams().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let err = client.get_streams().await.unwrap_err();
    assert_eq!(err.as_code(), IggyError::Unauthenticated.as_code());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_access_tokens_and_permissions_over_http() {
    let broker = TestBroker::start();
    let root = http_client(&broker);
    root.login_user("iggy", "iggy").await.unwrap();
    root.create_stream("s").await.unwrap();
    let readers = Permissions {
        global: GlobalPermissions {
            read_streams: true,
            ..Default::default()
        },
        streams: None,
    };
    root.create_user("reader", "reader-pass", UserStatus::Active, Some(readers))
        .await
        .unwrap();
    assert_eq!(root.get_users().await.unwrap().len(), 2);

    let reader = http_client(&broker);
    reader.login_user("reader", "reader-pass").await.unwrap();
    let token = reader
        .create_personal_access_token("http-token", PersonalAccessTokenExpiry::NeverExpire)
        .await
        .unwrap()
        .token;

    let with_token = http_client(&broker);
    let identity = with_token
        .login_with_personal_access_token(&token)
        .await
        .unwrap();
    assert!(identity.access_token.is_some());
    assert_eq!(with_token.get_streams().await.unwrap().len(), 1);
    // Reading is granted, creating is not: 403, which the SDK reports as
    // Unauthorized.
    let err = with_token.create_stream("t").await.unwrap_err();
    assert_eq!(err.as_code(), IggyError::Unauthorized.as_code());

    // A deleted user's access token stops working at once.
    root.delete_user(&id("reader")).await.unwrap();
    let err = with_token.get_streams().await.unwrap_err();
    assert_eq!(err.as_code(), IggyError::Unauthenticated.as_code());
}

/// A REST send's body goes straight into the binary request: refused
/// bodies get a clear status and store nothing, raw base64 headers are kept
/// as sent, and a good body is read back as sent over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_bodies_over_http() {
    let broker = TestBroker::start();
    let tcp = broker.client().await;
    create_stream_and_topic(&tcp, "s", "t", 1).await;
    let address = broker.http_address.unwrap();
    let token = http_login(address, "iggy", "iggy").await;
    let path = "/streams/s/topics/t/messages";
    let status = |response: String| response.lines().next().unwrap_or_default().to_string();
    let partition_0 = r#""partitioning":{"kind":"partition_id","value":"AAAAAA=="}"#;
    for (body, expected) in [
        ("{".to_string(), "400"),
        (
            format!(r#"{{{partition_0},"messages":[{{"payload":"%%"}}]}}"#),
            "422",
        ),
        (
            format!(r#"{{{partition_0},"messages":[{{"id":"x","payload":"YQ=="}}]}}"#),
            "422",
        ),
        (format!(r#"{{{partition_0},"messages":[]}}"#), "400"),
        // Empty payload: refused by the send's own checks.
        (
            format!(r#"{{{partition_0},"messages":[{{"payload":""}}]}}"#),
            "400",
        ),
    ] {
        let answer = status(http_json(address, "POST", path, Some(&token), &body).await);
        assert!(answer.contains(expected), "{body}: {answer}");
    }
    let good = format!(
        r#"{{{partition_0},"messages":[{{"id":"42","payload":"aGVsbG8=","user_headers":"AQID"}},{{"payload":"YQ=="}}]}}"#
    );
    let answer = status(http_json(address, "POST", path, Some(&token), &good).await);
    assert!(answer.contains("201"), "{answer}");

    let polled = tcp
        .poll_messages(
            &id("s"),
            &id("t"),
            Some(0),
            &Consumer::new(Identifier::numeric(1).unwrap()),
            &PollingStrategy::offset(0),
            10,
            false,
        )
        .await
        .unwrap();
    assert_eq!(polled.messages.len(), 2, "only the good body was stored");
    assert_eq!(polled.messages[0].header.id, 42);
    assert_eq!(&polled.messages[0].payload[..], b"hello");
    assert_eq!(
        polled.messages[0].user_headers.as_deref(),
        Some(&[1u8, 2, 3][..])
    );
    assert_eq!(&polled.messages[1].payload[..], b"a");
}

/// A REST send is held to `limits.max_request_size` by its binary form, as
/// a binary frame is, not by the HTTP library's 2 MB default for bodies: a
/// body of 2.7 MB whose messages fit is stored, one whose messages do not
/// is refused with 413 and a reason, stores nothing, and the broker goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_bodies_are_limited_by_the_request_size() {
    let broker = TestBroker::start_with(&[("IGGY_LIMITS_MAX_REQUEST_SIZE", "4 MiB")]);
    let tcp = broker.client().await;
    create_stream_and_topic(&tcp, "s", "t", 1).await;
    let address = broker.http_address.unwrap();
    let token = http_login(address, "iggy", "iggy").await;
    let path = "/streams/s/topics/t/messages";
    // 1000 bytes of payload: 1336 characters of base64.
    let payload = "QUJD".repeat(333) + "QQ==";
    let body = |count: usize| {
        let messages = vec![format!(r#"{{"payload":"{payload}"}}"#); count].join(",");
        format!(
            r#"{{"partitioning":{{"kind":"partition_id","value":"AAAAAA=="}},"messages":[{messages}]}}"#
        )
    };

    let fits = body(2000);
    assert!(fits.len() > 2 << 20, "{} bytes", fits.len());
    let answer = http_json(address, "POST", path, Some(&token), &fits).await;
    let status = answer.lines().next().unwrap_or_default();
    assert!(status.contains(" 201 "), "{answer}");

    let too_many = body(4500);
    let answer = http_json(address, "POST", path, Some(&token), &too_many).await;
    let status = answer.lines().next().unwrap_or_default();
    assert!(status.contains(" 413 "), "{answer}");
    assert!(answer.contains("limits.max_request_size"), "{answer}");

    let stored = poll_all(&tcp, "s", "t", 0).await;
    assert_eq!(stored.len(), 2000, "the refused body stored nothing");
}
