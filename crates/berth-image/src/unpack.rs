//! Layer unpack: a tar stream (plain, gzip, zstd or xz) into a directory,
//! with OCI/AUFS whiteouts turned into overlayfs ones.
//!
//! Safety: every entry is created relative to a directory file descriptor
//! opened with `openat2(RESOLVE_BENEATH)` under the layer root, so no path
//! component (`..`, an absolute path, a symlink made by an earlier entry)
//! can lead outside it; entries that try are refused with an error naming
//! them. On error the caller removes the half-made directory.
//!
//! Speed: the stream is read, decompressed and hashed (the diff ID) on a
//! second thread while this one creates files; parent directories stay
//! open in a small cache; there is no fsync per file, one `syncfs` at the end.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;

use crate::ErrorKind;
use crate::compression::{self, BUF_SIZE, Compression};
use crate::digest::{Algorithm, Digest, Hasher};

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("refusing tar entry {entry:?}: {reason}")]
    Unsafe { entry: String, reason: &'static str },
    #[error("tar entry {entry:?}: {op}: {source}")]
    Io { entry: String, op: &'static str, source: io::Error },
    #[error("invalid tar archive: {source}")]
    Archive { source: io::Error },
    #[error("tar entry {entry:?}: unexpected end of archive ({got} of {want} bytes)")]
    Truncated { entry: String, got: u64, want: u64 },
    #[error("decompress layer: {source}")]
    Decompress { source: io::Error },
    #[error("open layer directory {path}: {source}")]
    Target { path: PathBuf, source: io::Error },
}

impl UnpackError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            UnpackError::Io { .. } | UnpackError::Target { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidParameter,
        }
    }
}

/// What an unpack read and made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Length of the uncompressed tar stream.
    pub tar_size: u64,
    /// Bytes of regular-file content written (docker's layer size).
    pub content_size: u64,
    pub compression: Compression,
    pub entries: u64,
}

/// Why an entry path is refused, or its cleaned relative form.
pub fn clean_entry_path(raw: &[u8]) -> Result<PathBuf, &'static str> {
    if raw.is_empty() {
        return Err("empty name");
    }
    if raw.contains(&0) {
        return Err("name contains NUL");
    }
    if raw[0] == b'/' {
        return Err("absolute path");
    }
    let mut out = PathBuf::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err("path contains \"..\""),
            Component::RootDir | Component::Prefix(_) => return Err("absolute path"),
        }
    }
    Ok(out)
}

/// Whether a symlink at `entry` (relative to the layer root) pointing at
/// `target` leads outside the root. Absolute targets resolve inside the
/// container's root and are allowed, as docker allows them.
pub fn symlink_escapes(entry: &Path, target: &[u8]) -> bool {
    if target.first() == Some(&b'/') {
        return false;
    }
    let mut depth: i64 = entry.components().count() as i64 - 1;
    for c in Path::new(OsStr::from_bytes(target)).components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    false
}

/// A reader fed by the decompress-and-hash thread.
struct ChanReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(v)) => {
                    self.cur = v;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn feed(input: impl Read, tx: mpsc::SyncSender<io::Result<Vec<u8>>>) -> io::Result<(Compression, Digest, u64)> {
    let (c, mut r) = compression::decompress(input)?;
    let mut hasher = Hasher::new(Algorithm::Sha256);
    let mut total = 0u64;
    loop {
        let mut chunk = vec![0u8; BUF_SIZE];
        let mut n = 0;
        while n < chunk.len() {
            match r.read(&mut chunk[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                    return Err(e);
                }
            }
        }
        if n == 0 {
            return Ok((c, hasher.finish(), total));
        }
        chunk.truncate(n);
        hasher.update(&chunk);
        total += n as u64;
        if tx.send(Ok(chunk)).is_err() {
            return Ok((c, hasher.finish(), total));
        }
    }
}

/// Unpack the tar stream `input` into the existing directory `target`.
pub fn unpack(input: impl Read + Send, target: &Path) -> Result<Unpacked, UnpackError> {
    let root = open_dir(target).map_err(|source| UnpackError::Target { path: target.to_owned(), source })?;
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel(4);
        let feeder = s.spawn(move || feed(input, tx));
        let mut ex = Extractor::new(root);
        let mut reader = ChanReader { rx, cur: Vec::new(), pos: 0 };
        let result = ex.run(&mut reader);
        let result = result.and_then(|stats| {
            // The diff ID covers the whole stream, padding after the end too.
            io::copy(&mut reader, &mut io::sink()).map_err(|source| UnpackError::Archive { source })?;
            Ok(stats)
        });
        drop(reader);
        let fed = feeder.join().expect("unpack reader thread panicked");
        let (content_size, entries) = result?;
        let (compression, diff_id, tar_size) = fed.map_err(|source| UnpackError::Decompress { source })?;
        ex.finish()?;
        Ok(Unpacked { diff_id, tar_size, content_size, compression, entries })
    })
}

