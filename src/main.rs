fn main() {
    rlhf_t2i::runtime::fix_cpu_threads();
    if let Err(e) = rlhf_t2i::cli::main() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
