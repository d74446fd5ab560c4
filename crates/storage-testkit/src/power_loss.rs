//! A filesystem that can lose power: a FUSE mount, kept in memory, that remembers for every file
//! what has reached the "disk" (the bytes as of its last `fsync`) and what is still only in the
//! "page cache" (every write since). [`PowerLossFs::power_loss`] returns the files as a machine
//! would find them after the power went out at that instant, while the workload keeps running:
//! each call is one crash point, and a test can take hundreds of them from one run.
//!
//! The model is LazyFS's: unsynced data is lost, synced data is not. [`Survivors::InOrderPrefix`]
//! goes further, and keeps for each file a random prefix of its unsynced writes, as a disk that
//! wrote some of its queue in order before the power failed. Creating, removing and renaming files
//! is durable at once (a journaling filesystem's metadata); only file contents and sizes wait for
//! `fsync`. Each write the kernel hands over survives whole or not at all: torn sectors are not
//! simulated. LazyFS itself is not packaged for the test machines (it is C++ over libfuse 3, built
//! from source), and this model is all SQLite's durability argument rests on.
//!
//! Mounting needs `/dev/fuse` and the right to mount (root, or `fusermount3` installed); without
//! them [`PowerLossFs::mount`] says so.

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, MountOption, OpenFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// Which unsynced writes survive a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Survivors {
    /// None: every file is as of its last `fsync` (LazyFS's `clear-cache`).
    Nothing,
    /// For each file, a random prefix of its unsynced writes and truncations, in the order they
    /// were made.
    InOrderPrefix,
}

/// A mounted [`PowerLossFs`]. Unmounted when dropped (close every file on it first).
pub struct PowerLossFs {
    state: Arc<Mutex<State>>,
    session: Option<fuser::BackgroundSession>,
    /// The kernel's id for this mount's FUSE connection (its device's minor number).
    connection: Option<u64>,
    mountpoint: tempfile::TempDir,
}

impl std::fmt::Debug for PowerLossFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerLossFs").field("mountpoint", &self.mountpoint.path()).finish_non_exhaustive()
    }
}

/// The files a power loss left behind: name and contents.
pub type Image = BTreeMap<String, Vec<u8>>;

impl PowerLossFs {
    /// Mounts an empty filesystem on a new temporary directory.
    pub fn mount() -> std::io::Result<Self> {
        let mountpoint = tempfile::tempdir()?;
        let state = Arc::new(Mutex::new(State::default()));
        let mut config = Config::default();
        config.mount_options = vec![MountOption::FSName("aragora-power-loss".into()), MountOption::RW];
        let session = fuser::spawn_mount(Volume(Arc::clone(&state)), mountpoint.path(), &config).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot mount the power-loss filesystem on {} ({e}): it needs /dev/fuse and root or fusermount3",
                    mountpoint.path().display()
                ),
            )
        })?;
        let connection = std::fs::metadata(mountpoint.path()).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            let dev = m.dev();
            (dev & 0xff) | ((dev >> 12) & 0xffff_ff00)
        });
        Ok(Self { state, session: Some(session), connection, mountpoint })
    }

    /// The directory the filesystem is mounted on.
    pub fn path(&self) -> &Path {
        self.mountpoint.path()
    }

    /// The files as they would be found after a power loss now. The filesystem goes on as if
    /// nothing happened; `seed` picks the surviving prefixes for [`Survivors::InOrderPrefix`].
    pub fn power_loss(&self, survivors: Survivors, seed: u64) -> Image {
        let mut rng = fastrand::Rng::with_seed(seed);
        let state = lock(&self.state);
        state
            .names
            .iter()
            .filter_map(|(name, ino)| state.files.get(ino).map(|file| (name, file)))
            .map(|(name, file)| {
                let mut bytes = file.durable.clone();
                if survivors == Survivors::InOrderPrefix {
                    let kept = rng.usize(0..=file.unsynced.len());
                    for change in file.unsynced.iter().take(kept) {
                        change.apply(&mut bytes);
                    }
                }
                (name.clone(), bytes)
            })
            .collect()
    }

    /// Bytes written and not yet synced, over every file (how much a power loss now would drop).
    pub fn unsynced_bytes(&self) -> usize {
        lock(&self.state).files.values().map(|f| f.unsynced.iter().map(Change::len).sum::<usize>()).sum()
    }
}

