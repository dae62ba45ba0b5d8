//! Reading score-packet streams: the engine of `sfn-host decode`.
//!
//! Devices send [`ScorePacket`]s (see `sfn-wire`) over four kinds of [`Input`]:
//!
//! | spec                              | input                 | framing                                      |
//! |-----------------------------------|-----------------------|----------------------------------------------|
//! | `file:PATH` or a bare `PATH`      | [`Input::File`]       | COBS frames ended by `0x00`, read to EOF     |
//! | `serial:/dev/ttyUSB0`             | [`Input::Serial`]     | COBS frames; the tty is configured beforehand (`stty`) |
//! | `udp:HOST:PORT` (or `udp:PORT`)   | [`Input::Udp`]        | one raw packet per datagram, or COBS frames  |
//! | `mqtt://HOST[:PORT]/TOPIC`        | [`Input::Mqtt`]       | by topic: `…/alarm` raw, `…/score` COBS batch |
//!
//! [`decode_stream`] hands every good packet to a callback as a [`Record`] and returns the
//! [`Decoded`] counters. Corrupt frames are counted, reported (`tracing::warn`, with their byte
//! offset) and skipped: decoding resynchronises at the next `0x00`. Intact packets of another
//! format version are counted apart ([`Decoded::other_version`]); [`Decoded::check`] turns "only
//! packets of another version" and "nothing at all" into errors for the CLI.
//!
//! [`table_header`]/[`table_row`] and [`json_line`] format records for output.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::net::UdpSocket;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use sfn_wire::{Deframer, ScorePacket, WireError, MAX_FRAMED, VERSION};

mod input;
mod output;

pub use input::*;
pub use output::*;

/// Corrupt frames reported individually per [`decode_stream`] call; the rest are only counted
/// (a serial line at the wrong baud rate would otherwise flood the log).
const MAX_CORRUPT_WARNINGS: u64 = 20;

/// Errors of spec parsing and decoding.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Opening, reading or binding an input failed.
    #[error("{path}: {source}")]
    Io {
        /// The file, device or socket address.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An input spec that does not parse.
    #[error("bad input spec {spec:?}: {reason}")]
    BadSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The MQTT broker could not be reached or refused the subscription.
    #[error("mqtt: {reason}")]
    Mqtt {
        /// What went wrong.
        reason: String,
    },
    /// Nothing decoded, but there were intact packets of another format version.
    #[error(
        "no packets decoded: the input holds score packets of version {found}, \
         this decoder speaks version {expected}"
    )]
    OtherVersion {
        /// The (first) other version found.
        found: u8,
        /// The version this decoder speaks ([`sfn_wire::VERSION`]).
        expected: u8,
    },
    /// The input held no frames at all. (The field is not called `source`: thiserror reserves
    /// that name for the underlying error.)
    #[error("{input}: no score packets (empty input)")]
    Empty {
        /// The input, as [`Input`]'s `Display` writes it.
        input: String,
    },
}

/// One decoded packet and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The file or device path, the UDP peer address, or the MQTT topic.
    pub source: String,
    /// The packet.
    pub packet: ScorePacket,
}

/// What a [`decode_stream`] call saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The input, as [`Input`]'s `Display` writes it.
    pub input: String,
    /// Good packets handed to the callback.
    pub packets: u64,
    /// Corrupt frames, datagrams or payloads (bad COBS, CRC, length, a truncated last frame…).
    pub corrupt: u64,
    /// Intact packets of another format version, skipped.
    pub other_version: u64,
    /// The other versions seen, ascending.
    pub versions_found: BTreeSet<u8>,
    /// MQTT messages on topics that do not carry packets (`…/alarm/json`, `…/status`,
    /// `…/available`, …), skipped.
    pub other_messages: u64,
    /// Bytes read (file, serial) or received in datagrams / MQTT payloads.
    pub bytes: u64,
    /// Whether decoding stopped because `limit` packets were decoded.
    pub hit_limit: bool,
}

