fn main() {
    std::process::exit(berth_daemon::cli::main());
}
