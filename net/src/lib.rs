//! percore-net: the per-core reactor (io_uring, or epoll where io_uring is refused), the RESP
//! codec and cross-core mailboxes.
//! It knows nothing of commands.

pub mod backend;
pub mod bufring;
pub mod mailbox;
pub mod reactor;
pub mod resp;
pub mod sys;
pub mod transport;
