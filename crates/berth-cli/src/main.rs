fn main() {
    std::process::exit(berth_cli::main(std::env::args_os()));
}
