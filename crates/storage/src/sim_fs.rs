//! A simulated disk: in memory, deterministic from a seed, and faithful to what a real disk does at a crash.
//!
//! # The model
//!
//! Every file has a *current* content (what reads see) and a *durable* content (what survives a crash), and a
//! list of the writes and length changes made since its last `sync_data`. Every directory likewise has current and
//! durable name tables and a list of the creates, renames and removes made since its last `sync_dir`.
//!
//! At [`SimFs::crash`], for each file a random prefix of its unsynced operations reaches the disk and the next
//! write (if any) may reach it torn: cut at a random byte, or (the file's new length durable before its data, as
//! XFS allows) with the page holding a random byte and every page after it reading as zeros; the rest is lost. For each directory a random prefix of its
//! unsynced name operations survives. So: data written but not synced is lost whole or in part; a create, rename
//! or remove is durable only after the directory is synced.
//!
//! An fsync that fails (an injected error) drops the unsynced operations from the durable side while reads still
//! see them: what Linux does when writeback fails (the pages are marked clean), and the reason a caller must never
//! retry an fsync and carry on. A later successful fsync then makes a file with a hole of zeros durable.
//!
//! What it does not model: unsynced writes reaching the disk out of order (a later write durable while an earlier
//! one is not), and latent sector errors on read. [`SimFs::flip_bit`] models damage at rest.
//!
//! A `SimFs` is a cheap handle (`Rc<RefCell<..>>`): clone it, hand a clone to a `DiskStorage`, drop the storage,
//! call [`SimFs::crash`] and open a new `DiskStorage` over what survived:
//!
//! ```
//! use keel_raft::{Entry, HardState, PersistUpdate};
//! use keel_storage::{DiskStorage, Faults, SimFs, Storage};
//!
//! let disk = SimFs::new(42); // every random choice of this disk comes from the seed
//! let mut storage = DiskStorage::open(disk.clone(), "/node1").unwrap();
//! let update = PersistUpdate {
//!     hard_state: Some(HardState { term: 1, voted_for: Some(1) }),
//!     truncate_from: Some(1),
//!     entries: vec![Entry { index: 1, term: 1, data: b"x".to_vec() }],
//!     ..PersistUpdate::default()
//! };
//! storage.persist(&update).unwrap(); // acknowledged: survives any crash
//!
//! // The power goes at the next disk operation: the next persist fails and stops this storage.
//! disk.set_faults(Faults { halt_after_ops: Some(disk.ops()), ..Faults::default() });
//! let next = PersistUpdate {
//!     truncate_from: Some(2),
//!     entries: vec![Entry { index: 2, term: 1, data: b"y".to_vec() }],
//!     ..PersistUpdate::default()
//! };
//! assert!(storage.persist(&next).is_err());
//! drop(storage);
//!
//! disk.crash(7); // what survives is chosen from this seed
//! let restarted = DiskStorage::open(disk.clone(), "/node1").unwrap();
//! assert_eq!(restarted.load().unwrap().entries.len(), 1);
//! ```
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::fs::{FileSystem, WalFile};
use crate::segment::PAGE_SIZE_BYTES;

/// Injected faults. Operations are counted from 1 since the disk was made: appends, length changes, data syncs,
/// creates, renames, removes and directory syncs (reads and listings are not counted and never fail).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// The operation with this number fails with an I/O error.
    pub fail_op: Option<u64>,
    /// Each operation fails with an I/O error with this probability, in parts per million.
    pub io_error_ppm: u32,
    /// Once this many operations have been made, the power is gone: every later operation fails and does nothing.
    /// Call [`SimFs::crash`] to see what survived.
    pub halt_after_ops: Option<u64>,
}

/// How many operations of each kind were made (failed ones included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    pub appends: u64,
    pub set_lens: u64,
    pub syncs_data: u64,
    pub creates: u64,
    pub renames: u64,
    pub removes: u64,
    pub syncs_dir: u64,
}

impl OpCounts {
    pub fn total(&self) -> u64 {
        self.appends + self.set_lens + self.syncs_data + self.creates + self.renames + self.removes + self.syncs_dir
    }
}

/// Why an operation failed.
#[derive(Clone, Copy, Debug)]
enum Failure {
    /// The power is gone (`halt_after_ops`): the operation never reached the disk, and what earlier unsynced
    /// operations left behind is for the crash to decide.
    PowerLost,
    /// An injected I/O error: for a sync, the unsynced operations are lost (see the module docs).
    Injected { op_number: u64 },
}

