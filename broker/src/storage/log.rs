//! `PartitionLog`: the ordered, segmented log of one partition.
//!
//! The API is the one a replication layer drives (append, read, truncate,
//! trim, flush), so a later consensus layer can use this log as its own log
//! instead of writing every message twice.

use super::batch;
use super::fs::create_dir_durable;
use super::recovery::{SegmentRecovery, recover_segment};
use super::segment::{Allocation, LOG_EXTENSION, REMOVED_EXTENSION, Segment, StoredBytes};
use bytes::BytesMut;
use iggy_binary_protocol::batch::{
    BATCH_HEADER_SIZE, BatchHeader, BatchIntegrity, decode_batch_slice_with,
};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// When appended batches are fsynced — and so what an acknowledgement means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// Every batch is fsynced before it is acknowledged: an acknowledged
    /// message survives a crash of the process or the machine.
    Always,
    /// Batches are fsynced by a background task at this interval: an
    /// acknowledged message survives a process crash (it is in the page
    /// cache) but up to one interval can be lost if the machine fails —
    /// and, while a full segment is being sealed (its fsync runs in the
    /// background, about a second for 1 GiB), the end of that segment.
    Interval(#[serde(with = "duration_as_millis")] Duration),
    /// Never fsynced by the broker (the OS writes back eventually): survives
    /// a process crash, not a machine failure.
    Never,
}

mod duration_as_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// A segment is sealed and a new one started once it reaches this size.
    pub segment_size_bytes: u64,
    pub fsync: FsyncPolicy,
}

/// Where one append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: u64,
    pub count: u32,
    /// The log's generation at the append (see [`PartitionLog::generation`]):
    /// what [`SyncTarget`]s are checked against.
    pub generation: u64,
}

impl Appended {
    /// One past the last offset appended.
    pub fn end(&self) -> u64 {
        self.base_offset + u64::from(self.count)
    }
}

/// What one fsync outside the partition's lock covers: everything appended
/// before `end`, in the file of the active segment (sealed segments are
/// synced when they are sealed, see [`PartitionLog::roll`]).
#[derive(Debug, Clone)]
pub struct SyncTarget {
    pub file: std::sync::Arc<std::fs::File>,
    pub end: u64,
    pub generation: u64,
}

/// Segments taken out of a log, their files renamed aside: deleted (and
/// the deletion made durable) by [`Self::delete`], outside the partition's
/// lock. Left behind by a crash, the renamed files are removed when the
/// log is opened again.
#[must_use = "the files stay on disk until delete() is called"]
#[derive(Debug)]
pub struct RemovedSegments {
    dir: PathBuf,
    segments: usize,
    files: Vec<PathBuf>,
}

impl RemovedSegments {
    /// How many segments were removed.
    pub fn count(&self) -> usize {
        self.segments
    }

    /// Unlink the files and sync the directory. Returns the segment count.
    pub fn delete(self) -> io::Result<usize> {
        for file in &self.files {
            match std::fs::remove_file(file) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        if !self.files.is_empty() {
            super::fs::fsync_dir(&self.dir)?;
        }
        Ok(self.count())
    }
}

/// Delete the files of segments removed before a crash let them be
/// deleted (see [`RemovedSegments`]).
fn remove_renamed_aside(dir: &Path) -> io::Result<()> {
    let mut removed = false;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == REMOVED_EXTENSION) {
            std::fs::remove_file(&path)?;
            removed = true;
        }
    }
    if removed {
        super::fs::fsync_dir(dir)?;
    }
    Ok(())
}

/// What `PartitionLog::open` found on disk.
#[derive(Debug, Default)]
pub struct LogRecovery {
    pub segments: Vec<SegmentRecovery>,
    /// Segments removed because they followed a torn one, and the bytes
    /// their logs held.
    pub dropped_after_gap: (usize, u64),
}

/// Delete the segments starting at `starts` (files and index), durably;
/// returns how many and the bytes of their logs.
fn drop_segments(dir: &Path, starts: &[u64]) -> io::Result<(usize, u64)> {
    let mut bytes = 0;
    for &start in starts {
        let log = super::segment::log_path(dir, start);
        bytes += std::fs::metadata(&log).map_or(0, |m| m.len());
        for path in [log, super::segment::index_path(dir, start)] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    super::fs::fsync_dir(dir)?;
    Ok((starts.len(), bytes))
}

impl LogRecovery {
    pub fn truncated_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.truncated_bytes).sum::<u64>() + self.dropped_after_gap.1
    }
}

