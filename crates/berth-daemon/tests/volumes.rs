//! Root integration tests of volumes and mounts: a test berthd driven by
//! the real docker CLI (and its API for what the CLI checks on its side).

use std::process::Output;

use berth_testkit::{TestDir, stderr_of_failure as fails, stdout_of_success as ok};
use berth_testkit::daemon::TestDaemon;
use serde_json::{Value, json};

const BERTHD: &str = env!("CARGO_BIN_EXE_berthd");

fn daemon() -> TestDaemon {
    let d = TestDaemon::start(std::path::Path::new(BERTHD));
    d.import_busybox("busybox:latest");
    d
}

/// The docker CLI against the test daemon; these tests need it.
fn docker(d: &TestDaemon, args: &[&str]) -> Output {
    let mut c = d.docker().unwrap_or_else(|| panic!("{} is needed by these tests", berth_testkit::daemon::DOCKER_CLI));
    c.args(args).output().expect("run docker")
}


fn volume_names(d: &TestDaemon) -> Vec<String> {
    let mut v: Vec<String> = ok(&docker(d, &["volume", "ls", "-q"])).lines().map(str::to_owned).collect();
    v.sort();
    v
}

fn inspect(d: &TestDaemon, what: &str) -> Value {
    let out = ok(&docker(d, &["inspect", what]));
    serde_json::from_str::<Value>(&out).unwrap()[0].clone()
}

fn is_mounted(path: &str) -> bool {
    berth_sys::mount::mounts_under(std::path::Path::new(path)).unwrap().iter().any(|p| p.to_str() == Some(path))
}

#[test]
fn backup_and_restore_recipe() {
    let d = daemon();
    let dir = TestDir::new("backup");
    let backup = dir.join("backup");
    ok(&docker(&d, &["run", "--name", "dbstore", "-v", "/data", "busybox", "sh", "-c",
        "mkdir -p /data/sub && echo hello > /data/a && head -c 100000 /bin/busybox > /data/sub/b && ln -s a /data/link"]));
    let bind = format!("{}:/backup", backup.display());
    ok(&docker(&d, &["run", "--rm", "--volumes-from", "dbstore", "-v", &bind, "busybox", "tar", "czf", "/backup/b.tgz", "/data"]));
    assert!(backup.join("b.tgz").metadata().unwrap().len() > 100, "the archive landed in the host directory");
    // Restore into a new container's new volume.
    ok(&docker(&d, &["run", "--name", "dbstore2", "-v", "/data", "busybox", "true"]));
    ok(&docker(&d, &["run", "--rm", "--volumes-from", "dbstore2", "-v", &bind, "busybox", "sh", "-c", "cd /data && tar xzf /backup/b.tgz --strip 1"]));
    let sum = "cd /data && cat a && md5sum sub/b && readlink link";
    let before = ok(&docker(&d, &["run", "--rm", "--volumes-from", "dbstore", "busybox", "sh", "-c", sum]));
    let after = ok(&docker(&d, &["run", "--rm", "--volumes-from", "dbstore2", "busybox", "sh", "-c", sum]));
    assert!(before.starts_with("hello\n"), "{before}");
    assert_eq!(before, after);
    // The two volumes are different ones.
    let v1 = inspect(&d, "dbstore")["Mounts"][0]["Name"].as_str().unwrap().to_owned();
    let v2 = inspect(&d, "dbstore2")["Mounts"][0]["Name"].as_str().unwrap().to_owned();
    assert_ne!(v1, v2);
    ok(&docker(&d, &["rm", "-v", "dbstore", "dbstore2"]));
    assert!(volume_names(&d).is_empty(), "rm -v removed both anonymous volumes");
}

