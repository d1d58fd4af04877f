//! Where partitions live on disk:
//! `<system.path>/streams/<stream>/topics/<topic>/partitions/<partition>-<incarnation>/`,
//! the incarnation being the metadata log index that created the
//! partition — in the name, so creating the directory records it with no
//! extra write. Removed partitions are first renamed into
//! `<system.path>/trash/` (instant, so nothing waits for a large delete)
//! and deleted from there in the background.

use crate::metadata::PartitionKey;
use crate::storage::fs::{create_dir_durable, fsync_dir};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.to_path_buf(),
        }
    }

    pub fn streams_dir(&self) -> PathBuf {
        self.root.join("streams")
    }

    pub fn stream_dir(&self, stream_id: u32) -> PathBuf {
        self.streams_dir().join(stream_id.to_string())
    }

    pub fn topic_dir(&self, stream_id: u32, topic_id: u32) -> PathBuf {
        self.stream_dir(stream_id)
            .join("topics")
            .join(topic_id.to_string())
    }

    fn partitions_dir(&self, (s, t, _): PartitionKey) -> PathBuf {
        self.topic_dir(s, t).join("partitions")
    }

    pub fn partition_dir(&self, key: PartitionKey, incarnation: u64) -> PathBuf {
        self.partitions_dir(key)
            .join(format!("{}-{incarnation}", key.2))
    }

    /// The incarnations of partition `key` that have a directory (more than
    /// one only after a crash between making a new one and removing the
    /// old), oldest first.
    pub fn incarnations(&self, key: PartitionKey) -> io::Result<Vec<u64>> {
        let mut found: Vec<u64> = partition_children(&self.partitions_dir(key))?
            .into_iter()
            .filter(|(p, _, _)| *p == key.2)
            .map(|(_, incarnation, _)| incarnation)
            .collect();
        found.sort_unstable();
        Ok(found)
    }

    pub fn trash_dir(&self) -> PathBuf {
        self.root.join("trash")
    }

    /// Every partition directory on disk: its key and incarnation.
    pub fn scan(&self) -> io::Result<Vec<(PartitionKey, u64)>> {
        let mut found = Vec::new();
        for (s, stream) in numbered_children(&self.streams_dir())? {
            for (t, topic) in numbered_children(&stream.join("topics"))? {
                for (p, incarnation, _) in partition_children(&topic.join("partitions"))? {
                    found.push(((s, t, p), incarnation));
                }
            }
        }
        Ok(found)
    }

    /// Move a partition directory into the trash (a rename: instant), then
    /// remove its parents if they are now empty. Returns whether there was
    /// a directory.
    pub fn trash(&self, key: PartitionKey, incarnation: u64) -> io::Result<bool> {
        let dir = self.partition_dir(key, incarnation);
        if !dir.exists() {
            return Ok(false);
        }
        let trash = self.trash_dir();
        create_dir_durable(&trash)?;
        let name = format!(
            "{}-{}-{}-{incarnation}-{:016x}",
            key.0,
            key.1,
            key.2,
            rand::random::<u64>()
        );
        std::fs::rename(&dir, trash.join(name))?;
        // Empty parents: partitions/, the topic, topics/, the stream.
        let mut parent = dir.parent().map(Path::to_path_buf);
        for _ in 0..4 {
            match parent {
                Some(p) if p != self.streams_dir() && std::fs::remove_dir(&p).is_ok() => {
                    parent = p.parent().map(Path::to_path_buf);
                }
                _ => break,
            }
        }
        if let Some(p) = parent {
            let _ = fsync_dir(&p);
        }
        fsync_dir(&trash)?;
        Ok(true)
    }

    /// Delete everything in the trash (slow; never under a lock).
    pub fn empty_trash(&self) -> io::Result<usize> {
        let mut removed = 0;
        let entries = match std::fs::read_dir(self.trash_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            std::fs::remove_dir_all(&path)?;
            removed += 1;
        }
        Ok(removed)
    }
}

/// `<partition>-<incarnation>` children of a `partitions` directory.
fn partition_children(dir: &Path) -> io::Result<Vec<(u32, u64, PathBuf)>> {
    parsed_children(dir, |name| {
        let (p, incarnation) = name.split_once('-')?;
        Some((p.parse::<u32>().ok()?, incarnation.parse::<u64>().ok()?))
    })
    .map(|children| {
        children
            .into_iter()
            .map(|((p, incarnation), path)| (p, incarnation, path))
            .collect()
    })
}

/// Numbered children (`streams/<id>`, `topics/<id>`), by number.
fn numbered_children(dir: &Path) -> io::Result<Vec<(u32, PathBuf)>> {
    let mut children = parsed_children(dir, |name| name.parse::<u32>().ok())?;
    children.sort_by_key(|(n, _)| *n);
    Ok(children)
}

/// The subdirectories of `dir` whose names `parse` accepts; none when
/// `dir` does not exist.
fn parsed_children<T>(
    dir: &Path,
    parse: impl Fn(&str) -> Option<T>,
) -> io::Result<Vec<(T, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut children = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(parsed) = entry.file_name().to_str().and_then(&parse)
            && entry.file_type()?.is_dir()
        {
            children.push((parsed, entry.path()));
        }
    }
    Ok(children)
}
