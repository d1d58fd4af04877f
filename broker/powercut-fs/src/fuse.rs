//! The FUSE side: kernel requests translated into operations on the
//! [`Volume`]. Attributes and entries are never cached by the kernel (TTL
//! zero) and file data is dropped from the page cache on every open, so
//! what a program reads is always what the volume holds.

use crate::volume::{Body, Inode, Kind, Volume, libc_errno};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

const TTL: Duration = Duration::ZERO;
/// What `statfs` reports: plenty of room, so that programs never refuse
/// to write for lack of space.
const BLOCK_SIZE: u32 = 4096;
const TOTAL_BLOCKS: u64 = 1 << 28;

pub(crate) struct Fs {
    pub volume: Arc<Mutex<Volume>>,
    owner: (u32, u32),
}

impl Fs {
    pub fn new(volume: Arc<Mutex<Volume>>) -> Self {
        // Files belong to whoever runs the tests (the mount is private to
        // that user).
        let owner = std::fs::metadata("/proc/self").map_or((0, 0), |m| (m.uid(), m.gid()));
        Self { volume, owner }
    }

    fn volume(&self) -> MutexGuard<'_, Volume> {
        self.volume.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn attr(&self, ino: u64, inode: &Inode) -> FileAttr {
        let size = inode.size();
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: inode.mtime,
            mtime: inode.mtime,
            ctime: inode.mtime,
            crtime: inode.mtime,
            kind: match inode.kind() {
                Kind::File => FileType::RegularFile,
                Kind::Dir => FileType::Directory,
            },
            perm: inode.perm,
            nlink: match inode.kind() {
                Kind::File => 1,
                Kind::Dir => 2,
            },
            uid: self.owner.0,
            gid: self.owner.1,
            rdev: 0,
            flags: 0,
            blksize: BLOCK_SIZE,
        }
    }

    fn attr_of(&self, volume: &Volume, ino: u64) -> Result<FileAttr, Errno> {
        volume
            .get(ino)
            .map(|inode| self.attr(ino, inode))
            .ok_or(Errno::ENOENT)
    }

    fn make(&self, parent: INodeNo, name: &OsStr, kind: Kind, mode: u32, reply: ReplyEntry) {
        let mut volume = self.volume();
        let made = volume
            .create(parent.0, name, kind, perm(mode), true)
            .map_err(Errno::from_i32)
            .and_then(|(ino, _)| self.attr_of(&volume, ino));
        match made {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }
}

fn perm(mode: u32) -> u16 {
    (mode & 0o7777) as u16
}

fn reply_empty(reply: ReplyEmpty, result: Result<(), i32>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(Errno::from_i32(e)),
    }
}

impl Filesystem for Fs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let volume = self.volume();
        match volume
            .lookup(parent.0, name)
            .map_err(Errno::from_i32)
            .and_then(|ino| self.attr_of(&volume, ino))
        {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr_of(&self.volume(), ino.0) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut volume = self.volume();
        let mut result = Ok(());
        if let Some(size) = size {
            result = result.and_then(|()| volume.set_len(ino.0, size));
        }
        if let Some(mode) = mode {
            result = result.and_then(|()| volume.set_perm(ino.0, perm(mode)));
        }
        match result
            .map_err(Errno::from_i32)
            .and_then(|()| self.attr_of(&volume, ino.0))
        {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        // Only regular files: the brokers make nothing else.
        if mode & 0o170000 != 0o100000 {
            return reply.error(Errno::from_i32(libc_errno::EINVAL));
        }
        self.make(parent, name, Kind::File, mode, reply);
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        self.make(parent, name, Kind::Dir, mode, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(reply, self.volume().remove(parent.0, name, Kind::File));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(reply, self.volume().remove(parent.0, name, Kind::Dir));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            return reply.error(Errno::from_i32(libc_errno::EINVAL));
        }
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        reply_empty(
            reply,
            self.volume()
                .rename(parent.0, name, newparent.0, newname, no_replace),
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.volume().get(ino.0) {
            // No FOPEN_KEEP_CACHE: the kernel drops cached pages on open.
            Some(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        const O_EXCL: i32 = 0o200;
        let mut volume = self.volume();
        let created = volume
            .create(parent.0, name, Kind::File, perm(mode), flags & O_EXCL != 0)
            .map_err(Errno::from_i32)
            .and_then(|(ino, _)| self.attr_of(&volume, ino));
        match created {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.volume().read(ino.0, offset, size as usize) {
            Ok(bytes) => reply.data(bytes),
            Err(e) => reply.error(Errno::from_i32(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.volume().write(ino.0, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(Errno::from_i32(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() makes nothing durable.
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        if !self.volume().holds_sync_of(ino.0) {
            return reply_empty(reply, self.volume().sync(ino.0));
        }
        // A stalled disk: answer from another thread once released, so
        // that every other request (reads above all) is served meanwhile.
        // The kernel keeps the file's inode locked until the answer, as for
        // any FUSE fsync, so writes to this one file wait.
        self.volume().note_held_sync(true);
        let shared = self.volume.clone();
        std::thread::spawn(move || {
            let lock = || shared.lock().unwrap_or_else(PoisonError::into_inner);
            let mut volume = lock();
            while volume.holds_sync_of(ino.0) {
                drop(volume);
                std::thread::sleep(Duration::from_millis(5));
                volume = lock();
            }
            // Released by a power cut: the disk never answered.
            let synced = if volume.held_syncs_lost() {
                Err(libc_errno::EIO)
            } else {
                volume.sync(ino.0)
            };
            volume.note_held_sync(false);
            drop(volume);
            reply_empty(reply, synced);
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.volume().get(ino.0).map(Inode::kind) {
            Some(Kind::Dir) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Some(Kind::File) => reply.error(Errno::ENOTDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let volume = self.volume();
        let Some(Body::Dir(dir)) = volume.get(ino.0).map(|inode| &inode.body) else {
            return reply.error(Errno::ENOTDIR);
        };
        let dots = [
            (ino.0, FileType::Directory, OsStr::new(".")),
            (ino.0, FileType::Directory, OsStr::new("..")),
        ];
        let children = dir.entries.iter().map(|(name, &child)| {
            let kind = match volume.get(child).map(Inode::kind) {
                Some(Kind::Dir) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            (child, kind, name.as_os_str())
        });
        for (i, (child, kind, name)) in dots
            .into_iter()
            .chain(children)
            .enumerate()
            .skip(offset as usize)
        {
            if reply.add(INodeNo(child), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        // A directory's fsync makes its entries durable; same volume call.
        self.fsync(req, ino, fh, datasync, reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(
            TOTAL_BLOCKS,
            TOTAL_BLOCKS,
            TOTAL_BLOCKS,
            1 << 20,
            1 << 20,
            BLOCK_SIZE,
            255,
            BLOCK_SIZE,
        );
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::from_i32(libc_errno::ENOSYS));
    }
}
