//! Write one encoded packet per request kind into a directory (the fuzz seed corpus).
//! Usage: cargo run -p mantle-gofer --example fuzz_seeds -- gofer/fuzz/corpus/decode_request

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: fuzz_seeds DIR");
        std::process::exit(2);
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("fuzz_seeds: cannot create {dir}: {e}");
        std::process::exit(1);
    }
    for req in gofer::protocol::samples() {
        let path = std::path::Path::new(&dir).join(req.id().name());
        if let Err(e) = std::fs::write(&path, req.encode()) {
            eprintln!("fuzz_seeds: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}
