//! `berth-shim <state-dir>`: started by the daemon through
//! `berth_shim::spawn`, never by hand.

fn main() {
    std::process::exit(berth_shim::server::main());
}
