//! A byte transform between a connection's socket and its buffers: TLS. The reactor moves
//! ciphertext through the ring exactly as it moves plain bytes (multishot receives into
//! provided buffers, one send per connection in flight), and a [`Transport`] turns it into
//! the plaintext the service parses and back. A connection without one pays a single
//! branch per flush and per receive; its bytes are never copied for it.
//!
//! The reactor knows no cryptography: the server implements [`Transport`] (rustls there)
//! and hands one out per accepted connection through `Service::transport`.

use crate::reactor::InBuf;

/// Why a session ended: the peer's records were refused (bad record, failed handshake,
/// refused certificate) or it closed the session. Carried for the service's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError(pub String);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One connection's session (a TLS server or client connection).
pub trait Transport {
    /// Bytes received from the socket: the plaintext they complete is appended to
    /// `plain`. Whatever the session must answer (handshake, alerts) waits for
    /// [`Self::seal`]. After an error the reactor sends what `seal` still yields (the
    /// alert) and closes the connection.
    fn receive(&mut self, wire: &[u8], plain: &mut InBuf) -> Result<(), TransportError>;

    /// Moves plaintext from the front of `plain` into `wire` as records, as far as the
    /// session takes it (plaintext written before the handshake completes waits in
    /// `plain`), and appends every other record the session must send.
    fn seal(&mut self, plain: &mut Vec<u8>, wire: &mut Vec<u8>);

    /// Whether the session has records to send without any plaintext (handshake, alert).
    fn wants_write(&self) -> bool;

    /// Whether the handshake is still under way.
    fn handshaking(&self) -> bool;

    /// The session itself, for a service that takes it off the reactor (a connection
    /// that becomes a replication link served by threads of its own).
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send>;
}

/// A connection's session with the ciphertext received but not yet taken by it: on kernels
/// without provided buffers the receive lands here, not in the plaintext input.
pub(crate) struct Wrapped {
    pub(crate) session: Box<dyn Transport>,
    pub(crate) wire_in: InBuf,
    /// The session failed: send what it has left (an alert), then close.
    pub(crate) failed: Option<TransportError>,
}

impl Wrapped {
    pub(crate) fn new(session: Box<dyn Transport>) -> Self {
        Self {
            session,
            wire_in: InBuf::default(),
            failed: None,
        }
    }

    /// A single-shot receive wrote `n` bytes into `wire_in`: feeds them to the session.
    pub(crate) fn receive_buffered(&mut self, n: usize, plain: &mut InBuf) -> bool {
        self.wire_in.commit_recv(n);
        let Self {
            session,
            wire_in,
            failed,
        } = self;
        if failed.is_some() {
            return false;
        }
        let result = session.receive(wire_in.data(), plain);
        wire_in.consume(wire_in.len());
        match result {
            Ok(()) => true,
            Err(e) => {
                *failed = Some(e);
                false
            }
        }
    }

    /// Feeds `wire` to the session; false when it failed (now or before).
    pub(crate) fn receive(&mut self, wire: &[u8], plain: &mut InBuf) -> bool {
        if self.failed.is_some() {
            return false;
        }
        self.session
            .receive(wire, plain)
            .map_err(|e| self.failed = Some(e))
            .is_ok()
    }
}