impl Decoded {
    /// An error for the cases in which the CLI should fail: nothing decoded but packets of
    /// another version ([`DecodeError::OtherVersion`], naming the lowest version found), or
    /// nothing at all: no packet, no corrupt frame ([`DecodeError::Empty`]).
    pub fn check(&self) -> Result<(), DecodeError> {
        if self.packets > 0 {
            return Ok(());
        }
        if let Some(&found) = self.versions_found.iter().next() {
            return Err(DecodeError::OtherVersion { found, expected: VERSION });
        }
        if self.corrupt == 0 {
            return Err(DecodeError::Empty { input: self.input.clone() });
        }
        Ok(())
    }

    /// Frames or messages that carried a packet candidate (good, corrupt or another version).
    pub fn frames(&self) -> u64 {
        self.packets + self.corrupt + self.other_version
    }
}

/// Decodes `input`, calling `on_packet` for each good packet, until EOF (file), `limit` good
/// packets, or `timeout` without data (serial: no bytes; UDP: no datagram; MQTT: no message).
/// `timeout` does not apply to files; `None` waits forever.
///
/// Errors only when the input cannot be opened / bound / connected or a read fails; corrupt
/// frames and packets of other versions are counted in the result (see [`Decoded::check`]).
///
/// A serial device is read on a helper thread so that the timeout works whatever the tty's
/// `min`/`time` settings; when decoding stops while that thread is blocked in `read`, it ends
/// after its next read returns.
pub fn decode_stream(input: &Input, limit: Option<u64>, timeout: Option<Duration>, on_packet: &mut dyn FnMut(&Record)) -> Result<Decoded, DecodeError> {
    let mut t = Tally::new(input.to_string(), limit, on_packet);
    if t.done() {
        t.out.hit_limit = true;
        return Ok(t.out);
    }
    match input {
        Input::File(path) => decode_file(path, &mut t)?,
        Input::Serial(path) => decode_serial(path, timeout, &mut t)?,
        Input::Udp(addr) => decode_udp(addr, timeout, &mut t)?,
        Input::Mqtt { host, port, topic } => decode_mqtt(host, *port, topic, timeout, &mut t)?,
    }
    t.out.hit_limit = t.done();
    Ok(t.out)
}

/// Counters, the callback and warning bookkeeping of one [`decode_stream`] call.
struct Tally<'a> {
    out: Decoded,
    limit: Option<u64>,
    on_packet: &'a mut dyn FnMut(&Record),
}

impl<'a> Tally<'a> {
    fn new(input: String, limit: Option<u64>, on_packet: &'a mut dyn FnMut(&Record)) -> Self {
        Self { out: Decoded { input, ..Decoded::default() }, limit, on_packet }
    }

    fn done(&self) -> bool {
        self.limit.is_some_and(|l| self.out.packets >= l)
    }

    /// Counts one frame's result. `at` describes where it was (for warnings).
    fn frame(&mut self, result: Result<ScorePacket, WireError>, source: &str, at: &dyn fmt::Display) {
        match result {
            Ok(packet) => {
                self.out.packets += 1;
                (self.on_packet)(&Record { source: source.to_string(), packet });
            }
            Err(WireError::Version { found, expected }) => {
                self.out.other_version += 1;
                if self.out.versions_found.insert(found) {
                    tracing::warn!(
                        "{source}: {at}: score packet of version {found} (this decoder speaks \
                         version {expected}); skipping packets of version {found}"
                    );
                } else {
                    tracing::debug!("{source}: {at}: skipping version-{found} packet");
                }
            }
            Err(e) => self.corrupt(source, at, &e),
        }
    }

    fn corrupt(&mut self, source: &str, at: &dyn fmt::Display, e: &dyn fmt::Display) {
        self.out.corrupt += 1;
        match self.out.corrupt {
            n if n <= MAX_CORRUPT_WARNINGS => {
                tracing::warn!("{source}: {at}: corrupt frame skipped: {e}")
            }
            n if n == MAX_CORRUPT_WARNINGS + 1 => tracing::warn!("{source}: {at}: corrupt frame skipped: {e} (further corrupt frames are only counted)"),
            _ => tracing::debug!("{source}: {at}: corrupt frame skipped: {e}"),
        }
    }
}