#[test]
fn read_only_binds_and_volumes_refuse_writes() {
    let d = daemon();
    let dir = TestDir::new("robind");
    std::fs::write(dir.join("f"), "host").unwrap();
    let ro = format!("{}:/d:ro", dir.path().display());
    let e = fails(&docker(&d, &["run", "--rm", "-v", &ro, "busybox", "sh", "-c", "cat /d/f && touch /d/x"]));
    assert!(e.contains("Read-only file system"), "{e}");
    assert!(!dir.join("x").exists());
    let o = ok(&docker(&d, &["run", "--rm", "-v", &ro, "busybox", "cat", "/d/f"]));
    assert_eq!(o, "host");
    let m = "type=volume,source=rovol,target=/v,readonly";
    let e = fails(&docker(&d, &["run", "--rm", "--mount", m, "busybox", "touch", "/v/x"]));
    assert!(e.contains("Read-only file system"), "{e}");
    // A writable bind writes through to the host; a missing -v source is made.
    let missing = dir.join("made/here");
    let rw = format!("{}:/w", missing.display());
    ok(&docker(&d, &["run", "--rm", "-v", &rw, "busybox", "sh", "-c", "echo out > /w/o"]));
    assert_eq!(std::fs::read_to_string(missing.join("o")).unwrap(), "out\n");
    // --mount does not make a missing source.
    let m = format!("type=bind,source={},target=/x", dir.join("nope").display());
    let e = fails(&docker(&d, &["run", "--rm", "--mount", &m, "busybox", "true"]));
    assert!(e.contains("bind source path does not exist"), "{e}");
    // A read-only rootfs still takes writable volumes and binds, and a
    // file bind.
    let file = format!("{}:/etc/motd:ro", dir.join("f").display());
    let out = ok(&docker(&d, &["run", "--rm", "--read-only", "-v", "rwvol:/data", "-v", &file, "busybox", "sh", "-c", "echo ok > /data/f && cat /data/f /etc/motd"]));
    assert_eq!(out, "ok\nhost");
    ok(&docker(&d, &["volume", "rm", "rovol", "rwvol"]));
}

#[test]
fn named_volumes_survive_removal_and_daemon_restart() {
    let mut d = daemon();
    ok(&docker(&d, &["run", "--name", "ww", "-v", "keep:/data", "busybox", "sh", "-c", "echo kept > /data/f"]));
    // In use by the (stopped) container: refused, with docker's words.
    let e = fails(&docker(&d, &["volume", "rm", "keep"]));
    assert!(e.contains("volume is in use"), "{e}");
    let e = fails(&docker(&d, &["volume", "rm", "-f", "keep"]));
    assert!(e.contains("volume is in use"), "{e}");
    ok(&docker(&d, &["rm", "-v", "ww"]));
    assert_eq!(volume_names(&d), ["keep"], "rm -v never removes a named volume");
    d.restart();
    assert_eq!(ok(&docker(&d, &["run", "--rm", "-v", "keep:/data", "busybox", "cat", "/data/f"])), "kept\n");
    let v = inspect(&d, "keep");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert!(v["Mountpoint"].as_str().unwrap().ends_with("/volumes/keep/_data"));
    ok(&docker(&d, &["volume", "rm", "keep"]));
    assert!(volume_names(&d).is_empty());
}

