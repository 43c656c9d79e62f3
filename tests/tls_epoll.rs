//! `tls.rs` again, every percore server on `--io-backend epoll` (see `common::io_backend`).

#[path = "tls.rs"]
mod tls;
