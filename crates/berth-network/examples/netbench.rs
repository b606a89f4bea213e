//! Networking figures measurable without the daemon (run by
//! `bench/network.sh`, root): the cost of one sandbox + endpoint set up and
//! torn down on a bridge, TCP throughput between two sandboxes against the
//! host's loopback (iperf3), and requests/s through a published port against
//! the server's own address (busybox httpd + wrk).
//!
//!   netbench <workdir> [runs]
//!
//! Everything it makes is named `bnb<pid>...` and removed before it exits.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_network::controller::Config;
use berth_network::ports::parse_publish;
use berth_network::{BindProbe, Controller, EndpointSpec, SandboxMode, system_nft};

struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn in_ns(ns: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net={}", ns.display())).args(args);
    c
}

fn output(mut c: Command) -> String {
    let out = c.stderr(Stdio::inherit()).output().expect("spawn");
    assert!(out.status.success(), "{c:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Gbit/s of a 5 s iperf3 run from `client` (None: the host) to `server_ip`.
fn iperf(client: Option<&Path>, server_ip: &str) -> f64 {
    let args = ["iperf3", "-c", server_ip, "-t", "5", "-J"];
    let c = match client {
        Some(ns) => in_ns(ns, &args),
        None => {
            let mut c = Command::new(args[0]);
            c.args(&args[1..]);
            c
        }
    };
    let j: serde_json::Value = serde_json::from_str(&output(c)).expect("iperf3 json");
    j["end"]["sum_received"]["bits_per_second"].as_f64().expect("bits_per_second") / 1e9
}

/// Requests/s of a 5 s wrk run against `url` from the host.
fn wrk(url: &str) -> f64 {
    let mut c = Command::new("wrk");
    c.args(["-t2", "-c32", "-d5s", url]);
    let out = output(c);
    out.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{out}"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let work = PathBuf::from(args.get(1).expect("usage: netbench <workdir> [runs]"));
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(50);
    let prefix = format!("bnb{}", std::process::id() % 100000);
    let mut cfg = Config::new(&work.join("data"), &work.join("exec"));
    cfg.nft_table = prefix.clone();
    cfg.link_prefix = prefix.clone();
    cfg.default_bridge.device = format!("{prefix}d");
    cfg.default_bridge.bip = Some("10.231.77.1/24".parse().unwrap());
    let ctl = Controller::open(cfg, system_nft(), Box::new(BindProbe)).unwrap();
    struct Uninstall<'a>(&'a Controller);
    impl Drop for Uninstall<'_> {
        fn drop(&mut self) {
            let _ = self.0.uninstall();
        }
    }
    let _guard = Uninstall(&ctl);
    let report = ctl.reconcile(&|_| true);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let bridge = ctl.network("bridge").unwrap().network.id;

    // 1. Sandbox + endpoint on the default bridge, set up and torn down.
    let (mut total, mut setup, mut down) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs + 3 {
        let id = format!("{:064x}", 0xbe00 + i);
        let t0 = Instant::now();
        ctl.create_sandbox(&id, SandboxMode::New).unwrap();
        ctl.connect(&id, &bridge, &EndpointSpec::default()).unwrap();
        let t1 = Instant::now();
        ctl.teardown(&id).unwrap();
        let t2 = Instant::now();
        if i >= 3 {
            setup.push((t1 - t0).as_secs_f64() * 1e3);
            down.push((t2 - t1).as_secs_f64() * 1e3);
            total.push((t2 - t0).as_secs_f64() * 1e3);
        }
    }
    println!("sandbox_setup_ms {:.2}", median(setup));
    println!("sandbox_teardown_ms {:.2}", median(down));
    println!("sandbox_total_ms {:.2}", median(total));

    // 1b. The same on a user-defined network, with the embedded DNS attached
    // (its nft rules in the sandbox), loading rules through libnftables and
    // through the nft binary.
    let user = ctl
        .create_network(&berth_network::NetworkCreate {
            name: format!("{prefix}-user"),
            ipam: vec![berth_network::IpamRequest { subnet: Some("10.231.78.0/24".into()), ..Default::default() }],
            ..Default::default()
        })
        .unwrap()
        .id;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let loaders: Vec<(&str, std::sync::Arc<dyn berth_network::Nft>)> = vec![
        ("libnftables", system_nft()),
        ("nft_binary", std::sync::Arc::new(berth_network::NftCommand::default())),
    ];
    for (name, nft) in loaders {
        let dns = berth_network::DnsServer::new(ctl.dns_table(), vec![], nft, &prefix);
        let mut total = Vec::new();
        for i in 0..runs.min(100) + 3 {
            let id = format!("{:064x}", 0xde00 + i);
            let t0 = Instant::now();
            let ns = ctl.create_sandbox(&id, SandboxMode::New).unwrap().netns;
            ctl.connect(&id, &user, &EndpointSpec { container_name: format!("c{i}"), ..Default::default() }).unwrap();
            rt.block_on(dns.attach(&id, &ns)).unwrap();
            dns.detach(&id);
            ctl.teardown(&id).unwrap();
            if i >= 3 {
                total.push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
        println!("sandbox_user_dns_total_ms_{name} {:.2}", median(total));
    }
    drop(rt);
    ctl.remove_network(&user).unwrap();

    // 2. Two sandboxes on the bridge: iperf3 between them, and on the host's loopback.
    let (a, b) = ("a".repeat(64), "b".repeat(64));
    let ans = ctl.create_sandbox(&a, SandboxMode::New).unwrap().netns;
    let bns = ctl.create_sandbox(&b, SandboxMode::New).unwrap().netns;
    let aip = ctl.connect(&a, &bridge, &EndpointSpec::default()).unwrap().ipv4.unwrap().addr();
    ctl.connect(&b, &bridge, &EndpointSpec::default()).unwrap();
    {
        let _srv = Bg(in_ns(&ans, &["iperf3", "-s", "-p", "5201"]).stdout(Stdio::null()).spawn().unwrap());
        let _host_srv = Bg(Command::new("iperf3").args(["-s", "-B", "127.0.0.1", "-p", "5202"]).stdout(Stdio::null()).spawn().unwrap());
        std::thread::sleep(Duration::from_millis(300));
        let mut sb = Vec::new();
        let mut lo = Vec::new();
        for _ in 0..3 {
            sb.push(iperf(Some(&bns), &aip.to_string()));
            lo.push({
                let mut c = Command::new("iperf3");
                c.args(["-c", "127.0.0.1", "-p", "5202", "-t", "5", "-J"]);
                let j: serde_json::Value = serde_json::from_str(&output(c)).unwrap();
                j["end"]["sum_received"]["bits_per_second"].as_f64().unwrap() / 1e9
            });
        }
        println!("iperf_sandbox_gbps {:.2}", median(sb));
        println!("iperf_loopback_gbps {:.2}", median(lo));
    }

    // 3. busybox httpd in a: through a published port and at its own address.
    let www = work.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "x".repeat(612)).unwrap();
    // busybox httpd closes every connection: without a cap, the server's
    // TIME_WAIT sockets pile up and slow down whichever run comes later.
    output(in_ns(&ans, &["sh", "-c", "echo 64 > /proc/sys/net/ipv4/tcp_max_tw_buckets"]));
    let _httpd = Bg(in_ns(&ans, &["busybox", "httpd", "-f", "-p", "80", "-h", www.to_str().unwrap()]).spawn().unwrap());
    let m = ctl.publish(&a, &parse_publish("80").unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let port = m[0].host_port;
    let gw: IpAddr = "10.231.77.1".parse().unwrap();
    // The same server on the host itself, for reference.
    let host_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let _host_httpd = Bg(Command::new("busybox").args(["httpd", "-f", "-p", &format!("127.0.0.1:{host_port}"), "-h", www.to_str().unwrap()]).spawn().unwrap());
    std::thread::sleep(Duration::from_millis(200));
    let (mut direct, mut published, mut published_gw, mut host) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..7 {
        direct.push(wrk(&format!("http://{aip}:80/")));
        published.push(wrk(&format!("http://127.0.0.1:{port}/")));
        published_gw.push(wrk(&format!("http://{gw}:{port}/")));
        host.push(wrk(&format!("http://127.0.0.1:{host_port}/")));
    }
    println!("wrk_host_rps {:.0}", median(host));
    println!("wrk_direct_rps {:.0}", median(direct));
    println!("wrk_published_loopback_rps {:.0}", median(published));
    println!("wrk_published_bridge_rps {:.0}", median(published_gw));
    ctl.teardown(&a).unwrap();
    ctl.teardown(&b).unwrap();
}
