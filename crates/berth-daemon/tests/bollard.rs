//! A client nobody here wrote: the integration tests that ship in the
//! `bollard` crate's package on crates.io, run against a berthd of the
//! test's own.
//!
//! The harness never keeps bollard's code in this repository. At test time
//! it writes a scratch crate under the target dir (`<target>/bollard-tests`)
//! that depends on bollard, lets cargo fetch the package (`cargo metadata`),
//! copies the package's `tests/` files in, and builds them once
//! (`cargo test --no-run`). Each test file then runs against its own berthd
//! (`TestDaemon`), with `DOCKER_HOST` pointing at it and `DISABLE_REGISTRY`
//! set, so the tests name images without a registry prefix: `hello-world:linux`,
//! `alpine` and `fussybeaver/uhttpd`. Those are made here from the busybox
//! rootfs, with the files and config the tests rely on, imported through the
//! API and pushed to a `berth registry serve` of the test's own that berthd
//! uses as its Docker Hub mirror (`--registry-mirror`): the tests' pulls are
//! real pulls, answered from there.
//!
//! Each file runs with `--test-threads 1`, as bollard's README and CI do
//! (some tests, such as container prune, assume no other test's containers
//! are around). Tests that cannot work here are skipped by exact name, each
//! with its reason; a skip naming a test the file no longer has fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use berth_testkit::daemon::TestDaemon;

const BERTHD: &str = env!("CARGO_BIN_EXE_berthd");

/// The bollard release whose tests run (the one berth-cli uses).
const BOLLARD_VERSION: &str = "=0.21.1";

/// How long one test file may run before it counts as hung.
const FILE_TIMEOUT: Duration = Duration::from_secs(180);

/// Test files run, each with the tests it skips and why.
const FILES: &[(&str, &[(&str, &str)])] = &[
    (
        "container_test",
        &[
            ("integration_test_image_push", "pushes to and pulls from a registry"),
        ],
    ),
    ("exec_test", &[]),
    (
        "image_test",
        &[
            ("integration_test_search_images", "searches Docker Hub"),
            ("integration_test_build_image", "builds a Dockerfile with pull=true: no builder yet, and the pull needs a registry"),
        ],
    ),
    (
        "system_test",
        &[(
            "integration_test_events",
            "expects its events request in before a registry pull ends: a pull answered from the store \
             can win that race, and the test then waits forever",
        )],
    ),
    ("version_test", &[("test_downversioning", "talks to /var/run/docker.sock, not DOCKER_HOST")]),
    ("volume_test", &[]),
];

// ---- the scratch crate --------------------------------------------------------

struct Built {
    dir: PathBuf,
    /// Test target name → its executable.
    executables: HashMap<String, PathBuf>,
}

fn scratch_dir() -> PathBuf {
    // <target>/debug/deps/bollard-<hash>
    let exe = std::env::current_exe().expect("test executable");
    let target = exe.ancestors().nth(3).expect("target dir").to_owned();
    target.join("bollard-tests")
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // The scratch crate is its own workspace with its own target dir.
    c.env_remove("CARGO_TARGET_DIR").env_remove("CARGO_BUILD_TARGET_DIR");
    c
}

fn manifest() -> String {
    format!(
        r#"# Written by crates/berth-daemon/tests/bollard.rs: bollard's own tests
# against berthd. Not part of berth's workspace.
[package]
name = "berth-bollard-tests"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
bollard = "{BOLLARD_VERSION}"
bytes = "1"
flate2 = "1"
futures-core = "0.3"
futures-util = "0.3"
http-body-util = "0.1"
# volume_test names it (`extern crate hyper`); bollard depends on it anyway.
hyper = "1"
tar = "0.4"
tokio = {{ version = "1", features = ["fs", "io-util", "macros", "net", "rt-multi-thread", "time"] }}

[lints.rust]
# The tests' cfg(feature = "test_ssl") and the like name bollard's features.
unexpected_cfgs = "allow"

[profile.dev]
debug = false
"#
    )
}

