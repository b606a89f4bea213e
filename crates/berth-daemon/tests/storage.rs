//! Root integration tests of `--storage-opt size=` (project quotas on the
//! data root's file system, as docker's overlay2): a loop-backed xfs made
//! by the test, a test berthd on it, the real docker CLI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_testkit::daemon::TestDaemon;
use berth_testkit::{TestDir, stderr_of_failure as fails, stdout_of_success as ok};
use serde_json::{Value, json};

const BERTHD: &str = env!("CARGO_BIN_EXE_berthd");
const NO_QUOTA: &str = "--storage-opt is supported only for overlay over xfs with 'pquota' mount option";

fn docker(d: &TestDaemon, args: &[&str]) -> Output {
    let mut c = d.docker().unwrap_or_else(|| panic!("{} is needed by these tests", berth_testkit::daemon::DOCKER_CLI));
    c.args(args).output().expect("run docker")
}

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd}: {e} (scripts/setup.sh installs it)"))
}

/// An xfs file system on a loop device over a sparse file in a test dir,
/// mounted under it. Dropped (even in a panic): everything under the mount
/// point unmounted, the loop device detached, the dir removed.
struct LoopXfs {
    dir: TestDir,
    dev: String,
}

impl LoopXfs {
    /// `Err` with mount's message when the kernel refuses `options`.
    fn new(options: &str) -> Result<LoopXfs, String> {
        let dir = TestDir::new("xfs");
        let img = dir.join("img");
        std::fs::File::create(&img).unwrap().set_len(320 << 20).unwrap(); // xfs's minimum is 300 MiB
        ok(&run("mkfs.xfs", &["-q", img.to_str().unwrap()]));
        let dev = ok(&run("losetup", &["-f", "--show", img.to_str().unwrap()])).trim().to_owned();
        let fs = LoopXfs { dir, dev };
        std::fs::create_dir(fs.mnt()).unwrap();
        let o = run("mount", &["-t", "xfs", "-o", options, &fs.dev, fs.mnt().to_str().unwrap()]);
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).into_owned());
        }
        Ok(fs)
    }

    fn mnt(&self) -> PathBuf {
        self.dir.join("mnt")
    }

    /// `xfs_quota`'s project report: (project ID, blocks used, hard limit) in KiB.
    fn projects(&self) -> Vec<(u32, u64, u64)> {
        let out = ok(&run("xfs_quota", &["-x", "-c", "report -p -n -N -b", self.mnt().to_str().unwrap()]));
        out.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some((f.first()?.strip_prefix('#')?.parse().ok()?, f.get(1)?.parse().ok()?, f.get(3)?.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for LoopXfs {
    fn drop(&mut self) {
        for m in berth_sys::mount::mounts_under(&self.mnt()).unwrap_or_default() {
            let _ = berth_sys::mount::unmount_detach(&m);
        }
        let _ = run("losetup", &["-d", &self.dev]);
    }
}

/// Whether this kernel was built without XFS quota support
/// (`CONFIG_XFS_QUOTA`), as its config says.
fn kernel_lacks_xfs_quota() -> bool {
    let o = Command::new("sh").args(["-c", "zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r)"]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).lines().any(|l| l == "# CONFIG_XFS_QUOTA is not set")
}

/// dd into the container's root until it fails: (dd's exit status, its
/// message, bytes written).
fn fill(d: &TestDaemon, extra: &[&str], name: &str, mib: u32) -> (i32, String, u64) {
    let script = format!("dd if=/dev/zero of=/big bs=1M count={mib} 2>/tmp/err; echo $?; stat -c %s /big; cat /tmp/err");
    let mut args = vec!["run", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    let out = ok(&docker(d, &args));
    let mut lines = out.lines();
    let rc = lines.next().unwrap().parse().unwrap();
    let size = lines.next().unwrap().parse().unwrap();
    (rc, lines.collect::<Vec<_>>().join("\n"), size)
}

#[test]
fn size_limits_the_writable_layer_on_xfs_with_project_quotas() {
    let fs = match LoopXfs::new("prjquota") {
        Ok(fs) => fs,
        Err(e) if kernel_lacks_xfs_quota() => {
            eprintln!("skipped: this kernel has no XFS quota support (CONFIG_XFS_QUOTA), mount -o prjquota: {e}");
            return;
        }
        Err(e) => panic!("mount xfs -o prjquota: {e}"),
    };
    let root = fs.mnt().join("berth");
    let d = TestDaemon::start_with(Path::new(BERTHD), &["--data-root", root.to_str().unwrap()]);
    d.import_busybox("busybox:latest");

    let (rc, err, size) = fill(&d, &["--storage-opt", "size=10M"], "small", 40);
    assert_ne!(rc, 0, "dd past the limit fails: {err}");
    assert!(err.contains("quota exceeded") || err.contains("No space left"), "{err}");
    assert!((8 << 20..=10 << 20).contains(&size), "wrote {size} bytes under a 10M limit: {err}");
    let hc = &serde_json::from_str::<Value>(&ok(&docker(&d, &["inspect", "small"]))).unwrap()[0]["HostConfig"];
    assert_eq!(hc["StorageOpt"], json!({"size": "10M"}));
    // One project of the container's, its hard limit 10 MiB.
    let limited: Vec<_> = fs.projects().into_iter().filter(|p| p.2 == 10 << 10).collect();
    assert_eq!(limited.len(), 1, "{:?}", fs.projects());
    let id = limited[0].0;
    assert!(id > 0 && limited[0].1 >= 8 << 10, "{limited:?}");

    // Without the option, the same write goes through.
    let (rc, err, size) = fill(&d, &[], "big", 40);
    assert_eq!((rc, size), (0, 40 << 20), "{err}");
    ok(&docker(&d, &["rm", "big"]));

    // Removing the container frees its project: no usage, no limit.
    ok(&docker(&d, &["rm", "small"]));
    assert!(fs.projects().iter().all(|p| p.0 != id || (p.1, p.2) == (0, 0)), "{:?}", fs.projects());
    // ... and the next sized container gets the ID again.
    ok(&docker(&d, &["create", "--name", "again", "--storage-opt", "size=20M", "busybox", "true"]));
    assert!(fs.projects().contains(&(id, 0, 20 << 10)), "{:?}", fs.projects());
    ok(&docker(&d, &["rm", "again"]));
    drop(d);
}

#[test]
fn size_is_refused_with_dockers_error_without_project_quotas() {
    // The test dir's file system (the host's root or tmpfs: no prjquota).
    let d = TestDaemon::start(Path::new(BERTHD));
    d.import_busybox("busybox:latest");
    let before = d.container_ids().len();
    for opt in ["size=10M", "size=0"] {
        let e = fails(&docker(&d, &["run", "--rm", "--storage-opt", opt, "busybox", "true"]));
        assert!(e.contains(NO_QUOTA), "{e}");
    }
    let e = fails(&docker(&d, &["create", "--storage-opt", "bogus=1", "busybox", "true"]));
    assert!(e.contains("Unknown option bogus"), "{e}");
    let r = d
        .request("POST", "/containers/create", Some(("application/json", json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"StorageOpt": {"size": "1G"}}}).to_string().as_bytes())))
        .unwrap();
    assert_eq!((r.status, r.json()["message"].clone()), (400, json!(NO_QUOTA)));
    assert_eq!(d.container_ids().len(), before);
    drop(d);

    // An xfs without prjquota: the same error.
    let fs = LoopXfs::new("noquota").expect("mount xfs");
    let root = fs.mnt().join("berth");
    let d = TestDaemon::start_with(Path::new(BERTHD), &["--data-root", root.to_str().unwrap()]);
    d.import_busybox("busybox:latest");
    let e = fails(&docker(&d, &["create", "--storage-opt", "size=10M", "busybox", "true"]));
    assert!(e.contains(NO_QUOTA), "{e}");
    ok(&docker(&d, &["run", "--rm", "busybox", "true"]));
    drop(d);
    // xfs keeps project IDs without quotas: what sized snapshots are given
    // is inherited by what is made under them.
    let top = fs.mnt().join("proj");
    std::fs::create_dir(&top).unwrap();
    berth_image::quota::set_project_id(&top, 4242).unwrap();
    std::fs::create_dir_all(top.join("fs/sub")).unwrap();
    std::fs::write(top.join("fs/sub/file"), "x").unwrap();
    for p in ["", "fs", "fs/sub", "fs/sub/file"] {
        assert_eq!(berth_image::quota::project_id(&top.join(p)).unwrap(), 4242, "{p}");
    }
}

#[test]
fn a_daemon_default_size_needs_project_quotas() {
    // dockerd refuses to start with overlay2.size where it can't be had;
    // berthd stops before it sets up any networking.
    let dir = TestDir::new("sizeopt");
    let mut child = Command::new(BERTHD)
        .args(["--data-root", dir.join("data").to_str().unwrap(), "--exec-root", dir.join("exec").to_str().unwrap()])
        .args(["-H", &format!("unix://{}", dir.join("exec/berth.sock").display())])
        .args(["--config-file", dir.join("daemon.json").to_str().unwrap()])
        .args(["--storage-opt", "overlay2.size=1G"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("berthd started with --storage-opt overlay2.size=1G on a file system without project quotas");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Storage option overlay2.size not supported. Filesystem does not support Project Quota"), "{err}");
}
