//! percore-persist: RDB encode/decode and the io_uring snapshot writer.

pub mod crc64;
pub mod file;
pub mod lzf;
pub mod rdb;
