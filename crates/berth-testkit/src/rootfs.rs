//! Test root filesystems made from Debian's `busybox-static`.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's busybox-static puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// The uid and gid of the unprivileged user in the test rootfs.
pub const TEST_USER_ID: u32 = 1000;

fn busybox_applets() -> io::Result<Vec<String>> {
    let out = Command::new(BUSYBOX).arg("--list-full").output().map_err(|e| {
        io::Error::new(e.kind(), format!("run {BUSYBOX} (apt-get install busybox-static): {e}"))
    })?;
    if !out.status.success() {
        return Err(io::Error::other(format!("{BUSYBOX} --list-full failed")));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect())
}

/// Fill `dir` with a busybox root filesystem: `/bin/busybox`, a link per
/// applet, `/etc/passwd` and `/etc/group` with root, a test user and nobody,
/// and empty mount points.
pub fn busybox_rootfs(dir: &Path) -> io::Result<()> {
    for d in ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "home/user", "var", "run"] {
        fs::create_dir_all(dir.join(d))?;
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::copy(BUSYBOX, dir.join("bin/busybox"))?;
    for applet in busybox_applets()? {
        let link = dir.join(&applet);
        if applet == "bin/busybox" || link.exists() {
            continue;
        }
        let depth = Path::new(&applet).components().count() - 1;
        let target: PathBuf = std::iter::repeat_n("..", depth).collect::<PathBuf>().join("bin/busybox");
        symlink(target, &link)?;
    }
    fs::write(
        dir.join("etc/passwd"),
        format!(
            "root:x:0:0:root:/root:/bin/sh\nuser:x:{TEST_USER_ID}:{TEST_USER_ID}:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        ),
    )?;
    fs::write(
        dir.join("etc/group"),
        format!("root:x:0:\nuser:x:{TEST_USER_ID}:\nextra:x:2000:user\nnogroup:x:65534:\n"),
    )?;
    nix::unistd::chown(&dir.join("home/user"), Some(TEST_USER_ID.into()), Some(TEST_USER_ID.into()))
        .map_err(io::Error::from)?;
    Ok(())
}

/// Write the busybox root filesystem as an uncompressed tar at `tar_path`
/// (numeric owners, sorted names), using a scratch dir next to it.
pub fn busybox_rootfs_tar(tar_path: &Path) -> io::Result<()> {
    let scratch = tar_path.with_extension("rootfs.d");
    if scratch.exists() {
        fs::remove_dir_all(&scratch)?;
    }
    fs::create_dir_all(&scratch)?;
    busybox_rootfs(&scratch)?;
    let status = Command::new("tar")
        .args(["--numeric-owner", "--sort=name", "-C"])
        .arg(&scratch)
        .arg("-cf")
        .arg(tar_path)
        .arg(".")
        .status()?;
    fs::remove_dir_all(&scratch)?;
    if !status.success() {
        return Err(io::Error::other(format!("tar of busybox rootfs into {} failed", tar_path.display())));
    }
    Ok(())
}
