//! The permission matrix: every command, run with the official `iggy`
//! client by a user without permissions (refused: `Unauthorized`), by a user
//! holding exactly the grant the command needs (allowed), and by that user
//! on another stream (refused). Before login every command but ping and
//! login is `Unauthenticated`.

mod common;

use common::*;
use iggy::prelude::*;
use iggy_binary_protocol::COMMAND_TABLE;
use iggy_binary_protocol::codes::{
    LOGIN_REGISTER_CODE, LOGIN_REGISTER_WITH_PAT_CODE, LOGIN_USER_CODE,
    LOGIN_WITH_PERSONAL_ACCESS_TOKEN_CODE, LOGOUT_USER_CODE, PING_CODE,
};
use iggy_binary_protocol::consensus::{Command, HEADER_SIZE, Operation};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy)]
enum Op {
    GetStats,
    GetClients,
    GetClient,
    GetUsers,
    GetOtherUser,
    CreateUser,
    UpdateUser,
    DeleteUser,
    UpdatePermissions,
    ChangeOthersPassword,
    GetStreams,
    GetStream,
    CreateStream,
    UpdateStream,
    PurgeStream,
    DeleteStream,
    GetTopics,
    GetTopic,
    CreateTopic,
    UpdateTopic,
    PurgeTopic,
    DeleteTopic,
    CreatePartitions,
    DeletePartitions,
    DeleteSegments,
    SendMessages,
    PollMessages,
    StoreOffset,
    GetOffset,
    DeleteOffset,
    CreateGroup,
    GetGroup,
    GetGroups,
    JoinAndLeaveGroup,
    DeleteGroup,
}

const ALL: [Op; 35] = [
    Op::GetStats,
    Op::GetClients,
    Op::GetClient,
    Op::GetUsers,
    Op::GetOtherUser,
    Op::CreateUser,
    Op::UpdateUser,
    Op::DeleteUser,
    Op::UpdatePermissions,
    Op::ChangeOthersPassword,
    Op::GetStreams,
    Op::GetStream,
    Op::CreateStream,
    Op::UpdateStream,
    Op::PurgeStream,
    Op::DeleteStream,
    Op::GetTopics,
    Op::GetTopic,
    Op::CreateTopic,
    Op::UpdateTopic,
    Op::PurgeTopic,
    Op::DeleteTopic,
    Op::CreatePartitions,
    Op::DeletePartitions,
    Op::DeleteSegments,
    Op::SendMessages,
    Op::PollMessages,
    Op::StoreOffset,
    Op::GetOffset,
    Op::DeleteOffset,
    Op::CreateGroup,
    Op::GetGroup,
    Op::GetGroups,
    Op::JoinAndLeaveGroup,
    Op::DeleteGroup,
];

/// The narrowest grant that allows a command.
enum Grant {
    Global(fn(&mut GlobalPermissions)),
    Stream(fn(&mut StreamPermissions)),
    Topic(fn(&mut TopicPermissions)),
}

impl Op {
    fn grant(self) -> Grant {
        use Grant::*;
        match self {
            Op::GetStats | Op::GetClients | Op::GetClient => Global(|g| g.read_servers = true),
            Op::GetUsers | Op::GetOtherUser => Global(|g| g.read_users = true),
            Op::CreateUser
            | Op::UpdateUser
            | Op::DeleteUser
            | Op::UpdatePermissions
            | Op::ChangeOthersPassword => Global(|g| g.manage_users = true),
            Op::GetStreams => Global(|g| g.read_streams = true),
            Op::CreateStream => Global(|g| g.manage_streams = true),
            Op::GetStream => Stream(|s| s.read_stream = true),
            Op::UpdateStream | Op::PurgeStream | Op::DeleteStream => {
                Stream(|s| s.manage_stream = true)
            }
            Op::GetTopics => Stream(|s| s.read_topics = true),
            Op::CreateTopic => Stream(|s| s.manage_topics = true),
            Op::GetTopic
            | Op::CreateGroup
            | Op::GetGroup
            | Op::GetGroups
            | Op::JoinAndLeaveGroup
            | Op::DeleteGroup => Topic(|t| t.read_topic = true),
            Op::UpdateTopic
            | Op::PurgeTopic
            | Op::DeleteTopic
            | Op::CreatePartitions
            | Op::DeletePartitions
            | Op::DeleteSegments => Topic(|t| t.manage_topic = true),
            Op::SendMessages => Topic(|t| t.send_messages = true),
            Op::PollMessages | Op::StoreOffset | Op::GetOffset | Op::DeleteOffset => {
                Topic(|t| t.poll_messages = true)
            }
        }
    }
}

fn permissions(grant: &Grant, stream_id: u32) -> Permissions {
    let mut global = GlobalPermissions::default();
    let mut stream = StreamPermissions::default();
    match grant {
        Grant::Global(set) => set(&mut global),
        Grant::Stream(set) => set(&mut stream),
        Grant::Topic(set) => {
            let mut topic = TopicPermissions::default();
            set(&mut topic);
            stream.topics = Some([(0, topic)].into());
        }
    }
    let streams = match grant {
        Grant::Global(_) => None,
        _ => Some([(stream_id as usize, stream)].into()),
    };
    Permissions { global, streams }
}

