//! Benchmark and conformance helper for `bench/registry.sh`, until the
//! `berth` CLI carries these commands:
//!
//! - `serve ADDR ROOT [basic|token HTPASSWD]`: `berth registry serve`;
//! - `load ARCHIVE DATA_ROOT`: `docker load` into a store;
//! - `tag DATA_ROOT SOURCE TARGET`: `docker tag`;
//! - `push DATA_ROOT REF`, `pull DATA_ROOT REF`: berth's client, timed.
//!
//! Timed commands print their wall time in seconds on stdout.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use berth_registry::server::{AuthMode, ServerConfig, serve};

fn usage() -> ! {
    eprintln!("usage: berth-registry-bench serve ADDR ROOT [basic|token HTPASSWD] | load ARCHIVE DATA_ROOT | tag DATA_ROOT SOURCE TARGET | push DATA_ROOT REF | pull DATA_ROOT REF");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", addr, root, ref rest @ ..] => {
            let auth = match rest {
                [] => AuthMode::None,
                ["basic", htpasswd] => AuthMode::Basic { htpasswd: htpasswd.into(), realm: "berth-registry".into() },
                ["token", htpasswd] => AuthMode::Token { htpasswd: htpasswd.into(), service: "berth-registry".into() },
                _ => usage(),
            };
            let cfg = ServerConfig { addr: addr.into(), root: PathBuf::from(root), auth, ..Default::default() };
            if let Err(e) = rt.block_on(serve(cfg)) {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
        ["load", archive, root] => {
            let store = berth_image::store::ImageStore::open(Path::new(root)).expect("open store");
            let t = Instant::now();
            let r = store.load(std::fs::File::open(archive).expect("open archive")).expect("load");
            println!("{:.3}", t.elapsed().as_secs_f64());
            eprintln!("{}", r.lines.join("\n"));
        }
        ["tag", root, source, target] => {
            let store = berth_image::store::ImageStore::open(Path::new(root)).expect("open store");
            store.tag(source, target).expect("tag");
        }
        ["push", root, reference] | ["pull", root, reference] => {
            let store = Arc::new(berth_image::store::ImageStore::open(Path::new(root)).expect("open store"));
            let client = berth_registry::Client::new(Default::default(), Default::default());
            let t = Instant::now();
            let r = if args[0] == "push" {
                rt.block_on(client.push(store, reference, &Default::default(), &berth_registry::progress::Progress::none())).map(|r| r.digest.to_string())
            } else {
                rt.block_on(client.pull(store, reference, &Default::default(), &berth_registry::progress::Progress::none())).map(|r| r.digest.to_string())
            };
            match r {
                Ok(d) => {
                    println!("{:.3}", t.elapsed().as_secs_f64());
                    eprintln!("{reference}: {d}");
                }
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        _ => usage(),
    }
}
