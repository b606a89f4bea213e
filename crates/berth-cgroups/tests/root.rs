//! Root tests: real cgroups on this host, under the run's cgroup parent.
//!
//! Children are forked and held on a pipe until the parent has put them in
//! the cgroup, as the runtime does with a container's init. Between fork and
//! exit a child only makes raw system calls: the test harness is
//! multi-threaded, and another thread may hold the allocator's lock.
//!
//! Every cgroup a test makes is in a [`Guard`] that kills its processes and
//! destroys it on drop, even when the test fails; the last guard to go also
//! removes the run's parent directories.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_cgroups::hierarchy::parse_proc_cgroup;
use berth_cgroups::{Cgroup, CgroupPath, Controller, FreezerState, Hierarchy, Mode};
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxNetworkBuilder, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
};

// ---- cgroups made and removed under one lock ----

/// Live guards. Creating and destroying take the lock, so the last guard's
/// removal of the run's parent never races another test's creation.
static LIVE: Mutex<usize> = Mutex::new(0);

struct Guard(Cgroup);

impl std::ops::Deref for Guard {
    type Target = Cgroup;
    fn deref(&self) -> &Cgroup {
        &self.0
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self.0.kill_all(libc::SIGKILL);
        if let Err(e) = self.0.destroy() {
            eprintln!("cleanup: {e}");
        }
        *live -= 1;
        if *live == 0 {
            remove_run_parent(self.0.hierarchy());
        }
    }
}

fn remove_run_parent(h: &Hierarchy) {
    let parent = berth_testkit::cgroup_parent();
    let roots = h.v1_mounts().iter().map(|m| m.mount_point.clone()).chain(h.unified().map(|u| u.mount_point.clone()));
    for root in roots {
        let _ = std::fs::remove_dir(root.join(&parent));
    }
}

fn test_path(name: &str) -> CgroupPath {
    CgroupPath::new(&format!("/{}/{name}-{}", berth_testkit::cgroup_parent(), std::process::id())).unwrap()
}

fn create(h: &Hierarchy, name: &str) -> Guard {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let cg = Cgroup::create(h.clone(), test_path(name)).unwrap_or_else(|e| panic!("create {name}: {e}"));
    *live += 1;
    Guard(cg)
}

/// The host as it is (hybrid on the test VM).
fn host() -> Hierarchy {
    berth_testkit::require_root();
    Hierarchy::detect().unwrap()
}

/// The host's unified hierarchy alone, to drive the v2 code (freezer, device
/// programs, cgroup.kill) even on a hybrid host.
fn unified() -> Hierarchy {
    let h = host();
    let u = h.unified().expect("this host has no cgroup2 mount");
    Hierarchy::unified_at(&u.mount_point).unwrap()
}

// ---- forked children ----

struct Child {
    pid: i32,
    go: Option<OwnedFd>,
    reaped: bool,
}

/// Forks a child that waits for [`Child::start`], then runs `body` and exits
/// with its result. `body` must only make raw system calls.
fn fork_child(body: impl FnOnce() -> i32) -> Child {
    let mut fds = [0; 2];
    // SAFETY: plain syscalls; the child only makes raw system calls until
    // _exit, so no lock held by another thread is needed.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        let pid = libc::fork();
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            libc::close(fds[1]);
            let mut b = 0u8;
            if libc::read(fds[0], (&mut b as *mut u8).cast(), 1) != 1 {
                libc::_exit(120);
            }
            libc::_exit(body());
        }
        libc::close(fds[0]);
        Child { pid, go: Some(OwnedFd::from_raw_fd(fds[1])), reaped: false }
    }
}

impl Child {
    fn start(&mut self) {
        let fd = self.go.take().expect("started twice");
        // SAFETY: writing one byte from a live buffer to an owned fd.
        assert_eq!(unsafe { libc::write(fd.as_raw_fd(), b"x".as_ptr().cast(), 1) }, 1);
    }

    /// Waits for the child; `Ok(code)` for an exit, `Err(signal)` for a kill.
    fn wait(&mut self) -> Result<i32, i32> {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a live status pointer.
        let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        assert_eq!(r, self.pid, "waitpid: {}", std::io::Error::last_os_error());
        self.reaped = true;
        if libc::WIFEXITED(status) { Ok(libc::WEXITSTATUS(status)) } else { Err(libc::WTERMSIG(status)) }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

fn spin() -> i32 {
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())).trim().to_owned()
}

