//! `pubsub.rs` again, every percore server on `--io-backend epoll` (see `common::io_backend`).

#[path = "pubsub.rs"]
mod pubsub;