fn open_dir(p: &Path) -> io::Result<OwnedFd> {
    let c = cstr(p.as_os_str().as_bytes())?;
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains NUL"))
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// `openat2(dirfd, path, O_DIRECTORY, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`.
pub(crate) fn open_beneath(dirfd: RawFd, path: &Path) -> io::Result<OwnedFd> {
    let c = cstr(path.as_os_str().as_bytes())?;
    // struct open_how (linux/openat2.h): flags, mode, resolve.
    let how: [u64; 3] = [
        (libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC) as u64,
        0,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    ];
    let fd = unsafe { libc::syscall(libc::SYS_openat2, dirfd, c.as_ptr(), how.as_ptr(), std::mem::size_of_val(&how)) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

struct DirTimes {
    path: PathBuf,
    mtime: i64,
}

struct Extractor {
    root: OwnedFd,
    cache: HashMap<PathBuf, OwnedFd>,
    dir_times: Vec<DirTimes>,
    buf: Vec<u8>,
    umask: u32,
    euid: u32,
    egid: u32,
}

const CACHE_MAX: usize = 64;

fn read_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Umask:").map(|v| v.trim().to_owned())))
        .and_then(|v| u32::from_str_radix(&v, 8).ok())
        .unwrap_or(0o022)
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

impl Extractor {
    fn new(root: OwnedFd) -> Extractor {
        Extractor {
            root,
            cache: HashMap::new(),
            dir_times: Vec::new(),
            buf: vec![0u8; BUF_SIZE],
            umask: read_umask(),
            euid: nix::unistd::geteuid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
        }
    }

    fn run(&mut self, reader: &mut ChanReader) -> Result<(u64, u64), UnpackError> {
        let mut archive = tar::Archive::new(reader);
        let mut content = 0u64;
        let mut count = 0u64;
        for entry in archive.entries().map_err(|source| UnpackError::Archive { source })? {
            let mut entry = entry.map_err(|source| UnpackError::Archive { source })?;
            count += 1;
            content += self.entry(&mut entry)?;
        }
        Ok((content, count))
    }

    /// Apply deferred directory times, then make it all durable.
    fn finish(&mut self) -> Result<(), UnpackError> {
        self.cache.clear();
        for d in self.dir_times.iter().rev() {
            let fd = if d.path.as_os_str().is_empty() {
                None
            } else {
                match open_beneath(self.root.as_raw_fd(), &d.path) {
                    Ok(fd) => Some(fd),
                    Err(_) => continue, // replaced by a later entry
                }
            };
            let raw = fd.as_ref().map_or(self.root.as_raw_fd(), |f| f.as_raw_fd());
            let ts = [timespec(d.mtime), timespec(d.mtime)];
            let name = d.path.display().to_string();
            check(unsafe { libc::futimens(raw, ts.as_ptr()) }).map_err(|source| UnpackError::Io { entry: name, op: "set times", source })?;
        }
        check(unsafe { libc::syncfs(self.root.as_raw_fd()) })
            .map_err(|source| UnpackError::Io { entry: String::new(), op: "syncfs", source })
    }

    /// The open parent directory of `rel`, creating missing directories.
    fn parent(&mut self, parent: &Path, entry: &str) -> Result<RawFd, UnpackError> {
        if parent.as_os_str().is_empty() {
            return Ok(self.root.as_raw_fd());
        }
        if let Some(fd) = self.cache.get(parent) {
            return Ok(fd.as_raw_fd());
        }
        let fd = match open_beneath(self.root.as_raw_fd(), parent) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                self.make_parents(parent, entry)?;
                open_beneath(self.root.as_raw_fd(), parent).map_err(|e| self.resolve_error(e, entry))?
            }
            Err(e) => return Err(self.resolve_error(e, entry)),
        };
        if self.cache.len() >= CACHE_MAX {
            self.cache.clear();
        }
        let raw = fd.as_raw_fd();
        self.cache.insert(parent.to_owned(), fd);
        Ok(raw)
    }

    fn resolve_error(&self, e: io::Error, entry: &str) -> UnpackError {
        match e.raw_os_error() {
            Some(libc::EXDEV) | Some(libc::ELOOP) => {
                UnpackError::Unsafe { entry: entry.to_owned(), reason: "path leads outside the layer through a symlink" }
            }
            _ => UnpackError::Io { entry: entry.to_owned(), op: "open parent directory", source: e },
        }
    }

    fn make_parents(&mut self, parent: &Path, entry: &str) -> Result<(), UnpackError> {
        let mut sofar = PathBuf::new();
        for c in parent.components() {
            let dirfd = if sofar.as_os_str().is_empty() {
                None
            } else {
                Some(open_beneath(self.root.as_raw_fd(), &sofar).map_err(|e| self.resolve_error(e, entry))?)
            };
            let raw = dirfd.as_ref().map_or(self.root.as_raw_fd(), |f| f.as_raw_fd());
            let name = cstr(c.as_os_str().as_bytes()).map_err(|source| UnpackError::Io { entry: entry.into(), op: "mkdir", source })?;
            let r = unsafe { libc::mkdirat(raw, name.as_ptr(), 0o755) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(UnpackError::Io { entry: entry.into(), op: "create parent directory", source: e });
                }
            }
            sofar.push(c);
        }
        Ok(())
    }

    /// Forget cached directories at or under `rel` (it is being replaced).
    fn invalidate(&mut self, rel: &Path) {
        self.cache.retain(|k, _| !k.starts_with(rel));
    }

    /// Remove whatever is at `name` in `dirfd` (file, or directory tree).
    fn remove_existing(&mut self, dirfd: RawFd, name: &CString, rel: &Path, entry: &str) -> Result<(), UnpackError> {
        self.invalidate(rel);
        let io = |source| UnpackError::Io { entry: entry.to_owned(), op: "replace existing", source };
        if unsafe { libc::unlinkat(dirfd, name.as_ptr(), 0) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(()),
            Some(libc::EISDIR) => {
                let p = PathBuf::from(format!("/proc/self/fd/{dirfd}")).join(OsStr::from_bytes(name.as_bytes()));
                std::fs::remove_dir_all(&p).map_err(io)
            }
            _ => Err(io(e)),
        }
    }

    /// Create `name` in `dirfd` with `make`, replacing what is there.
    fn create_replacing(
        &mut self,
        dirfd: RawFd,
        name: &CString,
        rel: &Path,
        entry: &str,
        op: &'static str,
        make: &mut dyn FnMut() -> libc::c_int,
    ) -> Result<libc::c_int, UnpackError> {
        let r = make();
        if r >= 0 {
            return Ok(r);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(UnpackError::Io { entry: entry.to_owned(), op, source: e });
        }
        self.remove_existing(dirfd, name, rel, entry)?;
        let r = make();
        if r < 0 {
            return Err(UnpackError::Io { entry: entry.to_owned(), op, source: io::Error::last_os_error() });
        }
        Ok(r)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<u64, UnpackError> {
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName | tar::EntryType::GNULongLink) {
            return Ok(0);
        }
        let rel = clean_entry_path(&raw_path).map_err(|reason| UnpackError::Unsafe { entry: shown.clone(), reason })?;
        let hdr = entry.header();
        // An empty numeric field reads as 0, as Go's archive/tar reads it.
        let meta = Meta {
            mode: hdr.mode().unwrap_or(0o644) & 0o7777,
            uid: hdr.uid().unwrap_or(0) as u32,
            gid: hdr.gid().unwrap_or(0) as u32,
            mtime: hdr.mtime().unwrap_or(0) as i64,
        };
        let xattrs = read_xattrs(entry).map_err(|source| UnpackError::Archive { source })?;

        if rel.as_os_str().is_empty() {
            // "./": the layer root itself.
            if kind.is_dir() {
                let root = self.root.as_raw_fd();
                self.set_owner_mode_fd(root, &meta, &shown)?;
                self.dir_times.push(DirTimes { path: PathBuf::new(), mtime: meta.mtime });
            }
            return Ok(0);
        }
        let base = rel.file_name().expect("cleaned path has a name").as_bytes().to_vec();
        let parent = rel.parent().unwrap_or(Path::new("")).to_owned();

        // Whiteouts.
        if base.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            let pfd = self.parent(&parent, &shown)?;
            if base == WHITEOUT_OPAQUE.as_bytes() {
                let k = cstr(OVERLAY_OPAQUE_XATTR.as_bytes()).expect("no NUL");
                check(unsafe { libc::fsetxattr(pfd, k.as_ptr(), b"y".as_ptr().cast(), 1, 0) })
                    .map_err(|source| UnpackError::Io { entry: shown, op: "mark opaque", source })?;
                return Ok(0);
            }
            if base.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
                return Ok(0); // AUFS bookkeeping (.wh..wh.plnk and the like)
            }
            let target = &base[WHITEOUT_PREFIX.len()..];
            let name = cstr(target).map_err(|source| UnpackError::Io { entry: shown.clone(), op: "whiteout", source })?;
            let wrel = parent.join(OsStr::from_bytes(target));
            self.create_replacing(pfd, &name, &wrel, &shown, "create whiteout", &mut || unsafe {
                libc::mknodat(pfd, name.as_ptr(), libc::S_IFCHR, 0)
            })?;
            self.chown_at(pfd, &name, &meta, &shown)?;
            return Ok(0);
        }

        let pfd = self.parent(&parent, &shown)?;
        let name = cstr(&base).map_err(|source| UnpackError::Io { entry: shown.clone(), op: "name", source })?;
        let perm = meta.mode & 0o777;
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let want = entry.size();
                let fd = self.create_replacing(pfd, &name, &rel, &shown, "create file", &mut || unsafe {
                    libc::openat(
                        pfd,
                        name.as_ptr(),
                        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                        perm,
                    )
                })?;
                let file = unsafe { std::fs::File::from_raw_fd(fd) };
                let got = copy_data(entry, &file, &mut self.buf).map_err(|e| match e {
                    CopyError::Read(source) => UnpackError::Archive { source },
                    CopyError::Write(source) => UnpackError::Io { entry: shown.clone(), op: "write", source },
                })?;
                if got != want {
                    return Err(UnpackError::Truncated { entry: shown, got, want });
                }
                self.set_owner_mode_fd(fd, &meta, &shown)?;
                self.set_xattrs(&format!("/proc/self/fd/{fd}"), &xattrs, false, &shown)?;
                let ts = [timespec(meta.mtime), timespec(meta.mtime)];
                check(unsafe { libc::futimens(fd, ts.as_ptr()) })
                    .map_err(|source| UnpackError::Io { entry: shown, op: "set times", source })?;
                Ok(got)
            }
            tar::EntryType::Directory => {
                let r = unsafe { libc::mkdirat(pfd, name.as_ptr(), perm) };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EEXIST) {
                        return Err(UnpackError::Io { entry: shown, op: "mkdir", source: e });
                    }
                    let mut st: libc::stat = unsafe { std::mem::zeroed() };
                    check(unsafe { libc::fstatat(pfd, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })
                        .map_err(|source| UnpackError::Io { entry: shown.clone(), op: "stat", source })?;
                    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                        self.create_replacing(pfd, &name, &rel, &shown, "mkdir", &mut || unsafe {
                            libc::mkdirat(pfd, name.as_ptr(), perm)
                        })?;
                    }
                }
                self.chown_at(pfd, &name, &meta, &shown)?;
                if meta.mode & 0o7000 != 0 || perm & self.umask != 0 || r < 0 {
                    check(unsafe { libc::fchmodat(pfd, name.as_ptr(), meta.mode, 0) })
                        .map_err(|source| UnpackError::Io { entry: shown.clone(), op: "chmod", source })?;
                }
                if !xattrs.is_empty() {
                    let p = format!("/proc/self/fd/{pfd}/{}", String::from_utf8_lossy(&base));
                    self.set_xattrs(&p, &xattrs, true, &shown)?;
                }
                self.dir_times.push(DirTimes { path: rel, mtime: meta.mtime });
                Ok(0)
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().map(|c| c.into_owned()).unwrap_or_default();
                if symlink_escapes(&rel, &target) {
                    return Err(UnpackError::Unsafe { entry: shown, reason: "symlink points outside the layer" });
                }
                let t = cstr(&target).map_err(|source| UnpackError::Io { entry: shown.clone(), op: "symlink", source })?;
                self.create_replacing(pfd, &name, &rel, &shown, "symlink", &mut || unsafe {
                    libc::symlinkat(t.as_ptr(), pfd, name.as_ptr())
                })?;
                self.chown_at(pfd, &name, &meta, &shown)?;
                if !xattrs.is_empty() {
                    let p = format!("/proc/self/fd/{pfd}/{}", String::from_utf8_lossy(&base));
                    self.set_xattrs(&p, &xattrs, true, &shown)?;
                }
                let ts = [timespec(meta.mtime), timespec(meta.mtime)];
                check(unsafe { libc::utimensat(pfd, name.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
                    .map_err(|source| UnpackError::Io { entry: shown, op: "set times", source })?;
                Ok(0)
            }
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().map(|c| c.into_owned()).unwrap_or_default();
                let trel = clean_entry_path(&target).map_err(|_| UnpackError::Unsafe {
                    entry: shown.clone(),
                    reason: "hardlink points outside the layer",
                })?;
                let tbase = trel.file_name().ok_or(UnpackError::Unsafe { entry: shown.clone(), reason: "hardlink to the layer root" })?;
                let tname = cstr(tbase.as_bytes()).map_err(|source| UnpackError::Io { entry: shown.clone(), op: "link", source })?;
                let tparent = trel.parent().unwrap_or(Path::new("")).to_owned();
                let tfd = self.parent(&tparent, &shown)?;
                // The link's own parent may have been evicted from the cache.
                let pfd = self.parent(&parent, &shown)?;
                if trel == rel {
                    return Ok(0);
                }
                self.create_replacing(pfd, &name, &rel, &shown, "hardlink", &mut || unsafe {
                    libc::linkat(tfd, tname.as_ptr(), pfd, name.as_ptr(), 0)
                })?;
                Ok(0)
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let hdr = entry.header();
                let major = hdr.device_major().ok().flatten().unwrap_or(0);
                let minor = hdr.device_minor().ok().flatten().unwrap_or(0);
                let fmt = match kind {
                    tar::EntryType::Char => libc::S_IFCHR,
                    tar::EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let dev = libc::makedev(major, minor);
                self.create_replacing(pfd, &name, &rel, &shown, "mknod", &mut || unsafe {
                    libc::mknodat(pfd, name.as_ptr(), fmt | perm, dev)
                })?;
                self.chown_at(pfd, &name, &meta, &shown)?;
                if meta.mode & 0o7000 != 0 || perm & self.umask != 0 {
                    check(unsafe { libc::fchmodat(pfd, name.as_ptr(), meta.mode, 0) })
                        .map_err(|source| UnpackError::Io { entry: shown.clone(), op: "chmod", source })?;
                }
                let ts = [timespec(meta.mtime), timespec(meta.mtime)];
                check(unsafe { libc::utimensat(pfd, name.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })
                    .map_err(|source| UnpackError::Io { entry: shown, op: "set times", source })?;
                Ok(0)
            }
            _ => {
                tracing::warn!(entry = %shown, kind = ?kind, "skipping tar entry of unhandled type");
                Ok(0)
            }
        }
    }

    fn chown_at(&self, dirfd: RawFd, name: &CString, meta: &Meta, entry: &str) -> Result<(), UnpackError> {
        if (meta.uid, meta.gid) == (self.euid, self.egid) || self.euid != 0 {
            return Ok(());
        }
        check(unsafe { libc::fchownat(dirfd, name.as_ptr(), meta.uid, meta.gid, libc::AT_SYMLINK_NOFOLLOW) })
            .map_err(|source| UnpackError::Io { entry: entry.to_owned(), op: "chown", source })
    }

    /// Owner first (chown clears set-id bits), then the mode when the
    /// creation mode could not carry it.
    fn set_owner_mode_fd(&self, fd: RawFd, meta: &Meta, entry: &str) -> Result<(), UnpackError> {
        let chowned = (meta.uid, meta.gid) != (self.euid, self.egid) && self.euid == 0;
        if chowned {
            check(unsafe { libc::fchown(fd, meta.uid, meta.gid) })
                .map_err(|source| UnpackError::Io { entry: entry.to_owned(), op: "chown", source })?;
        }
        if meta.mode & 0o7000 != 0 || meta.mode & self.umask != 0 || fd == self.root.as_raw_fd() {
            check(unsafe { libc::fchmod(fd, meta.mode) })
                .map_err(|source| UnpackError::Io { entry: entry.to_owned(), op: "chmod", source })?;
        }
        Ok(())
    }

    fn set_xattrs(&self, path: &str, xattrs: &[(String, Vec<u8>)], nofollow: bool, entry: &str) -> Result<(), UnpackError> {
        for (k, v) in xattrs {
            match set_xattr(path, k, v, nofollow) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => {
                    tracing::warn!(entry, xattr = %k, "xattr not supported here, skipped");
                }
                Err(source) => return Err(UnpackError::Io { entry: entry.to_owned(), op: "set xattr", source }),
            }
        }
        Ok(())
    }
}

