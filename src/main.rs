fn main() {
    if let Err(e) = rlhf_t2i::cli::main() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