/// A byte stream being deframed: the deframer and byte offsets for the warnings.
struct Stream {
    deframer: Deframer<MAX_FRAMED>,
    /// Offset of the next byte.
    offset: u64,
    /// Offset of the first byte of the frame in progress.
    frame_start: u64,
    /// Prefix for the location in warnings, e.g. "byte" or "datagram 3, byte".
    what: String,
}

struct FrameAt<'a> {
    what: &'a str,
    start: u64,
    len: u64,
}

impl fmt::Display for FrameAt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({} bytes)", self.what, self.start, self.len)
    }
}

impl Stream {
    fn new(what: impl Into<String>) -> Self {
        Self { deframer: Deframer::new(), offset: 0, frame_start: 0, what: what.into() }
    }

    /// Feeds a chunk; returns `true` when the limit was reached (the rest of the chunk is
    /// not consumed).
    fn feed(&mut self, chunk: &[u8], source: &str, t: &mut Tally) -> bool {
        for &b in chunk {
            let at = self.offset;
            self.offset += 1;
            if let Some(result) = self.deframer.push(b) {
                let loc = FrameAt { what: &self.what, start: self.frame_start, len: at - self.frame_start };
                t.frame(result, source, &loc);
            }
            if b == 0 {
                self.frame_start = self.offset;
                if t.done() {
                    return true;
                }
            }
        }
        false
    }

    /// End of the stream: a frame in progress is truncated, hence corrupt.
    fn finish(&mut self, source: &str, t: &mut Tally) {
        if self.offset > self.frame_start {
            let loc = FrameAt { what: &self.what, start: self.frame_start, len: self.offset - self.frame_start };
            t.corrupt(source, &loc, &"truncated frame at end of stream (no 0x00 delimiter)");
            self.frame_start = self.offset;
        }
        self.deframer.reset();
    }
}

fn io_err(path: impl fmt::Display, source: io::Error) -> DecodeError {
    DecodeError::Io { path: path.to_string(), source }
}

fn decode_file(path: &Path, t: &mut Tally) -> Result<(), DecodeError> {
    let mut file = File::open(path).map_err(|e| io_err(path.display(), e))?;
    let source = path.display().to_string();
    let mut stream = Stream::new("byte");
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path.display(), e)),
        };
        t.out.bytes += n as u64;
        if stream.feed(&buf[..n], &source, t) {
            return Ok(());
        }
    }
    stream.finish(&source, t);
    Ok(())
}

enum Chunk {
    Data(Vec<u8>),
    Err(io::Error),
}

/// Sets the flag when dropped: tells the serial reader thread to stop.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(unix)]
fn is_char_device(file: &File) -> bool {
    use std::os::unix::fs::FileTypeExt;
    file.metadata().is_ok_and(|m| m.file_type().is_char_device())
}

#[cfg(not(unix))]
fn is_char_device(_file: &File) -> bool {
    false
}

fn decode_serial(path: &Path, timeout: Option<Duration>, t: &mut Tally) -> Result<(), DecodeError> {
    let mut file = File::open(path).map_err(|e| io_err(path.display(), e))?;
    // On a tty a read of 0 bytes means "nothing within VTIME", not end of file.
    let tty = is_char_device(&file);
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_guard = StopOnDrop(stop.clone());
    let (tx, rx) = mpsc::sync_channel::<Chunk>(64);
    thread::Builder::new()
        .name("sfn-serial-read".into())
        .spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                match file.read(&mut buf) {
                    Ok(0) if tty => thread::sleep(Duration::from_millis(10)),
                    Ok(0) => break, // EOF: dropping tx ends the stream
                    Ok(n) => {
                        if tx.send(Chunk::Data(buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Chunk::Err(e));
                        break;
                    }
                }
            }
        })
        .map_err(|e| io_err(path.display(), e))?;

    let source = path.display().to_string();
    let mut stream = Stream::new("byte");
    loop {
        let chunk = match timeout {
            Some(d) => match rx.recv_timeout(d) {
                Ok(c) => c,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    tracing::debug!("{source}: no data for {d:?}, stopping");
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(c) => c,
                Err(mpsc::RecvError) => break,
            },
        };
        match chunk {
            Chunk::Data(data) => {
                t.out.bytes += data.len() as u64;
                if stream.feed(&data, &source, t) {
                    return Ok(());
                }
            }
            Chunk::Err(e) => return Err(io_err(path.display(), e)),
        }
    }
    stream.finish(&source, t);
    Ok(())
}

