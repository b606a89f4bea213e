//! `berth volume …` and berth's mount flags against a real berthd (root).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use berth_testkit::daemon::TestDaemon;
use berth_testkit::{TestDir, stderr_of_failure as fails, stdout_of_success as ok};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

fn daemon() -> TestDaemon {
    let d = TestDaemon::start(&PathBuf::from(BERTH).with_file_name("berthd"));
    d.import_busybox("busybox:latest");
    d
}

fn berth(d: &TestDaemon, args: &[&str]) -> Output {
    Command::new(BERTH).arg("-H").arg(d.host()).args(args).stdin(Stdio::null()).output().expect("run berth")
}

#[test]
fn volume_commands_as_docker_prints_them() {
    let d = daemon();
    assert_eq!(ok(&berth(&d, &["volume", "create", "--label", "tier=db", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m", "data"])), "data\n");
    assert_eq!(ok(&berth(&d, &["volume", "create", "plain"])), "plain\n");
    assert_eq!(ok(&berth(&d, &["volume", "ls"])), "DRIVER    VOLUME NAME\nlocal     data\nlocal     plain\n");
    assert_eq!(ok(&berth(&d, &["volume", "ls", "-q", "--filter", "label=tier"])), "data\n");
    assert_eq!(ok(&berth(&d, &["volume", "ls", "--format", "{{.Name}}:{{.Labels}}:{{.Scope}}", "-f", "name=dat"])), "data:tier=db:local\n");
    assert_eq!(ok(&berth(&d, &["volume", "inspect", "-f", "{{.Options.type}} {{.Driver}}", "data"])), "tmpfs local\n");
    let e = fails(&berth(&d, &["volume", "create", "-o", "nokey", "x1"]));
    assert!(e.contains("expected key=value"), "{e}");
    let e = fails(&berth(&d, &["volume", "create", "bad/name"]));
    assert!(e.contains("includes invalid characters for a local volume name"), "{e}");
    let e = fails(&berth(&d, &["volume", "inspect", "nosuch"]));
    assert!(e.contains("no such volume"), "{e}");

    // run with -v, --mount, --tmpfs; rm -v keeps named volumes.
    let dir = TestDir::new("cli-vol");
    let bind = format!("{}:/host", dir.path().display());
    let out = ok(&berth(&d, &[
        "run", "--name", "user1", "-v", "data:/data", "-v", "/anon", "-v", &bind,
        "--mount", "type=volume,source=plain,target=/plain,readonly", "--tmpfs", "/scratch:size=1m",
        "busybox", "sh", "-c", "echo d > /data/f && echo h > /host/f && echo a > /anon/f && ! touch /plain/x 2>/dev/null && df -k /data /scratch | tail -2 | tr -s ' ' | cut -d' ' -f2",
    ]));
    assert_eq!(out, "2048\n1024\n", "the tmpfs volume and --tmpfs have their sizes");
    assert_eq!(std::fs::read_to_string(dir.join("f")).unwrap(), "h\n");
    let e = fails(&berth(&d, &["volume", "rm", "data"]));
    assert!(e.contains("volume is in use"), "{e}");
    let from = ok(&berth(&d, &["run", "--rm", "--volumes-from", "user1:ro", "busybox", "cat", "/anon/f", "/host/f"]));
    assert_eq!(from, "a\nh\n");
    assert_eq!(ok(&berth(&d, &["volume", "ls", "-q"])).lines().count(), 3);
    ok(&berth(&d, &["rm", "-v", "user1"]));
    assert_eq!(ok(&berth(&d, &["volume", "ls", "-q"])), "data\nplain\n");
    // A tmpfs volume's content lives as long as it is mounted: gone now.
    assert_eq!(ok(&berth(&d, &["run", "--rm", "-v", "data:/data", "busybox", "ls", "/data"])), "");

    let o = ok(&berth(&d, &["volume", "prune", "-f"]));
    assert_eq!(o, "Total reclaimed space: 0B\n");
    let o = ok(&berth(&d, &["volume", "prune", "-a", "-f", "--filter", "label=tier=db"]));
    assert_eq!(o, "Deleted Volumes:\ndata\n\nTotal reclaimed space: 0B\n");
    ok(&berth(&d, &["volume", "rm", "plain"]));
    assert_eq!(ok(&berth(&d, &["volume", "ls", "-q"])), "");
    let e = fails(&berth(&d, &["run", "--rm", "-v", "/tmp:/", "busybox", "true"]));
    assert!(e.contains("destination can't be '/'"), "{e}");
}