fn timespec(secs: i64) -> libc::timespec {
    libc::timespec { tv_sec: secs as libc::time_t, tv_nsec: 0 }
}

pub(crate) fn set_xattr(path: &str, key: &str, value: &[u8], nofollow: bool) -> io::Result<()> {
    let p = cstr(path.as_bytes())?;
    let k = cstr(key.as_bytes())?;
    let r = unsafe {
        if nofollow {
            libc::lsetxattr(p.as_ptr(), k.as_ptr(), value.as_ptr().cast(), value.len(), 0)
        } else {
            libc::setxattr(p.as_ptr(), k.as_ptr(), value.as_ptr().cast(), value.len(), 0)
        }
    };
    check(r)
}

fn read_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if let Ok(k) = ext.key()
                && let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                    out.push((name.to_owned(), ext.value_bytes().to_vec()));
                }
        }
    }
    Ok(out)
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

fn copy_data(r: &mut impl Read, mut w: &std::fs::File, buf: &mut [u8]) -> Result<u64, CopyError> {
    use std::io::Write;
    let mut total = 0u64;
    loop {
        let n = match r.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        w.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_are_cleaned_or_refused() {
        assert_eq!(clean_entry_path(b"./a/b/").unwrap(), PathBuf::from("a/b"));
        assert_eq!(clean_entry_path(b"a//./b").unwrap(), PathBuf::from("a/b"));
        assert_eq!(clean_entry_path(b"./").unwrap(), PathBuf::new());
        assert_eq!(clean_entry_path(b"/etc/passwd"), Err("absolute path"));
        assert_eq!(clean_entry_path(b"a/../../x"), Err("path contains \"..\""));
        assert_eq!(clean_entry_path(b"a/.."), Err("path contains \"..\""));
        assert!(clean_entry_path(b"").is_err());
    }

    #[test]
    fn symlink_escape_is_judged_from_the_entry_dir() {
        assert!(!symlink_escapes(Path::new("bin/sh"), b"busybox"));
        assert!(!symlink_escapes(Path::new("usr/bin/sh"), b"../../bin/busybox"));
        assert!(symlink_escapes(Path::new("usr/bin/sh"), b"../../../etc"));
        assert!(symlink_escapes(Path::new("x"), b".."));
        assert!(!symlink_escapes(Path::new("lib"), b"/usr/lib"));
        assert!(symlink_escapes(Path::new("a/b"), b"c/../../../d"));
    }
}
