//! `--during "BGSAVE" --at 10s`: a command sent on a side connection at a set time of the
//! measurement, its reply, and (for BGSAVE and BGREWRITEAOF) when the server reports the
//! job finished, all marked on the timeline.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use percore_net::resp::{Frame, NulByte, decode_frame, split_args};
use percore_net::sys::monotonic_ns;

use super::args::EventSpec;
use super::worker::{PhaseClock, PhaseSync, connect};

/// How long an event's reply may take.
pub const EVENT_REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often INFO is asked whether a background save finished.
pub const FINISH_POLL_MS: u64 = 20;
/// The most reply text kept.
const MAX_REPLY_TEXT_CHARS: usize = 200;
/// The largest reply read.
const MAX_EVENT_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// What happened to one `--during` command.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    pub command: String,
    /// When it was sent, seconds from the start of measurement (`None`: not sent).
    pub sent_s: Option<f64>,
    /// Its reply, as redis-cli would show it, or why there is none.
    pub reply: String,
    /// How long the reply took.
    pub reply_ms: Option<f64>,
    /// When INFO first showed the background job finished.
    pub finished_s: Option<f64>,
    /// Anything else worth saying (the finish could not be seen, ...).
    pub note: Option<String>,
}

impl EventRecord {
    fn unsent(command: &str, why: String) -> Self {
        Self {
            command: command.to_string(),
            sent_s: None,
            reply: why,
            reply_ms: None,
            finished_s: None,
            note: None,
        }
    }

    /// Timeline marks: (seconds from measurement start, label).
    pub fn marks(&self) -> Vec<(f64, String)> {
        let mut m = Vec::new();
        if let Some(t) = self.sent_s {
            m.push((t, self.command.clone()));
        }
        if let Some(t) = self.finished_s {
            m.push((t, format!("{} done", first_word(&self.command))));
        }
        m
    }
}

fn first_word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or("")
}

/// The INFO field that says a background job of `command` is running, if it has one.
fn progress_field(command: &str) -> Option<&'static str> {
    match first_word(command).to_ascii_uppercase().as_str() {
        "BGSAVE" => Some("rdb_bgsave_in_progress"),
        "BGREWRITEAOF" => Some("aof_rewrite_in_progress"),
        _ => None,
    }
}

/// `SET "a b" c` as a RESP multibulk.
pub fn encode_command(text: &str) -> Result<Vec<u8>, String> {
    let mut scratch = Vec::new();
    let mut ranges = Vec::new();
    split_args(text.as_bytes(), NulByte::IsData, &mut scratch, &mut ranges)
        .map_err(|_| format!("unbalanced quotes in '{text}'"))?;
    if ranges.is_empty() {
        return Err("empty command".into());
    }
    let mut out = format!("*{}\r\n", ranges.len()).into_bytes();
    for (start, end) in ranges {
        out.extend_from_slice(format!("${}\r\n", end - start).as_bytes());
        out.extend_from_slice(&scratch[start..end]);
        out.extend_from_slice(b"\r\n");
    }
    Ok(out)
}

/// A reply the way redis-cli prints it, shortened.
pub fn describe(frame: &Frame) -> String {
    let text = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        if s.chars().count() > MAX_REPLY_TEXT_CHARS {
            let cut: String = s.chars().take(MAX_REPLY_TEXT_CHARS).collect();
            format!("{cut}...")
        } else {
            s.into_owned()
        }
    };
    match frame {
        Frame::Simple(s) => text(s),
        Frame::Error(s) => format!("(error) {}", text(s)),
        Frame::Int(v) => format!("(integer) {v}"),
        Frame::Bulk(b) => format!("\"{}\"", text(b)),
        Frame::Null | Frame::NullArray => "(nil)".into(),
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => format!("({} elements)", v.len()),
        Frame::Map(v) => format!("({} pairs)", v.len()),
        Frame::Double(d) => format!("(double) {d}"),
        Frame::Bool(b) => format!("(boolean) {b}"),
        Frame::Verbatim { text: t, .. } => format!("\"{}\"", text(t)),
        Frame::BigNumber(d) => format!("(big number) {}", text(d)),
    }
}

/// Sends one command and reads one reply.
fn call(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> io::Result<Frame> {
    stream.write_all(request)?;
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match decode_frame(buf) {
            Ok(Some((frame, _))) => return Ok(frame),
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        }
        if buf.len() > MAX_EVENT_REPLY_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "reply too large",
            ));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by server",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Sleeps until `deadline_ns`; false if the phase finished or was stopped first.
fn sleep_until(deadline_ns: u64, finished: &AtomicBool, stop: &AtomicBool) -> bool {
    loop {
        if finished.load(Ordering::SeqCst) || stop.load(Ordering::SeqCst) {
            return false;
        }
        let now = monotonic_ns();
        if now >= deadline_ns {
            return true;
        }
        std::thread::sleep(Duration::from_nanos((deadline_ns - now).min(5_000_000)));
    }
}