fn dir(cg: &Cgroup, c: Controller) -> PathBuf {
    cg.controller_dir(c).unwrap_or_else(|| panic!("no {c} dir")).0
}

fn device(allow: bool, typ: LinuxDeviceType, major: i64, minor: i64) -> LinuxDeviceCgroup {
    LinuxDeviceCgroupBuilder::default().allow(allow).typ(typ).major(major).minor(minor).access("rwm").build().unwrap()
}

fn memory_limit(bytes: i64) -> LinuxResources {
    LinuxResourcesBuilder::default()
        .memory(LinuxMemoryBuilder::default().limit(bytes).build().unwrap())
        .build()
        .unwrap()
}

/// Deny all, then /dev/null (1:3) and /dev/zero (1:5): /dev/full (1:7) is
/// not allowed.
fn null_only() -> LinuxResources {
    LinuxResourcesBuilder::default()
        .devices(vec![
            LinuxDeviceCgroupBuilder::default().allow(false).access("rwm").build().unwrap(),
            device(true, LinuxDeviceType::C, 1, 3),
            device(true, LinuxDeviceType::C, 1, 5),
        ])
        .build()
        .unwrap()
}

/// Child body: 0 when /dev/null opens and /dev/full is refused with EPERM;
/// else a code saying which part failed.
fn open_devices(null: &CString, full: &CString) -> impl FnOnce() -> i32 {
    let (null, full) = (null.as_ptr(), full.as_ptr());
    move || unsafe {
        if libc::open(null, libc::O_RDWR) < 0 {
            return 10;
        }
        if libc::open(full, libc::O_RDWR) >= 0 {
            return 11;
        }
        if errno() == libc::EPERM { 0 } else { 12 }
    }
}

// ---- tests ----