/// Decodes one message (UDP datagram, MQTT alarm payload) meant to be one raw packet. A
/// message containing `0x00` that is not a valid raw packet is split into COBS frames instead;
/// one without `0x00` that is not a raw packet is tried as a single COBS frame.
fn decode_message(payload: &[u8], source: &str, what: &str, t: &mut Tally) {
    t.out.bytes += payload.len() as u64;
    let raw = ScorePacket::decode(payload);
    if matches!(raw, Ok(_) | Err(WireError::Version { .. })) {
        t.frame(raw, source, &what);
        return;
    }
    if payload.contains(&0) {
        decode_frames(payload, source, what, t);
        return;
    }
    let mut copy = payload.to_vec();
    match ScorePacket::decode_framed(&mut copy) {
        r @ (Ok(_) | Err(WireError::Version { .. })) => t.frame(r, source, &what),
        // Neither: report the error of the raw interpretation, the documented one.
        Err(_) => t.frame(raw, source, &what),
    }
}

/// Decodes a message of concatenated COBS frames (MQTT score batch).
fn decode_batch(payload: &[u8], source: &str, what: &str, t: &mut Tally) {
    t.out.bytes += payload.len() as u64;
    decode_frames(payload, source, what, t);
}

/// The COBS frames of one message; an unterminated last frame is corrupt.
fn decode_frames(payload: &[u8], source: &str, what: &str, t: &mut Tally) {
    let mut stream = Stream::new(format!("{what}, byte"));
    if !stream.feed(payload, source, t) {
        stream.finish(source, t);
    }
}

fn decode_udp(addr: &str, timeout: Option<Duration>, t: &mut Tally) -> Result<(), DecodeError> {
    let name = format!("udp:{addr}");
    let socket = UdpSocket::bind(addr).map_err(|e| io_err(&name, e))?;
    // A zero read timeout is an error for std; treat it as the shortest one.
    let timeout = timeout.map(|d| d.max(Duration::from_millis(1)));
    socket.set_read_timeout(timeout).map_err(|e| io_err(&name, e))?;
    if let Ok(local) = socket.local_addr() {
        tracing::info!("listening for score packets on udp:{local}");
    }
    let mut buf = vec![0u8; 65_536];
    let mut datagrams = 0u64;
    while !t.done() {
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                tracing::debug!("{name}: no datagram for {timeout:?}, stopping");
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // ICMP errors of earlier sends on this socket; not ours to care about.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(io_err(&name, e)),
        };
        datagrams += 1;
        let what = format!("datagram {datagrams}");
        decode_message(&buf[..n], &peer.to_string(), &what, t);
    }
    Ok(())
}

/// What a message on `topic` carries, by its last level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TopicKind {
    /// `…/alarm`: one raw packet.
    Alarm,
    /// `…/score`: concatenated COBS frames.
    Score,
    /// Anything else (`…/alarm/json`, `…/status`, `…/available`): not packets.
    Other,
}

fn topic_kind(topic: &str) -> TopicKind {
    match topic.rsplit('/').next() {
        Some("alarm") => TopicKind::Alarm,
        Some("score") => TopicKind::Score,
        _ => TopicKind::Other,
    }
}

