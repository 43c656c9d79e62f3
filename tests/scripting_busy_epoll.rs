//! `scripting_busy.rs` again, every percore server on `--io-backend epoll` (see
//! `common::io_backend`).

#[path = "scripting_busy.rs"]
mod scripting_busy;
