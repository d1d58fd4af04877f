//! The leader epoch of every range of a partition's log, kept beside its
//! segments in `leader-epochs`: one line `<epoch> <start offset>` per epoch
//! that appended anything, oldest first (Kafka's leader-epoch checkpoint).
//!
//! The 0.11 batch header has no room for an epoch that stays invisible to
//! clients, so the epochs live here rather than in the records. A follower
//! uses them to find where its log stops agreeing with a new leader's: the
//! leader answers "epoch E ended at offset O" and the follower cuts its log
//! at O (see `replication`).
//!
//! The file is tiny and changes once per leader change, so it is rewritten
//! whole, atomically and durably.

use super::fs::write_atomic;
use std::io;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "leader-epochs";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochStart {
    pub epoch: u32,
    pub start_offset: u64,
}

#[derive(Debug)]
pub struct EpochHistory {
    path: PathBuf,
    /// Epochs and start offsets both strictly increasing.
    entries: Vec<EpochStart>,
}

impl EpochHistory {
    /// Load the history of the log in `dir` (empty when there is none). A
    /// damaged line ends the history there: what follows is re-learned from
    /// the leader.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let mut entries: Vec<EpochStart> = Vec::new();
        for line in text.lines() {
            let mut fields = line.split_ascii_whitespace().map(str::parse::<u64>);
            let (Some(Ok(epoch)), Some(Ok(start_offset)), None) =
                (fields.next(), fields.next(), fields.next())
            else {
                tracing::warn!(path = %path.display(), "damaged leader epoch line {line:?}: ignoring it and the rest");
                break;
            };
            let Ok(epoch) = u32::try_from(epoch) else {
                break;
            };
            if entries
                .last()
                .is_some_and(|last| last.epoch >= epoch || last.start_offset > start_offset)
            {
                break;
            }
            entries.push(EpochStart {
                epoch,
                start_offset,
            });
        }
        Ok(Self { path, entries })
    }

    pub fn entries(&self) -> &[EpochStart] {
        &self.entries
    }

    /// The newest epoch that appended to this log.
    pub fn latest(&self) -> Option<EpochStart> {
        self.entries.last().copied()
    }

    /// Record that messages from `start_offset` on belong to `epoch`. An
    /// epoch already recorded (or older than the newest) changes nothing.
    /// An earlier epoch that starts at the same offset appended nothing and
    /// is replaced.
    pub fn assign(&mut self, epoch: u32, start_offset: u64) -> io::Result<()> {
        if self.latest().is_some_and(|last| last.epoch >= epoch) {
            return Ok(());
        }
        while self
            .entries
            .last()
            .is_some_and(|last| last.start_offset >= start_offset)
        {
            self.entries.pop();
        }
        self.entries.push(EpochStart {
            epoch,
            start_offset,
        });
        self.save()
    }

    /// Where `epoch` ends in this log: the newest epoch not after `epoch`,
    /// and the offset the next epoch starts at (`log_end` if none does).
    /// `None` when the log knows no epoch that old.
    pub fn end_of(&self, epoch: u32, log_end: u64) -> Option<(u32, u64)> {
        let at = self.entries.partition_point(|e| e.epoch <= epoch);
        let found = self.entries.get(at.checked_sub(1)?)?;
        let end = self
            .entries
            .get(at)
            .map_or(log_end, |next| next.start_offset);
        Some((found.epoch, end))
    }

    /// The log was cut at `offset`: forget epochs that start at or after it.
    pub fn truncate(&mut self, offset: u64) -> io::Result<()> {
        let keep = self.entries.partition_point(|e| e.start_offset < offset);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.save()?;
        }
        Ok(())
    }

    /// Forget epochs newer than `epoch` (a leader's log does not have them).
    pub fn forget_newer_than(&mut self, epoch: u32) -> io::Result<()> {
        let keep = self.entries.partition_point(|e| e.epoch <= epoch);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.save()?;
        }
        Ok(())
    }

    /// Forget every epoch (the log was emptied, e.g. by a purge).
    pub fn clear(&mut self) -> io::Result<()> {
        if !self.entries.is_empty() {
            self.entries.clear();
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> io::Result<()> {
        let text: String = self
            .entries
            .iter()
            .map(|e| format!("{} {}\n", e.epoch, e.start_offset))
            .collect();
        write_atomic(&self.path, text.as_bytes(), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_survive_reopening_and_answer_where_each_ends() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = EpochHistory::open(dir.path()).unwrap();
        assert_eq!(history.end_of(3, 10), None);
        history.assign(1, 0).unwrap();
        history.assign(1, 5).unwrap(); // same epoch: no change
        history.assign(3, 7).unwrap();
        history.assign(2, 9).unwrap(); // older than the newest: ignored
        let history = EpochHistory::open(dir.path()).unwrap();
        assert_eq!(
            history.entries(),
            &[
                EpochStart {
                    epoch: 1,
                    start_offset: 0
                },
                EpochStart {
                    epoch: 3,
                    start_offset: 7
                }
            ]
        );
        assert_eq!(history.end_of(0, 20), None);
        assert_eq!(history.end_of(1, 20), Some((1, 7)));
        assert_eq!(history.end_of(2, 20), Some((1, 7)));
        assert_eq!(history.end_of(3, 20), Some((3, 20)));
        assert_eq!(history.end_of(9, 20), Some((3, 20)));
    }

    #[test]
    fn an_epoch_that_appended_nothing_is_replaced_and_truncation_forgets_later_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = EpochHistory::open(dir.path()).unwrap();
        history.assign(1, 0).unwrap();
        history.assign(2, 4).unwrap();
        history.assign(4, 4).unwrap();
        assert_eq!(history.end_of(2, 9), Some((1, 4)));
        history.truncate(3).unwrap();
        assert_eq!(history.entries().len(), 1);
        assert_eq!(history.latest().unwrap().epoch, 1);
        assert_eq!(EpochHistory::open(dir.path()).unwrap().entries().len(), 1);
    }

    #[test]
    fn a_damaged_file_keeps_its_valid_prefix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "1 0\n2 5\ngarbage\n3 9\n").unwrap();
        let history = EpochHistory::open(dir.path()).unwrap();
        assert_eq!(history.latest().unwrap().epoch, 2);
    }
}