impl From<Failure> for io::Error {
    fn from(failure: Failure) -> io::Error {
        match failure {
            Failure::PowerLost => io_error("power lost"),
            Failure::Injected { op_number } => io_error(&format!("injected I/O error at operation {op_number}")),
        }
    }
}

#[derive(Clone, Copy)]
enum Op {
    Append,
    SetLen,
    SyncData,
    Create,
    Rename,
    Remove,
    SyncDir,
}

/// A shared handle to one simulated disk.
#[derive(Clone)]
pub struct SimFs {
    disk: Rc<RefCell<Disk>>,
}

#[derive(Clone)]
struct Disk {
    inodes: Vec<Inode>,
    dirs: BTreeMap<PathBuf, Dir>,
    rng: SplitMix64,
    faults: Faults,
    counts: OpCounts,
    /// Bumped by every crash, so that a file handle from before the crash cannot touch the disk after it.
    generation: u64,
}

#[derive(Clone, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    unsynced: Vec<DataOp>,
}

#[derive(Clone)]
enum DataOp {
    Write { offset: usize, bytes: Vec<u8> },
    SetLen(usize),
}

impl DataOp {
    fn apply(&self, to: &mut Vec<u8>) {
        match self {
            DataOp::Write { offset, bytes } => write_at(to, *offset, bytes),
            DataOp::SetLen(len) => to.resize(*len, 0),
        }
    }
}

fn write_at(to: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    if to.len() < offset + bytes.len() {
        to.resize(offset + bytes.len(), 0);
    }
    to[offset..offset + bytes.len()].copy_from_slice(bytes);
}

#[derive(Clone, Default)]
struct Dir {
    names: BTreeMap<String, usize>,
    durable: BTreeMap<String, usize>,
    unsynced: Vec<DirOp>,
}

#[derive(Clone)]
enum DirOp {
    Link(String, usize),
    Unlink(String),
    Rename(String, String),
}

impl DirOp {
    fn apply(&self, to: &mut BTreeMap<String, usize>) {
        match self {
            DirOp::Link(name, inode) => {
                to.insert(name.clone(), *inode);
            }
            DirOp::Unlink(name) => {
                to.remove(name);
            }
            DirOp::Rename(from, to_name) => {
                if let Some(inode) = to.remove(from) {
                    to.insert(to_name.clone(), inode);
                }
            }
        }
    }
}

/// SplitMix64: small, fast, and its output is fixed by its definition, so a seed replays forever.
#[derive(Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant at these sizes.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

fn io_error(what: &str) -> io::Error {
    io::Error::other(format!("simulated disk: {what}"))
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("simulated disk: no such file {}", path.display()))
}

fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| not_found(path))?;
    Ok((dir, name.to_owned()))
}

impl SimFs {
    /// An empty disk whose random choices (injected errors, what a crash keeps) all come from `seed`.
    pub fn new(seed: u64) -> SimFs {
        let disk = Disk {
            inodes: Vec::new(),
            dirs: BTreeMap::new(),
            rng: SplitMix64(seed),
            faults: Faults::default(),
            counts: OpCounts::default(),
            generation: 0,
        };
        SimFs { disk: Rc::new(RefCell::new(disk)) }
    }

    /// An independent copy of this disk as it is now (files, what is durable, faults, generator): for trying
    /// several crashes or damages from one state.
    pub fn fork(&self) -> SimFs {
        SimFs { disk: Rc::new(RefCell::new(self.disk.borrow().clone())) }
    }

    pub fn set_faults(&self, faults: Faults) {
        self.disk.borrow_mut().faults = faults;
    }

    /// Operations made so far (see [`Faults`] for what counts).
    pub fn ops(&self) -> u64 {
        self.disk.borrow().counts.total()
    }

    pub fn op_counts(&self) -> OpCounts {
        self.disk.borrow().counts
    }

