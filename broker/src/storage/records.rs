//! A file of checksummed records, appended in order: the framing of the
//! metadata log.
//!
//! Record layout: `[payload_len u32][index u64][xxh3 u64 of payload][payload]`
//! (little-endian). Reading stops at the first record that is incomplete or
//! fails its checksum: a torn tail left by a crash mid-append, which was
//! never acknowledged and is cut off.

use twox_hash::XxHash3_64;

pub const RECORD_HEADER_BYTES: usize = 20;
/// A record larger than this can only be garbage (metadata entries are
/// small).
const MAX_RECORD_BYTES: usize = 64 << 20;

/// Append one record to `out`.
pub fn encode(index: u64, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&XxHash3_64::oneshot(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The record at the start of `bytes`: `(index, payload, record size)`, or
/// `None` when it is incomplete or corrupt.
pub fn decode(bytes: &[u8]) -> Option<(u64, &[u8], usize)> {
    let header = bytes.get(..RECORD_HEADER_BYTES)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    if len > MAX_RECORD_BYTES {
        return None;
    }
    let index = u64::from_le_bytes(header[4..12].try_into().ok()?);
    let checksum = u64::from_le_bytes(header[12..20].try_into().ok()?);
    let payload = bytes.get(RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len)?;
    (XxHash3_64::oneshot(payload) == checksum).then_some((
        index,
        payload,
        RECORD_HEADER_BYTES + len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_torn_or_corrupt_one_ends_the_file() {
        let mut file = Vec::new();
        encode(1, b"a", &mut file);
        encode(2, b"bb", &mut file);
        let (index, payload, size) = decode(&file).unwrap();
        assert_eq!((index, payload), (1, &b"a"[..]));
        let (index, payload, _) = decode(&file[size..]).unwrap();
        assert_eq!((index, payload), (2, &b"bb"[..]));
        assert!(decode(&file[size..file.len() - 1]).is_none());
        let mut corrupt = file.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert!(decode(&corrupt[size..]).is_none());
    }
}
