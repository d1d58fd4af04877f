//! The filesystem's contents, with what is durable kept apart from what is
//! merely written — the model a power cut is applied to.
//!
//! The rules are POSIX's, taken strictly (as Jepsen's LazyFS and ALICE do):
//! - a file's bytes and length become durable when the file is fsynced
//!   (`fsync` or `fdatasync`); until then they are a list of pending writes
//!   and truncations on top of the durable bytes;
//! - a directory's entries (files created, renamed or removed in it) become
//!   durable when the directory itself is fsynced;
//! - a power cut brings back the durable namespace, every file in it with
//!   its durable bytes plus, for a torn cut, a prefix of its pending
//!   operations, the last one possibly cut mid-way.
//!
//! Real filesystems are often kinder (ext4 commits a new file's directory
//! entry with the file's fsync); a program that is durable here is durable
//! on any of them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::time::SystemTime;

pub const ROOT: u64 = 1;

/// An error as the kernel expects it (a positive errno).
pub type Errno = i32;

/// What a power cut keeps of the writes that were never synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Nothing: every file goes back to its last synced bytes.
    LoseUnsynced,
    /// For each file, a random prefix of its unsynced operations, the last
    /// one possibly torn (a prefix of its bytes), as when the disk had
    /// written out part of the cache when the power went.
    Torn { seed: u64 },
}

/// What a power cut threw away.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Files whose bytes or length went back to an earlier state.
    pub files_reverted: usize,
    /// Unsynced bytes written that did not survive.
    pub bytes_lost: u64,
    /// Writes of which only a prefix survived.
    pub torn_writes: usize,
    /// Files and directories (paths from the root) whose names had not
    /// been made durable: not there after the cut.
    pub entries_lost: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

pub struct Inode {
    pub perm: u16,
    pub mtime: SystemTime,
    pub body: Body,
}

pub enum Body {
    File(FileData),
    Dir(DirData),
}

#[derive(Default)]
pub struct FileData {
    /// The bytes as readers see them now.
    pub current: Vec<u8>,
    /// The bytes as of the last fsync.
    durable: Vec<u8>,
    /// Writes and truncations since the last fsync, oldest first.
    pending: Vec<Pending>,
}

enum Pending {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Default)]
pub struct DirData {
    pub entries: BTreeMap<OsString, u64>,
    durable: BTreeMap<OsString, u64>,
}

impl Inode {
    pub fn kind(&self) -> Kind {
        match self.body {
            Body::File(_) => Kind::File,
            Body::Dir(_) => Kind::Dir,
        }
    }

    pub fn size(&self) -> u64 {
        match &self.body {
            Body::File(file) => file.current.len() as u64,
            Body::Dir(dir) => dir.entries.len() as u64,
        }
    }
}

pub struct Volume {
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    /// Set: every change fails with this errno (a failing disk).
    failing: Option<Errno>,
    /// Set: a file's fsync takes effect and is answered only once this is
    /// cleared (a disk that stalls).
    hold_syncs: bool,
    /// File fsyncs being held right now.
    syncs_held: u64,
    /// Set by a power cut: fsyncs still held are answered with an error
    /// and make nothing durable (the power went before the disk answered).
    held_syncs_lost: bool,
}

impl Default for Volume {
    fn default() -> Self {
        let mut inodes = HashMap::new();
        inodes.insert(ROOT, new_inode(Kind::Dir, 0o755));
        Self {
            inodes,
            next_ino: ROOT + 1,
            failing: None,
            hold_syncs: false,
            syncs_held: 0,
            held_syncs_lost: false,
        }
    }
}

fn new_inode(kind: Kind, perm: u16) -> Inode {
    Inode {
        perm,
        mtime: SystemTime::now(),
        body: match kind {
            Kind::File => Body::File(FileData::default()),
            Kind::Dir => Body::Dir(DirData::default()),
        },
    }
}

fn apply(bytes: &mut Vec<u8>, op: &Pending) {
    match op {
        Pending::Write { offset, data } => {
            let start = *offset as usize;
            let end = start + data.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[start..end].copy_from_slice(data);
        }
        Pending::SetLen(len) => bytes.resize(*len as usize, 0),
    }
}

/// A small deterministic generator (xorshift64*), so that a failing cut can
/// be replayed from its seed.
struct Random(u64);

impl Random {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound as u64) as usize
    }
}

