//! Topic option keys this broker adds to upstream's catalog.
//!
//! `replication_factor`: how many brokers hold each partition of the topic.
//! The 0.11 SDK sends keys a server adds to its catalog through
//! `TopicCreateOptions.raw` (as a string); typed unsigned integers are
//! accepted too. Upstream's parser refuses keys it does not know, so ours
//! are taken out of the block before it runs; the stored block (echoed by
//! GetTopic) keeps them.

use crate::error::{Error, Result};
use bytes::BytesMut;
use iggy_binary_protocol::WireOptions;
use iggy_binary_protocol::primitives::user_headers::{WireUserHeaderEntry, encode_user_headers};

pub const REPLICATION_FACTOR: &str = "replication_factor";

/// Option kinds (the user-header kind codes upstream uses).
const KIND_STRING: u8 = 2;
const KIND_UINT8: u8 = 9;
const KIND_UINT64: u8 = 12;

/// The keys this broker adds to the topic catalog.
pub const EXTRA_TOPIC_OPTION_KEYS: &[&str] = &[REPLICATION_FACTOR];

/// Our own options of a topic block, and the rest for upstream's parser.
#[derive(Debug, PartialEq, Eq)]
pub struct Split {
    pub replication_factor: Option<u8>,
    pub upstream: WireOptions,
}

pub fn split(options: &WireOptions) -> Result<Split> {
    let mut replication_factor = None;
    let mut rest: Vec<(u8, &[u8], u8, &[u8])> = Vec::new();
    for entry in options {
        if entry.key == REPLICATION_FACTOR.as_bytes() {
            replication_factor = Some(factor(&entry)?);
        } else {
            rest.push((entry.key_kind.0, entry.key, entry.value_kind.0, entry.value));
        }
    }
    let upstream = if replication_factor.is_none() {
        options.clone()
    } else {
        let mut block = BytesMut::new();
        encode_user_headers(&rest, &mut block);
        WireOptions::from_validated(block.freeze())
    };
    Ok(Split {
        replication_factor,
        upstream,
    })
}

fn factor(entry: &WireUserHeaderEntry<'_>) -> Result<u8> {
    let invalid = || Error::InvalidOptionValue(REPLICATION_FACTOR.to_string());
    let value: u64 = match entry.value_kind.0 {
        KIND_STRING => std::str::from_utf8(entry.value)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or_else(invalid)?,
        KIND_UINT8..=KIND_UINT64 if entry.value.len() <= 8 => {
            let mut bytes = [0u8; 8];
            bytes[..entry.value.len()].copy_from_slice(entry.value);
            u64::from_le_bytes(bytes)
        }
        _ => return Err(invalid()),
    };
    u8::try_from(value)
        .ok()
        .filter(|f| *f > 0)
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_common::TopicCreateOptions;

    fn block(raw: &[(&str, &str)]) -> WireOptions {
        TopicCreateOptions {
            raw: raw
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
        .to_explicit_wire(|_| false)
        .unwrap()
    }

    #[test]
    fn the_factor_is_taken_out_and_the_rest_parses_upstream() {
        let split = split(&block(&[
            ("replication_factor", "3"),
            ("segment_size", "2 MB"),
        ]))
        .unwrap();
        assert_eq!(split.replication_factor, Some(3));
        let parsed = TopicCreateOptions::parse(&split.upstream).unwrap();
        assert!(parsed.segment_size.is_some());
        assert_eq!(split.upstream.iter().count(), 1);
    }

    #[test]
    fn without_the_key_the_block_is_unchanged_and_bad_values_are_refused() {
        let plain = block(&[("segment_size", "2 MB")]);
        assert_eq!(split(&plain).unwrap().upstream, plain);
        for bad in ["0", "three", "300", "-1"] {
            assert!(
                matches!(
                    split(&block(&[("replication_factor", bad)])),
                    Err(Error::InvalidOptionValue(_))
                ),
                "{bad}"
            );
        }
    }
}
