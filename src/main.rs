fn main() {
    std::process::exit(sortwise::cli::main());
}