impl Volume {
    pub fn get(&self, ino: u64) -> Option<&Inode> {
        self.inodes.get(&ino)
    }

    fn dir(&self, ino: u64) -> Result<&DirData, Errno> {
        match self.inodes.get(&ino).map(|inode| &inode.body) {
            Some(Body::Dir(dir)) => Ok(dir),
            Some(Body::File(_)) => Err(libc_errno::ENOTDIR),
            None => Err(libc_errno::ENOENT),
        }
    }

    fn dir_mut(&mut self, ino: u64) -> Result<&mut DirData, Errno> {
        match self.inodes.get_mut(&ino).map(|inode| &mut inode.body) {
            Some(Body::Dir(dir)) => Ok(dir),
            Some(Body::File(_)) => Err(libc_errno::ENOTDIR),
            None => Err(libc_errno::ENOENT),
        }
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut FileData, Errno> {
        let inode = self.inodes.get_mut(&ino).ok_or(libc_errno::ENOENT)?;
        inode.mtime = SystemTime::now();
        match &mut inode.body {
            Body::File(file) => Ok(file),
            Body::Dir(_) => Err(libc_errno::EISDIR),
        }
    }

    pub fn lookup(&self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        self.dir(parent)?
            .entries
            .get(name)
            .copied()
            .ok_or(libc_errno::ENOENT)
    }

    /// Make every change (create, remove, rename, write, truncate, sync)
    /// fail with `errno` — a disk gone read-only or failing — or, with
    /// `None`, work again. Reads keep working.
    pub fn set_failing(&mut self, errno: Option<Errno>) {
        self.failing = errno;
    }

    fn check_writable(&self) -> Result<(), Errno> {
        self.failing.map_or(Ok(()), Err)
    }

    /// Create a file or directory; `Ok((ino, false))` if a file of that name
    /// exists already and `exclusive` is off.
    pub fn create(
        &mut self,
        parent: u64,
        name: &OsStr,
        kind: Kind,
        perm: u16,
        exclusive: bool,
    ) -> Result<(u64, bool), Errno> {
        self.check_writable()?;
        if let Some(&existing) = self.dir(parent)?.entries.get(name) {
            let existing_is_file = self.inodes[&existing].kind() == Kind::File;
            return if exclusive || kind == Kind::Dir || !existing_is_file {
                Err(libc_errno::EEXIST)
            } else {
                Ok((existing, false))
            };
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, new_inode(kind, perm));
        let dir = self.dir_mut(parent)?;
        dir.entries.insert(name.to_owned(), ino);
        self.touch(parent);
        Ok((ino, true))
    }

    fn touch(&mut self, ino: u64) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.mtime = SystemTime::now();
        }
    }

    /// Remove a name: a file (`kind` File) or an empty directory (`kind`
    /// Dir). The inode stays: a durable entry may still name it.
    pub fn remove(&mut self, parent: u64, name: &OsStr, kind: Kind) -> Result<(), Errno> {
        self.check_writable()?;
        let ino = self.lookup(parent, name)?;
        match (&self.inodes[&ino].body, kind) {
            (Body::File(_), Kind::Dir) => return Err(libc_errno::ENOTDIR),
            (Body::Dir(_), Kind::File) => return Err(libc_errno::EISDIR),
            (Body::Dir(dir), Kind::Dir) if !dir.entries.is_empty() => {
                return Err(libc_errno::ENOTEMPTY);
            }
            _ => {}
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.touch(parent);
        Ok(())
    }

    pub fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), Errno> {
        self.check_writable()?;
        let ino = self.lookup(parent, name)?;
        self.dir(new_parent)?;
        if let Some(&target) = self.dir(new_parent)?.entries.get(new_name) {
            if target == ino {
                return Ok(());
            }
            if no_replace {
                return Err(libc_errno::EEXIST);
            }
            match (self.inodes[&ino].kind(), &self.inodes[&target].body) {
                (Kind::File, Body::Dir(_)) => return Err(libc_errno::EISDIR),
                (Kind::Dir, Body::File(_)) => return Err(libc_errno::ENOTDIR),
                (Kind::Dir, Body::Dir(dir)) if !dir.entries.is_empty() => {
                    return Err(libc_errno::ENOTEMPTY);
                }
                _ => {}
            }
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.dir_mut(new_parent)?
            .entries
            .insert(new_name.to_owned(), ino);
        self.touch(parent);
        self.touch(new_parent);
        Ok(())
    }

    pub fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.check_writable()?;
        let file = self.file_mut(ino)?;
        let op = Pending::Write {
            offset,
            data: data.to_vec(),
        };
        apply(&mut file.current, &op);
        file.pending.push(op);
        Ok(())
    }

    pub fn set_len(&mut self, ino: u64, len: u64) -> Result<(), Errno> {
        self.check_writable()?;
        let file = self.file_mut(ino)?;
        let op = Pending::SetLen(len);
        apply(&mut file.current, &op);
        file.pending.push(op);
        Ok(())
    }

    pub fn read(&self, ino: u64, offset: u64, size: usize) -> Result<&[u8], Errno> {
        match self.inodes.get(&ino).map(|inode| &inode.body) {
            Some(Body::File(file)) => {
                let start = (offset as usize).min(file.current.len());
                let end = start.saturating_add(size).min(file.current.len());
                Ok(&file.current[start..end])
            }
            Some(Body::Dir(_)) => Err(libc_errno::EISDIR),
            None => Err(libc_errno::ENOENT),
        }
    }

    pub fn set_perm(&mut self, ino: u64, perm: u16) -> Result<(), Errno> {
        let inode = self.inodes.get_mut(&ino).ok_or(libc_errno::ENOENT)?;
        inode.perm = perm;
        Ok(())
    }

    /// Hold every file fsync from now on until `hold` is cleared again.
    pub fn set_hold_syncs(&mut self, hold: bool) {
        self.hold_syncs = hold;
    }

    /// Whether an fsync of `ino` is held now (files only; directories are
    /// synced at once).
    pub fn holds_sync_of(&self, ino: u64) -> bool {
        self.hold_syncs && matches!(self.inodes.get(&ino).map(Inode::kind), Some(Kind::File))
    }

    /// See the field: set while a power cut is being taken.
    pub fn set_held_syncs_lost(&mut self, lost: bool) {
        self.held_syncs_lost = lost;
    }

    /// Whether a held fsync, once released, is to fail without effect.
    pub fn held_syncs_lost(&self) -> bool {
        self.held_syncs_lost
    }

    /// A delayed fsync started (`true`) or took effect (`false`).
    pub fn note_held_sync(&mut self, held: bool) {
        if held {
            self.syncs_held += 1;
        } else {
            self.syncs_held -= 1;
        }
    }

    /// File fsyncs being held by the delay right now.
    pub fn syncs_held(&self) -> u64 {
        self.syncs_held
    }

    /// `fsync` of a file (its bytes) or of a directory (its entries).
    pub fn sync(&mut self, ino: u64) -> Result<(), Errno> {
        self.check_writable()?;
        match self.inodes.get_mut(&ino).map(|inode| &mut inode.body) {
            Some(Body::File(file)) => {
                for op in file.pending.drain(..) {
                    apply(&mut file.durable, &op);
                }
                debug_assert_eq!(file.durable, file.current);
                Ok(())
            }
            Some(Body::Dir(dir)) => {
                dir.durable = dir.entries.clone();
                Ok(())
            }
            None => Err(libc_errno::ENOENT),
        }
    }

    /// Bytes written but not yet synced, over all files.
    pub fn unsynced_bytes(&self) -> u64 {
        self.inodes
            .values()
            .map(|inode| match &inode.body {
                Body::File(file) => file
                    .pending
                    .iter()
                    .map(|op| match op {
                        Pending::Write { data, .. } => data.len() as u64,
                        Pending::SetLen(_) => 0,
                    })
                    .sum(),
                Body::Dir(_) => 0,
            })
            .sum()
    }

    /// Simulate a power cut: keep only what was durable (and, for a torn
    /// cut, part of what was not).
    pub fn power_cut(&mut self, cut: Cut) -> CutReport {
        let mut report = CutReport::default();
        let mut random = match cut {
            Cut::LoseUnsynced => None,
            Cut::Torn { seed } => Some(Random::new(seed)),
        };
        let reachable_after = self.reachable(|dir| &dir.durable);
        report.entries_lost = self
            .paths()
            .into_iter()
            .filter(|(ino, _)| !reachable_after.contains(ino))
            .map(|(_, path)| path)
            .collect();
        self.inodes.retain(|ino, _| reachable_after.contains(ino));

        // Visit files in inode order so that a seed always tears the same way.
        let mut inos: Vec<u64> = self.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            match &mut self.inodes.get_mut(&ino).expect("listed").body {
                Body::Dir(dir) => dir.entries = dir.durable.clone(),
                Body::File(file) => {
                    if file.pending.is_empty() {
                        continue;
                    }
                    let pending = std::mem::take(&mut file.pending);
                    let mut bytes = file.durable.clone();
                    let mut lost = 0u64;
                    // Operations before `kept` reached the disk whole; the
                    // one at `kept` may have reached it in part (torn cuts).
                    let kept = random.as_mut().map_or(0, |r| r.below(pending.len() + 1));
                    for (i, op) in pending.iter().enumerate() {
                        match (op, i.cmp(&kept), random.as_mut()) {
                            (_, std::cmp::Ordering::Less, _) => apply(&mut bytes, op),
                            (
                                Pending::Write { offset, data },
                                std::cmp::Ordering::Equal,
                                Some(r),
                            ) if data.len() > 1 => {
                                let prefix = 1 + r.below(data.len() - 1);
                                apply(
                                    &mut bytes,
                                    &Pending::Write {
                                        offset: *offset,
                                        data: data[..prefix].to_vec(),
                                    },
                                );
                                report.torn_writes += 1;
                                lost += (data.len() - prefix) as u64;
                            }
                            (Pending::Write { data, .. }, _, _) => lost += data.len() as u64,
                            (Pending::SetLen(_), _, _) => {}
                        }
                    }
                    if bytes != file.current {
                        report.files_reverted += 1;
                    }
                    report.bytes_lost += lost;
                    file.durable = bytes.clone();
                    file.current = bytes;
                }
            }
        }
        report
    }

    /// Every file and directory in the current namespace with its path.
    fn paths(&self) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        let mut queue = vec![(ROOT, String::new())];
        while let Some((ino, path)) = queue.pop() {
            if let Some(Body::Dir(dir)) = self.inodes.get(&ino).map(|inode| &inode.body) {
                for (name, &child) in &dir.entries {
                    let child_path = format!("{path}/{}", name.to_string_lossy());
                    out.push((child, child_path.clone()));
                    queue.push((child, child_path));
                }
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }

    fn reachable(&self, entries: impl Fn(&DirData) -> &BTreeMap<OsString, u64>) -> HashSet<u64> {
        let mut seen = HashSet::from([ROOT]);
        let mut queue = vec![ROOT];
        while let Some(ino) = queue.pop() {
            if let Some(Body::Dir(dir)) = self.inodes.get(&ino).map(|inode| &inode.body) {
                for &child in entries(dir).values() {
                    if self.inodes.contains_key(&child) && seen.insert(child) {
                        queue.push(child);
                    }
                }
            }
        }
        seen
    }
}