impl Drop for PowerLossFs {
    fn drop(&mut self) {
        if let Some(session) = self.session.take()
            && session.umount_and_join().is_err()
        {
            // Something still has a file open (a thread of the program under test, closing).
            // The filesystem is served by a thread of this process: were it to end with a
            // request of that straggler unanswered, the process could never exit. So the
            // connection is aborted (later requests fail at once), then the mount detached.
            self.abort();
            let _ = std::process::Command::new("umount").arg("-l").arg(self.mountpoint.path()).status();
        }
    }
}

impl PowerLossFs {
    /// Aborts the FUSE connection through `fusectl` (mounting it if needed).
    fn abort(&self) {
        let Some(connection) = self.connection else { return };
        let control = Path::new("/sys/fs/fuse/connections");
        if !control.join(connection.to_string()).exists() {
            let _ = std::process::Command::new("mount").args(["-t", "fusectl", "fusectl"]).arg(control).status();
        }
        let _ = std::fs::write(control.join(connection.to_string()).join("abort"), "1");
    }
}

/// Writes `image` as files into `dir` (a real directory), for a program to open after the crash.
pub fn restore(image: &Image, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    image
        .iter()
        .map(|(name, bytes)| {
            let path = dir.join(name);
            std::fs::write(&path, bytes)?;
            Ok(path)
        })
        .collect()
}

const ROOT: INodeNo = INodeNo::ROOT;
/// Attributes are never cached by the kernel: sizes change on every write.
const TTL: Duration = Duration::ZERO;

#[derive(Default)]
struct State {
    names: BTreeMap<String, INodeNo>,
    /// Every file, including unlinked ones still open.
    files: BTreeMap<INodeNo, File>,
    next: u64,
}

#[derive(Default)]
struct File {
    current: Vec<u8>,
    durable: Vec<u8>,
    unsynced: Vec<Change>,
    mode: u16,
}

enum Change {
    Write { offset: usize, data: Vec<u8> },
    Truncate(usize),
}

