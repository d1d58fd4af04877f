//! The one list of commands this broker serves: for each, its code, what
//! kind of work it is (which decides where it runs in a cluster), and how
//! the legacy 0.10 framing carries it. The 0.11 dispatcher, the legacy
//! adapter and the frame decoder all go through [`Command::from_code`].

use iggy_binary_protocol::codes::*;

/// Where and how a command is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Ping, login, logout: the connection itself.
    Session,
    /// Reads the replicated metadata; on a follower it first catches up
    /// with the leader's read index, so it sees every committed change.
    Read,
    /// Changes the replicated metadata (through the metadata leader).
    Write,
    /// Reads or writes one partition's data: served by the broker that
    /// leads the partition (forwarded there when that is another one).
    Partition,
    /// Answered from this broker's own state (its clients, its stats, the
    /// roster as it sees it, cluster routing).
    Local,
}

/// How a 0.10 (legacy framing) client's request of this command is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legacy {
    /// The 0.10 body and reply are the 0.11 ones.
    Same,
    /// Translated by `command::legacy`.
    Adapted,
    /// Not part of the 0.10 protocol.
    Unsupported,
}

macro_rules! commands {
    ($( $variant:ident = $code:ident, $kind:ident, $legacy:ident; )*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Command { $($variant),* }

        impl Command {
            pub fn from_code(code: u32) -> Option<Self> {
                match code {
                    $( $code => Some(Command::$variant), )*
                    _ => None,
                }
            }

            pub fn code(self) -> u32 {
                match self { $( Command::$variant => $code, )* }
            }

            pub fn kind(self) -> Kind {
                match self { $( Command::$variant => Kind::$kind, )* }
            }

            pub fn legacy(self) -> Legacy {
                match self { $( Command::$variant => Legacy::$legacy, )* }
            }

            pub const ALL: &'static [Command] = &[$(Command::$variant),*];
        }
    };
}

commands! {
    Ping = PING_CODE, Session, Same;
    LoginRegister = LOGIN_REGISTER_CODE, Session, Unsupported;
    LoginRegisterWithPat = LOGIN_REGISTER_WITH_PAT_CODE, Session, Unsupported;
    LoginUser = LOGIN_USER_CODE, Session, Adapted;
    LoginWithPat = LOGIN_WITH_PERSONAL_ACCESS_TOKEN_CODE, Session, Adapted;
    Logout = LOGOUT_USER_CODE, Session, Same;

    GetStats = GET_STATS_CODE, Local, Same;
    GetClusterMetadata = GET_CLUSTER_METADATA_CODE, Local, Same;
    GetMe = GET_ME_CODE, Local, Same;
    GetClient = GET_CLIENT_CODE, Local, Same;
    GetClients = GET_CLIENTS_CODE, Local, Same;
    DescribeOptions = DESCRIBE_OPTIONS_CODE, Local, Same;

    GetStream = GET_STREAM_CODE, Read, Adapted;
    GetStreams = GET_STREAMS_CODE, Read, Adapted;
    CreateStream = CREATE_STREAM_CODE, Write, Adapted;
    UpdateStream = UPDATE_STREAM_CODE, Write, Same;
    DeleteStream = DELETE_STREAM_CODE, Write, Same;
    PurgeStream = PURGE_STREAM_CODE, Write, Same;

    GetTopic = GET_TOPIC_CODE, Read, Adapted;
    GetTopics = GET_TOPICS_CODE, Read, Adapted;
    CreateTopic = CREATE_TOPIC_CODE, Write, Adapted;
    UpdateTopic = UPDATE_TOPIC_CODE, Write, Adapted;
    DeleteTopic = DELETE_TOPIC_CODE, Write, Same;
    PurgeTopic = PURGE_TOPIC_CODE, Write, Same;

    CreatePartitions = CREATE_PARTITIONS_CODE, Write, Same;
    DeletePartitions = DELETE_PARTITIONS_CODE, Write, Same;
    DeleteSegments = DELETE_SEGMENTS_CODE, Partition, Same;

    GetUser = GET_USER_CODE, Read, Adapted;
    GetUsers = GET_USERS_CODE, Read, Adapted;
    CreateUser = CREATE_USER_CODE, Write, Adapted;
    UpdateUser = UPDATE_USER_CODE, Write, Same;
    DeleteUser = DELETE_USER_CODE, Write, Same;
    UpdatePermissions = UPDATE_PERMISSIONS_CODE, Write, Same;
    ChangePassword = CHANGE_PASSWORD_CODE, Write, Same;

    GetPersonalAccessTokens = GET_PERSONAL_ACCESS_TOKENS_CODE, Read, Same;
    CreatePersonalAccessToken = CREATE_PERSONAL_ACCESS_TOKEN_CODE, Write, Same;
    DeletePersonalAccessToken = DELETE_PERSONAL_ACCESS_TOKEN_CODE, Write, Same;

    SendMessages = SEND_MESSAGES_CODE, Partition, Adapted;
    PollMessages = POLL_MESSAGES_CODE, Partition, Adapted;
    FlushUnsavedBuffer = FLUSH_UNSAVED_BUFFER_CODE, Local, Adapted;

    GetConsumerOffset = GET_CONSUMER_OFFSET_CODE, Partition, Same;
    StoreConsumerOffset = STORE_CONSUMER_OFFSET_CODE, Partition, Adapted;
    DeleteConsumerOffset = DELETE_CONSUMER_OFFSET_CODE, Partition, Adapted;

    GetConsumerGroup = GET_CONSUMER_GROUP_CODE, Read, Same;
    GetConsumerGroups = GET_CONSUMER_GROUPS_CODE, Read, Same;
    CreateConsumerGroup = CREATE_CONSUMER_GROUP_CODE, Write, Same;
    DeleteConsumerGroup = DELETE_CONSUMER_GROUP_CODE, Write, Same;
    JoinConsumerGroup = JOIN_CONSUMER_GROUP_CODE, Write, Same;
    LeaveConsumerGroup = LEAVE_CONSUMER_GROUP_CODE, Write, Same;
    SyncConsumerGroup = SYNC_CONSUMER_GROUP_CODE, Read, Unsupported;

    // What the 0.11 SDK sends once the roster has more than one broker.
    GetPollRouting = GET_POLL_ROUTING_CODE, Local, Unsupported;
    PollMessagesOnPrimary = POLL_MESSAGES_ON_PRIMARY_CODE, Partition, Unsupported;
    AttachConsumerSession = ATTACH_CONSUMER_SESSION_CODE, Local, Unsupported;
    GetConsumerOffsetRouting = GET_CONSUMER_OFFSET_ROUTING_CODE, Local, Unsupported;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_round_trips_through_its_code_and_upstream_knows_it() {
        for command in Command::ALL {
            assert_eq!(Command::from_code(command.code()), Some(*command));
            assert!(
                iggy_binary_protocol::lookup_command(command.code()).is_some(),
                "{command:?} is not an upstream command code"
            );
        }
        assert_eq!(Command::from_code(9999), None);
    }
}
