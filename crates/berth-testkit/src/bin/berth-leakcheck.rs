//! `berth-leakcheck RUN_ID`: list what test run RUN_ID left behind; exit 1 if anything.

fn main() {
    let Some(run) = std::env::args().nth(1) else {
        eprintln!("usage: berth-leakcheck RUN_ID");
        std::process::exit(2);
    };
    let leaks = berth_testkit::leak::check(&run);
    if leaks.is_empty() {
        println!("leak check: run {run} left nothing behind");
        return;
    }
    eprintln!("leak check: run {run} left {} thing(s) behind:", leaks.len());
    for l in &leaks {
        eprintln!("  {l}");
    }
    std::process::exit(1);
}
