//! Project quotas for snapshots (`--storage-opt size=`), as docker's
//! overlay2 driver does them (`daemon/internal/quota`): each sized snapshot
//! directory gets a project ID of its own, inherited by everything made
//! under it (`FS_XFLAG_PROJINHERIT`), and a hard block limit on that ID.
//!
//! Works on xfs mounted with `prjquota`/`pquota` and on ext4 with the
//! `project` feature mounted with `prjquota`. `quotactl` takes a block
//! device: like docker, a device node of the filesystem's own device is
//! made in the snapshot root, so this works whatever `/dev` holds.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use linux_raw_sys::general::{FS_XFLAG_PROJINHERIT, fsxattr};
use linux_raw_sys::ioctl::{FS_IOC_FSGETXATTR, FS_IOC_FSSETXATTR};

/// The device node `quotactl` is given, in the snapshot root.
pub const BACKING_DEV: &str = ".backingFsBlockDev";

// Neither libc, nix nor linux-raw-sys carries the XFS quota interface
// (`linux/dqblk_xfs.h`: `fs_disk_quota`, `fs_quota_stat`, `Q_X*`) or
// `PRJQUOTA`; these are copied from the kernel's uapi headers.
const PRJQUOTA: i32 = 2;
const fn qcmd(cmd: i32, typ: i32) -> i32 {
    (cmd << 8) | (typ & 0xff)
}
const Q_XSETQLIM: i32 = (b'X' as i32) << 8 | 4;
const Q_XGETQSTAT: i32 = (b'X' as i32) << 8 | 5;
const FS_DQUOT_VERSION: i8 = 1;
const FS_PROJ_QUOTA: i8 = 2;
const FS_DQ_BSOFT: u16 = 1 << 2;
const FS_DQ_BHARD: u16 = 1 << 3;
const FS_QUOTA_PDQ_ACCT: u16 = 1 << 4;
const FS_QUOTA_PDQ_ENFD: u16 = 1 << 5;
const XFS_SUPER_MAGIC: i64 = 0x5846_5342;
const EXT4_SUPER_MAGIC: i64 = 0xef53;

#[repr(C)]
#[derive(Default)]
struct FsDiskQuota {
    d_version: i8,
    d_flags: i8,
    d_fieldmask: u16,
    d_id: u32,
    d_blk_hardlimit: u64,
    d_blk_softlimit: u64,
    d_ino_hardlimit: u64,
    d_ino_softlimit: u64,
    d_bcount: u64,
    d_icount: u64,
    d_itimer: i32,
    d_btimer: i32,
    d_iwarns: u16,
    d_bwarns: u16,
    d_itimer_hi: i8,
    d_btimer_hi: i8,
    d_rtbtimer_hi: i8,
    d_padding2: i8,
    d_rtb_hardlimit: u64,
    d_rtb_softlimit: u64,
    d_rtbcount: u64,
    d_rtbtimer: i32,
    d_rtbwarns: u16,
    d_padding3: i16,
    d_padding4: [u8; 8],
}

#[repr(C)]
#[derive(Default)]
struct FsQfilestat {
    qfs_ino: u64,
    qfs_nblks: u64,
    qfs_nextents: u32,
}