#[test]
fn create_apply_destroy_leaves_nothing() {
    let h = host();
    let t = Instant::now();
    let cg = create(&h, "full");
    let created = t.elapsed();
    let mut res = LinuxResourcesBuilder::default()
        .memory(LinuxMemoryBuilder::default().limit(64 << 20).reservation(32 << 20).build().unwrap())
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50_000i64)
                .period(100_000u64)
                .cpus("0")
                .mems("0")
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(64).build().unwrap())
        .build()
        .unwrap();
    if h.placement(Controller::Blkio).is_some() {
        let (major, minor) = root_disk();
        res.set_block_io(Some(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .throttle_read_bps_device(vec![
                    LinuxThrottleDeviceBuilder::default().major(major).minor(minor).rate(1u64 << 20).build().unwrap(),
                ])
                .build()
                .unwrap(),
        ));
    }
    if h.placement(Controller::Hugetlb).is_some() {
        res.set_hugepage_limits(Some(vec![
            LinuxHugepageLimitBuilder::default().page_size("2MB").limit(4 << 20).build().unwrap(),
        ]));
    }
    res.set_devices(null_only().devices().clone());
    let t = Instant::now();
    cg.apply(&res).unwrap();
    let applied = t.elapsed();
    eprintln!("create {created:?} ({} dirs), apply {applied:?}", cg.dirs().len());

    if h.mode() != Mode::Unified {
        let mem = dir(&cg, Controller::Memory);
        assert_eq!(read(&mem.join("memory.limit_in_bytes")), (64 << 20).to_string());
        assert_eq!(read(&mem.join("memory.soft_limit_in_bytes")), (32 << 20).to_string());
        let cpu = dir(&cg, Controller::Cpu);
        assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&cpu.join("cpu.shares")), "512");
        assert_eq!(read(&dir(&cg, Controller::Cpuset).join("cpuset.cpus")), "0");
        assert_eq!(read(&dir(&cg, Controller::Pids).join("pids.max")), "64");
        assert_eq!(read(&dir(&cg, Controller::Devices).join("devices.list")), "c 1:3 rwm\nc 1:5 rwm");
        if h.placement(Controller::Blkio).is_some() {
            let (major, minor) = root_disk();
            assert_eq!(
                read(&dir(&cg, Controller::Blkio).join("blkio.throttle.read_bps_device")),
                format!("{major}:{minor} 1048576")
            );
        }
    }
    if let Some((d, v2)) = cg.controller_dir(Controller::Hugetlb) {
        let file = if v2 { "hugetlb.2MB.max" } else { "hugetlb.2MB.limit_in_bytes" };
        assert_eq!(read(&d.join(file)), (4 << 20).to_string(), "hugetlb through {}", d.display());
    }

    let owned = cg.owned().to_vec();
    let leaves = cg.dirs();
    assert!(leaves.iter().all(|d| owned.contains(d)));
    let t = Instant::now();
    drop(cg);
    eprintln!("destroy {:?}", t.elapsed());
    for d in leaves {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

/// major:minor of the disk holding `/`, for throttles.
fn root_disk() -> (i64, i64) {
    let text = read(Path::new("/proc/self/mountinfo"));
    let line = text.lines().find(|l| l.split(' ').nth(4) == Some("/")).unwrap();
    let (major, minor) = line.split(' ').nth(2).unwrap().split_once(':').unwrap();
    // A partition's throttle goes on its whole disk (minor 0 of the major,
    // for the usual virtio and SCSI majors).
    let minor: i64 = minor.parse().unwrap();
    (major.parse().unwrap(), minor - minor % 16)
}

#[test]
fn failed_apply_then_destroy_leaves_nothing() {
    let h = host();
    let cg = create(&h, "rollback");
    let res =
        LinuxResourcesBuilder::default().cpu(LinuxCpuBuilder::default().cpus("999").build().unwrap()).build().unwrap();
    let e = cg.apply(&res).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("linux.resources.cpu.cpus: write \"999\" to "), "{msg}");
    assert!(msg.contains("cpuset.cpus"), "{msg}");
    let made = cg.owned().to_vec();
    drop(cg);
    // The run parent goes with the last guard; everything below it is gone
    // now.
    for d in made.iter().filter(|d| d.ends_with(test_path("rollback").components().last().unwrap())) {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn add_process_joins_every_hierarchy() {
    let h = host();
    let cg = create(&h, "join");
    let mut child = fork_child(spin);
    cg.add_process(child.pid).unwrap();
    let entries = parse_proc_cgroup(&read(&PathBuf::from(format!("/proc/{}/cgroup", child.pid)))).unwrap();
    let want = cg.path().as_str();
    // Only mounted hierarchies can be managed (a v1 hierarchy can outlive
    // its last mount); every one of those must hold the child.
    let mounted = |e: &berth_cgroups::ProcCgroup| {
        e.controllers.is_empty() && h.unified().is_some()
            || h.v1_mounts().iter().any(|m| {
                m.name.as_deref().map(|n| e.controllers.iter().any(|c| c == &format!("name={n}"))).unwrap_or(false)
                    || m.controllers.iter().any(|c| e.controllers.iter().any(|x| x == c.v1_name()))
            })
    };
    let managed: Vec<_> = entries.iter().filter(|e| mounted(e)).collect();
    for e in &managed {
        assert_eq!(e.path, want, "hierarchy {:?}", e.controllers);
    }
    assert_eq!(managed.len(), cg.dirs().len());
    assert_eq!(cg.procs().unwrap(), [child.pid]);
    child.start();
}

#[test]
fn memory_limit_oom_kills_and_counts() {
    let h = host();
    let cg = create(&h, "oom");
    cg.apply(&memory_limit(32 << 20)).unwrap();
    let before = cg.stats().unwrap().memory_stats.unwrap().oom_kill;
    let mut child = fork_child(|| unsafe {
        let len = 100 << 20;
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return 10;
        }
        let p = p.cast::<u8>();
        let mut i = 0;
        while i < len {
            std::ptr::write_volatile(p.add(i), 1);
            i += 4096;
        }
        0
    });
    cg.add_process(child.pid).unwrap();
    child.start();
    assert_eq!(child.wait(), Err(libc::SIGKILL), "the child must be OOM-killed");
    let m = cg.stats().unwrap().memory_stats.unwrap();
    assert!(m.oom_kill > before, "oom_kill {} -> {}", before, m.oom_kill);
    assert_eq!(m.limit, Some(32 << 20));
    assert!(m.max_usage.unwrap_or(0) >= 30 << 20, "max usage {:?}", m.max_usage);
}

#[test]
fn pids_max_stops_forks() {
    let h = host();
    let cg = create(&h, "pids");
    let res =
        LinuxResourcesBuilder::default().pids(LinuxPidsBuilder::default().limit(4).build().unwrap()).build().unwrap();
    cg.apply(&res).unwrap();
    // Fork 10 sleepers; count the forks that work (those refused fail with
    // EAGAIN); then kill and reap the sleepers.
    let mut child = fork_child(|| unsafe {
        let mut kids = [0i32; 10];
        let mut n = 0;
        for _ in 0..10 {
            match libc::fork() {
                0 => {
                    libc::pause();
                    libc::_exit(0);
                }
                pid if pid > 0 => {
                    kids[n] = pid;
                    n += 1;
                }
                _ if errno() != libc::EAGAIN => return 100,
                _ => {}
            }
        }
        for k in &kids[..n] {
            libc::kill(*k, libc::SIGKILL);
            libc::waitpid(*k, std::ptr::null_mut(), 0);
        }
        n as i32
    });
    cg.add_process(child.pid).unwrap();
    child.start();
    assert_eq!(child.wait(), Ok(3), "pids.max 4 = the child and three forks");
    let p = cg.stats().unwrap().pids_stats.unwrap();
    assert_eq!(p.limit, Some(4));
}

/// Spins a child in `cg`, checks that freezing stops its CPU time and
/// thawing resumes it.
fn freeze_stops_a_busy_child(cg: &Cgroup) {
    let mut child = fork_child(spin);
    cg.add_process(child.pid).unwrap();
    child.start();
    let usage = || cg.stats().unwrap().cpu_stats.unwrap().cpu_usage.total_usage;
    let first = usage();
    wait_until("cpu usage to grow", Duration::from_secs(5), || usage() > first + 20_000_000);
    cg.freeze().unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Frozen);
    let frozen_at = usage();
    std::thread::sleep(Duration::from_millis(200));
    let later = usage();
    assert!(later - frozen_at < 5_000_000, "frozen child ran {} ns", later - frozen_at);
    cg.thaw().unwrap();
    assert_eq!(cg.freezer_state().unwrap(), FreezerState::Thawed);
    wait_until("cpu usage to grow after thaw", Duration::from_secs(5), || usage() > later + 20_000_000);
    assert_eq!(cg.kill_all(libc::SIGKILL).unwrap(), 1);
    assert_eq!(child.wait(), Err(libc::SIGKILL));
}