/// What a command acts on: a stream with topic `t` (one partition, a few
/// messages, a stored offset, consumer group `g`) and a user.
struct Target {
    stream: String,
    user: String,
}

async fn fixture(root: &IggyClient, name: &str) -> (Target, u32) {
    let stream_id = root.create_stream(name).await.unwrap().id;
    root.create_topic(
        &id(name),
        "t",
        &TopicCreateOptions {
            partitions_count: Some(1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    send(root, name, "t", &Partitioning::partition_id(0), 1, 3).await;
    root.store_consumer_offset(&consumer(), &id(name), &id("t"), Some(0), 1)
        .await
        .unwrap();
    root.create_consumer_group(&id(name), &id("t"), "g")
        .await
        .unwrap();
    let user = format!("{name}-user");
    root.create_user(&user, "user-pass", UserStatus::Active, None)
        .await
        .unwrap();
    (
        Target {
            stream: name.to_string(),
            user,
        },
        stream_id,
    )
}

fn consumer() -> Consumer {
    Consumer::new(Identifier::numeric(1).unwrap())
}

async fn run(op: Op, c: &IggyClient, t: &Target) -> Result<(), IggyError> {
    let s = id(&t.stream);
    let topic = id("t");
    let group = id("g");
    let user = id(&t.user);
    match op {
        Op::GetStats => c.get_stats().await.map(drop),
        Op::GetClients => c.get_clients().await.map(drop),
        Op::GetClient => c.get_client(1).await.map(drop),
        Op::GetUsers => c.get_users().await.map(drop),
        Op::GetOtherUser => c.get_user(&user).await.map(drop),
        Op::CreateUser => c
            .create_user(
                &format!("{}-new", t.stream),
                "pass",
                UserStatus::Active,
                None,
            )
            .await
            .map(drop),
        Op::UpdateUser => {
            let name = format!("{}-renamed", t.user);
            c.update_user(&user, Some(&name), None, &Default::default())
                .await
        }
        Op::DeleteUser => c.delete_user(&user).await,
        Op::UpdatePermissions => c.update_permissions(&user, None).await,
        Op::ChangeOthersPassword => c.change_password(&user, "user-pass", "changed").await,
        Op::GetStreams => c.get_streams().await.map(drop),
        Op::GetStream => c.get_stream(&s).await.map(drop),
        Op::CreateStream => c
            .create_stream(&format!("{}-new", t.stream))
            .await
            .map(drop),
        Op::UpdateStream => {
            let name = format!("{}-renamed", t.stream);
            c.update_stream(&s, &name, &Default::default()).await
        }
        Op::PurgeStream => c.purge_stream(&s).await,
        Op::DeleteStream => c.delete_stream(&s).await,
        Op::GetTopics => c.get_topics(&s).await.map(drop),
        Op::GetTopic => c.get_topic(&s, &topic).await.map(drop),
        Op::CreateTopic => c
            .create_topic(&s, "new-topic", &TopicCreateOptions::default())
            .await
            .map(drop),
        Op::UpdateTopic => c.update_topic(&s, &topic, "t", &Default::default()).await,
        Op::PurgeTopic => c.purge_topic(&s, &topic).await,
        Op::DeleteTopic => c.delete_topic(&s, &topic).await,
        Op::CreatePartitions => c.create_partitions(&s, &topic, 1).await,
        Op::DeletePartitions => c.delete_partitions(&s, &topic, 1).await,
        Op::DeleteSegments => c.delete_segments(&s, &topic, 0, 1).await,
        Op::SendMessages => {
            let mut batch = messages(100, 1);
            c.send_messages(&s, &topic, &Partitioning::partition_id(0), &mut batch)
                .await
                .map(drop)
        }
        Op::PollMessages => c
            .poll_messages(
                &s,
                &topic,
                Some(0),
                &consumer(),
                &PollingStrategy::offset(0),
                10,
                false,
            )
            .await
            .map(drop),
        Op::StoreOffset => {
            c.store_consumer_offset(&consumer(), &s, &topic, Some(0), 2)
                .await
        }
        Op::GetOffset => c
            .get_consumer_offset(&consumer(), &s, &topic, Some(0))
            .await
            .map(drop),
        Op::DeleteOffset => {
            c.delete_consumer_offset(&consumer(), &s, &topic, Some(0))
                .await
        }
        Op::CreateGroup => c
            .create_consumer_group(&s, &topic, "new-group")
            .await
            .map(drop),
        Op::GetGroup => c.get_consumer_group(&s, &topic, &group).await.map(drop),
        Op::GetGroups => c.get_consumer_groups(&s, &topic).await.map(drop),
        Op::JoinAndLeaveGroup => {
            c.join_consumer_group(&s, &topic, &group).await?;
            c.leave_consumer_group(&s, &topic, &group).await
        }
        Op::DeleteGroup => c.delete_consumer_group(&s, &topic, &group).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_checks_the_users_permissions() {
    let broker = TestBroker::start();
    let root = broker.client().await;
    root.create_user("nobody", "nobody-pass", UserStatus::Active, None)
        .await
        .unwrap();
    let nobody = broker.client_as("nobody", "nobody-pass").await;
    let (other, _) = fixture(&root, "other").await;
    let unauthorized = IggyError::Unauthorized.as_code();

    let mut failures = Vec::new();
    for (i, op) in ALL.into_iter().enumerate() {
        let (target, stream_id) = fixture(&root, &format!("row{i}")).await;
        let grant = op.grant();
        let username = format!("granted{i}");
        root.create_user(
            &username,
            "granted-pass",
            UserStatus::Active,
            Some(permissions(&grant, stream_id)),
        )
        .await
        .unwrap();
        let granted = broker.client_as(&username, "granted-pass").await;

        // Refused without permissions.
        match run(op, &nobody, &target).await {
            Err(e) if e.as_code() == unauthorized => {}
            other => failures.push(format!("{op:?} without permission: {other:?}")),
        }
        // A stream- or topic-scoped grant does not reach another stream.
        if !matches!(grant, Grant::Global(_)) {
            match run(op, &granted, &other).await {
                Err(e) if e.as_code() == unauthorized => {}
                other => failures.push(format!("{op:?} on another stream: {other:?}")),
            }
        }
        // Allowed with the grant.
        if let Err(e) = run(op, &granted, &target).await {
            failures.push(format!("{op:?} with its grant: {e:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_changes_apply_to_open_sessions() {
    let broker = TestBroker::start();
    let root = broker.client().await;
    root.create_stream("s").await.unwrap();
    root.create_user("frank", "frank-pass", UserStatus::Active, None)
        .await
        .unwrap();
    let frank = broker.client_as("frank", "frank-pass").await;
    let unauthorized = IggyError::Unauthorized.as_code();
    assert_eq!(
        frank.get_streams().await.unwrap_err().as_code(),
        unauthorized
    );

    let readers = Permissions {
        global: GlobalPermissions {
            read_streams: true,
            ..Default::default()
        },
        streams: None,
    };
    root.update_permissions(&id("frank"), Some(readers))
        .await
        .unwrap();
    assert_eq!(frank.get_streams().await.unwrap().len(), 1);

    root.update_permissions(&id("frank"), None).await.unwrap();
    assert_eq!(
        frank.get_streams().await.unwrap_err().as_code(),
        unauthorized
    );
}

/// A raw request for `code` with an empty body, framed as the SDK frames
/// it. Replicated operations must name a session (the header is invalid
/// without one), so they carry one the server never issued.
fn raw_request(code: u32, operation: Option<Operation>) -> Vec<u8> {
    let mut reserved = [0u8; 60];
    let (operation, session) = match operation {
        Some(op) => (op, 7),
        None => {
            reserved[0..4].copy_from_slice(&code.to_le_bytes());
            (Operation::NonReplicated, 0)
        }
    };
    let header = iggy_binary_protocol::consensus::RequestHeader {
        command: Command::Request,
        operation,
        size: HEADER_SIZE as u32,
        client: 42,
        request: 1,
        session,
        reserved,
        ..Default::default()
    };
    bytemuck::bytes_of(&header).to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_login_every_command_but_ping_is_unauthenticated() {
    let broker = TestBroker::start();
    let mut stream = TcpStream::connect(broker.address).await.unwrap();
    let login_or_session = [
        PING_CODE,
        LOGIN_REGISTER_CODE,
        LOGIN_REGISTER_WITH_PAT_CODE,
        LOGIN_USER_CODE,
        LOGIN_WITH_PERSONAL_ACCESS_TOKEN_CODE,
        LOGOUT_USER_CODE,
    ];
    let mut checked = 0;
    for meta in COMMAND_TABLE.iter() {
        if login_or_session.contains(&meta.code) {
            continue;
        }
        stream
            .write_all(&raw_request(meta.code, meta.operation))
            .await
            .unwrap();
        let mut reply = vec![0u8; HEADER_SIZE];
        stream.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply[60], Command::Reply as u8, "{}", meta.name);
        let status = u32::from_le_bytes(reply[216..220].try_into().unwrap());
        assert_eq!(
            status,
            IggyError::Unauthenticated.as_code(),
            "{} before login",
            meta.name
        );
        checked += 1;
    }
    assert!(checked > 40, "only {checked} commands checked");
    // The connection is still usable: ping works.
    stream
        .write_all(&raw_request(PING_CODE, None))
        .await
        .unwrap();
    let mut reply = vec![0u8; HEADER_SIZE];
    stream.read_exact(&mut reply).await.unwrap();
    assert_eq!(u32::from_le_bytes(reply[216..220].try_into().unwrap()), 0);
}