fn decode_mqtt(host: &str, port: u16, topic: &str, timeout: Option<Duration>, t: &mut Tally) -> Result<(), DecodeError> {
    use rumqttc::{Client, ConnectionError, Event, MqttOptions, Packet, QoS, RecvTimeoutError};

    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let id = format!("sfn-host-decode-{}-{nanos:08x}", std::process::id());
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_clean_session(true);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut conn) = Client::new(opts, 16);
    let broker = format!("{host}:{port}");

    let mut connected = false;
    let mut messages = 0u64;
    // The silence deadline restarts with each message; without a timeout, poll in slices.
    let slice = Duration::from_secs(3600);
    let mut deadline = timeout.map(|d| Instant::now() + d);
    while !t.done() {
        let wait = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(w) if !w.is_zero() => w,
                _ => {
                    tracing::debug!("mqtt: no message for {timeout:?}, stopping");
                    break;
                }
            },
            None => slice,
        };
        let event = match conn.recv_timeout(wait) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if !connected {
                    tracing::info!("mqtt: connected to {broker}, subscribing to {topic}");
                }
                connected = true;
                // Clean session: subscribe again after every (re)connect.
                client.subscribe(topic, QoS::AtLeastOnce).map_err(|e| DecodeError::Mqtt { reason: format!("subscribe to {topic:?}: {e}") })?;
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                use rumqttc::SubscribeReasonCode;
                if ack.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) {
                    return Err(DecodeError::Mqtt { reason: format!("broker {broker} refused the subscription to {topic:?}") });
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                messages += 1;
                deadline = timeout.map(|d| Instant::now() + d);
                let what = format!("message {messages}");
                match topic_kind(&p.topic) {
                    TopicKind::Alarm => decode_message(&p.payload, &p.topic, &what, t),
                    TopicKind::Score => decode_batch(&p.payload, &p.topic, &what, t),
                    TopicKind::Other => {
                        t.out.other_messages += 1;
                        tracing::debug!("{}: skipping {what} (not score packets)", p.topic);
                    }
                }
            }
            Ok(_) => {}
            Err(e) if !connected => {
                let reason = match e {
                    ConnectionError::ConnectionRefused(code) => {
                        format!("broker {broker} refused the connection: {code:?}")
                    }
                    e => format!("cannot connect to {broker}: {e}"),
                };
                return Err(DecodeError::Mqtt { reason });
            }
            Err(e) => {
                // rumqttc reconnects on the next poll; don't spin while the broker is away.
                tracing::warn!("mqtt: connection to {broker} lost: {e}; reconnecting");
                thread::sleep(Duration::from_millis(500));
            }
        }
    }
    if !connected {
        return Err(DecodeError::Mqtt { reason: format!("no connection to {broker} within {timeout:?}") });
    }
    {
        // Say goodbye politely; give the event loop a moment to send DISCONNECT.
        if client.disconnect().is_ok() {
            for _ in 0..10 {
                match conn.recv_timeout(Duration::from_millis(100)) {
                    Ok(Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect))) | Ok(Err(_)) => break,
                    Err(_) => break,
                    Ok(Ok(_)) => {}
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_kinds() {
        assert_eq!(topic_kind("sfn/cam1/alarm"), TopicKind::Alarm);
        assert_eq!(topic_kind("sfn/cam1/score"), TopicKind::Score);
        assert_eq!(topic_kind("sfn/cam1/alarm/json"), TopicKind::Other);
        assert_eq!(topic_kind("sfn/cam1/status"), TopicKind::Other);
        assert_eq!(topic_kind("sfn/cam1/available"), TopicKind::Other);
        assert_eq!(topic_kind("alarm"), TopicKind::Alarm);
    }

    #[test]
    fn limit_zero_reads_nothing() {
        let input = Input::File("/nonexistent/never/opened".into());
        let d = decode_stream(&input, Some(0), None, &mut |_| panic!("no packets")).unwrap();
        assert_eq!(d.packets, 0);
        assert!(d.hit_limit);
    }
}
