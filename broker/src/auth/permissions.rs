//! Permissions: what a user may do, at three levels — global, per stream,
//! per topic — and the rules that decide each command.
//!
//! The rules are the inheritance documented on the SDK's permission types
//! (`iggy_common::Permissions`), which is what users write their grants
//! against:
//!
//! - `manage_X` includes `read_X` at the same level;
//! - managing streams includes managing their topics; reading streams
//!   includes reading their topics; managing topics includes reading them;
//! - reading topics includes polling their messages;
//! - a stream grant covers every topic of the stream, a topic grant only
//!   that topic, and grants at any level add up;
//! - sending needs `send_messages`, or managing the stream or topic (as
//!   upstream's server decides);
//! - consumer-group commands need read access to the topic; consumer-offset
//!   commands need poll access.
//!
//! Every grant upstream's server gives is given here too; where upstream's
//! code is narrower than its documentation (global `read_topics` does not
//! let you poll there), we follow the documentation.
//!
//! The root user (id 0) is never checked. A user without permissions can
//! only do what needs none: ping, log in and out, GetMe, cluster metadata,
//! their own user, password and personal access tokens.

use iggy_binary_protocol::primitives::permissions::{
    WireGlobalPermissions, WirePermissions, WireStreamPermissions, WireTopicPermissions,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The root user's id: created first, holds every right, cannot be deleted.
pub const ROOT_USER_ID: u32 = 0;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Permissions {
    pub global: GlobalPermissions,
    pub streams: BTreeMap<u32, StreamPermissions>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GlobalPermissions {
    pub manage_servers: bool,
    pub read_servers: bool,
    pub manage_users: bool,
    pub read_users: bool,
    pub manage_streams: bool,
    pub read_streams: bool,
    pub manage_topics: bool,
    pub read_topics: bool,
    pub poll_messages: bool,
    pub send_messages: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamPermissions {
    pub manage_stream: bool,
    pub read_stream: bool,
    pub manage_topics: bool,
    pub read_topics: bool,
    pub poll_messages: bool,
    pub send_messages: bool,
    pub topics: BTreeMap<u32, TopicPermissions>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicPermissions {
    pub manage_topic: bool,
    pub read_topic: bool,
    pub poll_messages: bool,
    pub send_messages: bool,
}

/// One permission question, named after what the command does. Ids are
/// resolved numeric ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// GetStats, GetClients, GetClient; the cluster admin API's reads.
    ReadServers,
    /// The cluster admin API's changes (reassign, move leadership, drain).
    ManageServers,
    /// GetUser, GetUsers.
    ReadUsers,
    /// CreateUser, DeleteUser, UpdateUser, UpdatePermissions, ChangePassword
    /// of another user.
    ManageUsers,
    /// GetStreams.
    ListStreams,
    /// GetStream.
    ReadStream(u32),
    /// CreateStream.
    CreateStream,
    /// UpdateStream, DeleteStream, PurgeStream.
    ManageStream(u32),
    /// GetTopics.
    ListTopics(u32),
    /// GetTopic and every consumer-group command.
    ReadTopic(u32, u32),
    /// CreateTopic.
    CreateTopic(u32),
    /// UpdateTopic, DeleteTopic, PurgeTopic, Create/DeletePartitions,
    /// DeleteSegments.
    ManageTopic(u32, u32),
    /// PollMessages and the consumer-offset commands.
    PollMessages(u32, u32),
    /// SendMessages.
    SendMessages(u32, u32),
}

/// What one level of grants amounts to once inheritance is applied.
#[derive(Debug, Clone, Copy, Default)]
struct Effective {
    manage: bool,
    read: bool,
    manage_topics: bool,
    read_topics: bool,
    poll: bool,
    send: bool,
}

impl GlobalPermissions {
    fn effective(&self) -> Effective {
        let manage_topics = self.manage_streams || self.manage_topics;
        let read = self.manage_streams || self.read_streams;
        let read_topics = read || manage_topics || self.read_topics;
        Effective {
            manage: self.manage_streams,
            read,
            manage_topics,
            read_topics,
            poll: read_topics || self.poll_messages,
            send: self.send_messages,
        }
    }
}

impl StreamPermissions {
    fn effective(&self) -> Effective {
        let manage_topics = self.manage_stream || self.manage_topics;
        let read = self.manage_stream || self.read_stream;
        let read_topics = read || manage_topics || self.read_topics;
        Effective {
            manage: self.manage_stream,
            read,
            manage_topics,
            read_topics,
            poll: read_topics || self.poll_messages,
            send: self.send_messages || manage_topics,
        }
    }
}

impl TopicPermissions {
    fn effective(&self) -> Effective {
        let read = self.manage_topic || self.read_topic;
        Effective {
            manage: self.manage_topic,
            read,
            manage_topics: self.manage_topic,
            read_topics: read,
            poll: read || self.poll_messages,
            send: self.send_messages || self.manage_topic,
        }
    }
}

impl Permissions {
    /// Whether these permissions allow `action`.
    pub fn allows(&self, action: Action) -> bool {
        let raw = &self.global;
        let global = raw.effective();
        let stream = |s: u32| {
            self.streams
                .get(&s)
                .map(StreamPermissions::effective)
                .unwrap_or_default()
        };
        let topic = |s: u32, t: u32| {
            self.streams
                .get(&s)
                .and_then(|sp| sp.topics.get(&t))
                .map(TopicPermissions::effective)
                .unwrap_or_default()
        };
        // Any level granting `pick` for topic t of stream s.
        let on_topic = |s: u32, t: u32, pick: fn(&Effective) -> bool| {
            pick(&global) || pick(&stream(s)) || pick(&topic(s, t))
        };
        match action {
            Action::ReadServers => raw.manage_servers || raw.read_servers,
            Action::ManageServers => raw.manage_servers,
            Action::ReadUsers => raw.manage_users || raw.read_users,
            Action::ManageUsers => raw.manage_users,
            Action::ListStreams => global.read,
            Action::CreateStream => global.manage,
            Action::ReadStream(s) => global.read || stream(s).read,
            Action::ManageStream(s) => global.manage || stream(s).manage,
            Action::ListTopics(s) => global.read_topics || stream(s).read_topics,
            Action::CreateTopic(s) => global.manage_topics || stream(s).manage_topics,
            Action::ReadTopic(s, t) => on_topic(s, t, |e| e.read_topics),
            Action::ManageTopic(s, t) => on_topic(s, t, |e| e.manage_topics),
            Action::PollMessages(s, t) => on_topic(s, t, |e| e.poll),
            Action::SendMessages(s, t) => on_topic(s, t, |e| e.send),
        }
    }
}

// ---- wire conversion ----
//
// The stored and wire types have the same flags; only the shape of the
// stream/topic collections differs (maps here, id-tagged lists on the wire).

/// Build `$ty` from `$src`, copying the listed flags and setting the rest.
macro_rules! with_flags {
    ($ty:ident from $src:ident { $($flag:ident),* } $($field:ident: $value:expr),* $(,)?) => {
        $ty { $($flag: $src.$flag,)* $($field: $value,)* }
    };
}

impl From<&WirePermissions> for Permissions {
    fn from(w: &WirePermissions) -> Self {
        let g = &w.global;
        let stream = |s: &WireStreamPermissions| {
            let topics = s.topics.iter().map(|t| {
                let perms = with_flags!(TopicPermissions from t {
                    manage_topic, read_topic, poll_messages, send_messages
                });
                (t.topic_id, perms)
            });
            with_flags!(StreamPermissions from s {
                manage_stream, read_stream, manage_topics, read_topics, poll_messages, send_messages
            } topics: topics.collect())
        };
        Permissions {
            global: with_flags!(GlobalPermissions from g {
                manage_servers, read_servers, manage_users, read_users, manage_streams,
                read_streams, manage_topics, read_topics, poll_messages, send_messages
            }),
            streams: w.streams.iter().map(|s| (s.stream_id, stream(s))).collect(),
        }
    }
}

impl From<&Permissions> for WirePermissions {
    fn from(p: &Permissions) -> Self {
        let g = &p.global;
        let stream = |(&stream_id, s): (&u32, &StreamPermissions)| {
            let topics = s.topics.iter().map(|(&topic_id, t)| {
                with_flags!(WireTopicPermissions from t {
                    manage_topic, read_topic, poll_messages, send_messages
                } topic_id: topic_id)
            });
            with_flags!(WireStreamPermissions from s {
                manage_stream, read_stream, manage_topics, read_topics, poll_messages, send_messages
            } stream_id: stream_id, topics: topics.collect())
        };
        WirePermissions {
            global: with_flags!(WireGlobalPermissions from g {
                manage_servers, read_servers, manage_users, read_users, manage_streams,
                read_streams, manage_topics, read_topics, poll_messages, send_messages
            }),
            streams: p.streams.iter().map(stream).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_stream(s: StreamPermissions) -> Permissions {
        Permissions {
            global: GlobalPermissions::default(),
            streams: BTreeMap::from([(1, s)]),
        }
    }

    fn with_topic(t: TopicPermissions) -> Permissions {
        with_stream(StreamPermissions {
            topics: BTreeMap::from([(2, t)]),
            ..Default::default()
        })
    }

    #[test]
    fn no_permissions_allow_nothing() {
        let p = Permissions::default();
        for action in [
            Action::ReadServers,
            Action::ManageServers,
            Action::ReadUsers,
            Action::ManageUsers,
            Action::ListStreams,
            Action::ReadStream(1),
            Action::CreateStream,
            Action::ManageStream(1),
            Action::ListTopics(1),
            Action::ReadTopic(1, 2),
            Action::CreateTopic(1),
            Action::ManageTopic(1, 2),
            Action::PollMessages(1, 2),
            Action::SendMessages(1, 2),
        ] {
            assert!(!p.allows(action), "{action:?}");
        }
    }

    #[test]
    fn global_manage_streams_covers_every_stream_and_topic() {
        let p = Permissions {
            global: GlobalPermissions {
                manage_streams: true,
                ..Default::default()
            },
            streams: BTreeMap::new(),
        };
        assert!(p.allows(Action::CreateStream));
        assert!(p.allows(Action::ManageStream(7)));
        assert!(p.allows(Action::ManageTopic(7, 9)));
        assert!(p.allows(Action::ReadTopic(7, 9)));
        assert!(p.allows(Action::PollMessages(7, 9)));
        // Sending has its own global flag.
        assert!(!p.allows(Action::SendMessages(7, 9)));
        assert!(!p.allows(Action::ManageUsers));
    }

    #[test]
    fn stream_grants_stay_inside_their_stream() {
        let p = with_stream(StreamPermissions {
            read_stream: true,
            ..Default::default()
        });
        assert!(p.allows(Action::ReadStream(1)));
        assert!(p.allows(Action::PollMessages(1, 5)));
        assert!(!p.allows(Action::ReadStream(2)));
        assert!(!p.allows(Action::PollMessages(2, 5)));
        assert!(!p.allows(Action::SendMessages(1, 5)));
        assert!(!p.allows(Action::ListStreams));

        let managing = with_stream(StreamPermissions {
            manage_stream: true,
            ..Default::default()
        });
        assert!(managing.allows(Action::ManageStream(1)));
        assert!(managing.allows(Action::SendMessages(1, 5)));
        assert!(managing.allows(Action::CreateTopic(1)));
        assert!(!managing.allows(Action::CreateStream));
        assert!(!managing.allows(Action::ManageStream(2)));
    }

    #[test]
    fn topic_grants_stay_inside_their_topic() {
        let p = with_topic(TopicPermissions {
            send_messages: true,
            ..Default::default()
        });
        assert!(p.allows(Action::SendMessages(1, 2)));
        assert!(!p.allows(Action::SendMessages(1, 3)));
        assert!(!p.allows(Action::PollMessages(1, 2)));

        let reader = with_topic(TopicPermissions {
            read_topic: true,
            ..Default::default()
        });
        assert!(reader.allows(Action::ReadTopic(1, 2)));
        assert!(reader.allows(Action::PollMessages(1, 2)));
        assert!(!reader.allows(Action::ListTopics(1)));
        assert!(!reader.allows(Action::ManageTopic(1, 2)));
    }

    #[test]
    fn wire_round_trip_keeps_every_flag() {
        let p = Permissions {
            global: GlobalPermissions {
                read_servers: true,
                poll_messages: true,
                ..Default::default()
            },
            streams: BTreeMap::from([
                (
                    1,
                    StreamPermissions {
                        manage_topics: true,
                        topics: BTreeMap::from([(
                            2,
                            TopicPermissions {
                                send_messages: true,
                                ..Default::default()
                            },
                        )]),
                        ..Default::default()
                    },
                ),
                (3, StreamPermissions::default()),
            ]),
        };
        let wire = WirePermissions::from(&p);
        assert_eq!(Permissions::from(&wire), p);
    }
}
