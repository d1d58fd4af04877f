//! The REST API's SendMessages body, turned into the binary protocol's.
//!
//! Upstream's JSON (what the official SDK's HTTP client sends):
//! `{"partitioning": {..}, "messages": [{"id": 7, "payload": "<base64>",
//! "user_headers": [{"key": .., "value": ..}] | "<base64>" | null}]}`.
//! The official crate's deserializer builds a `serde_json::Value`, a
//! decoded `Vec` and a message for every entry, then a batch, which the
//! REST path had to take apart again before encoding the binary request —
//! six copies of every payload and several allocations per message, the
//! allocator's churn of a few megabytes per request on top. Here the
//! payloads are borrowed from the request's bytes, decoded into one
//! buffer, and encoded once as the binary SendMessages body, which then
//! runs through the same command as every transport's sends.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::BytesMut;
use iggy_binary_protocol::requests::messages::send_messages::{RawMessage, SendMessagesEncoder};
use iggy_common::wire_conversions::{
    identifier_to_wire, partitioning_to_wire, user_headers_to_wire,
};
use iggy_common::{HeaderEntry, Identifier, IggyError, IggyTimestamp, Partitioning};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

/// A SendMessages body, borrowing its payloads from the request's bytes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBody<'a> {
    partitioning: Partitioning,
    #[serde(borrow)]
    messages: Vec<JsonMessage<'a>>,
}

#[derive(Deserialize)]
struct JsonMessage<'a> {
    /// A number, or a string holding a decimal number or a UUID; none is 0.
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    /// Base64; borrowed unless the JSON escapes a character in it.
    #[serde(borrow)]
    payload: Cow<'a, str>,
    /// Header entries, or base64 of the encoded headers as they are to be
    /// stored (e.g. encrypted by the client), or null.
    #[serde(default, borrow)]
    user_headers: Option<&'a RawValue>,
}

/// Why a body was refused, answered as axum's `Json` extractor answers.
#[derive(Debug)]
pub enum BodyError {
    /// Not `application/json` (415).
    ContentType,
    /// Not JSON (400).
    Syntax(String),
    /// JSON, but not a SendMessages body (422).
    Data(String),
    /// Its binary form is larger than `limits.max_request_size` (413).
    TooLarge { size: usize, max: usize },
    /// Refused by the protocol's rules (the API's error body).
    Iggy(IggyError),
}

/// The largest JSON body a REST send may have, for binary requests of up
/// to `max_request_bytes`: base64 takes 4 bytes for 3 and each message
/// adds its JSON keys, while the binary form adds 64 header and 16 index
/// bytes per message, so a body as clients write it (no padding) whose
/// binary form fits is under twice the limit. The binary form is then
/// held to the limit itself.
pub fn json_limit(max_request_bytes: usize) -> usize {
    max_request_bytes.saturating_mul(2)
}

impl From<IggyError> for BodyError {
    fn from(e: IggyError) -> Self {
        BodyError::Iggy(e)
    }
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        match self {
            BodyError::ContentType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expected request with `Content-Type: application/json`",
            )
                .into_response(),
            BodyError::Syntax(e) => (
                StatusCode::BAD_REQUEST,
                format!("Failed to parse the request body as JSON: {e}"),
            )
                .into_response(),
            BodyError::Data(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("Failed to deserialize the JSON body into the target type: {e}"),
            )
                .into_response(),
            BodyError::TooLarge { size, max } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "The messages take {size} bytes in the binary protocol, more than \
                     limits.max_request_size ({max} bytes)"
                ),
            )
                .into_response(),
            BodyError::Iggy(e) => super::api::ApiError::from(e).into_response(),
        }
    }
}

impl<'a> SendBody<'a> {
    /// Parse a request's body, checking its content type first as axum's
    /// `Json` extractor does.
    pub fn from_request(headers: &HeaderMap, json: &'a [u8]) -> Result<Self, BodyError> {
        if !is_json(headers) {
            return Err(BodyError::ContentType);
        }
        Self::parse(json)
    }

