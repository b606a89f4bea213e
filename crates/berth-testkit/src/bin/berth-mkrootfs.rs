//! `berth-mkrootfs DIR`: fill DIR with the busybox root filesystem the tests
//! use (for benchmarks and the demo).

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: berth-mkrootfs DIR");
        std::process::exit(2);
    };
    let dir = std::path::PathBuf::from(dir);
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| berth_testkit::rootfs::busybox_rootfs(&dir)) {
        eprintln!("berth-mkrootfs: {}: {e}", dir.display());
        std::process::exit(1);
    }
}
