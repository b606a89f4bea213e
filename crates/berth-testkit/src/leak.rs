//! The leak check run after the test suite: anything a run made that is still
//! there is a failure, listed by kind.

use std::fs;
use std::path::{Path, PathBuf};

/// One leftover found after a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leak {
    Mount(PathBuf),
    Cgroup(PathBuf),
    Process { pid: i32, cmdline: String },
    Dir(PathBuf),
    NetNs(PathBuf),
    Link(String),
    Nft(String),
}

impl std::fmt::Display for Leak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leak::Mount(p) => write!(f, "mount {}", p.display()),
            Leak::Cgroup(p) => write!(f, "cgroup {}", p.display()),
            Leak::Process { pid, cmdline } => write!(f, "process {pid} ({cmdline})"),
            Leak::Dir(p) => write!(f, "directory {}", p.display()),
            Leak::NetNs(p) => write!(f, "network namespace {}", p.display()),
            Leak::Link(l) => write!(f, "network link {l}"),
            Leak::Nft(t) => write!(f, "nftables table {t}"),
        }
    }
}

/// Names a run gives to links, network namespaces and nftables tables: they
/// all start with this prefix (link names are limited to 15 bytes, so the run
/// id is shortened).
pub fn net_prefix(run: &str) -> String {
    let short: String = run.chars().filter(|c| c.is_ascii_alphanumeric()).rev().take(6).collect::<Vec<_>>().into_iter().rev().collect();
    format!("bt{short}")
}

/// Everything the run `run` left behind.
pub fn check(run: &str) -> Vec<Leak> {
    let mut leaks = Vec::new();
    let dir = crate::run_dir_for(run);
    if let Ok(mounts) = berth_sys::mount::mounts_under(&dir) {
        leaks.extend(mounts.into_iter().map(Leak::Mount));
    }
    let cg = crate::cgroup_parent_for(run);
    leaks.extend(cgroup_leaks(Path::new("/sys/fs/cgroup"), &cg).into_iter().map(Leak::Cgroup));
    leaks.extend(process_leaks(&dir, &cg));
    let prefix = net_prefix(run);
    if let Ok(rd) = fs::read_dir("/run/netns") {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                leaks.push(Leak::NetNs(e.path()));
            }
        }
    }
    if let Ok(rd) = fs::read_dir("/sys/class/net") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                leaks.push(Leak::Link(name));
            }
        }
    }
    if let Ok(out) = std::process::Command::new("nft").args(["list", "tables"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if line.contains(&prefix) {
                leaks.push(Leak::Nft(line.to_owned()));
            }
        }
    }
    if dir.exists() {
        leaks.push(Leak::Dir(dir));
    }
    leaks
}

/// Cgroup directories named `name` anywhere one level below a hierarchy root
/// (v1 controllers at `<root>/<ctl>/`, v2 at `<root>/` or `<root>/unified/`).
pub fn cgroup_leaks(root: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut candidates = vec![root.join(name)];
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                candidates.push(e.path().join(name));
            }
        }
    }
    for c in candidates {
        if c.is_dir() {
            found.push(c);
        }
    }
    found
}

fn process_leaks(dir: &Path, cg: &str) -> Vec<Leak> {
    let mut leaks = Vec::new();
    let me = std::process::id() as i32;
    let dir_s = dir.to_string_lossy().into_owned();
    let Ok(rd) = fs::read_dir("/proc") else { return leaks };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == me {
            continue;
        }
        let cgroups = fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        let cmdline = fs::read(e.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim().to_owned())
            .unwrap_or_default();
        if cgroups.contains(&format!("/{cg}")) || cmdline.contains(&dir_s) {
            leaks.push(Leak::Process { pid, cmdline });
        }
    }
    leaks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_prefix_is_short_enough_for_link_names() {
        let p = net_prefix("1732412345-98765");
        assert_eq!(p, "bt598765");
        assert!(p.len() <= 8);
        assert!(p.starts_with("bt"));
    }

    #[test]
    fn cgroup_leaks_finds_name_under_v1_and_v2_roots() {
        let root = std::env::temp_dir().join(format!("berth-leak-unit-{}", std::process::id()));
        fs::create_dir_all(root.join("memory/berth-test-x")).unwrap();
        fs::create_dir_all(root.join("cpu/other")).unwrap();
        fs::create_dir_all(root.join("berth-test-x")).unwrap();
        let mut got = cgroup_leaks(&root, "berth-test-x");
        got.sort();
        assert_eq!(got, vec![root.join("berth-test-x"), root.join("memory/berth-test-x")]);
        fs::remove_dir_all(&root).unwrap();
    }
}
