fn main() {
    std::process::exit(oxiborg::cli::main());
}
