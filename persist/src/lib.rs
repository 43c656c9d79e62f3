//! percore-persist: RDB encode/decode and the io_uring snapshot writer.
//!
//! Only the skeleton exists until the snapshot issue lands.