fn since_s(clock: &PhaseClock, t: u64) -> f64 {
    (t as f64 - clock.measure_ns as f64) / 1e9
}

/// Runs the events of one phase on a side connection to `addr`.
pub fn run_events(
    addr: SocketAddr,
    specs: &[EventSpec],
    sync: &PhaseSync,
    finished: &AtomicBool,
    stop: &AtomicBool,
) -> Vec<EventRecord> {
    let mut specs = specs.to_vec();
    specs.sort_by_key(|e| e.at);
    let mut stream = match connect(addr).and_then(|s| {
        s.set_read_timeout(Some(EVENT_REPLY_TIMEOUT))?;
        Ok(s)
    }) {
        Ok(s) => s,
        Err(e) => {
            return specs
                .iter()
                .map(|s| EventRecord::unsent(&s.command, format!("side connection failed: {e}")))
                .collect();
        }
    };
    let clock = loop {
        if let Some(c) = sync.clock.get() {
            break *c;
        }
        if sync.abort.load(Ordering::SeqCst) || finished.load(Ordering::SeqCst) {
            return Vec::new();
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for (n, spec) in specs.iter().enumerate() {
        let due = clock.measure_ns + spec.at.as_nanos() as u64;
        if !sleep_until(due, finished, stop) {
            out.push(EventRecord::unsent(
                &spec.command,
                "not sent: the run ended first".into(),
            ));
            continue;
        }
        let request = match encode_command(&spec.command) {
            Ok(r) => r,
            Err(e) => {
                out.push(EventRecord::unsent(&spec.command, e));
                continue;
            }
        };
        let sent = monotonic_ns();
        let (reply, ok) = match call(&mut stream, &request, &mut buf) {
            Ok(f) => (describe(&f), !matches!(f, Frame::Error(_))),
            Err(e) => (format!("no reply: {e}"), false),
        };
        let replied = monotonic_ns();
        let mut rec = EventRecord {
            command: spec.command.clone(),
            sent_s: Some(since_s(&clock, sent)),
            reply,
            reply_ms: Some((replied - sent) as f64 / 1e6),
            finished_s: None,
            note: None,
        };
        if ok && let Some(field) = progress_field(&spec.command) {
            let next_due = specs
                .get(n + 1)
                .map(|s| clock.measure_ns + s.at.as_nanos() as u64);
            watch_finish(
                &mut stream,
                &mut buf,
                field,
                &clock,
                next_due,
                finished,
                stop,
                &mut rec,
            );
        }
        out.push(rec);
    }
    out
}

/// Polls `INFO persistence` until `field` reads 0, marking when.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; a struct would only rename them"
)]
fn watch_finish(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    field: &str,
    clock: &PhaseClock,
    next_due: Option<u64>,
    finished: &AtomicBool,
    stop: &AtomicBool,
    rec: &mut EventRecord,
) {
    let Ok(info) = encode_command("INFO persistence") else {
        return;
    };
    let prefix = format!("{field}:");
    loop {
        let asked = monotonic_ns();
        let text = match call(stream, &info, buf) {
            Ok(Frame::Bulk(b) | Frame::Verbatim { text: b, .. }) => {
                String::from_utf8_lossy(&b).into_owned()
            }
            Ok(other) => {
                rec.note = Some(format!(
                    "INFO replied {}; finish not marked",
                    describe(&other)
                ));
                return;
            }
            Err(e) => {
                rec.note = Some(format!("INFO failed ({e}); finish not marked"));
                return;
            }
        };
        let Some(value) = text
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map(str::trim)
        else {
            rec.note = Some(format!("INFO has no {field}; finish not marked"));
            return;
        };
        if value == "0" {
            rec.finished_s = Some(since_s(clock, asked));
            return;
        }
        let wake = asked + FINISH_POLL_MS * 1_000_000;
        if next_due.is_some_and(|d| wake >= d) {
            rec.note = Some("still running when the next event was due".into());
            return;
        }
        if !sleep_until(wake, finished, stop) {
            rec.note = Some("still running when the run ended".into());
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_encode_with_quotes() {
        assert_eq!(
            encode_command("SET \"a b\" c").unwrap(),
            b"*3\r\n$3\r\nSET\r\n$3\r\na b\r\n$1\r\nc\r\n"
        );
        assert!(encode_command("  ").is_err());
        assert_eq!(
            progress_field("bgsave SCHEDULE"),
            Some("rdb_bgsave_in_progress")
        );
        assert_eq!(progress_field("DEBUG SLEEP 1"), None);
    }

    #[test]
    fn replies_read_like_redis_cli() {
        assert_eq!(
            describe(&Frame::Simple(b"Background saving started".to_vec())),
            "Background saving started"
        );
        assert_eq!(
            describe(&Frame::Error(b"ERR nope".to_vec())),
            "(error) ERR nope"
        );
        assert_eq!(describe(&Frame::Int(3)), "(integer) 3");
        assert_eq!(describe(&Frame::Bulk(vec![b'x'; 500])).len(), 205);
    }
}