#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    /// Sorted by start offset; the last one is the active segment.
    segments: Vec<Segment>,
    /// Batches appended since the last fsync.
    unsynced: bool,
    /// Every message before this offset is on stable storage (as far as
    /// this log has synced; the `never` policy does not track it).
    durable_end: u64,
    /// Bumped whenever messages that were appended but not yet durable may
    /// have been removed (truncate, purge, a failed sync): a sync prepared
    /// in an earlier generation no longer says anything about them.
    generation: u64,
    /// The fsync of the segment sealed last, on a thread of its own under
    /// the `interval` and `never` policies (see [`Self::roll`]).
    sealing: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl PartitionLog {
    /// Open (recovering) or create the log in `dir`.
    pub fn open(dir: &Path, config: LogConfig) -> io::Result<(Self, LogRecovery)> {
        create_dir_durable(dir)?;
        remove_renamed_aside(dir)?;
        let mut starts: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                if path.extension()? != LOG_EXTENSION {
                    return None;
                }
                path.file_stem()?.to_str()?.parse().ok()
            })
            .collect();
        starts.sort_unstable();

        let mut recovery = LogRecovery::default();
        let mut segments: Vec<Segment> = Vec::with_capacity(starts.len().max(1));
        for (i, &start) in starts.iter().enumerate() {
            if let Some(previous) = segments.last()
                && previous.next_offset() != start
            {
                // A sealed segment torn by a power cut before its seal's
                // fsync (`roll`): what follows it would leave a gap in the
                // offsets, so it goes too.
                recovery.dropped_after_gap = drop_segments(dir, &starts[i..])?;
                break;
            }
            let recovered = recover_segment(dir, start)?;
            segments.push(Segment::from_recovered(
                dir,
                start,
                recovered.next_offset,
                recovered.valid_bytes,
                recovered.entries.clone(),
            )?);
            recovery.segments.push(recovered);
        }
        if segments.is_empty() {
            segments.push(Segment::create(dir, 0)?);
            // The new segment's name, like every later one's, must be
            // durable before anything appended to it can be.
            super::fs::fsync_dir(dir)?;
        }
        let mut log = Self {
            dir: dir.to_path_buf(),
            config,
            segments,
            unsynced: false,
            durable_end: 0,
            generation: 0,
            sealing: None,
        };
        log.durable_end = log.next_offset();
        Ok((log, recovery))
    }

    pub fn config(&self) -> LogConfig {
        self.config
    }

    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    fn active(&self) -> &Segment {
        self.segments
            .last()
            .expect("a log always has an active segment")
    }

    /// Offset the next appended message gets.
    pub fn next_offset(&self) -> u64 {
        self.active().next_offset()
    }

    /// Oldest offset still stored.
    pub fn first_offset(&self) -> u64 {
        self.segments[0].start_offset()
    }

    pub fn is_empty(&self) -> bool {
        self.first_offset() == self.next_offset()
    }

    pub fn messages_count(&self) -> u64 {
        self.next_offset() - self.first_offset()
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::size_bytes).sum()
    }

    pub fn segments_count(&self) -> usize {
        self.segments.len()
    }

    /// Append a producer's batch record (already validated) holding `count`
    /// messages. The record is stamped in place with its offset and
    /// `timestamp` and written as is, to the page cache: under the `always`
    /// policy the caller makes it durable with [`Self::sync_target`] and a
    /// sync outside the partition's lock (`Partition::sync_up_to`) before
    /// acknowledging it.
    pub fn append(
        &mut self,
        record: &mut [u8],
        count: u32,
        partition_id: u32,
        timestamp: u64,
    ) -> io::Result<Appended> {
        if self.active().size_bytes() >= self.config.segment_size_bytes {
            self.roll()?;
        }
        let base_offset = self.next_offset();
        batch::stamp(record, partition_id, base_offset, timestamp);
        let allocation = self.allocation();
        let segment = self.segments.last_mut().expect("active segment");
        segment.append(record, count, timestamp, allocation)?;
        self.unsynced = true;
        Ok(Appended {
            base_offset,
            count,
            generation: self.generation,
        })
    }

    /// What an fsync made now, outside the lock, would cover.
    pub fn sync_target(&self) -> SyncTarget {
        SyncTarget {
            file: self.active().log_file(),
            end: self.next_offset(),
            generation: self.generation,
        }
    }

    /// The sync of `target` succeeded.
    pub fn synced(&mut self, target: &SyncTarget) {
        if target.generation != self.generation {
            return;
        }
        self.durable_end = self.durable_end.max(target.end);
        if self.durable_end >= self.next_offset() {
            self.unsynced = false;
        }
    }

    /// The sync of `target` failed: forget what it was to cover and is not
    /// durable, so that nothing unacknowledged is kept (a retry would find
    /// it twice) and the next append takes its place. Only the `always`
    /// policy forgets; under the others those messages were acknowledged
    /// already and stay (the error is reported, the next sync tries again).
    pub fn sync_failed(&mut self, target: &SyncTarget) {
        if target.generation != self.generation || self.config.fsync != FsyncPolicy::Always {
            return;
        }
        // Everything in sealed segments is durable, so what is not lies in
        // the active segment.
        let durable_end = self.durable_end;
        self.segments
            .last_mut()
            .expect("active segment")
            .forget_from(durable_end);
        self.generation += 1;
    }

    /// Something appended has not been synced yet.
    pub fn unsynced(&self) -> bool {
        self.unsynced
    }

    /// Every message before this offset is durable.
    pub fn durable_end(&self) -> u64 {
        self.durable_end
    }

    /// See the field; compared with [`Appended::generation`].
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How appends get their blocks under this log's fsync policy.
    fn allocation(&self) -> Allocation {
        match self.config.fsync {
            FsyncPolicy::Always => Allocation::Ahead,
            FsyncPolicy::Never | FsyncPolicy::Interval(_) => Allocation::AtWriteback,
        }
    }

    /// Seal the active segment and start a new one at the next offset.
    ///
    /// Under `always` everything acknowledged is synced already and the
    /// sealed segment is synced here, under the partition's lock, with
    /// little left to write. Under `interval` and `never` up to a whole
    /// segment of dirty pages may be left (a second of writing for 1 GiB),
    /// so the sealed segment is synced on a thread of its own and nobody
    /// waits for it: not the producer that filled it, not the partition.
    /// Until it is done a power cut may tear the sealed segment too, which
    /// recovery repairs (`PartitionLog::open` drops segments that follow a
    /// torn one). The new segment's name is made durable by that thread
    /// too, first: a directory fsync queued behind a gigabyte of writeback
    /// held the partition's lock for up to a fifth of a second. One seal at
    /// a time: a roll waits for the one before, which only happens when the
    /// disk is a whole segment behind.
    fn roll(&mut self) -> io::Result<()> {
        if self.active().is_empty() {
            return Ok(());
        }
        let next = self.active().next_offset();
        if self.config.fsync == FsyncPolicy::Always {
            self.active().sealer().seal()?;
            self.durable_end = next;
            self.segments.push(Segment::create(&self.dir, next)?);
            return super::fs::fsync_dir(&self.dir);
        }
        self.finish_sealing()?;
        let (sealed, dir) = (self.active().sealer(), self.dir.clone());
        self.segments.push(Segment::create(&self.dir, next)?);
        self.sealing = Some(std::thread::Builder::new().name("iggy-seal".into()).spawn(
            move || {
                super::fs::fsync_dir(&dir)?;
                sealed.seal()
            },
        )?);
        Ok(())
    }

    /// Wait for the seal under way, if any; its error if it failed.
    fn finish_sealing(&mut self) -> io::Result<()> {
        match self.sealing.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the segment seal thread panicked"))),
            None => Ok(()),
        }
    }

    /// Append batch records copied from the partition's leader, unchanged:
    /// offsets and timestamps stay the leader's. `records` holds whole
    /// batch records, the first starting at `next_offset()`; each is
    /// verified (layout, checksums, offsets following on) before anything
    /// is written, so a damaged transfer appends nothing. Synced as the
    /// fsync policy says. Returns the number of messages appended.
    pub fn append_replicated(&mut self, records: &[u8]) -> io::Result<u64> {
        let mut batches = Vec::new();
        let mut at = 0usize;
        let mut next = self.next_offset();
        while at < records.len() {
            let rest = &records[at..];
            let header = BatchHeader::decode(rest)
                .map_err(|e| invalid_data(format!("replicated batch header: {e}")))?;
            let len = usize::try_from(header.batch_length)
                .ok()
                .filter(|len| *len >= BATCH_HEADER_SIZE && *len <= rest.len())
                .ok_or_else(|| invalid_data("replicated batch is cut short".into()))?;
            decode_batch_slice_with(&rest[..len], BatchIntegrity::Verify)
                .map_err(|e| invalid_data(format!("replicated batch: {e}")))?;
            if header.base_offset != next || header.message_count == 0 {
                return Err(invalid_data(format!(
                    "replicated batch starts at offset {}, expected {next}",
                    header.base_offset
                )));
            }
            batches.push((at..at + len, header.message_count, header.base_timestamp));
            next += u64::from(header.message_count);
            at += len;
        }
        let mut appended = 0u64;
        for (range, count, timestamp) in batches {
            if self.active().size_bytes() >= self.config.segment_size_bytes {
                self.roll()?;
            }
            let allocation = self.allocation();
            let segment = self.segments.last_mut().expect("active segment");
            segment.append(&records[range], count, timestamp, allocation)?;
            appended += u64::from(count);
        }
        if appended > 0 {
            match self.config.fsync {
                // Under the lock: a follower's log has no readers waiting
                // on it (polls go to the leader), only its own fetch loop.
                FsyncPolicy::Always => {
                    self.active().sync()?;
                    self.durable_end = self.next_offset();
                }
                FsyncPolicy::Interval(_) | FsyncPolicy::Never => self.unsynced = true,
            }
        }
        Ok(appended)
    }

    /// Remove every message at or after `offset`: a follower's tail that
    /// the partition's leader never committed. Batches are removed whole,
    /// so the log may end a little before `offset` (the rest is fetched
    /// again). Durable on return. Returns the new next offset.
    pub fn truncate(&mut self, offset: u64) -> io::Result<u64> {
        if offset >= self.next_offset() {
            return Ok(self.next_offset());
        }
        let mut removed_files = false;
        while self.segments.len() > 1 && self.active().start_offset() >= offset {
            self.segments.pop().expect("more than one").delete()?;
            removed_files = true;
        }
        if self.active().start_offset() > offset {
            // Everything stored is after the cut: start again at `offset`.
            self.segments.pop().expect("active").delete()?;
            self.segments.push(Segment::create(&self.dir, offset)?);
            removed_files = true;
        } else {
            self.segments
                .last_mut()
                .expect("active segment")
                .truncate(offset)?;
        }
        if removed_files {
            super::fs::fsync_dir(&self.dir)?;
        }
        // What is left was synced (sealed segments) or synced by the cut.
        self.unsynced = false;
        self.durable_end = self.next_offset();
        self.generation += 1;
        Ok(self.next_offset())
    }

    /// Fsync the active segment if anything is unsynced, and wait for the
    /// seal of the one before.
    pub fn flush(&mut self) -> io::Result<()> {
        self.finish_sealing()?;
        if self.unsynced {
            self.active().sync()?;
            self.unsynced = false;
            self.durable_end = self.next_offset();
        }
        Ok(())
    }

    /// Append to `out` the stored batch records holding up to `max_count`
    /// messages starting at offset `from` (or the oldest stored offset if
    /// `from` is older) and ending before `end` (the committed offset of a
    /// replicated partition; `u64::MAX` for everything), reading at most
    /// about `max_bytes` (always at least one batch). Edge batches are
    /// sliced so that exactly the requested messages are returned. Returns
    /// the number of messages appended.
    pub fn read(
        &self,
        from: u64,
        max_count: u32,
        max_bytes: usize,
        end: u64,
        out: &mut BytesMut,
    ) -> io::Result<u32> {
        self.plan_read(from, max_count, max_bytes, end)
            .read_appending(out)
    }

    /// [`Self::read`] in two steps: where the records lie, found under the
    /// partition's lock, and the reading itself ([`PlannedRead::read_appending`]),
    /// which needs no lock when `end` is at most the committed offset
    /// (nothing below it is ever cut), so that a poll's copy of a megabyte
    /// does not hold up the partition's producers.
    pub fn plan_read(&self, from: u64, max_count: u32, max_bytes: usize, end: u64) -> PlannedRead {
        let next = self.next_offset().min(end);
        let from = from.max(self.first_offset());
        let mut plan = PlannedRead {
            regions: Vec::new(),
            from,
            to: from,
        };
        if max_count == 0 || from >= next {
            return plan;
        }
        let to = (from + u64::from(max_count) - 1).min(next - 1);
        plan.to = to;
        let first_segment = self
            .segments
            .partition_point(|s| s.start_offset() <= from)
            .saturating_sub(1);
        let mut found = 0u64;
        let mut budget = max_bytes;
        for segment in &self.segments[first_segment..] {
            if segment.start_offset() > to
                || found >= u64::from(max_count)
                || (budget == 0 && found > 0)
            {
                break;
            }
            let entries = segment.index().entries();
            if entries.is_empty() {
                continue;
            }
            // Later segments start at or after `from`: read them from the top.
            let first = segment.index().batch_containing(from).unwrap_or(0);
            let end_entry = segment.index().first_batch_after(to).max(first + 1);
            // Read whole batches [first, last] within the byte budget.
            let start_pos = entries[first].position;
            let mut last = first;
            while last + 1 < end_entry && segment.batch_end(last + 1) - start_pos <= budget as u64 {
                last += 1;
            }
            let len = (segment.batch_end(last) - start_pos) as usize;
            budget = budget.saturating_sub(len);
            let region_end = entries
                .get(last + 1)
                .map_or(segment.next_offset(), |e| e.base_offset);
            found += region_end.min(to + 1) - entries[first].base_offset.max(from);
            plan.regions.push(segment.stored_bytes(start_pos, len));
        }
        plan
    }

    /// First offset whose batch was stamped at or after `timestamp` (µs).
    pub fn offset_at_timestamp(&self, timestamp: u64) -> Option<u64> {
        self.segments
            .iter()
            .filter(|s| s.last_timestamp() >= timestamp)
            .find_map(|s| s.index().first_at_or_after_timestamp(timestamp))
            .map(|e| e.base_offset)
    }

    /// Sealed segments: every segment but the active one.
    fn sealed(&self) -> &[Segment] {
        &self.segments[..self.segments.len() - 1]
    }

    /// Take the `count` oldest sealed segments (the active segment is never
    /// taken) out of the log. Their files are renamed aside here — a quick
    /// metadata change, so that a segment created later under the same
    /// name (after a purge) is never the one deleted — and unlinked by
    /// [`RemovedSegments::delete`], called once the partition's lock is
    /// released: unlinking and syncing the directory can take long on a
    /// busy disk, and polls and producers need not wait for it.
    pub fn remove_oldest_segments(&mut self, count: usize) -> io::Result<RemovedSegments> {
        let count = count.min(self.sealed().len());
        let mut removed = RemovedSegments {
            dir: self.dir.clone(),
            segments: 0,
            files: Vec::with_capacity(2 * count),
        };
        for _ in 0..count {
            let files = self.segments[0].rename_aside()?;
            self.segments.remove(0);
            removed.files.extend(files);
            removed.segments += 1;
        }
        Ok(removed)
    }

    /// Retention by age: remove the sealed segments whose newest message
    /// was stamped more than `expiry_us` before `now_us`. Segments are in
    /// time order, so this removes a prefix.
    pub fn remove_expired_segments(
        &mut self,
        now_us: u64,
        expiry_us: u64,
    ) -> io::Result<RemovedSegments> {
        let cutoff = now_us.saturating_sub(expiry_us);
        let expired = self
            .sealed()
            .iter()
            .take_while(|s| s.last_timestamp() < cutoff)
            .count();
        self.remove_oldest_segments(expired)
    }

    /// Retention by size: remove the oldest sealed segments while the log
    /// is larger than `max_bytes`.
    pub fn remove_segments_over_size(&mut self, max_bytes: u64) -> io::Result<RemovedSegments> {
        let mut size = self.size_bytes();
        let excess = self
            .sealed()
            .iter()
            .take_while(|s| {
                let over = size > max_bytes;
                size = size.saturating_sub(s.size_bytes());
                over
            })
            .count();
        self.remove_oldest_segments(excess)
    }

    /// Delete every segment and start again at offset 0 (purge).
    pub fn purge(&mut self) -> io::Result<()> {
        for segment in self.segments.drain(..) {
            segment.delete()?;
        }
        self.segments.push(Segment::create(&self.dir, 0)?);
        super::fs::fsync_dir(&self.dir)?;
        self.unsynced = false;
        self.durable_end = 0;
        self.generation += 1;
        Ok(())
    }

    /// Remove the whole log directory.
    pub fn delete(self) -> io::Result<()> {
        std::fs::remove_dir_all(&self.dir)
    }
}

fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Where the records of one read lie ([`PartitionLog::plan_read`]).
#[derive(Debug)]
pub struct PlannedRead {
    /// Usually one; more when the read crosses into later segments.
    regions: Vec<StoredBytes>,
    from: u64,
    to: u64,
}

impl PlannedRead {
    /// Append the planned records to `out`, edge batches sliced to the
    /// offsets asked for; returns the number of messages appended. On an
    /// error `out` is left as it was.
    pub fn read_appending(&self, out: &mut BytesMut) -> io::Result<u32> {
        let read =
            self.read_regions(out, |region, out| region.read_appending(out).map(|()| true))?;
        Ok(read.expect("a blocking read reads every region"))
    }

    /// [`Self::read_appending`] if every planned byte is in the page cache;
    /// `None`, with `out` as it was, if some would come from the disk.
    pub fn read_cached_appending(&self, out: &mut BytesMut) -> io::Result<Option<u32>> {
        self.read_regions(out, StoredBytes::read_cached_appending)
    }

    /// Read every region with `read` (false: not read, nothing appended),
    /// slicing edge batches; `None` and `out` as it was if one was not read.
    fn read_regions(
        &self,
        out: &mut BytesMut,
        read: impl Fn(&StoredBytes, &mut BytesMut) -> io::Result<bool>,
    ) -> io::Result<Option<u32>> {
        let start = out.len();
        let mut found = 0;
        for region in &self.regions {
            let region_start = out.len();
            match read(region, out) {
                Ok(true) => found += compact_region(out, region_start, self.from, self.to),
                Ok(false) => {
                    out.truncate(start);
                    return Ok(None);
                }
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
            }
        }
        Ok(Some(found))
    }
}