impl Change {
    fn apply(&self, bytes: &mut Vec<u8>) {
        match self {
            Self::Write { offset, data } => {
                let end = offset + data.len();
                if bytes.len() < end {
                    bytes.resize(end, 0);
                }
                bytes[*offset..end].copy_from_slice(data);
            }
            Self::Truncate(len) => bytes.resize(*len, 0),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Write { data, .. } => data.len(),
            Self::Truncate(_) => 0,
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn attr(ino: INodeNo, file: Option<&File>) -> FileAttr {
    let (kind, size, perm) = match file {
        Some(file) => (FileType::RegularFile, file.current.len() as u64, file.mode),
        None => (FileType::Directory, 0, 0o755),
    };
    let now = SystemTime::now();
    FileAttr {
        ino,
        size,
        blocks: size.div_ceil(512),
        atime: now,
        mtime: now,
        ctime: now,
        crtime: now,
        kind,
        perm,
        nlink: 1,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// The FUSE side: one flat directory of files.
struct Volume(Arc<Mutex<State>>);

impl Filesystem for Volume {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let state = lock(&self.0);
        match (parent == ROOT).then(|| state.names.get(&*name.to_string_lossy())).flatten() {
            Some(ino) => reply.entry(&TTL, &attr(*ino, state.files.get(ino)), Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let state = lock(&self.0);
        match state.files.get(&ino) {
            Some(file) => reply.attr(&TTL, &attr(ino, Some(file))),
            None if ino == ROOT => reply.attr(&TTL, &attr(ROOT, None)),
            None => reply.error(Errno::ENOENT),
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
        let mut state = lock(&self.0);
        let Some(file) = state.files.get_mut(&ino) else {
            return if ino == ROOT { reply.attr(&TTL, &attr(ROOT, None)) } else { reply.error(Errno::ENOENT) };
        };
        if let Some(mode) = mode {
            file.mode = (mode & 0o7777) as u16;
        }
        if let Some(size) = size {
            let change = Change::Truncate(size as usize);
            change.apply(&mut file.current);
            file.unsynced.push(change);
        }
        reply.attr(&TTL, &attr(ino, Some(file)));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = lock(&self.0);
        match (parent == ROOT).then(|| state.names.remove(&*name.to_string_lossy())).flatten() {
            Some(_) => reply.ok(),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        new_parent: INodeNo,
        new_name: &OsStr,
        _flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut state = lock(&self.0);
        match (parent == ROOT && new_parent == ROOT).then(|| state.names.remove(&*name.to_string_lossy())).flatten() {
            Some(ino) => {
                state.names.insert(new_name.to_string_lossy().into_owned(), ino);
                reply.ok();
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match lock(&self.0).files.contains_key(&ino) || ino == ROOT {
            true => reply.opened(FileHandle(0), FopenFlags::empty()),
            false => reply.error(Errno::ENOENT),
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
        let state = lock(&self.0);
        let Some(file) = state.files.get(&ino) else { return reply.error(Errno::ENOENT) };
        let start = (offset as usize).min(file.current.len());
        let end = start.saturating_add(size as usize).min(file.current.len());
        reply.data(&file.current[start..end]);
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
        let mut state = lock(&self.0);
        let Some(file) = state.files.get_mut(&ino) else { return reply.error(Errno::ENOENT) };
        let change = Change::Write { offset: offset as usize, data: data.to_vec() };
        change.apply(&mut file.current);
        file.unsynced.push(change);
        reply.written(data.len() as u32);
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let mut state = lock(&self.0);
        let Some(file) = state.files.get_mut(&ino) else { return reply.error(Errno::ENOENT) };
        file.durable.clone_from(&file.current);
        file.unsynced.clear();
        reply.ok();
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        if ino != ROOT {
            return reply.error(Errno::ENOTDIR);
        }
        let state = lock(&self.0);
        let entries = [(ROOT, FileType::Directory, ".".to_owned()), (ROOT, FileType::Directory, "..".to_owned())]
            .into_iter()
            .chain(state.names.iter().map(|(name, ino)| (*ino, FileType::RegularFile, name.clone())));
        for (i, (ino, kind, name)) in entries.enumerate().skip(offset as usize) {
            if reply.add(ino, i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        reply.ok();
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn create(&self, _req: &Request, parent: INodeNo, name: &OsStr, mode: u32, _umask: u32, flags: i32, reply: ReplyCreate) {
        /// Linux's `O_EXCL`.
        const O_EXCL: i32 = 0o200;
        if parent != ROOT {
            return reply.error(Errno::ENOENT);
        }
        let mut state = lock(&self.0);
        let name = name.to_string_lossy().into_owned();
        let ino = match state.names.get(&name) {
            Some(_) if flags & O_EXCL != 0 => return reply.error(Errno::EEXIST),
            Some(ino) => *ino,
            None => {
                state.next = state.next.max(1) + 1;
                let ino = INodeNo(state.next);
                state.files.insert(ino, File { mode: (mode & 0o7777) as u16, ..File::default() });
                state.names.insert(name, ino);
                ino
            }
        };
        reply.created(&TTL, &attr(ino, state.files.get(&ino)), Generation(0), FileHandle(0), FopenFlags::empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    #[test]
    fn unsynced_writes_are_lost_and_synced_ones_kept() {
        let fs = PowerLossFs::mount().expect("mount");
        let path = fs.path().join("f");
        let mut file = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).expect("create");
        file.write_all(b"synced").expect("write");
        file.sync_all().expect("sync");
        file.seek(SeekFrom::Start(0)).expect("seek");
        file.write_all(b"SYNCED and more").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"SYNCED and more", "the running system sees every write");
        assert_eq!(fs.power_loss(Survivors::Nothing, 1)["f"], b"synced");
        let prefixes: std::collections::BTreeSet<Vec<u8>> =
            (0..64).map(|seed| fs.power_loss(Survivors::InOrderPrefix, seed)["f"].clone()).collect();
        assert!(prefixes.contains(b"synced".as_slice()) && prefixes.contains(b"SYNCED and more".as_slice()), "{prefixes:?}");
        file.sync_data().expect("sync");
        assert_eq!(fs.power_loss(Survivors::Nothing, 2)["f"], b"SYNCED and more");
        drop(file);
        std::fs::remove_file(&path).expect("unlink");
        assert!(fs.power_loss(Survivors::Nothing, 3).is_empty());
    }
}
