//! percore-net: the per-core io_uring reactor, the RESP codec and cross-core mailboxes.
//! It knows nothing of commands.

pub mod bufring;
pub mod mailbox;
pub mod reactor;
pub mod resp;
pub mod sys;
pub mod transport;