/// Runs `check` on a new cgroup named `name` in `h`.
fn check_on(h: Hierarchy, name: &str, check: impl FnOnce(&Cgroup)) {
    let cg = create(&h, name);
    check(&cg);
}

#[test]
fn freeze_thaw_v1_or_host() {
    check_on(host(), "freeze", freeze_stops_a_busy_child);
}

#[test]
fn freeze_thaw_v2() {
    check_on(unified(), "freeze2", |cg| {
        assert!(cg.controller_dir(Controller::Freezer).unwrap().1, "v2 freezer");
        freeze_stops_a_busy_child(cg);
    });
}

#[test]
fn stats_grow_with_a_busy_child() {
    let h = host();
    let cg = create(&h, "stats");
    let s0 = cg.stats().unwrap();
    let mut child = fork_child(spin);
    cg.add_process(child.pid).unwrap();
    child.start();
    std::thread::sleep(Duration::from_millis(100));
    let s = cg.stats().unwrap();
    let (c0, c) = (s0.cpu_stats.unwrap().cpu_usage, s.cpu_stats.clone().unwrap().cpu_usage);
    assert!(c.total_usage > c0.total_usage + 10_000_000, "{c0:?} -> {c:?}");
    assert!(c.usage_in_usermode + c.usage_in_kernelmode > 0);
    if h.mode() != Mode::Unified {
        assert_eq!(c.percpu_usage.len(), std::thread::available_parallelism().unwrap().get());
    }
    if let Some(p) = &s.pids_stats {
        assert_eq!(p.current, 1);
        assert_eq!(p.limit, None);
    }
    let json = serde_json::to_value(&s).unwrap();
    assert!(json["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0);
    assert_eq!(cg.kill_all(libc::SIGKILL).unwrap(), 1);
    assert_eq!(child.wait(), Err(libc::SIGKILL));
}

#[test]
fn device_program_on_the_unified_hierarchy() {
    let h = unified();
    let cg = create(&h, "bpf");
    assert!(cg.controller_dir(Controller::Devices).unwrap().1, "v2 device program");
    cg.apply(&null_only()).unwrap();
    let target = berth_cgroups::bpf::CgroupDir::open(&cg.unified_dir().unwrap()).unwrap();
    assert_eq!(target.device_programs().unwrap().len(), 1);
    // Updating replaces the program rather than adding one.
    cg.apply(&null_only()).unwrap();
    assert_eq!(target.device_programs().unwrap().len(), 1);

    let (null, full) = (CString::new("/dev/null").unwrap(), CString::new("/dev/full").unwrap());
    let mut child = fork_child(open_devices(&null, &full));
    cg.add_process(child.pid).unwrap();
    child.start();
    assert_eq!(child.wait(), Ok(0), "10: /dev/null refused, 11: /dev/full opened, 12: wrong errno");
    drop(target);
}

/// The host's own device mechanism: v1 lists here (hybrid), the eBPF
/// program on a v2 host.
#[test]
fn device_rules_on_the_host() {
    let h = host();
    let cg = create(&h, "devices");
    cg.apply(&null_only()).unwrap();
    let (null, full) = (CString::new("/dev/null").unwrap(), CString::new("/dev/full").unwrap());
    let mut child = fork_child(open_devices(&null, &full));
    cg.add_process(child.pid).unwrap();
    child.start();
    assert_eq!(child.wait(), Ok(0), "10: /dev/null refused, 11: /dev/full opened, 12: wrong errno");
}

#[test]
fn read_only_view_cannot_raise_the_memory_limit() {
    let h = host();
    let cg = create(&h, "ro");
    cg.apply(&memory_limit(64 << 20)).unwrap();
    let view = cg.container_view();
    let (source, file) = if view.tmpfs {
        let m = view.mounts.iter().find(|m| m.destination == "memory").expect("a memory mount in the view");
        (m.source.clone(), "memory.limit_in_bytes")
    } else {
        (view.mounts[0].source.clone(), "memory.max")
    };
    let c = |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let (dir, through, root, none) =
        (c(&source), c(&source.join(file)), c(Path::new("/")), CString::new("none").unwrap());
    let value = b"9999999999";
    // In a private mount namespace: bind the container's memory cgroup onto
    // itself read-only, as the runtime binds it into the container, then try
    // to raise the limit through the bind. (Binding onto itself needs no
    // scratch directory, and the bind goes with the namespace.)
    let mut child = fork_child(|| unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return 101;
        }
        if libc::mount(
            none.as_ptr(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return 102;
        }
        if libc::mount(dir.as_ptr(), dir.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) != 0 {
            return 103;
        }
        let ro = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY;
        if libc::mount(none.as_ptr(), dir.as_ptr(), std::ptr::null(), ro, std::ptr::null()) != 0 {
            return 104;
        }
        let fd = libc::open(through.as_ptr(), libc::O_WRONLY);
        if fd < 0 {
            return errno();
        }
        if libc::write(fd, value.as_ptr().cast(), value.len()) < 0 {
            return errno();
        }
        0
    });
    child.start();
    assert_eq!(child.wait(), Ok(libc::EROFS), "101-104: namespace setup failed; 0: the write went through");
    assert_eq!(read(&source.join(file)), (64 << 20).to_string());
}

#[test]
fn kill_all_signals_every_process() {
    check_on(host(), "killall", kill_all_with_grandchildren);
}

#[test]
fn kill_all_on_v2() {
    check_on(unified(), "killall2", kill_all_with_grandchildren);
}

fn kill_all_with_grandchildren(cg: &Cgroup) {
    // Orphans are given to this process rather than to PID 1, so that they
    // are reaped here and no zombie outlives the test.
    // SAFETY: prctl with integer arguments.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
    // The child forks three sleepers, then sleeps itself.
    let mut child = fork_child(|| unsafe {
        for _ in 0..3 {
            if libc::fork() == 0 {
                libc::pause();
                libc::_exit(0);
            }
        }
        loop {
            libc::pause();
        }
    });
    cg.add_process(child.pid).unwrap();
    child.start();
    wait_until("four processes", Duration::from_secs(5), || cg.pids_recursive().unwrap().len() == 4);
    let sleepers: Vec<i32> = cg.pids_recursive().unwrap().into_iter().filter(|p| *p != child.pid).collect();
    assert_eq!(cg.kill_all(libc::SIGKILL).unwrap(), 4);
    assert_eq!(child.wait(), Err(libc::SIGKILL));
    // The child is gone, so its sleepers are ours now.
    for pid in sleepers {
        let mut status = 0;
        // SAFETY: waitpid on a process reparented to us.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
    }
    assert!(cg.pids_recursive().unwrap().is_empty());
}

#[test]
fn missing_controller_is_a_clear_error() {
    let h = unified();
    let cg = create(&h, "missing");
    let res = LinuxResourcesBuilder::default()
        .network(LinuxNetworkBuilder::default().class_id(0x10001u32).build().unwrap())
        .build()
        .unwrap();
    let e = cg.apply(&res).unwrap_err();
    assert_eq!(
        e.to_string(),
        "linux.resources.network.classID: the net_cls cgroup controller is not available on this host"
    );
}
