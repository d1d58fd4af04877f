//! Users, passwords and personal access tokens, driven with the official
//! `iggy` client against the real broker binary.

mod common;

use common::*;
use iggy::prelude::*;
use std::time::Duration;

fn code(result: Result<impl std::fmt::Debug, IggyError>) -> u32 {
    result.expect_err("the request should fail").as_code()
}

fn reader_of_stream(stream_id: usize) -> Permissions {
    Permissions {
        global: GlobalPermissions::default(),
        streams: Some(
            [(
                stream_id,
                StreamPermissions {
                    read_stream: true,
                    ..Default::default()
                },
            )]
            .into(),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_created_read_updated_and_deleted() {
    let broker = TestBroker::start();
    let root = broker.client().await;

    let created = root
        .create_user(
            "alice",
            "alice-pass",
            UserStatus::Active,
            Some(reader_of_stream(0)),
        )
        .await
        .unwrap();
    assert_eq!(created.username, "alice");
    assert_eq!(created.status, UserStatus::Active);
    assert_eq!(created.permissions, Some(reader_of_stream(0)));

    let alice_id = Identifier::numeric(created.id).unwrap();
    let read = root.get_user(&alice_id).await.unwrap().unwrap();
    assert_eq!(read.permissions, Some(reader_of_stream(0)));
    let by_name = root.get_user(&id("alice")).await.unwrap().unwrap();
    assert_eq!(by_name.id, created.id);
    assert!(root.get_user(&id("nobody")).await.unwrap().is_none());

    let names: Vec<String> = root
        .get_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["iggy", "alice"]);

    // Same name again.
    let again = root
        .create_user("alice", "other-pass", UserStatus::Active, None)
        .await;
    assert_eq!(code(again), IggyError::UserAlreadyExists.as_code());

    // Alice logs in, reads her own user and changes nothing else.
    let alice = broker.client_as("alice", "alice-pass").await;
    let me = alice.get_user(&alice_id).await.unwrap().unwrap();
    assert_eq!(me.username, "alice");

    // Rename and drop permissions.
    root.update_user(
        &alice_id,
        Some("alice2"),
        None,
        &UserUpdateOptions::default(),
    )
    .await
    .unwrap();
    root.update_permissions(&alice_id, None).await.unwrap();
    let read = root.get_user(&alice_id).await.unwrap().unwrap();
    assert_eq!(read.username, "alice2");
    assert_eq!(read.permissions, None);

    // Deactivated users cannot log in.
    root.update_user(
        &alice_id,
        None,
        Some(UserStatus::Inactive),
        &UserUpdateOptions::default(),
    )
    .await
    .unwrap();
    let login = broker.anonymous_client().await;
    assert_eq!(
        code(login.login_user("alice2", "alice-pass").await),
        IggyError::UserInactive.as_code()
    );

    root.delete_user(&alice_id).await.unwrap();
    assert!(root.get_user(&alice_id).await.unwrap().is_none());
    let login = broker.anonymous_client().await;
    assert_eq!(
        code(login.login_user("alice2", "alice-pass").await),
        IggyError::InvalidCredentials.as_code()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_user_cannot_be_deleted_deactivated_or_restricted() {
    let broker = TestBroker::start();
    let root = broker.client().await;
    let root_id = Identifier::numeric(0).unwrap();

    assert_eq!(
        code(root.delete_user(&root_id).await),
        IggyError::CannotDeleteUser(0).as_code()
    );
    assert_eq!(
        code(root.update_permissions(&root_id, None).await),
        IggyError::CannotChangePermissions(0).as_code()
    );
    let deactivate = root
        .update_user(
            &root_id,
            None,
            Some(UserStatus::Inactive),
            &UserUpdateOptions::default(),
        )
        .await;
    assert_eq!(code(deactivate), IggyError::InvalidUserStatus.as_code());
    // Root still works.
    broker.client_as("iggy", "iggy").await.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_change_only_with_the_current_one() {
    let broker = TestBroker::start();
    let root = broker.client().await;
    root.create_user("bob", "bob-pass", UserStatus::Active, None)
        .await
        .unwrap();
    root.create_user("carol", "carol-pass", UserStatus::Active, None)
        .await
        .unwrap();

    // Bob needs no permission to change his own password, but must know it.
    let bob = broker.client_as("bob", "bob-pass").await;
    assert_eq!(
        code(bob.change_password(&id("bob"), "wrong", "bob-new").await),
        IggyError::InvalidCredentials.as_code()
    );
    bob.change_password(&id("bob"), "bob-pass", "bob-new")
        .await
        .unwrap();
    // Changing someone else's password needs manage_users.
    assert_eq!(
        code(
            bob.change_password(&id("carol"), "carol-pass", "hacked")
                .await
        ),
        IggyError::Unauthorized.as_code()
    );

    let login = broker.anonymous_client().await;
    assert_eq!(
        code(login.login_user("bob", "bob-pass").await),
        IggyError::InvalidCredentials.as_code()
    );
    login.login_user("bob", "bob-new").await.unwrap();
    broker.client_as("carol", "carol-pass").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_access_tokens_log_in_expire_and_are_stored_hashed() {
    let broker = TestBroker::start();
    let root = broker.client().await;
    root.create_user("dave", "dave-pass", UserStatus::Active, None)
        .await
        .unwrap();
    let dave = broker.client_as("dave", "dave-pass").await;

    let forever = dave
        .create_personal_access_token("ci-token", PersonalAccessTokenExpiry::NeverExpire)
        .await
        .unwrap()
        .token;
    let short = dave
        .create_personal_access_token(
            "short",
            PersonalAccessTokenExpiry::ExpireDuration(IggyDuration::new(Duration::from_secs(1))),
        )
        .await
        .unwrap()
        .token;
    assert_ne!(forever, short);
    let again = dave
        .create_personal_access_token("ci-token", PersonalAccessTokenExpiry::NeverExpire)
        .await;
    assert_eq!(
        code(again),
        IggyError::PersonalAccessTokenAlreadyExists(String::new(), 0).as_code()
    );

    let listed = dave.get_personal_access_tokens().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].name, "ci-token");
    assert!(listed[0].expiry_at.is_none());
    assert_eq!(listed[1].name, "short");
    assert!(listed[1].expiry_at.is_some());
    // Tokens belong to their user: root sees none of Dave's.
    assert!(root.get_personal_access_tokens().await.unwrap().is_empty());

    // Log in with the token: the session is Dave's.
    let with_token = broker.anonymous_client().await;
    let identity = with_token
        .login_with_personal_access_token(&forever)
        .await
        .unwrap();
    let dave_id = root.get_user(&id("dave")).await.unwrap().unwrap().id;
    assert_eq!(identity.user_id, dave_id);
    with_token.ping().await.unwrap();

    // A wrong token and an expired one are refused.
    let login = broker.anonymous_client().await;
    assert_eq!(
        code(login.login_with_personal_access_token("not-a-token").await),
        IggyError::InvalidPersonalAccessToken.as_code()
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let login = broker.anonymous_client().await;
    assert_eq!(
        code(login.login_with_personal_access_token(&short).await),
        IggyError::PersonalAccessTokenExpired(String::new(), 0).as_code()
    );

    // The raw token is nowhere on disk (only its hash is stored), and
    // tokens survive a crash.
    let on_disk = read_all_files(&broker.data_dir());
    assert!(
        !on_disk
            .windows(forever.len())
            .any(|w| w == forever.as_bytes())
    );
    let mut broker = broker;
    broker.restart();
    let with_token = broker.anonymous_client().await;
    with_token
        .login_with_personal_access_token(&forever)
        .await
        .unwrap();

    // Deleted tokens no longer log in.
    let dave = broker.client_as("dave", "dave-pass").await;
    dave.delete_personal_access_token("ci-token").await.unwrap();
    let login = broker.anonymous_client().await;
    assert_eq!(
        code(login.login_with_personal_access_token(&forever).await),
        IggyError::InvalidPersonalAccessToken.as_code()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_permissions_survive_kill_9() {
    let mut broker = TestBroker::start();
    let root = broker.client().await;
    root.create_user(
        "erin",
        "erin-pass",
        UserStatus::Active,
        Some(reader_of_stream(3)),
    )
    .await
    .unwrap();
    root.change_password(&id("iggy"), "iggy", "root-new")
        .await
        .unwrap();
    drop(root);
    broker.restart();

    let erin = broker.client_as("erin", "erin-pass").await;
    let me = erin.get_user(&id("erin")).await.unwrap().unwrap();
    assert_eq!(me.permissions, Some(reader_of_stream(3)));
    broker.client_as("iggy", "root-new").await;
}

fn read_all_files(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(read_all_files(&path));
        } else {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_removed_by_housekeeping() {
    let broker = TestBroker::start_with(&[("IGGY_RETENTION_INTERVAL", "300ms")]);
    let root = broker.client().await;
    root.create_personal_access_token(
        "brief",
        PersonalAccessTokenExpiry::ExpireDuration(IggyDuration::new(Duration::from_millis(500))),
    )
    .await
    .unwrap();
    root.create_personal_access_token("lasting", PersonalAccessTokenExpiry::NeverExpire)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let names: Vec<String> = root
            .get_personal_access_tokens()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        // Listing hides an expired token at once; housekeeping deletes it
        // on its next round.
        let deleted = broker
            .log()
            .contains("deleted expired personal access tokens");
        if names == ["lasting"] && deleted {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still listed: {names:?}, deleted by housekeeping: {deleted}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