    /// The machine loses power and reboots: only what was durable survives, plus, per file, a random prefix of
    /// its unsynced writes (the last possibly torn at a random byte), and per directory a random prefix of its
    /// unsynced name changes, all chosen from `seed`. Faults are cleared (the disk works again); open file handles
    /// become invalid.
    pub fn crash(&self, seed: u64) {
        let mut disk = self.disk.borrow_mut();
        let mut rng = SplitMix64(seed);
        for inode in &mut disk.inodes {
            let unsynced = std::mem::take(&mut inode.unsynced);
            let kept = rng.below(unsynced.len() as u64 + 1) as usize;
            for op in &unsynced[..kept] {
                op.apply(&mut inode.durable);
            }
            if let Some(DataOp::Write { offset, bytes }) = unsynced.get(kept) {
                let torn = rng.below(bytes.len() as u64 + 1) as usize;
                if rng.below(2) == 0 {
                    write_at(&mut inode.durable, *offset, &bytes[..torn]);
                } else {
                    // The new length reached the disk but only whole pages of the data: the page holding the
                    // tear point and every page after it read as zeros.
                    let written = ((offset + torn) / PAGE_SIZE_BYTES * PAGE_SIZE_BYTES).saturating_sub(*offset);
                    write_at(&mut inode.durable, *offset, &bytes[..written]);
                    write_at(&mut inode.durable, offset + written, &vec![0; bytes.len() - written]);
                }
            }
            inode.data = inode.durable.clone();
        }
        for dir in disk.dirs.values_mut() {
            let unsynced = std::mem::take(&mut dir.unsynced);
            let kept = rng.below(unsynced.len() as u64 + 1) as usize;
            for op in &unsynced[..kept] {
                op.apply(&mut dir.durable);
            }
            dir.names = dir.durable.clone();
        }
        disk.faults = Faults::default();
        disk.generation += 1;
        disk.free_unreachable();
    }

    /// Damage at rest: flips one bit of `path` (in what reads see and in what is durable). Returns false if the
    /// file has no such bit.
    pub fn flip_bit(&self, path: &Path, bit_offset: u64) -> bool {
        let mut disk = self.disk.borrow_mut();
        let Ok(inode) = disk.lookup(path) else { return false };
        let byte = (bit_offset / 8) as usize;
        let mask = 1u8 << (bit_offset % 8);
        let inode = &mut disk.inodes[inode];
        if byte >= inode.data.len() {
            return false;
        }
        inode.data[byte] ^= mask;
        if let Some(b) = inode.durable.get_mut(byte) {
            *b ^= mask;
        }
        true
    }

    /// Bytes held for file contents (current, durable and unsynced): what a simulation costs in memory.
    pub fn bytes_held(&self) -> usize {
        let disk = self.disk.borrow();
        let unsynced = |i: &Inode| -> usize {
            i.unsynced.iter().map(|op| if let DataOp::Write { bytes, .. } = op { bytes.len() } else { 0 }).sum()
        };
        disk.inodes.iter().map(|i| i.data.len() + i.durable.len() + unsynced(i)).sum()
    }

    /// The current length of `path`, if it exists.
    pub fn file_len(&self, path: &Path) -> Option<u64> {
        let disk = self.disk.borrow();
        disk.lookup(path).ok().map(|inode| disk.inodes[inode].data.len() as u64)
    }
}

impl Disk {
    /// Counts an operation and decides whether it fails.
    fn begin(&mut self, op: Op) -> Result<(), Failure> {
        let made = self.counts.total();
        if self.faults.halt_after_ops.is_some_and(|halt| made >= halt) {
            return Err(Failure::PowerLost);
        }
        let counter = match op {
            Op::Append => &mut self.counts.appends,
            Op::SetLen => &mut self.counts.set_lens,
            Op::SyncData => &mut self.counts.syncs_data,
            Op::Create => &mut self.counts.creates,
            Op::Rename => &mut self.counts.renames,
            Op::Remove => &mut self.counts.removes,
            Op::SyncDir => &mut self.counts.syncs_dir,
        };
        *counter += 1;
        let number = made + 1;
        let random_failure =
            self.faults.io_error_ppm > 0 && self.rng.below(1_000_000) < u64::from(self.faults.io_error_ppm);
        if self.faults.fail_op == Some(number) || random_failure {
            return Err(Failure::Injected { op_number: number });
        }
        Ok(())
    }

    /// Frees the bytes of files no name can ever reach again (not in any directory, durable or not, nor in a
    /// directory change a crash could still apply), so long simulations that delete segments stay small.
    fn free_unreachable(&mut self) {
        let mut reachable = vec![false; self.inodes.len()];
        for dir in self.dirs.values() {
            let linked = dir.unsynced.iter().filter_map(|op| match op {
                DirOp::Link(_, inode) => Some(inode),
                _ => None,
            });
            for &inode in dir.names.values().chain(dir.durable.values()).chain(linked) {
                reachable[inode] = true;
            }
        }
        for (inode, reachable) in self.inodes.iter_mut().zip(reachable) {
            if !reachable {
                *inode = Inode::default();
            }
        }
    }

    fn dir(&self, dir: &Path) -> io::Result<&Dir> {
        self.dirs.get(dir).ok_or_else(|| not_found(dir))
    }

    fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(dir).ok_or_else(|| not_found(dir))
    }

    fn lookup(&self, path: &Path) -> io::Result<usize> {
        let (dir, name) = split(path)?;
        self.dir(&dir)?.names.get(&name).copied().ok_or_else(|| not_found(path))
    }
}