#[repr(C)]
#[derive(Default)]
struct FsQuotaStat {
    qs_version: i8,
    qs_flags: u16,
    qs_pad: i8,
    qs_uquota: FsQfilestat,
    qs_gquota: FsQfilestat,
    qs_incoredqs: u32,
    qs_btimelimit: i32,
    qs_itimelimit: i32,
    qs_rtbtimelimit: i32,
    qs_bwarnlimit: u16,
    qs_iwarnlimit: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fs {
    Xfs,
    Ext4,
}

/// Project quota control over the filesystem of one directory.
#[derive(Debug)]
pub struct Quota {
    dev: CString,
    fs: Fs,
    /// The lowest project ID handed out: one above the root's own (docker's
    /// convention, so `xfs_quota` projects set on the root stay below).
    pub min_id: u32,
}

fn quotactl(cmd: i32, dev: &CString, id: u32, data: *mut libc::c_char) -> io::Result<()> {
    // SAFETY: `dev` is a C string; `data` points at the struct `cmd` expects.
    let r = unsafe { libc::quotactl(cmd, dev.as_ptr(), id as libc::c_int, data) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

fn get_xattr(f: &File) -> io::Result<fsxattr> {
    // SAFETY: fsxattr is plain data; the ioctl fills it.
    let mut x: fsxattr = unsafe { std::mem::zeroed() };
    // SAFETY: FS_IOC_FSGETXATTR writes one fsxattr.
    if unsafe { libc::ioctl(f.as_raw_fd(), FS_IOC_FSGETXATTR as _, &mut x) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(x)
}

/// The project ID of `dir`.
pub fn project_id(dir: &Path) -> io::Result<u32> {
    Ok(get_xattr(&File::open(dir)?)?.fsx_projid)
}

/// Give `dir` project ID `id`, inherited by what is made under it.
pub fn set_project_id(dir: &Path, id: u32) -> io::Result<()> {
    let f = File::open(dir)?;
    let mut x = get_xattr(&f)?;
    x.fsx_projid = id;
    x.fsx_xflags |= FS_XFLAG_PROJINHERIT;
    // SAFETY: FS_IOC_FSSETXATTR reads one fsxattr.
    if unsafe { libc::ioctl(f.as_raw_fd(), FS_IOC_FSSETXATTR as _, &x) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Quota {
    /// Project quotas on the filesystem of `root`, if it is xfs or ext4
    /// with project quotas accounted and enforced; `None` otherwise.
    pub fn probe(root: &Path) -> Option<Quota> {
        let st = nix::sys::statfs::statfs(root).ok()?;
        let fs = match st.filesystem_type().0 as i64 {
            XFS_SUPER_MAGIC => Fs::Xfs,
            EXT4_SUPER_MAGIC => Fs::Ext4,
            _ => return None,
        };
        let dev_path: PathBuf = root.join(BACKING_DEV);
        let dev_num = std::fs::metadata(root).ok()?.dev();
        let _ = std::fs::remove_file(&dev_path);
        if let Err(e) = nix::sys::stat::mknod(&dev_path, nix::sys::stat::SFlag::S_IFBLK, nix::sys::stat::Mode::from_bits_truncate(0o600), dev_num) {
            tracing::debug!(path = %dev_path.display(), "no project quotas: mknod: {e}");
            return None;
        }
        let q = Self::probe_dev(root, &dev_path, fs);
        if q.is_none() {
            let _ = std::fs::remove_file(&dev_path);
        }
        q
    }

    fn probe_dev(root: &Path, dev_path: &Path, fs: Fs) -> Option<Quota> {
        let dev = CString::new(dev_path.as_os_str().as_bytes()).ok()?;
        let mut stat = FsQuotaStat::default();
        if let Err(e) = quotactl(qcmd(Q_XGETQSTAT, PRJQUOTA), &dev, 0, (&mut stat as *mut FsQuotaStat).cast()) {
            tracing::debug!(root = %root.display(), "no project quotas: {e}");
            return None;
        }
        let want = FS_QUOTA_PDQ_ACCT | FS_QUOTA_PDQ_ENFD;
        if stat.qs_flags & want != want {
            return None;
        }
        let base = project_id(root).ok()?;
        let q = Quota { dev, fs, min_id: base + 1 };
        // As docker: setting a (zero) limit on the first ID proves it works.
        if let Err(e) = q.set_limit(q.min_id, 0) {
            tracing::debug!(root = %root.display(), "no project quotas: {e}");
            return None;
        }
        Some(q)
    }

    /// A hard (and soft) block limit of `bytes` on project `id`; 0 lifts it.
    pub fn set_limit(&self, id: u32, bytes: u64) -> io::Result<()> {
        match self.fs {
            Fs::Xfs => {
                let mut d = FsDiskQuota {
                    d_version: FS_DQUOT_VERSION,
                    d_flags: FS_PROJ_QUOTA,
                    d_fieldmask: FS_DQ_BHARD | FS_DQ_BSOFT,
                    d_id: id,
                    // Basic blocks of 512 bytes, rounded up so that a limit
                    // is never dropped to "none".
                    d_blk_hardlimit: bytes.div_ceil(512),
                    d_blk_softlimit: bytes.div_ceil(512),
                    ..Default::default()
                };
                quotactl(qcmd(Q_XSETQLIM, PRJQUOTA), &self.dev, id, (&mut d as *mut FsDiskQuota).cast())
            }
            Fs::Ext4 => {
                // SAFETY: dqblk is plain data.
                let mut d: libc::dqblk = unsafe { std::mem::zeroed() };
                // The generic interface counts 1 KiB blocks.
                d.dqb_bhardlimit = bytes.div_ceil(1024);
                d.dqb_bsoftlimit = d.dqb_bhardlimit;
                d.dqb_valid = libc::QIF_BLIMITS;
                quotactl(qcmd(libc::Q_SETQUOTA, PRJQUOTA), &self.dev, id, (&mut d as *mut libc::dqblk).cast())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_match_the_kernel_abi() {
        // linux/dqblk_xfs.h on x86_64 and aarch64.
        assert_eq!(std::mem::size_of::<FsDiskQuota>(), 112);
        assert_eq!(std::mem::size_of::<FsQuotaStat>(), 80);
        assert_eq!(qcmd(Q_XSETQLIM, PRJQUOTA), 0x580402);
    }

}