/// Slice every batch record in `out[region_start..]` to the offsets in
/// `[from, to]`, closing gaps, and return how many messages remain.
fn compact_region(out: &mut BytesMut, region_start: usize, from: u64, to: u64) -> u32 {
    let region_end = out.len();
    let mut read = region_start;
    let mut write = region_start;
    let mut count = 0;
    while read + BATCH_HEADER_SIZE <= region_end {
        let record_len = BatchHeader::decode(&out[read..])
            .expect("stored batches were verified")
            .total_size();
        if write != read {
            out.copy_within(read..read + record_len, write);
        }
        let (kept, messages) = batch::slice_in_place(&mut out[write..write + record_len], from, to);
        write += kept;
        count += messages;
        read += record_len;
    }
    out.truncate(write);
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::batch::tests::encoded_batch;
    use crate::storage::segment::INDEX_EXTENSION;
    use iggy_binary_protocol::responses::messages::poll_messages::PolledBatchesIterator;
    use std::fs::{File, OpenOptions};
    use std::os::unix::fs::FileExt;

    fn config(segment_size_bytes: u64) -> LogConfig {
        LogConfig {
            segment_size_bytes,
            fsync: FsyncPolicy::Always,
        }
    }

    fn append_payloads(log: &mut PartitionLog, payloads: &[&[u8]], ts: u64) -> Appended {
        let mut record = encoded_batch(payloads);
        log.append(&mut record, payloads.len() as u32, 0, ts)
            .unwrap()
    }

    fn read_all(log: &PartitionLog, from: u64, count: u32) -> Vec<(u64, Vec<u8>)> {
        let mut out = BytesMut::new();
        let n = log
            .read(from, count, usize::MAX, u64::MAX, &mut out)
            .unwrap();
        let messages: Vec<_> = PolledBatchesIterator::new(&out)
            .map(|m| m.unwrap())
            .map(|m| (m.offset, m.payload.to_vec()))
            .collect();
        assert_eq!(messages.len(), n as usize);
        messages
    }

    #[test]
    fn appends_get_consecutive_offsets_and_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        assert_eq!(
            append_payloads(&mut log, &[b"a", b"b", b"c"], 1).base_offset,
            0
        );
        assert_eq!(append_payloads(&mut log, &[b"d", b"e"], 2).base_offset, 3);
        assert_eq!(log.next_offset(), 5);
        let got = read_all(&log, 1, 3);
        assert_eq!(
            got,
            vec![(1, b"b".to_vec()), (2, b"c".to_vec()), (3, b"d".to_vec())]
        );
        assert_eq!(read_all(&log, 5, 10), vec![]);
        assert_eq!(log.offset_at_timestamp(2), Some(3));
    }

    /// A poll plans its read under the partition's lock and reads after
    /// releasing it: what it reads is what was stored when it planned,
    /// whatever happened to the log in between.
    #[test]
    fn a_planned_read_returns_what_was_stored_when_it_was_planned() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), config(600)).unwrap();
        for i in 0..6u64 {
            append_payloads(&mut log, &[format!("m{i}").as_bytes(), b"x"], i);
        }
        assert!(log.segments_count() > 1, "the read crosses segments");
        let planned = log.plan_read(1, 9, usize::MAX, u64::MAX);
        // Meanwhile: the topic is purged (every segment file deleted) and
        // written again from offset 0.
        log.purge().unwrap();
        append_payloads(&mut log, &[b"new"], 99);
        let mut out = BytesMut::new();
        assert_eq!(planned.read_appending(&mut out).unwrap(), 9);
        let got: Vec<_> = PolledBatchesIterator::new(&out)
            .map(|m| m.unwrap())
            .map(|m| (m.offset, m.payload.to_vec()))
            .collect();
        let expected: Vec<_> = (1..10u64)
            .map(|o| {
                let payload = if o % 2 == 0 {
                    format!("m{}", o / 2).into_bytes()
                } else {
                    b"x".to_vec()
                };
                (o, payload)
            })
            .collect();
        assert_eq!(got, expected);
    }

    /// A poll reads on the async worker only what the page cache holds
    /// (`read_cached_appending`): with a segment's pages dropped from the
    /// cache it declines and leaves `out` as it was; after the blocking
    /// read the cached read returns the same records.
    ///
    /// Dropping the pages does not make every cached read decline: on a
    /// miss the kernel still starts readahead (`RWF_NOWAIT` only forbids
    /// waiting), and a fast disk can finish it before the read checks the
    /// page — about 1 run in 100 on this project's VM. So the pages are
    /// dropped and the read tried until it declines, and every read that
    /// does succeed must return the stored records.
    #[test]
    fn a_cached_read_declines_what_only_the_disk_holds() {
        let dir = disk_backed_tempdir();
        let (mut log, _) = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        for i in 0..64u64 {
            append_payloads(&mut log, &[&[i as u8; 4096], b"x"], i);
        }
        let segment = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "log"))
            .unwrap();
        let file = File::open(&segment).unwrap();
        // Written back first: only clean pages can be dropped.
        file.sync_all().unwrap();

        let planned = log.plan_read(0, 128, usize::MAX, u64::MAX);
        let mut stored = BytesMut::from(&b"prefix"[..]);
        assert_eq!(planned.read_appending(&mut stored).unwrap(), 128);
        let declined_once = (0..20).any(|_| {
            rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
            let mut out = BytesMut::from(&b"prefix"[..]);
            match planned.read_cached_appending(&mut out).unwrap() {
                None => {
                    assert_eq!(&out[..], b"prefix", "nothing appended");
                    true
                }
                Some(count) => {
                    assert_eq!(
                        (count, &out),
                        (128, &stored),
                        "a cached read returns what is stored"
                    );
                    false
                }
            }
        });
        assert!(declined_once, "a read of dropped pages never declined");

        // The blocking read brings the pages back into the cache.
        assert_eq!(planned.read_appending(&mut BytesMut::new()).unwrap(), 128);
        let mut cached = BytesMut::from(&b"prefix"[..]);
        assert_eq!(
            planned.read_cached_appending(&mut cached).unwrap(),
            Some(128)
        );
        assert_eq!(cached, stored);
    }

    /// A temporary directory on a file system with a page cache in front
    /// of a disk: tmpfs pages cannot be dropped.
    fn disk_backed_tempdir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let on_tmpfs = rustix::fs::statfs(dir.path()).is_ok_and(|s| s.f_type == libc::TMPFS_MAGIC);
        if on_tmpfs {
            tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap()
        } else {
            dir
        }
    }

    /// Bytes the file system allocated to `path`.
    fn allocated(path: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).unwrap().blocks() * 512
    }

    #[test]
    fn blocks_are_allocated_ahead_only_under_fsync_always_and_given_back_at_the_seal() {
        // On the disk, as the data directory (tmpfs would allocate memory).
        let dir = disk_backed_tempdir();
        for fsync in [FsyncPolicy::Always, FsyncPolicy::Never] {
            let (mut log, _) = PartitionLog::open(
                dir.path(),
                LogConfig {
                    segment_size_bytes: 3 << 20,
                    fsync,
                },
            )
            .unwrap();
            let payload = vec![7u8; 100 << 10];
            for ts in 0..40 {
                append_payloads(&mut log, &[&payload], ts);
            }
            log.finish_sealing().unwrap();
            let files = |extension: &str| {
                let mut files: Vec<_> = std::fs::read_dir(dir.path())
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|e| e == extension))
                    .collect();
                files.sort();
                files
            };
            let logs = files(LOG_EXTENSION);
            assert_eq!(logs.len(), 2, "{fsync:?}: one sealed segment, one active");
            let (sealed, active) = (&logs[0], &logs[1]);
            let len = |path: &Path| std::fs::metadata(path).unwrap().len();
            if fsync == FsyncPolicy::Always {
                assert!(
                    allocated(active) >= len(active) + (64 << 10),
                    "{fsync:?}: the active segment's blocks are allocated ahead: {} for {} bytes",
                    allocated(active),
                    len(active)
                );
            } else {
                // Left to the file system's delayed allocation, off the
                // writer's path (see `Allocation::AtWriteback`).
                assert!(
                    allocated(active) < len(active) + (32 << 10),
                    "{fsync:?}: nothing is allocated ahead: {} for {} bytes",
                    allocated(active),
                    len(active)
                );
            }
            // Given back: what is left past the end is at most the file
            // system's own metadata (ext4 counts its extent-tree blocks in
            // a file's blocks; a fragmented disk needs some), well under
            // the ~100 KiB this test's last step allocated ahead.
            assert!(
                allocated(sealed) < len(sealed) + (32 << 10),
                "{fsync:?}: the sealed segment gave them back: {} for {} bytes",
                allocated(sealed),
                len(sealed)
            );
            assert_eq!(read_all(&log, 0, 100).len(), 40, "{fsync:?}");
            drop(log);
            // The file's size is what was written: recovery finds no tail
            // to cut, and every message.
            let (log, recovery) = PartitionLog::open(dir.path(), config(3 << 20)).unwrap();
            assert_eq!(recovery.truncated_bytes(), 0, "{fsync:?}");
            assert_eq!(read_all(&log, 0, 100).len(), 40, "{fsync:?}");
            drop(log);
            for path in files(LOG_EXTENSION).iter().chain(&files(INDEX_EXTENSION)) {
                std::fs::remove_file(path).unwrap();
            }
        }
    }

    #[test]
    fn rolls_segments_and_reads_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), config(600)).unwrap();
        for i in 0..10u64 {
            append_payloads(&mut log, &[format!("m{i}").as_bytes(), b"x"], i);
        }
        assert!(log.segments_count() > 1);
        let got = read_all(&log, 0, 100);
        assert_eq!(got.len(), 20);
        assert!(got.iter().enumerate().all(|(i, (o, _))| *o == i as u64));
        // Reopen: recovery finds every segment intact.
        drop(log);
        let (log, recovery) = PartitionLog::open(dir.path(), config(600)).unwrap();
        assert_eq!(recovery.truncated_bytes(), 0);
        assert_eq!(log.next_offset(), 20);
        assert_eq!(read_all(&log, 7, 5).len(), 5);
    }

    /// Under `never` a sealed segment is synced in the background, so a
    /// power cut can tear it while the next one holds data: recovery keeps
    /// the offsets dense by dropping what follows the tear.
    #[test]
    fn segments_after_a_torn_sealed_segment_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let never = LogConfig {
            segment_size_bytes: 600,
            fsync: FsyncPolicy::Never,
        };
        let (mut log, _) = PartitionLog::open(dir.path(), never).unwrap();
        for i in 0..10u64 {
            append_payloads(&mut log, &[format!("m{i}").as_bytes(), b"x"], i);
        }
        let segments = log.segments_count();
        assert!(segments >= 3);
        let second = log.segments[1].start_offset();
        let third = log.segments[2].start_offset();
        log.flush().unwrap();
        drop(log);
        // The second segment lost the end of its last batch (2 messages).
        let path = crate::storage::segment::log_path(dir.path(), second);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        let len = file.metadata().unwrap().len();
        file.set_len(len - 1).unwrap();

        let (mut log, recovery) = PartitionLog::open(dir.path(), never).unwrap();
        assert_eq!(recovery.dropped_after_gap.0, segments - 2, "{recovery:?}");
        assert_eq!(log.segments_count(), 2);
        assert_eq!(log.next_offset(), third - 2, "the torn batch is cut");
        assert!(
            !crate::storage::segment::log_path(dir.path(), third).exists(),
            "the segment after the gap is gone"
        );
        let got = read_all(&log, 0, 100);
        assert!(got.iter().enumerate().all(|(i, (o, _))| *o == i as u64));
        assert_eq!(got.len() as u64, third - 2);
        // Appends go on from there.
        assert_eq!(
            append_payloads(&mut log, &[b"next"], 99).base_offset,
            third - 2
        );
    }

    /// Every stored batch record from `from` on, as a leader ships them.
    fn records_from(log: &PartitionLog, from: u64) -> BytesMut {
        let mut out = BytesMut::new();
        log.read(from, u32::MAX, usize::MAX, u64::MAX, &mut out)
            .unwrap();
        out
    }

    #[test]
    fn a_follower_copies_the_leaders_batches_with_their_offsets_and_times() {
        let (leader_dir, follower_dir) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (mut leader, _) = PartitionLog::open(leader_dir.path(), config(600)).unwrap();
        let (mut follower, _) = PartitionLog::open(follower_dir.path(), config(600)).unwrap();
        for i in 0..6u64 {
            append_payloads(&mut leader, &[format!("m{i}").as_bytes(), b"x"], 100 + i);
        }
        assert_eq!(
            follower
                .append_replicated(&records_from(&leader, 0))
                .unwrap(),
            12
        );
        append_payloads(&mut leader, &[b"late"], 200);
        assert_eq!(
            follower
                .append_replicated(&records_from(&leader, 12))
                .unwrap(),
            1
        );
        assert_eq!(read_all(&follower, 0, 100), read_all(&leader, 0, 100));
        assert_eq!(follower.offset_at_timestamp(200), Some(12));
        assert!(follower.segments_count() > 1);

        // Out of order or damaged: refused, nothing appended.
        assert!(
            follower
                .append_replicated(&records_from(&leader, 0))
                .is_err()
        );
        append_payloads(&mut leader, &[b"next"], 300);
        let mut damaged = records_from(&leader, 13);
        let last = damaged.len() - 1;
        damaged[last] ^= 0xff;
        assert!(follower.append_replicated(&damaged).is_err());
        assert_eq!(follower.next_offset(), 13);

        drop(follower);
        let (follower, recovery) = PartitionLog::open(follower_dir.path(), config(600)).unwrap();
        assert_eq!(recovery.truncated_bytes(), 0);
        assert_eq!(read_all(&follower, 0, 100), read_all(&leader, 0, 13));
    }

    #[test]
    fn truncation_cuts_whole_batches_across_segments_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), config(600)).unwrap();
        for i in 0..10u64 {
            append_payloads(&mut log, &[format!("m{i}").as_bytes(), b"x"], i);
        }
        let segments = log.segments_count();
        assert!(segments > 2);
        // Offset 9 is inside the batch [8, 9]: that batch goes too.
        assert_eq!(log.truncate(9).unwrap(), 8);
        assert!(log.segments_count() < segments);
        assert_eq!(read_all(&log, 0, 100).len(), 8);
        assert_eq!(append_payloads(&mut log, &[b"new"], 50).base_offset, 8);
        drop(log);
        let (mut log, recovery) = PartitionLog::open(dir.path(), config(600)).unwrap();
        assert_eq!(recovery.truncated_bytes(), 0);
        assert_eq!(log.next_offset(), 9);
        assert_eq!(read_all(&log, 8, 1), vec![(8, b"new".to_vec())]);
        // Past the end: nothing to do. To the very start: empty.
        assert_eq!(log.truncate(100).unwrap(), 9);
        assert_eq!(log.truncate(0).unwrap(), 0);
        assert!(log.is_empty());
        assert_eq!(append_payloads(&mut log, &[b"again"], 60).base_offset, 0);
    }

    #[test]
    fn a_read_stops_at_the_committed_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        append_payloads(&mut log, &[b"a", b"b", b"c"], 1);
        append_payloads(&mut log, &[b"d"], 2);
        let mut out = BytesMut::new();
        assert_eq!(log.read(0, 100, usize::MAX, 2, &mut out).unwrap(), 2);
        out.clear();
        assert_eq!(log.read(2, 100, usize::MAX, 2, &mut out).unwrap(), 0);
    }

    #[test]
    fn byte_budget_limits_a_read_but_returns_at_least_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        for _ in 0..4 {
            append_payloads(&mut log, &[b"0123456789"], 0);
        }
        let mut out = BytesMut::new();
        assert_eq!(log.read(0, 100, 1, u64::MAX, &mut out).unwrap(), 1);
    }

    #[test]
    fn torn_tail_is_truncated_to_the_last_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        append_payloads(&mut log, &[b"keep-1", b"keep-2"], 1);
        append_payloads(&mut log, &[b"torn"], 2);
        drop(log);
        let path = dir.path().join("00000000000000000000.log");
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();

        let (log, recovery) = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        assert!(recovery.truncated_bytes() > 0);
        assert_eq!(log.next_offset(), 2);
        assert_eq!(read_all(&log, 0, 10).len(), 2);
    }

    #[test]
    fn a_damaged_length_claiming_almost_all_of_u64_is_cut_off_not_trusted() {
        // Found by the segment_recovery fuzz target: the end of such a
        // batch wrapped around, passed the bounds check, and recovery asked
        // for a buffer of the claimed size.
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        append_payloads(&mut log, &[b"keep"], 1);
        append_payloads(&mut log, &[b"damaged"], 2);
        drop(log);
        let path = dir.path().join("00000000000000000000.log");
        let second = encoded_batch(&[b"keep"]).len() as u64;
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        // batch_length is bytes 32..40 of the batch header.
        let claimed = u64::MAX - second + 1;
        file.write_all_at(&claimed.to_le_bytes(), second + 32)
            .unwrap();

        let (log, recovery) = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        assert!(recovery.truncated_bytes() > 0);
        assert_eq!(log.next_offset(), 1);
        assert_eq!(read_all(&log, 0, 10), vec![(0, b"keep".to_vec())]);
    }

    #[test]
    fn removed_segments_left_by_a_crash_are_deleted_when_the_log_opens() {
        let dir = tempfile::tempdir().unwrap();
        let one = encoded_batch(&[b"0123456789"]).len() as u64;
        let (mut log, _) = PartitionLog::open(dir.path(), config(one)).unwrap();
        for ts in 0..4 {
            append_payloads(&mut log, &[b"0123456789"], ts);
        }
        assert_eq!(log.segments_count(), 4);
        let removed = log.remove_oldest_segments(2).unwrap();
        assert_eq!(removed.count(), 2);
        // A crash before `removed.delete()`.
        drop(removed);
        drop(log);
        let (log, _) = PartitionLog::open(dir.path(), config(one)).unwrap();
        assert_eq!(log.first_offset(), 2);
        assert_eq!(log.segments_count(), 2);
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "removed")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn missing_index_is_rebuilt_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        for i in 0..5u64 {
            append_payloads(&mut log, &[b"p", b"q"], i);
        }
        drop(log);
        std::fs::remove_file(dir.path().join("00000000000000000000.index")).unwrap();
        let (log, recovery) = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        assert!(recovery.segments[0].index_rebuilt);
        assert_eq!(recovery.segments[0].entries.len(), 5);
        assert_eq!(read_all(&log, 3, 4).len(), 4);
    }

    #[test]
    fn index_entries_past_the_log_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        append_payloads(&mut log, &[b"one"], 1);
        append_payloads(&mut log, &[b"two"], 2);
        drop(log);
        // Simulate a crash where the second batch never reached the log but
        // its index entry did.
        let path = dir.path().join("00000000000000000000.log");
        let first_len = encoded_batch(&[b"one"]).len() as u64;
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(first_len)
            .unwrap();
        let (log, _) = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        assert_eq!(log.next_offset(), 1);
        // And appending afterwards continues cleanly.
        drop(log);
        let (mut log, _) = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        assert_eq!(append_payloads(&mut log, &[b"three"], 3).base_offset, 1);
        assert_eq!(read_all(&log, 0, 10).len(), 2);
    }

    /// A log of 5 segments (4 sealed) stamped at times 1..=5 (µs ×1000).
    fn five_segments(dir: &Path) -> PartitionLog {
        let (mut log, _) = PartitionLog::open(dir, config(100)).unwrap();
        for i in 1..=5u64 {
            append_payloads(&mut log, &[format!("m{i}").as_bytes()], i * 1000);
        }
        assert_eq!(log.segments_count(), 5);
        log
    }

    #[test]
    fn expiry_deletes_exactly_the_expired_sealed_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = five_segments(dir.path());
        // Now 5500, expiry 3000: segments stamped 1000 and 2000 are older
        // than the cutoff 2500.
        assert_eq!(
            log.remove_expired_segments(5_500, 3_000)
                .unwrap()
                .delete()
                .unwrap(),
            2
        );
        assert_eq!(log.first_offset(), 2);
        assert_eq!(
            read_all(&log, 0, 10)
                .iter()
                .map(|(o, _)| *o)
                .collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        // Everything expired: the active segment stays.
        assert_eq!(
            log.remove_expired_segments(1_000_000, 1)
                .unwrap()
                .delete()
                .unwrap(),
            2
        );
        assert_eq!(log.segments_count(), 1);
        assert_eq!(log.next_offset(), 5);
        // Deleted files are gone; a restart sees the same log.
        drop(log);
        let (log, _) = PartitionLog::open(dir.path(), config(100)).unwrap();
        assert_eq!((log.first_offset(), log.next_offset()), (4, 5));
    }

    #[test]
    fn size_cap_deletes_the_oldest_sealed_segments_until_under_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = five_segments(dir.path());
        let one = log.size_bytes() / 5;
        assert_eq!(
            log.remove_segments_over_size(one * 3)
                .unwrap()
                .delete()
                .unwrap(),
            2
        );
        assert_eq!(log.size_bytes(), one * 3);
        assert_eq!(log.first_offset(), 2);
        assert_eq!(
            log.remove_segments_over_size(0).unwrap().delete().unwrap(),
            2
        );
        assert_eq!(
            log.segments_count(),
            1,
            "the active segment is never deleted"
        );
        assert_eq!(log.remove_oldest_segments(10).unwrap().delete().unwrap(), 0);
    }

    #[test]
    fn purge_restarts_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = PartitionLog::open(dir.path(), config(1 << 20)).unwrap();
        append_payloads(&mut log, &[b"x"], 1);
        log.purge().unwrap();
        assert!(log.is_empty());
        assert_eq!(append_payloads(&mut log, &[b"y"], 1).base_offset, 0);
    }
}