impl FileSystem for SimFs {
    type File = SimFile;

    /// Directories are created durably at once: the WAL makes its directory once, at first start, and modelling
    /// that step's loss would only test the operator's `mkdir`.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut disk = self.disk.borrow_mut();
        for ancestor in dir.ancestors() {
            disk.dirs.entry(ancestor.to_path_buf()).or_default();
        }
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        // BTreeMap keys are sorted already.
        Ok(self.disk.borrow().dir(dir)?.names.keys().cloned().collect())
    }

    fn create(&self, path: &Path) -> io::Result<SimFile> {
        let mut disk = self.disk.borrow_mut();
        let (dir, name) = split(path)?;
        disk.dir(&dir)?;
        disk.begin(Op::Create)?;
        let existing = disk.dir(&dir)?.names.get(&name).copied();
        let inode = match existing {
            Some(inode) => {
                // O_TRUNC: the same file, emptied; the emptying is a data change like any other.
                let file = &mut disk.inodes[inode];
                file.data.clear();
                file.unsynced.push(DataOp::SetLen(0));
                inode
            }
            None => {
                let inode = disk.inodes.len();
                disk.inodes.push(Inode::default());
                let d = disk.dir_mut(&dir)?;
                d.names.insert(name.clone(), inode);
                d.unsynced.push(DirOp::Link(name, inode));
                inode
            }
        };
        Ok(SimFile { disk: Rc::clone(&self.disk), inode, generation: disk.generation })
    }

    fn open_append(&self, path: &Path) -> io::Result<SimFile> {
        let disk = self.disk.borrow();
        let inode = disk.lookup(path)?;
        Ok(SimFile { disk: Rc::clone(&self.disk), inode, generation: disk.generation })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let disk = self.disk.borrow();
        let inode = disk.lookup(path)?;
        Ok(disk.inodes[inode].data.clone())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.disk.borrow_mut();
        let (dir, from_name) = split(from)?;
        let (to_dir, to_name) = split(to)?;
        if dir != to_dir {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "simulated disk: rename across directories"));
        }
        disk.lookup(from)?;
        disk.begin(Op::Rename)?;
        let d = disk.dir_mut(&dir)?;
        if let Some(inode) = d.names.remove(&from_name) {
            d.names.insert(to_name.clone(), inode);
        }
        d.unsynced.push(DirOp::Rename(from_name, to_name));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.borrow_mut();
        let (dir, name) = split(path)?;
        disk.lookup(path)?;
        disk.begin(Op::Remove)?;
        let d = disk.dir_mut(&dir)?;
        d.names.remove(&name);
        d.unsynced.push(DirOp::Unlink(name));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut disk = self.disk.borrow_mut();
        disk.dir(dir)?;
        let result = disk.begin(Op::SyncDir);
        let d = disk.dir_mut(dir)?;
        match result {
            Ok(()) => {
                for op in std::mem::take(&mut d.unsynced) {
                    op.apply(&mut d.durable);
                }
            }
            // The unsynced changes are dropped from the durable side: a retry would not bring them back.
            Err(Failure::Injected { .. }) => d.unsynced.clear(),
            Err(Failure::PowerLost) => {}
        }
        disk.free_unreachable();
        Ok(result?)
    }
}

/// A file handle on a [`SimFs`].
pub struct SimFile {
    disk: Rc<RefCell<Disk>>,
    inode: usize,
    generation: u64,
}

impl SimFile {
    fn with<T>(&mut self, op: Op, f: impl FnOnce(&mut Inode) -> T) -> io::Result<T> {
        let mut disk = self.disk.borrow_mut();
        if disk.generation != self.generation {
            return Err(io_error("file handle from before a crash"));
        }
        disk.begin(op)?;
        Ok(f(&mut disk.inodes[self.inode]))
    }
}

