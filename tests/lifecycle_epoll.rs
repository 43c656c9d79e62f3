//! `lifecycle.rs` again, every percore server on `--io-backend epoll` (see `common::io_backend`).

#[path = "lifecycle.rs"]
mod lifecycle;
