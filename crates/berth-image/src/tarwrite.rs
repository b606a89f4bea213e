//! Writing trees as tar streams: a container's merged root (`export`) or
//! its overlay upper dir as a layer (`commit`), where overlay whiteouts
//! become `.wh.` entries and opaque directories get `.wh..wh..opq`.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::unpack::{OVERLAY_OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};

/// How to read the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeKind {
    /// A plain tree (a mounted root): stay on its filesystem.
    Plain,
    /// An overlay upper dir: turn whiteouts into `.wh.` entries.
    OverlayUpper,
}

/// Whether `m` is an overlay whiteout (char device 0:0).
pub fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

/// Whether the directory at `p` is marked opaque.
pub fn is_opaque(p: &Path) -> bool {
    get_xattr(p, OVERLAY_OPAQUE_XATTR).is_some_and(|v| v == b"y")
}

pub fn get_xattr(p: &Path, key: &str) -> Option<Vec<u8>> {
    let path = std::ffi::CString::new(p.as_os_str().as_bytes()).ok()?;
    let k = std::ffi::CString::new(key).ok()?;
    let mut buf = vec![0u8; 4096];
    let n = unsafe { libc::lgetxattr(path.as_ptr(), k.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

fn list_xattrs(p: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(path) = std::ffi::CString::new(p.as_os_str().as_bytes()) else { return Vec::new() };
    let mut names = vec![0u8; 4096];
    let n = unsafe { libc::llistxattr(path.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Vec::new();
    }
    names.truncate(n as usize);
    names
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .filter_map(|n| std::str::from_utf8(n).ok())
        .filter(|n| !n.starts_with("trusted.overlay.") && *n != "system.nfs4_acl")
        .filter_map(|n| get_xattr(p, n).map(|v| (n.to_owned(), v)))
        .collect()
}

/// Append a PAX extended header carrying `records` for the next entry.
fn append_pax<W: Write>(b: &mut tar::Builder<W>, records: &[(String, Vec<u8>)]) -> io::Result<()> {
    let mut data = Vec::new();
    for (k, v) in records {
        // "<len> <key>=<value>\n", where len counts itself.
        let rest = 1 + k.len() + 1 + v.len() + 1;
        let mut len = rest + 1;
        while len.to_string().len() + rest != len {
            len = len.to_string().len() + rest;
        }
        data.extend_from_slice(format!("{len} {k}=").as_bytes());
        data.extend_from_slice(v);
        data.push(b'\n');
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_path("PaxHeaders.0/xattrs")?;
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &data[..])
}

/// The empty regular file docker writes for a whiteout.
fn empty_header(mtime: i64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime.max(0) as u64);
    h
}

/// Writes a tree into a tar builder, entry by entry, in name order.
pub struct TreeWriter<'a, W: Write> {
    pub builder: &'a mut tar::Builder<W>,
    kind: TreeKind,
    root: PathBuf,
    dev: u64,
    links: HashMap<(u64, u64), PathBuf>,
    placeholders: Vec<PathBuf>,
}

impl<'a, W: Write> TreeWriter<'a, W> {
    pub fn new(builder: &'a mut tar::Builder<W>, root: &Path, kind: TreeKind) -> io::Result<Self> {
        let dev = fs::symlink_metadata(root)?.dev();
        Ok(TreeWriter { builder, kind, root: root.to_owned(), dev, links: HashMap::new(), placeholders: Vec::new() })
    }

    /// Leave out these paths (relative to the root) where they are only
    /// mount points: empty files or empty directories. docker keeps such
    /// mount points (/etc/hosts, /etc/resolv.conf...) in a container's init
    /// layer, so a commit never carries them.
    pub fn without_placeholders(mut self, paths: Vec<PathBuf>) -> Self {
        self.placeholders = paths;
        self
    }

    fn is_placeholder(&self, rel: &Path, abs: &Path, m: &fs::Metadata) -> bool {
        self.placeholders.iter().any(|p| p == rel)
            && ((m.is_file() && m.len() == 0) || (m.is_dir() && fs::read_dir(abs).map(|mut d| d.next().is_none()).unwrap_or(false)))
    }

    /// Write everything under the root.
    pub fn write_all(&mut self) -> io::Result<()> {
        self.dir(Path::new(""))
    }

    fn dir(&mut self, rel: &Path) -> io::Result<()> {
        let mut names: Vec<_> = fs::read_dir(self.root.join(rel))?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let rel = rel.join(&name);
            let abs = self.root.join(&rel);
            let m = fs::symlink_metadata(&abs)?;
            if self.is_placeholder(&rel, &abs, &m) {
                continue;
            }
            self.entry(&rel, &abs, &m)?;
            if m.is_dir() && (self.kind == TreeKind::OverlayUpper || m.dev() == self.dev) {
                self.dir(&rel)?;
            }
        }
        Ok(())
    }

    fn header(&self, m: &fs::Metadata) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(m, tar::HeaderMode::Complete);
        h.set_mtime(m.mtime().max(0) as u64);
        h
    }

    fn entry(&mut self, rel: &Path, abs: &Path, m: &fs::Metadata) -> io::Result<()> {
        if self.kind == TreeKind::OverlayUpper && is_whiteout(m) {
            let mut name = std::ffi::OsString::from(WHITEOUT_PREFIX);
            name.push(rel.file_name().expect("entry has a name"));
            let h = &mut empty_header(m.mtime());
            return self.builder.append_data(h, rel.with_file_name(name), io::empty());
        }
        let xattrs = list_xattrs(abs);
        if !xattrs.is_empty() {
            let recs: Vec<_> = xattrs.into_iter().map(|(k, v)| (format!("SCHILY.xattr.{k}"), v)).collect();
            append_pax(self.builder, &recs)?;
        }
        let mut h = self.header(m);
        let ft = m.file_type();
        if ft.is_dir() {
            h.set_size(0);
            self.builder.append_data(&mut h, rel, io::empty())?;
            if self.kind == TreeKind::OverlayUpper && is_opaque(abs) {
                let o = &mut empty_header(m.mtime());
                self.builder.append_data(o, rel.join(WHITEOUT_OPAQUE), io::empty())?;
            }
        } else if ft.is_symlink() {
            let target = fs::read_link(abs)?;
            h.set_size(0);
            self.builder.append_link(&mut h, rel, target)?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                if let Some(first) = self.links.get(&(m.dev(), m.ino())) {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    let first = first.clone();
                    return self.builder.append_link(&mut h, rel, first);
                }
                self.links.insert((m.dev(), m.ino()), rel.to_owned());
            }
            let f = fs::File::open(abs)?;
            self.builder.append_data(&mut h, rel, io::BufReader::with_capacity(1 << 16, f))?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            h.set_size(0);
            let (major, minor) = (libc::major(m.rdev()), libc::minor(m.rdev()));
            h.set_device_major(major)?;
            h.set_device_minor(minor)?;
            self.builder.append_data(&mut h, rel, io::empty())?;
        }
        // Sockets are not archived (tar cannot hold them).
        Ok(())
    }
}

/// Stream `root` as a tar into `out` (docker's `export` of a mounted root).
pub fn write_tree<W: Write>(root: &Path, kind: TreeKind, out: W) -> io::Result<W> {
    let mut b = tar::Builder::new(out);
    TreeWriter::new(&mut b, root, kind)?.write_all()?;
    b.into_inner()
}