/// The errno values used here (Linux), without a libc dependency.
pub mod libc_errno {
    pub const ENOENT: i32 = 2;
    pub const EIO: i32 = 5;
    pub const EEXIST: i32 = 17;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const EINVAL: i32 = 22;
    pub const EROFS: i32 = 30;
    pub const ENOSYS: i32 = 38;
    pub const ENOTEMPTY: i32 = 39;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    fn file(volume: &Volume, parent: u64, n: &str) -> Option<Vec<u8>> {
        let ino = volume.lookup(parent, name(n)).ok()?;
        Some(volume.read(ino, 0, usize::MAX).unwrap().to_vec())
    }

    #[test]
    fn synced_bytes_survive_and_unsynced_ones_are_lost() {
        let mut v = Volume::default();
        let (f, _) = v.create(ROOT, name("f"), Kind::File, 0o644, true).unwrap();
        v.sync(ROOT).unwrap();
        v.write(f, 0, b"hello").unwrap();
        v.sync(f).unwrap();
        v.write(f, 5, b" world").unwrap();
        let report = v.power_cut(Cut::LoseUnsynced);
        assert_eq!(file(&v, ROOT, "f").unwrap(), b"hello");
        assert_eq!(report.bytes_lost, 6);
        assert_eq!(report.files_reverted, 1);
    }