    pub fn parse(json: &'a [u8]) -> Result<Self, BodyError> {
        serde_json::from_slice(json).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => BodyError::Data(e.to_string()),
            _ => BodyError::Syntax(e.to_string()),
        })
    }

    /// Encode as the binary protocol's SendMessages body for `stream` and
    /// `topic`, into `out`. Every message gets the time of the call as its
    /// origin timestamp (the JSON carries none).
    pub fn encode(
        &self,
        stream: &Identifier,
        topic: &Identifier,
        out: &mut BytesMut,
    ) -> Result<(), BodyError> {
        if self.messages.is_empty() {
            return Err(IggyError::InvalidMessagesCount.into());
        }
        // Every payload and header block decoded into one buffer, then the
        // messages point into it: no allocation per message.
        let estimate: usize = self
            .messages
            .iter()
            .map(|m| m.payload.len() / 4 * 3 + 3)
            .sum();
        let mut decoded = Vec::with_capacity(estimate);
        let mut ranges: Vec<(u128, Range<usize>, Range<usize>)> =
            Vec::with_capacity(self.messages.len());
        for message in &self.messages {
            let id = message.id.map_or(Ok(0), parse_id)?;
            let start = decoded.len();
            BASE64
                .decode_vec(message.payload.as_bytes(), &mut decoded)
                .map_err(|_| BodyError::Data("Invalid base64 payload".into()))?;
            let payload = start..decoded.len();
            if let Some(headers) = message.user_headers {
                decode_headers(headers, &mut decoded)?;
            }
            ranges.push((id, payload.clone(), payload.end..decoded.len()));
        }
        let origin_timestamp = IggyTimestamp::now().as_micros();
        let messages: Vec<RawMessage<'_>> = ranges
            .into_iter()
            .map(|(id, payload, headers)| RawMessage {
                id,
                origin_timestamp,
                headers: (!headers.is_empty()).then(|| &decoded[headers]),
                payload: &decoded[payload],
            })
            .collect();
        let (stream, topic) = (identifier_to_wire(stream)?, identifier_to_wire(topic)?);
        let partitioning = partitioning_to_wire(&self.partitioning)?;
        out.reserve(SendMessagesEncoder::encoded_size(
            &stream,
            &topic,
            &partitioning,
            &messages,
        ));
        SendMessagesEncoder::encode(out, &stream, &topic, &partitioning, &messages)
            .map_err(|e| BodyError::Data(e.to_string()))
    }
}

/// `application/json` or `application/<something>+json`, parameters aside.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

/// A message id as the official crate reads it — a JSON number, or a string
/// with a decimal number or 32 hex digits (dashes allowed, as in a UUID) —
/// except that numbers above `u64::MAX` keep their exact value.
fn parse_id(raw: &RawValue) -> Result<u128, BodyError> {
    let invalid = |reason: String| BodyError::Data(format!("Invalid message ID: {reason}"));
    let text = raw.get();
    if !text.starts_with('"') {
        return text
            .parse::<u128>()
            .map_err(|_| invalid("ID must be a positive integer".into()));
    }
    let id: Cow<'_, str> = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    if let Ok(id) = id.parse::<u128>() {
        return Ok(id);
    }
    let hex = id.replace('-', "");
    if hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return u128::from_str_radix(&hex, 16).map_err(|e| invalid(e.to_string()));
    }
    Err(invalid(format!(
        "Invalid ID string: '{id}' - must be a decimal number or UUID hex format"
    )))
}

