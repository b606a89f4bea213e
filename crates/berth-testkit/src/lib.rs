//! Test support shared by berth's integration tests and benchmarks.
//!
//! Every resource a test makes is named after the *run*: one id per test-suite
//! invocation (`BERTH_TEST_RUN`, set by `scripts/test.sh`; generated when a test
//! binary is run alone). Roots live under [`run_dir`], cgroups under
//! [`cgroup_parent`], and the leak check (`berth-leakcheck`) looks for exactly
//! those names, so two runs, or a run and a real daemon, never collide.

pub mod daemon;
pub mod leak;
pub mod rootfs;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The id of this test run: `BERTH_TEST_RUN`, else made from the pid.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| match std::env::var("BERTH_TEST_RUN") {
        Ok(v) if !v.is_empty() => v,
        _ => format!("p{}", std::process::id()),
    })
}

/// Directory holding everything this run makes on disk.
pub fn run_dir() -> PathBuf {
    run_dir_for(run_id())
}

pub fn run_dir_for(run: &str) -> PathBuf {
    PathBuf::from(format!("/tmp/berth-test-{run}"))
}

/// Cgroup path (relative to each hierarchy's root) under which this run's
/// containers are placed.
pub fn cgroup_parent() -> String {
    cgroup_parent_for(run_id())
}

pub fn cgroup_parent_for(run: &str) -> String {
    format!("berth-test-{run}")
}

/// Fail loudly when a root-only test runs without root: a skipped root test
/// must never look like a passed one.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (namespaces, mounts, cgroups); run it as root via scripts/test.sh"
    );
}

/// A scratch directory under the run dir, unmounted and removed on drop.
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = run_dir().join(format!("{name}-{}-{n}", std::process::id()));
        // Another TestDir's drop may remove the (empty) run dir meanwhile: retry.
        let mut result = std::fs::create_dir_all(&path);
        for _ in 0..3 {
            if result.is_ok() {
                break;
            }
            result = std::fs::create_dir_all(&path);
        }
        result.unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TestDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        remove_tree(&self.path);
        // The run dir goes with its last TestDir (it fails while others remain).
        let _ = std::fs::remove_dir(run_dir());
    }
}

/// Unmount everything under `path`, then remove it. Best effort, for cleanup.
pub fn remove_tree(path: &Path) {
    if let Ok(mounts) = berth_sys::mount::mounts_under(path) {
        for m in mounts {
            let _ = berth_sys::mount::unmount_detach(&m);
        }
    }
    if path.exists()
        && let Err(e) = std::fs::remove_dir_all(path) {
            eprintln!("testkit: remove {}: {e}", path.display());
        }
}

/// A command's stdout, after asserting it succeeded (the panic shows its
/// exit status, stdout and stderr).
pub fn stdout_of_success(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A command's stderr, after asserting it failed.
pub fn stderr_of_failure(o: &std::process::Output) -> String {
    assert!(!o.status.success(), "expected a failure, got stdout: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stderr).into_owned()
}