    #[test]
    fn a_failing_volume_refuses_changes_but_reads() {
        let mut v = Volume::default();
        let (f, _) = v.create(ROOT, name("f"), Kind::File, 0o644, true).unwrap();
        v.write(f, 0, b"kept").unwrap();
        v.set_failing(Some(libc_errno::EIO));
        assert_eq!(v.write(f, 4, b"x"), Err(libc_errno::EIO));
        assert_eq!(v.sync(f), Err(libc_errno::EIO));
        assert_eq!(
            v.create(ROOT, name("g"), Kind::File, 0o644, true),
            Err(libc_errno::EIO)
        );
        assert_eq!(v.read(f, 0, 10).unwrap(), b"kept");
        v.set_failing(None);
        v.sync(f).unwrap();
        v.sync(ROOT).unwrap();
        v.power_cut(Cut::LoseUnsynced);
        assert_eq!(file(&v, ROOT, "f").unwrap(), b"kept");
    }

    #[test]
    fn a_new_file_needs_its_directory_synced() {
        let mut v = Volume::default();
        let (f, _) = v.create(ROOT, name("f"), Kind::File, 0o644, true).unwrap();
        v.write(f, 0, b"data").unwrap();
        v.sync(f).unwrap();
        let report = v.power_cut(Cut::LoseUnsynced);
        assert_eq!(file(&v, ROOT, "f"), None);
        assert_eq!(report.entries_lost, ["/f"]);

        let (f, _) = v.create(ROOT, name("f"), Kind::File, 0o644, true).unwrap();
        v.sync(ROOT).unwrap();
        v.write(f, 0, b"data").unwrap();
        v.power_cut(Cut::LoseUnsynced);
        assert_eq!(
            file(&v, ROOT, "f").unwrap(),
            b"",
            "entry durable, bytes not"
        );
    }