/// Append a message's user headers, encoded as stored, to `decoded`.
fn decode_headers(raw: &RawValue, decoded: &mut Vec<u8>) -> Result<(), BodyError> {
    let text = raw.get();
    if text.starts_with('"') {
        // Stored as given, like a binary client's: they may be encrypted.
        let encoded: Cow<'_, str> =
            serde_json::from_str(text).map_err(|e| BodyError::Data(e.to_string()))?;
        return BASE64
            .decode_vec(encoded.as_bytes(), decoded)
            .map_err(|e| BodyError::Data(format!("Invalid base64 headers: {e}")));
    }
    let entries: Vec<HeaderEntry> = serde_json::from_str(text)
        .map_err(|e| BodyError::Data(format!("Invalid headers format: {e}")))?;
    let map: BTreeMap<_, _> = entries.into_iter().map(|e| (e.key, e.value)).collect();
    decoded.extend_from_slice(user_headers_to_wire(&map).as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::split_send_body;
    use crate::storage::batch;
    use iggy_binary_protocol::batch::{BatchIntegrity, decode_batch_slice};
    use iggy_common::send_messages::SendMessages;
    use iggy_common::{HeaderKey, HeaderValue, IggyMessage, IggyMessagesBatch};

    /// (id, payload, user headers) of every message of an encoded send,
    /// after the broker's own checks with checksums verified.
    fn sent(body: &str) -> Vec<(u128, Vec<u8>, Vec<u8>)> {
        let stream = Identifier::named("s").unwrap();
        let mut out = BytesMut::new();
        SendBody::parse(body.as_bytes())
            .unwrap()
            .encode(&stream, &stream, &mut out)
            .unwrap();
        let (header, record) = split_send_body(&mut out).unwrap();
        batch::validate_incoming(record, header.messages_count, BatchIntegrity::Verify).unwrap();
        decode_batch_slice(record)
            .unwrap()
            .iter()
            .map(|m| (m.header.id, m.payload.to_vec(), m.user_headers.to_vec()))
            .collect()
    }

    fn refused(body: &str) -> BodyError {
        let stream = Identifier::numeric(1).unwrap();
        match SendBody::parse(body.as_bytes()) {
            Ok(parsed) => parsed
                .encode(&stream, &stream, &mut BytesMut::new())
                .unwrap_err(),
            Err(e) => e,
        }
    }

    /// What the official SDK's HTTP client sends arrives unchanged: ids,
    /// payloads, header entries. (Its serializer panics on ids above
    /// `u64::MAX`; those are tested below as JSON.)
    #[test]
    fn the_sdks_bodies_arrive_as_sent() {
        let headers =
            BTreeMap::from([(HeaderKey::try_from("n").unwrap(), HeaderValue::from(7u64))]);
        let messages = vec![
            IggyMessage::builder()
                .id(1)
                .payload("a".into())
                .build()
                .unwrap(),
            IggyMessage::builder()
                .id(u128::from(u64::MAX))
                .payload(vec![9u8; 3000].into())
                .user_headers(headers.clone())
                .build()
                .unwrap(),
            IggyMessage::builder().payload("c".into()).build().unwrap(),
        ];
        let body = SendMessages {
            metadata_length: 0,
            stream_id: Identifier::default(),
            topic_id: Identifier::default(),
            partitioning: Partitioning::partition_id(3),
            batch: IggyMessagesBatch::from(&messages),
        };
        let json = serde_json::to_string(&body).unwrap();
        let encoded_headers = user_headers_to_wire(&headers).as_bytes().to_vec();
        assert_eq!(
            sent(&json),
            [
                (1, b"a".to_vec(), vec![]),
                (u128::from(u64::MAX), vec![9u8; 3000], encoded_headers),
                (0, b"c".to_vec(), vec![]),
            ]
        );
    }

    #[test]
    fn ids_are_read_as_the_official_crate_reads_them() {
        let body = |id: &str| {
            format!(
                r#"{{"partitioning":{{"kind":"balanced","value":""}},"messages":[{{"id":{id},"payload":"YQ=="}}]}}"#
            )
        };
        for (id, expected) in [
            ("42", 42),
            // Exact past u64::MAX (the crate reads numbers as u64 only).
            ("18446744073709551616", 1 << 64),
            ("\"42\"", 42),
            (
                "\"af362865-042c-4000-0000-000000000000\"",
                0xaf362865042c40000000000000000000,
            ),
            (
                "\"af362865042c40000000000000000000\"",
                0xaf362865042c40000000000000000000,
            ),
            ("null", 0),
        ] {
            assert_eq!(sent(&body(id))[0].0, expected, "{id}");
        }
        for id in ["-1", "1.5", "\"nope\"", "true"] {
            assert!(matches!(refused(&body(id)), BodyError::Data(_)), "{id}");
        }
    }

    /// Base64 headers are kept as the client encoded them (they may be
    /// encrypted), not dropped when they are not header entries.
    #[test]
    fn raw_headers_are_stored_as_given() {
        let body = r#"{"partitioning":{"kind":"balanced","value":""},
            "messages":[{"payload":"YQ==","user_headers":"AQID"}]}"#;
        assert_eq!(sent(body)[0].2, [1, 2, 3]);
    }

    #[test]
    fn bad_bodies_get_clear_errors() {
        let messages = r#""messages":[{"payload":"YQ=="}]"#;
        let balanced = r#""partitioning":{"kind":"balanced","value":""}"#;
        assert!(matches!(refused("{"), BodyError::Syntax(_)));
        assert!(matches!(
            refused(&format!("{{{balanced},{messages},\"extra\":1}}")),
            BodyError::Data(_)
        ));
        assert!(matches!(
            refused(&format!("{{{messages}}}")),
            BodyError::Data(_)
        ));
        assert!(matches!(
            refused(&format!(
                r#"{{{balanced},"messages":[{{"payload":"%%"}}]}}"#
            )),
            BodyError::Data(_)
        ));
        assert!(matches!(
            refused(&format!(
                r#"{{{balanced},"messages":[{{"payload":"YQ==","user_headers":5}}]}}"#
            )),
            BodyError::Data(_)
        ));
        assert!(matches!(
            refused(&format!(r#"{{{balanced},"messages":[]}}"#)),
            BodyError::Iggy(IggyError::InvalidMessagesCount)
        ));
    }

    #[test]
    fn content_types_as_axum_accepts_them() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            is_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/vnd.api+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
