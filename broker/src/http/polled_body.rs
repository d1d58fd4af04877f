//! The REST API's PollMessages reply, written as the official crate's
//! `serde` would write it, without its costs.
//!
//! `serde_json` checks every character of a string for escaping, and a
//! payload is a string of base64 — a megabyte of poll spent 40 % of the
//! broker's time in that check and 16 % in the crate's base64 encoding
//! (docs/benchmarks.md, twelfth sitting). Base64 needs no escaping, so the
//! payloads are encoded straight into the reply; everything else goes
//! through `serde_json` as before, and the bytes are the same (tested
//! against the crate's own serialization below).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use iggy_common::{HeaderEntry, IggyMessage, PolledMessages};
use std::io::Write as _;

/// `polled` as JSON, byte for byte what `serde_json::to_vec(polled)` gives.
pub fn to_json(polled: &PolledMessages) -> serde_json::Result<Vec<u8>> {
    let payload_bytes: usize = polled.messages.iter().map(|m| m.payload.len()).sum();
    let mut out = Vec::with_capacity(payload_bytes / 3 * 4 + polled.messages.len() * 256 + 128);
    write!(
        out,
        r#"{{"partition_id":{},"current_offset":{},"count":{},"messages":["#,
        polled.partition_id, polled.current_offset, polled.count
    )
    .map_err(serde_json::Error::io)?;
    for (index, message) in polled.messages.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_message(message, &mut out)?;
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// One message as `IggyMessage`'s `Serialize` writes it.
fn write_message(message: &IggyMessage, out: &mut Vec<u8>) -> serde_json::Result<()> {
    out.extend_from_slice(br#"{"header":"#);
    serde_json::to_writer(&mut *out, &message.header)?;
    out.extend_from_slice(br#","payload":"#);
    write_base64(&message.payload, out);
    out.extend_from_slice(br#","user_headers":"#);
    match &message.user_headers {
        None => out.extend_from_slice(b"[]"),
        Some(raw) => match message.user_headers_map() {
            Ok(Some(map)) => {
                let entries: Vec<HeaderEntry> = map
                    .into_iter()
                    .map(|(key, value)| HeaderEntry { key, value })
                    .collect();
                serde_json::to_writer(&mut *out, &entries)?;
            }
            // Not header entries (e.g. encrypted by the client): as sent.
            _ => write_base64(raw, out),
        },
    }
    out.push(b'}');
    Ok(())
}

/// `bytes` as a JSON string of base64 (whose alphabet needs no escaping).
fn write_base64(bytes: &[u8], out: &mut Vec<u8>) {
    let encoded = base64::encoded_len(bytes.len(), true).expect("a payload's base64 fits memory");
    out.push(b'"');
    let start = out.len();
    out.resize(start + encoded, 0);
    let written = BASE64
        .encode_slice(bytes, &mut out[start..])
        .expect("the slice is sized for the encoding");
    debug_assert_eq!(written, encoded);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_common::{HeaderKey, HeaderValue, IggyMessageHeader};
    use std::collections::BTreeMap;

    fn message(id: u128, payload: &[u8], user_headers: Option<Vec<u8>>) -> IggyMessage {
        IggyMessage {
            header: IggyMessageHeader {
                checksum: 0xdead_beef_0123_4567,
                id,
                offset: 41,
                timestamp: 1_700_000_000_000_000,
                origin_timestamp: 1_700_000_000_000_123,
                user_headers_length: user_headers.as_ref().map_or(0, |h| h.len() as u32),
                payload_length: payload.len() as u32,
                reserved: 0,
            },
            payload: payload.to_vec().into(),
            user_headers: user_headers.map(Into::into),
        }
    }

    #[test]
    fn the_same_bytes_as_the_official_crates_serialization() {
        let entries = BTreeMap::from([
            (HeaderKey::try_from("n").unwrap(), HeaderValue::from(7u64)),
            (
                HeaderKey::try_from("text").unwrap(),
                HeaderValue::try_from("a \"quoted\" value\n").unwrap(),
            ),
        ]);
        let encoded_entries = iggy_common::wire_conversions::user_headers_to_wire(&entries)
            .as_bytes()
            .to_vec();
        for messages in [
            vec![],
            vec![message(1, b"a", None)],
            vec![
                message(u128::from(u64::MAX) + 7, &[0, 255, 10, 34, 92], None),
                message(2, &vec![b'x'; 3001], Some(encoded_entries)),
                // Not header entries: written as base64.
                message(3, b"b", Some(vec![1, 2, 3])),
                message(4, b"cd", Some(vec![])),
            ],
        ] {
            let polled = PolledMessages {
                partition_id: 3,
                current_offset: u64::MAX,
                count: messages.len() as u32,
                messages,
            };
            assert_eq!(
                String::from_utf8(to_json(&polled).unwrap()).unwrap(),
                serde_json::to_string(&polled).unwrap()
            );
        }
    }
}