    #[test]
    fn an_unsynced_rename_or_removal_is_undone() {
        let mut v = Volume::default();
        let (old, _) = v.create(ROOT, name("a"), Kind::File, 0o644, true).unwrap();
        v.write(old, 0, b"old").unwrap();
        v.sync(old).unwrap();
        let (new, _) = v
            .create(ROOT, name("a.tmp"), Kind::File, 0o644, true)
            .unwrap();
        v.write(new, 0, b"new").unwrap();
        v.sync(new).unwrap();
        v.sync(ROOT).unwrap();
        v.rename(ROOT, name("a.tmp"), ROOT, name("a"), false)
            .unwrap();
        assert_eq!(file(&v, ROOT, "a").unwrap(), b"new");
        v.power_cut(Cut::LoseUnsynced);
        assert_eq!(file(&v, ROOT, "a").unwrap(), b"old");
        assert_eq!(file(&v, ROOT, "a.tmp").unwrap(), b"new");

        v.remove(ROOT, name("a"), Kind::File).unwrap();
        v.power_cut(Cut::LoseUnsynced);
        assert_eq!(file(&v, ROOT, "a").unwrap(), b"old");
    }

    #[test]
    fn a_torn_cut_keeps_a_prefix_of_the_unsynced_writes() {
        let mut torn = 0;
        for seed in 0..64 {
            let mut v = Volume::default();
            let (f, _) = v.create(ROOT, name("f"), Kind::File, 0o644, true).unwrap();
            v.sync(ROOT).unwrap();
            v.write(f, 0, b"aaaa").unwrap();
            v.sync(f).unwrap();
            v.write(f, 4, b"bbbb").unwrap();
            v.write(f, 8, b"cccc").unwrap();
            let report = v.power_cut(Cut::Torn { seed });
            let after = file(&v, ROOT, "f").unwrap();
            let full = b"aaaabbbbcccc";
            assert!(after.len() >= 4 && full.starts_with(&after), "{after:?}");
            assert_eq!(report.bytes_lost, (full.len() - after.len()) as u64);
            torn += report.torn_writes;
        }
        assert!(torn > 0, "some seed tears a write");
    }

    #[test]
    fn directories_cannot_lose_their_children_while_they_have_some() {
        let mut v = Volume::default();
        let (d, _) = v.create(ROOT, name("d"), Kind::Dir, 0o755, true).unwrap();
        v.create(d, name("f"), Kind::File, 0o644, true).unwrap();
        assert_eq!(
            v.remove(ROOT, name("d"), Kind::Dir),
            Err(libc_errno::ENOTEMPTY)
        );
        v.remove(d, name("f"), Kind::File).unwrap();
        v.remove(ROOT, name("d"), Kind::Dir).unwrap();
        assert_eq!(v.lookup(ROOT, name("d")), Err(libc_errno::ENOENT));
    }
}
