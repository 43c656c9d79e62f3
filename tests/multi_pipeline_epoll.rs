//! `multi_pipeline.rs` again, every percore server on `--io-backend epoll` (see `common::io_backend`).

#[path = "multi_pipeline.rs"]
mod multi_pipeline;
