//! `berth network ...`, `berth run -p` and `berth port` against a real
//! berthd (root), with the daemon's own bridge, nft table and subnets.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use berth_testkit::daemon::TestDaemon;
use berth_testkit::stdout_of_success;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

fn berth(d: &TestDaemon, args: &[&str]) -> Output {
    Command::new(BERTH).arg("-H").arg(d.host()).args(args).stdin(Stdio::null()).output().expect("run berth")
}

fn ok(d: &TestDaemon, args: &[&str]) -> String {
    stdout_of_success(&berth(d, args))
}

#[test]
fn network_commands_and_published_ports() {
    let d = TestDaemon::start(&PathBuf::from(BERTH).with_file_name("berthd"));
    d.import_busybox("busybox:latest");
    let n = format!("{}-cli", d.net_prefix());
    let sub = d.subnet24(4);
    let id = ok(&d, &[
        "network", "create", "--subnet", &format!("{sub}.0/24"), "--gateway", &format!("{sub}.254"), "--ip-range", &format!("{sub}.128/25"),
        "--label", "k=v", "-o", "com.docker.network.driver.mtu=1400", &n,
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    let ls = ok(&d, &["network", "ls", "--filter", "label=k=v"]);
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines.len(), 2, "{ls}");
    assert!(lines[0].starts_with("NETWORK ID") && lines[1].contains(&n) && lines[1].contains("bridge"), "{ls}");
    let fmt = ok(&d, &["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}} {{.IPRange}}{{end}}", &n]);
    assert_eq!(fmt.trim(), format!("{sub}.0/24 {sub}.254 {sub}.128/25"));
    // Addresses come from the range; --ip and --alias on connect.
    let c = format!("{}-c", d.net_prefix());
    ok(&d, &["run", "-d", "--name", &c, "--network", &n, "-p", "127.0.0.1::8080", "busybox", "sleep", "60"]);
    let ip = ok(&d, &["inspect", "-f", &format!("{{{{(index .NetworkSettings.Networks \"{n}\").IPAddress}}}}"), &c]);
    let last: u8 = ip.trim().rsplit('.').next().unwrap().parse().unwrap();
    assert!(last >= 128, "{ip} outside the ip-range");
    let mtu = ok(&d, &["exec", &c, "cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(mtu.trim(), "1400");
    let port = ok(&d, &["port", &c]);
    assert!(port.trim().starts_with("8080/tcp -> 127.0.0.1:"), "{port}");
    let ps = ok(&d, &["ps", "--format", "{{.Ports}}"]);
    assert!(ps.contains("127.0.0.1:") && ps.contains("->8080/tcp"), "{ps}");
    let other = format!("{}-o", d.net_prefix());
    ok(&d, &["run", "-d", "--name", &other, "busybox", "sleep", "60"]);
    ok(&d, &["network", "connect", "--ip", &format!("{sub}.200"), "--alias", "svc", &n, &other]);
    let out = ok(&d, &["exec", &c, "ping", "-c1", "-W2", "svc"]);
    assert!(out.contains(&format!("{sub}.200")), "{out}");
    ok(&d, &["network", "disconnect", &n, &other]);
    let out = berth(&d, &["exec", &c, "ping", "-c1", "-W2", "svc"]);
    assert!(!out.status.success(), "svc still resolves after disconnect");
    let o = berth(&d, &["network", "rm", &n]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("has active endpoints"));
    ok(&d, &["rm", "-f", &c, &other]);
    assert_eq!(ok(&d, &["network", "rm", &n]).trim(), n);
    let o = berth(&d, &["network", "rm", &n]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("not found"));
    ok(&d, &["network", "rm", "-f", &n]);
}