impl WalFile for SimFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.with(Op::Append, |inode| {
            let offset = inode.data.len();
            inode.data.extend_from_slice(bytes);
            inode.unsynced.push(DataOp::Write { offset, bytes: bytes.to_vec() });
        })
    }

    fn set_len(&mut self, len_bytes: u64) -> io::Result<()> {
        let len = usize::try_from(len_bytes).map_err(|_| io_error("length beyond memory"))?;
        self.with(Op::SetLen, |inode| {
            inode.data.resize(len, 0);
            inode.unsynced.push(DataOp::SetLen(len));
        })
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut disk = self.disk.borrow_mut();
        if disk.generation != self.generation {
            return Err(io_error("file handle from before a crash"));
        }
        let result = disk.begin(Op::SyncData);
        let inode = &mut disk.inodes[self.inode];
        match result {
            Ok(()) => {
                for op in std::mem::take(&mut inode.unsynced) {
                    op.apply(&mut inode.durable);
                }
            }
            // Writeback failed, the pages are clean again, and those writes will never reach the disk, although
            // reads still return them until the crash.
            Err(Failure::Injected { .. }) => inode.unsynced.clear(),
            Err(Failure::PowerLost) => {}
        }
        Ok(result?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        PathBuf::from("/d")
    }

    fn file() -> PathBuf {
        dir().join("f")
    }

    fn fs_with_file() -> SimFs {
        let fs = SimFs::new(1);
        fs.create_dir_all(&dir()).unwrap();
        fs.create(&file()).unwrap();
        fs
    }

    #[test]
    fn synced_data_survives_every_crash_and_unsynced_data_survives_only_as_a_prefix() {
        for seed in 0..200 {
            let fs = fs_with_file();
            fs.sync_dir(&dir()).unwrap();
            let mut f = fs.open_append(&file()).unwrap();
            f.append(b"durable").unwrap();
            f.sync_data().unwrap();
            f.append(b"-maybe").unwrap();
            fs.crash(seed);
            let after = fs.read(&file()).unwrap();
            assert!(after.starts_with(b"durable") && after.len() <= 13, "seed {seed}: {after:?}");
            // What follows is a prefix of the unsynced write, then possibly zeros (length durable, data not).
            let written = after[7..].iter().zip(b"-maybe").take_while(|(a, b)| a == b).count();
            assert!(after[7 + written..].iter().all(|&b| b == 0), "seed {seed}: {after:?}");
        }
    }

    #[test]
    fn crashes_lose_tear_and_keep_unsynced_writes_depending_on_the_seed() {
        let mut outcomes = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let fs = fs_with_file();
            fs.sync_dir(&dir()).unwrap();
            fs.open_append(&file()).unwrap().append(b"abcdef").unwrap();
            fs.crash(seed);
            outcomes.insert(fs.read(&file()).unwrap().len());
        }
        assert!(outcomes.contains(&0) && outcomes.contains(&6) && outcomes.len() > 3, "{outcomes:?}");
    }

    #[test]
    fn a_create_is_durable_only_after_the_directory_is_synced() {
        let mut lost = 0;
        for seed in 0..100 {
            let fs = fs_with_file();
            let mut f = fs.open_append(&file()).unwrap();
            f.append(b"x").unwrap();
            f.sync_data().unwrap();
            fs.crash(seed);
            lost += usize::from(fs.read(&file()).is_err());
        }
        assert!(lost > 20 && lost < 80, "the unsynced create was lost in {lost} of 100 crashes");
        let fs = fs_with_file();
        fs.sync_dir(&dir()).unwrap();
        fs.crash(7);
        assert!(fs.read(&file()).is_ok());
    }

    #[test]
    fn a_failed_fsync_loses_the_writes_even_if_a_later_fsync_succeeds() {
        let fs = fs_with_file();
        fs.sync_dir(&dir()).unwrap();
        let mut f = fs.open_append(&file()).unwrap();
        f.append(b"lost").unwrap();
        fs.set_faults(Faults { fail_op: Some(fs.ops() + 1), ..Faults::default() });
        assert!(f.sync_data().is_err());
        assert_eq!(fs.read(&file()).unwrap(), b"lost", "reads still see the data: the trap");
        f.append(b"next").unwrap();
        f.sync_data().unwrap();
        fs.crash(0);
        assert_eq!(fs.read(&file()).unwrap(), b"\0\0\0\0next");
    }

    #[test]
    fn deleted_files_stop_costing_memory_once_the_deletion_is_durable() {
        let fs = fs_with_file();
        let mut f = fs.open_append(&file()).unwrap();
        f.append(&[1; 1000]).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(&dir()).unwrap();
        fs.remove_file(&file()).unwrap();
        assert!(fs.bytes_held() >= 2000, "a crash could still bring it back");
        fs.sync_dir(&dir()).unwrap();
        assert_eq!(fs.bytes_held(), 0);
    }

    #[test]
    fn a_halted_disk_does_nothing_and_handles_from_before_a_crash_are_refused() {
        let fs = fs_with_file();
        let mut f = fs.open_append(&file()).unwrap();
        fs.set_faults(Faults { halt_after_ops: Some(fs.ops()), ..Faults::default() });
        assert!(f.append(b"x").is_err());
        assert_eq!(fs.read(&file()).unwrap(), b"");
        fs.crash(0);
        assert!(f.append(b"x").is_err());
    }
}