#[test]
fn rm_v_and_run_rm_remove_anonymous_volumes_only() {
    let d = daemon();
    ok(&docker(&d, &["create", "--name", "cc", "-v", "/anon", "-v", "named:/n", "busybox", "true"]));
    let mounts = inspect(&d, "cc")["Mounts"].as_array().unwrap().clone();
    assert_eq!(mounts.len(), 2);
    let anon = mounts.iter().find(|m| m["Destination"] == "/anon").unwrap()["Name"].as_str().unwrap().to_owned();
    assert_eq!(anon.len(), 64);
    let labels = inspect(&d, &anon)["Labels"].clone();
    assert!(labels.get("com.docker.volume.anonymous").is_some(), "{labels}");
    // Plain rm keeps both.
    ok(&docker(&d, &["rm", "cc"]));
    let mut want = vec![anon.clone(), "named".to_owned()];
    want.sort();
    assert_eq!(volume_names(&d), want);
    ok(&docker(&d, &["create", "--name", "c2", "-v", "/anon2", "-v", "named:/n", "busybox", "true"]));
    ok(&docker(&d, &["rm", "-v", "c2"]));
    assert_eq!(volume_names(&d), want, "rm -v removed the anonymous volume, not the named one");
    // run --rm: its anonymous volumes go, named ones stay.
    ok(&docker(&d, &["run", "--rm", "-v", "/tmpdata", "-v", "named:/n", "busybox", "sh", "-c", "echo x > /tmpdata/x"]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while volume_names(&d) != want {
        assert!(std::time::Instant::now() < deadline, "run --rm left {:?}", volume_names(&d));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    ok(&docker(&d, &["volume", "rm", &anon, "named"]));
}

#[test]
fn copy_up_fills_new_volumes_unless_nocopy() {
    let d = daemon();
    ok(&docker(&d, &["run", "--rm", "-v", "etccopy:/etc", "busybox", "true"]));
    let passwd = ok(&docker(&d, &["run", "--rm", "-v", "etccopy:/x", "busybox", "cat", "/x/passwd"]));
    assert!(passwd.starts_with("root:"), "{passwd}");
    // Not empty any more: mounted over another image directory, nothing is copied in.
    assert_eq!(ok(&docker(&d, &["run", "--rm", "-v", "etccopy:/root", "busybox", "ls", "/root"])).contains("passwd"), true);
    assert!(!ok(&docker(&d, &["run", "--rm", "-v", "etccopy:/x", "busybox", "ls", "/x"])).contains("busybox"));
    ok(&docker(&d, &["run", "--rm", "-v", "nocp:/home:nocopy", "busybox", "true"]));
    assert_eq!(ok(&docker(&d, &["run", "--rm", "-v", "nocp:/x", "busybox", "ls", "-A", "/x"])), "");
    let m = "type=volume,source=nocp2,target=/home,volume-nocopy";
    ok(&docker(&d, &["run", "--rm", "--mount", m, "busybox", "true"]));
    assert_eq!(ok(&docker(&d, &["run", "--rm", "-v", "nocp2:/x", "busybox", "ls", "-A", "/x"])), "");
    // An image's VOLUME: every container gets an anonymous volume there,
    // filled from the image.
    let tar = TestDir::new("img");
    berth_testkit::rootfs::busybox_rootfs_tar(&tar.join("rootfs.tar")).unwrap();
    ok(&docker(&d, &["import", "--change", "VOLUME /etc", &tar.join("rootfs.tar").to_string_lossy(), "withvol:1"]));
    ok(&docker(&d, &["create", "--name", "iv", "withvol:1", "cat", "/etc/group"]));
    let m = inspect(&d, "iv")["Mounts"][0].clone();
    assert_eq!((m["Type"].as_str(), m["Destination"].as_str(), m["RW"].as_bool()), (Some("volume"), Some("/etc"), Some(true)));
    ok(&docker(&d, &["start", "-a", "iv"]));
    let name = m["Name"].as_str().unwrap();
    assert!(std::path::Path::new(m["Source"].as_str().unwrap()).join("group").exists(), "copied up into {name}");
    ok(&docker(&d, &["rm", "-v", "iv"]));
    ok(&docker(&d, &["volume", "rm", "etccopy", "nocp", "nocp2"]));
    assert!(volume_names(&d).is_empty());
}

#[test]
fn volumes_from_follows_the_chain() {
    let d = daemon();
    let dir = TestDir::new("chain");
    let bind = format!("{}:/hostdir:ro", dir.path().display());
    std::fs::write(dir.join("h"), "from host").unwrap();
    ok(&docker(&d, &["run", "--name", "data", "-v", "/data", "-v", &bind, "busybox", "sh", "-c", "echo base > /data/f"]));
    ok(&docker(&d, &["create", "--name", "data1", "--volumes-from", "data", "-v", "/more", "busybox", "true"]));
    ok(&docker(&d, &["create", "--name", "data2", "--volumes-from", "data1", "busybox", "true"]));
    let out = ok(&docker(&d, &["run", "--rm", "--volumes-from", "data2", "busybox", "sh", "-c", "cat /data/f /hostdir/h; ls -d /more"]));
    assert_eq!(out, "base\nfrom host/more\n");
    // :ro makes every mount read-only; the bind stays read-only anyway.
    let e = fails(&docker(&d, &["run", "--rm", "--volumes-from", "data2:ro", "busybox", "touch", "/data/x"]));
    assert!(e.contains("Read-only file system"), "{e}");
    let dests: Vec<String> = inspect(&d, "data2")["Mounts"].as_array().unwrap().iter().map(|m| m["Destination"].as_str().unwrap().to_owned()).collect();
    assert_eq!(dests.len(), 3, "{dests:?}");
    // data's volume is in use by all three; rm -v of data leaves it for the others.
    ok(&docker(&d, &["rm", "-v", "data"]));
    assert_eq!(volume_names(&d).len(), 2);
    ok(&docker(&d, &["rm", "-v", "data2"]));
    assert_eq!(volume_names(&d).len(), 2, "still used by data1");
    ok(&docker(&d, &["rm", "-v", "data1"]));
    assert!(volume_names(&d).is_empty(), "the last user's rm -v takes the inherited anonymous volume too");
    let e = fails(&docker(&d, &["run", "--rm", "--volumes-from", "nosuch", "busybox", "true"]));
    assert!(e.contains("No such container: nosuch") && !e.contains("Unable to find image"), "{e}");
    // A bad parameter, as dockerd's, not a 404 (which the CLI takes for a missing image).
    let r = d
        .request("POST", "/containers/create", Some(("application/json", json!({"Image": "busybox", "HostConfig": {"VolumesFrom": ["nosuch"]}}).to_string().as_bytes())))
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn prune_keeps_in_use_and_named_volumes() {
    let d = daemon();
    ok(&docker(&d, &["create", "--name", "user", "-v", "/inuse", "-v", "named-used:/n", "busybox", "true"]));
    ok(&docker(&d, &["volume", "create", "named-unused"]));
    ok(&docker(&d, &["run", "--name", "gone", "-v", "/unused", "busybox", "sh", "-c", "head -c 5000 /bin/busybox > /unused/f"]));
    let unused = inspect(&d, "gone")["Mounts"][0]["Name"].as_str().unwrap().to_owned();
    ok(&docker(&d, &["rm", "gone"]));
    let before = volume_names(&d);
    assert_eq!(before.len(), 4);
    let out = ok(&docker(&d, &["volume", "prune", "-f"]));
    assert!(out.contains(&unused), "{out}");
    assert!(out.contains("Total reclaimed space: 5"), "{out}");
    let after = volume_names(&d);
    assert_eq!(after.len(), 3);
    assert!(!after.contains(&unused));
    // --all: named ones too, still never one in use.
    let out = ok(&docker(&d, &["volume", "prune", "-af"]));
    assert!(out.contains("named-unused") && !out.contains("named-used"), "{out}");
    assert_eq!(volume_names(&d).len(), 2);
    // Filters of ls.
    let dangling = ok(&docker(&d, &["volume", "ls", "-q", "--filter", "dangling=true"]));
    assert_eq!(dangling, "");
    let named = ok(&docker(&d, &["volume", "ls", "-q", "--filter", "name=named"]));
    assert_eq!(named, "named-used\n");
    ok(&docker(&d, &["rm", "-v", "user"]));
    let dangling = ok(&docker(&d, &["volume", "ls", "-q", "--filter", "dangling=true"]));
    assert_eq!(dangling, "named-used\n");
    ok(&docker(&d, &["volume", "rm", "named-used"]));
}

#[test]
fn docker_cli_volume_commands_and_mounts() {
    let d = daemon();
    assert_eq!(ok(&docker(&d, &["volume", "create", "--label", "tier=db", "--label", "x", "v1"])), "v1\n");
    let generated = ok(&docker(&d, &["volume", "create"])).trim().to_owned();
    assert_eq!(generated.len(), 64);
    let ls = ok(&docker(&d, &["volume", "ls"]));
    assert!(ls.starts_with("DRIVER    VOLUME NAME\n"), "{ls}");
    assert!(ls.contains("local     v1\n"), "{ls}");
    assert_eq!(ok(&docker(&d, &["volume", "ls", "-q", "--filter", "label=tier=db"])), "v1\n");
    assert_eq!(ok(&docker(&d, &["volume", "ls", "--format", "{{.Name}} {{.Driver}}", "--filter", "label=x"])), "v1 local\n");
    let v = inspect(&d, "v1");
    assert_eq!(v["Labels"], json!({"tier": "db", "x": ""}));
    assert_eq!(ok(&docker(&d, &["volume", "inspect", "-f", "{{.Name}} {{.Scope}}", "v1"])), "v1 local\n");
    assert!(v["CreatedAt"].as_str().unwrap().ends_with('Z'));
    // A tmpfs volume: mounted while used, unmounted after.
    ok(&docker(&d, &["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "tv"]));
    let tv = inspect(&d, "tv");
    assert_eq!(tv["Options"], json!({"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}));
    let mp = tv["Mountpoint"].as_str().unwrap().to_owned();
    let id = ok(&docker(&d, &["run", "-d", "-v", "tv:/t", "busybox", "sh", "-c", "df -k /t | tail -1; sleep 100"])).trim().to_owned();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(is_mounted(&mp), "a tmpfs volume is mounted while its container runs");
    let df = ok(&docker(&d, &["logs", &id]));
    assert!(df.contains(" 1024 "), "1m tmpfs: {df}");
    ok(&docker(&d, &["rm", "-f", &id]));
    assert!(!is_mounted(&mp), "and unmounted when its last user stops");
    // --mount of each type, -v, --tmpfs; inspect shows them as docker does.
    let dir = TestDir::new("cli-mounts");
    let bind = format!("type=bind,source={},target=/b,bind-propagation=rslave", dir.path().display());
    let out = ok(&docker(&d, &[
        "run", "--name", "mm", "--mount", &bind, "--mount", "type=volume,source=v1,target=/v",
        "--mount", "type=tmpfs,target=/t,tmpfs-size=65536,tmpfs-mode=1770", "--tmpfs", "/run2:size=64k",
        "busybox", "sh", "-c", "echo in > /b/f; echo vol > /v/f; grep -E ' /(t|run2) ' /proc/mounts | cut -d' ' -f2,4",
    ]));
    assert!(out.contains("/t rw,nosuid,nodev,noexec,relatime,size=64k,mode=1770"), "{out}");
    assert!(out.contains("/run2 rw,nosuid,nodev,noexec,relatime,size=64k"), "{out}");
    assert_eq!(std::fs::read_to_string(dir.join("f")).unwrap(), "in\n");
    let mounts = inspect(&d, "mm")["Mounts"].clone();
    let by = |dest: &str| mounts.as_array().unwrap().iter().find(|m| m["Destination"] == dest).unwrap().clone();
    assert_eq!(by("/b")["Propagation"], "rslave");
    assert_eq!(by("/b")["Type"], "bind");
    assert_eq!((by("/v")["Name"].as_str(), by("/v")["Mode"].as_str()), (Some("v1"), Some("z")), "docker's mode for a named volume");
    assert_eq!(by("/t")["Type"], "tmpfs");
    let ps = ok(&docker(&d, &["ps", "-a", "--format", "{{.Mounts}}", "--filter", "name=mm"]));
    assert!(ps.contains("v1"), "{ps}");
    ok(&docker(&d, &["rm", "mm"]));
    ok(&docker(&d, &["volume", "rm", "v1", "tv", &generated]));
    assert!(volume_names(&d).is_empty());
}

#[test]
fn cp_reads_and_writes_through_mounts() {
    let d = daemon();
    let dir = TestDir::new("cp");
    std::fs::write(dir.join("in.txt"), "copied in").unwrap();
    ok(&docker(&d, &["create", "--name", "cc", "-v", "cpvol:/data", "busybox", "sleep", "100"]));
    // Stopped: the volume is mounted in for the copy.
    let src = dir.join("in.txt").to_string_lossy().into_owned();
    ok(&docker(&d, &["cp", &src, "cc:/data/in.txt"]));
    assert_eq!(ok(&docker(&d, &["run", "--rm", "-v", "cpvol:/x", "busybox", "cat", "/x/in.txt"])), "copied in");
    // Running: the container's own view.
    ok(&docker(&d, &["start", "cc"]));
    ok(&docker(&d, &["exec", "cc", "sh", "-c", "echo from ctr > /data/out.txt"]));
    let dest = dir.join("out.txt").to_string_lossy().into_owned();
    ok(&docker(&d, &["cp", "cc:/data/out.txt", &dest]));
    assert_eq!(std::fs::read_to_string(dir.join("out.txt")).unwrap(), "from ctr\n");
    ok(&docker(&d, &["cp", &src, "cc:/data/second.txt"]));
    assert_eq!(ok(&docker(&d, &["exec", "cc", "cat", "/data/second.txt"])), "copied in");
    ok(&docker(&d, &["rm", "-f", "cc"]));
    // The rootfs was not written: the files are in the volume only.
    let mp = inspect(&d, "cpvol")["Mountpoint"].as_str().unwrap().to_owned();
    assert!(std::path::Path::new(&mp).join("second.txt").exists());
    // system df counts the volume.
    let df = ok(&docker(&d, &["system", "df", "-v", "--format", "{{json .}}"]));
    assert!(df.contains("cpvol"), "{df}");
    ok(&docker(&d, &["volume", "rm", "cpvol"]));
}

#[test]
fn bad_input_is_refused_and_nothing_is_created() {
    let d = daemon();
    let containers_before = d.container_ids().len();
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--rm", "-v", "/tmp:/", "busybox", "true"], "destination can't be '/'"),
        (&["run", "--rm", "--mount", "type=volume,target=/", "busybox", "true"], "destination can't be '/'"),
        (&["run", "--rm", "-v", "/tmp:rel", "busybox", "true"], "mount path must be absolute"),
        (&["run", "--rm", "-v", "bad name!:/x", "busybox", "true"], "includes invalid characters for a local volume name"),
        (&["run", "--rm", "-v", "/tmp:/x:bogus", "busybox", "true"], "invalid mode: bogus"),
        (&["run", "--rm", "-v", "/a:/x", "-v", "/b:/x", "busybox", "true"], "Duplicate mount point: /x"),
        (&["run", "--rm", "--storage-opt", "size=1G", "busybox", "true"], "storage-opt"),
        (&["volume", "create", "-o", "foo=bar", "badopt"], "invalid option: \"foo\""),
        (&["volume", "create", "-o", "type=tmpfs", "badopt2"], "missing required option: \"device\""),
        (&["volume", "create", "a/b"], "includes invalid characters for a local volume name"),
        (&["volume", "create", "-d", "nfsplugin", "x1"], "plugin \"nfsplugin\" not found"),
        // A missing plugin is a 404 on create, as dockerd's, which makes the
        // CLI pull the image first unless told not to.
        (&["run", "--rm", "--pull", "never", "--volume-driver", "nfsplugin", "-v", "x2:/x", "busybox", "true"], "plugin \"nfsplugin\" not found"),
        (&["volume", "rm", "nosuchvol"], "no such volume"),
    ];
    for (args, want) in cases {
        let e = fails(&docker(&d, args));
        assert!(e.contains(want), "{args:?}: {e}");
    }
    assert_eq!(docker(&d, &["run", "--rm", "-v", "/tmp:/", "busybox", "true"]).status.code(), Some(125));
    assert!(volume_names(&d).is_empty(), "{:?}", volume_names(&d));
    assert_eq!(d.container_ids().len(), containers_before);
    // Through the API: a relative host path is a bad volume name.
    let r = d
        .request("POST", "/containers/create", Some(("application/json", json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Binds": ["rel/dir:/x"]}}).to_string().as_bytes())))
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("If you intended to pass a host directory, use absolute path"), "{}", r.text());
    assert!(!std::path::Path::new("rel/dir").exists());
    assert!(volume_names(&d).is_empty());
    // Prune before API 1.42 takes every unused volume, after only anonymous ones.
    ok(&docker(&d, &["volume", "create", "old"]));
    let r = d.request("POST", "/v1.43/volumes/prune", None).unwrap();
    assert_eq!(r.json()["VolumesDeleted"], json!([]));
    let r = d.request("POST", "/v1.41/volumes/prune", None).unwrap();
    assert_eq!(r.json()["VolumesDeleted"], json!(["old"]));
}

#[test]
fn mount_type_volumes_across_a_daemon_crash() {
    let mut d = daemon();
    let dir = TestDir::new("bindvol");
    // A bind-type volume writes through to its device directory.
    let dev = format!("device={}", dir.path().display());
    ok(&docker(&d, &["volume", "create", "-o", "type=none", "-o", &dev, "-o", "o=bind", "hostvol"]));
    ok(&docker(&d, &["run", "--rm", "-v", "hostvol:/h", "busybox", "sh", "-c", "echo through > /h/f"]));
    assert_eq!(std::fs::read_to_string(dir.join("f")).unwrap(), "through\n");
    let hostvol = inspect(&d, "hostvol")["Mountpoint"].as_str().unwrap().to_owned();
    assert!(!is_mounted(&hostvol));
    // A tmpfs volume in use when berthd dies stays mounted for its
    // container; the new daemon knows it is in use, and unmounts it when
    // the container stops.
    ok(&docker(&d, &["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "crashvol"]));
    let mp = inspect(&d, "crashvol")["Mountpoint"].as_str().unwrap().to_owned();
    ok(&docker(&d, &["run", "-d", "--name", "runner", "-v", "crashvol:/t", "busybox", "sh", "-c", "echo alive > /t/f; sleep 300"]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(is_mounted(&mp));
    d.kill9();
    d.restart();
    assert!(is_mounted(&mp), "still mounted for the running container");
    assert_eq!(ok(&docker(&d, &["run", "--rm", "-v", "crashvol:/t", "busybox", "cat", "/t/f"])), "alive\n", "a second user shares the same tmpfs");
    let e = fails(&docker(&d, &["volume", "rm", "crashvol"]));
    assert!(e.contains("volume is in use"), "{e}");
    ok(&docker(&d, &["rm", "-f", "runner"]));
    assert!(!is_mounted(&mp), "unmounted with its last user gone");
    ok(&docker(&d, &["volume", "rm", "crashvol", "hostvol"]));
    assert_eq!(std::fs::read_to_string(dir.join("f")).unwrap(), "through\n", "removing a bind-type volume never touches its device");
}