/// Write `data` to `path` unless it already holds it (an unchanged file
/// keeps its mtime, so cargo doesn't rebuild).
fn write_if_changed(path: &Path, data: &[u8]) {
    if std::fs::read(path).ok().as_deref() == Some(data) {
        return;
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn run_cargo(c: &mut Command, what: &str) -> Vec<u8> {
    let o = c.stderr(Stdio::inherit()).output().unwrap_or_else(|e| panic!("{what}: run cargo: {e}"));
    assert!(o.status.success(), "{what} failed ({})", o.status);
    o.stdout
}

fn build() -> Result<Built, String> {
    let dir = scratch_dir();
    let t = Instant::now();
    write_if_changed(&dir.join("Cargo.toml"), manifest().as_bytes());
    write_if_changed(&dir.join("src/lib.rs"), b"//! Empty: the tests are bollard's.\n");
    // Start from berth's lock file, so the versions are those already vetted
    // (and fetched); cargo adds what is missing and drops the rest.
    let lock = dir.join("Cargo.lock");
    if !lock.exists() {
        let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
        std::fs::copy(ours, &lock).map_err(|e| format!("seed Cargo.lock: {e}"))?;
    }
    let manifest_path = dir.join("Cargo.toml");
    // cargo metadata resolves and downloads the package: its sources hold the tests.
    let meta = run_cargo(
        cargo().args(["metadata", "--format-version", "1", "--manifest-path"]).arg(&manifest_path),
        "cargo metadata",
    );
    let meta: serde_json::Value = serde_json::from_slice(&meta).map_err(|e| format!("cargo metadata output: {e}"))?;
    let pkg = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "bollard")
        .ok_or("bollard is not in cargo metadata's packages")?;
    let src = Path::new(pkg["manifest_path"].as_str().ok_or("bollard manifest_path")?).parent().unwrap().join("tests");
    let mut files: Vec<String> = vec!["common/mod.rs".into()];
    files.extend(FILES.iter().map(|(f, _)| format!("{f}.rs")));
    for f in &files {
        let data = std::fs::read(src.join(f)).map_err(|e| format!("read {}: {e}", src.join(f).display()))?;
        write_if_changed(&dir.join("tests").join(f), &data);
    }
    let out = run_cargo(
        cargo()
            .args(["test", "--no-run", "--message-format=json-render-diagnostics", "--manifest-path"])
            .arg(&manifest_path)
            .args(FILES.iter().flat_map(|(f, _)| ["--test", f])),
        "building bollard's tests",
    );
    let mut executables = HashMap::new();
    for line in out.split(|b| *b == b'\n') {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else { continue };
        if v["reason"] == "compiler-artifact"
            && let (Some(name), Some(exe)) = (v["target"]["name"].as_str(), v["executable"].as_str())
        {
            executables.insert(name.to_owned(), PathBuf::from(exe));
        }
    }
    eprintln!("bollard {BOLLARD_VERSION} tests from {} built in {:.1?}", src.display(), t.elapsed());
    Ok(Built { dir, executables })
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Result<Built, String>> = OnceLock::new();
    let r = BUILT.get_or_init(|| {
        std::panic::catch_unwind(build).unwrap_or_else(|e| {
            Err(e.downcast_ref::<String>().cloned().or(e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default())
        })
    });
    match r {
        Ok(b) => b,
        Err(e) => panic!("bollard's tests could not be built: {e}"),
    }
}

// ---- the images the tests name ---------------------------------------------------

/// What `hello-world`'s `/hello` prints (its first lines: the tests read
/// the second log line).
const HELLO: &str = "#!/bin/sh
echo
echo 'Hello from Docker!'
echo 'This message shows that your installation appears to be working correctly.'
";

/// fussybeaver/uhttpd runs OpenWrt's uhttpd; busybox's httpd takes the same
/// flags the tests pass (`-f -p 80 -h /www`). uhttpd ends on SIGTERM, which
/// busybox's httpd as pid 1 would ignore: the shell stays pid 1 to do it.
const RUN_UHTTPD: &str = "#!/bin/sh
/usr/sbin/httpd \"$@\" &
trap 'kill $!; exit 0' TERM
wait
";
const UHTTPD_CONFIG: &str = "# Server configuration\nconfig uhttpd main\n\tlist listen_http\t0.0.0.0:80\n\toption home\t\t/www\n";

struct TestImage {
    repo: &'static str,
    tag: &'static str,
    files: &'static [(&'static str, u32, &'static str)],
    changes: &'static [&'static str],
}

const IMAGES: &[TestImage] = &[
    TestImage { repo: "hello-world", tag: "linux", files: &[("hello", 0o755, HELLO)], changes: &[r#"CMD ["/hello"]"#] },
    TestImage { repo: "alpine", tag: "latest", files: &[], changes: &[r#"CMD ["/bin/sh"]"#] },
    TestImage {
        repo: "fussybeaver/uhttpd",
        tag: "latest",
        files: &[
            ("usr/sbin/run_uhttpd", 0o755, RUN_UHTTPD),
            ("etc/config/uhttpd", 0o644, UHTTPD_CONFIG),
            ("www/index.html", 0o644, "<h1>berth</h1>\n"),
        ],
        changes: &["EXPOSE 80/tcp", r#"CMD ["/usr/sbin/run_uhttpd", "-f", "-p", "80", "-h", "/www"]"#],
    },
];

/// The busybox rootfs tar with `files` added (and their directories).
fn image_tar(base: &[u8], files: &[(&str, u32, &str)]) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    let mut archive = tar::Archive::new(base);
    let mut have = std::collections::HashSet::new();
    for entry in archive.entries().expect("busybox tar") {
        let mut entry = entry.expect("busybox tar entry");
        let header = entry.header().clone();
        have.insert(entry.path().expect("path").to_string_lossy().trim_start_matches("./").trim_end_matches('/').to_owned());
        out.append(&header, &mut entry).expect("copy entry");
    }
    for (path, mode, data) in files {
        let mut dir = PathBuf::new();
        for c in Path::new(path).parent().into_iter().flat_map(|p| p.components()) {
            dir.push(c);
            if have.insert(dir.to_string_lossy().into_owned()) {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                out.append_data(&mut h, &dir, std::io::empty()).expect("dir entry");
            }
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(*mode);
        h.set_size(data.len() as u64);
        out.append_data(&mut h, path, data.as_bytes()).expect("file entry");
    }
    out.into_inner().expect("tar")
}

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The registry berthd mirrors Docker Hub from, served in this process.
struct Mirror {
    server: berth_registry::server::RunningServer,
    _rt: tokio::runtime::Runtime,
    _dir: berth_testkit::TestDir,
}

fn mirror() -> Mirror {
    let dir = berth_testkit::TestDir::new("mirror");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let cfg = berth_registry::server::ServerConfig { addr: "127.0.0.1:0".into(), root: dir.join("root"), ..Default::default() };
    let server = rt.block_on(async { berth_registry::server::bind(cfg).await.expect("bind the mirror").spawn() });
    Mirror { server, _rt: rt, _dir: dir }
}

/// Push the test images to the mirror under their Docker Hub names, through
/// `d` (a second tag for the push, removed after).
fn push_images(d: &TestDaemon, m: &Mirror) {
    for img in IMAGES {
        let path = if img.repo.contains('/') { img.repo.to_owned() } else { format!("library/{}", img.repo) };
        let target = format!("{}/{path}", m.server.addr);
        let r = d.request("POST", &format!("/images/{}:{}/tag?repo={}&tag={}", img.repo, img.tag, target, img.tag), None).expect("tag");
        assert_eq!(r.status, 201, "tag {target}: {}", r.text());
        let r = d.request("POST", &format!("/images/{target}/push?tag={}", img.tag), None).expect("push");
        assert!(r.status == 200 && !r.text().contains("\"error\""), "push {target}: {}", r.text());
        let r = d.request("DELETE", &format!("/images/{target}:{}", img.tag), None).expect("untag");
        assert_eq!(r.status, 200, "untag {target}: {}", r.text());
    }
}

/// Import the test images into `d`, as `docker import --change` would.
fn make_images(d: &TestDaemon) {
    let tar = d.dir.join("busybox.tar");
    berth_testkit::rootfs::busybox_rootfs_tar(&tar).expect("busybox tar");
    let base = std::fs::read(&tar).expect("read busybox tar");
    for img in IMAGES {
        let mut path = format!("/images/create?fromSrc=-&repo={}&tag={}", query_escape(img.repo), img.tag);
        for c in img.changes {
            path.push_str(&format!("&changes={}", query_escape(c)));
        }
        let r = d.request("POST", &path, Some(("application/x-tar", &image_tar(&base, img.files)))).expect("import");
        assert_eq!(r.status, 200, "import {}: {}", img.repo, r.text());
    }
}

// ---- running a file --------------------------------------------------------------

fn run_file(file: &str) {
    // One file at a time: they take seconds, and some of bollard's tests
    // have timeouts a loaded machine could miss.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let skips = FILES.iter().find(|(f, _)| *f == file).map(|(_, s)| *s).unwrap_or_default();
    let b = built();
    let exe = b.executables.get(file).unwrap_or_else(|| panic!("no test executable for {file}: {:?}", b.executables));

    // Every skip must name a test the file has: a renamed test must not
    // slip out of the suite unnoticed.
    let list = |extra: &[&str]| -> Vec<String> {
        let o = Command::new(exe).arg("--list").args(extra).output().expect("list tests");
        String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.strip_suffix(": test").map(str::to_owned)).collect()
    };
    let names = list(&[]);
    let ignored = list(&["--ignored"]);
    for (name, _) in skips {
        assert!(names.iter().any(|n| n == name), "{file}: skipped test {name} does not exist (tests: {names:?})");
    }

    let m = mirror();
    let d = TestDaemon::start_with(Path::new(BERTHD), &["--registry-mirror", &format!("http://{}", m.server.addr)]);
    make_images(&d);
    push_images(&d, &m);
    let stdout = d.dir.join(format!("{file}.out"));
    let mut cmd = Command::new(exe);
    cmd.args(["--test-threads", "1", "--exact"]);
    for (name, why) in skips {
        eprintln!("{file}: skipping {name}: {why}");
        cmd.args(["--skip", name]);
    }
    let log = std::fs::File::create(&stdout).expect("output file");
    cmd.env("DOCKER_HOST", d.host())
        .env("DISABLE_REGISTRY", "1")
        .env_remove("REGISTRY_HTTP_ADDR")
        .env("RUST_BACKTRACE", "1")
        .current_dir(&b.dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let t = Instant::now();
    let mut child = cmd.spawn().expect("run bollard tests");
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if t.elapsed() > FILE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = std::fs::read_to_string(&stdout).unwrap_or_default();
    let passed = out.lines().rev().find(|l| l.starts_with("test result:")).unwrap_or("no result").to_owned();
    match status {
        Some(st) if st.success() => eprintln!("{out}\n{file}: {passed} ({:.1?})", t.elapsed()),
        Some(st) => panic!(
            "bollard's {file} failed ({st}):\n{out}\n--- berthd log (last lines):\n{}",
            tail(&std::fs::read_to_string(d.log_path()).unwrap_or_default(), 60)
        ),
        None => panic!("bollard's {file} hung for {FILE_TIMEOUT:?}:\n{out}"),
    }
    let ran = names.len() - skips.len() - ignored.len();
    assert!(passed.contains(&format!("{ran} passed")), "{file}: expected {ran} tests to pass: {passed}");
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn bollard_container_test() {
    run_file("container_test");
}

#[test]
fn bollard_exec_test() {
    run_file("exec_test");
}

#[test]
fn bollard_image_test() {
    run_file("image_test");
}

#[test]
fn bollard_system_test() {
    run_file("system_test");
}

#[test]
fn bollard_version_test() {
    run_file("version_test");
}

#[test]
fn bollard_volume_test() {
    run_file("volume_test");
}
