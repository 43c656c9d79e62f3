//! percore-server: a Redis/Valkey-compatible in-memory key-value server, one pinned shard
//! thread per core, each with its own io_uring. The server is the library (src/lib.rs).

fn main() -> std::process::ExitCode {
    percore::main()
}
