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

/// Whole records in `bytes` at or after the first one whose index is in
/// `indexes` (a damaged file's tail, searched byte by byte): how many there
/// are in a row from there, and their first and last index. `None` when
/// there are none — the tail is torn, not damaged in the middle.
pub fn intact_after(
    bytes: &[u8],
    indexes: std::ops::RangeInclusive<u64>,
) -> Option<(usize, u64, u64)> {
    let start = (1..bytes.len()).find(|&at| {
        bytes[at..]
            .get(4..12)
            .map(|i| u64::from_le_bytes(i.try_into().expect("8 bytes")))
            .is_some_and(|index| indexes.contains(&index))
            && decode(&bytes[at..]).is_some()
    })?;
    let (mut count, mut at) = (0, start);
    let (mut first, mut last) = (None, 0);
    while let Some((index, _, size)) = decode(&bytes[at..]) {
        first.get_or_insert(index);
        last = index;
        count += 1;
        at += size;
    }
    Some((count, first?, last))
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

    #[test]
    fn intact_records_after_damage_are_found_and_a_torn_tail_has_none() {
        let mut file = Vec::new();
        let mut ends = Vec::new();
        for index in 1..=5 {
            encode(index, format!("entry {index}").as_bytes(), &mut file);
            ends.push(file.len());
        }
        // Record 2 damaged: 3, 4 and 5 follow intact.
        let mut damaged = file.clone();
        damaged[ends[0] + RECORD_HEADER_BYTES + 1] ^= 0xff;
        let tail = &damaged[ends[0]..];
        assert!(decode(tail).is_none());
        assert_eq!(intact_after(tail, 2..=100), Some((3, 3, 5)));
        // Cut in the middle of record 5: nothing whole after it.
        let torn = &file[ends[3]..file.len() - 2];
        assert_eq!(intact_after(torn, 5..=100), None);
    }
}
