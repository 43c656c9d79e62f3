//! `percore-bench`: see `docs/percore-bench.md` or `percore-bench --help`.

fn main() {
    std::process::exit(percore_benches::bench::cli::main(std::env::args().skip(1)));
}
