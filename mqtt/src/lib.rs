//! MQTT reporting for SFN-VAD field units, with Frigate's topic conventions.
//!
//! One [`Reporter`] per device, on its own connection ([`Reporter::start`]) or with other devices on
//! one ([`Reporter::start_shared`]: several cameras of one process). Like rumqtt itself, the crate keeps the protocol and queueing
//! logic ([`state::ReporterState`], pure: inputs in, actions out, no sockets or clocks) apart
//! from the I/O ([`Reporter`]: rumqttc's sync `Client`/`Connection` on background threads, the
//! spool directory, the clock).
//!
//! # Topic and payload contract
//! With `prefix` (default `sfn`) and `device`:
//!
//! | topic | QoS | retained | payload |
//! |---|---|---|---|
//! | `<prefix>/<device>/available` | 1 | yes | `online` after each connect; `offline` on clean shutdown, and as the last will (set in CONNECT) when the connection dies |
//! | `<prefix>/<device>/alarm` | 1 | no | the caller's binary alarm packet, as given |
//! | `<prefix>/<device>/alarm/json` | 1 | no | the caller's JSON mirror of the same alarm, as given (not validated) |
//! | `<prefix>/<device>/alarm/snapshot` | 1 | yes | the caller's JPEG of the latest alarm (at most [`MAX_SNAPSHOT_BYTES`]), latest wins; one without its PUBACK is sent again after a reconnect |
//! | `<prefix>/<device>/score` | 0 | no | a batch: the concatenation of up to `batch_max` (32) score payloads, in push order |
//! | `<prefix>/<device>/status` | 1 | yes | the caller's JSON status, as given; republished after each reconnect |
//! | discovery topics (optional, e.g. `homeassistant/.../config`) | 1 | yes | the caller's discovery configs, on each connect and when the hub's birth topic says `online` |
//!
//! The reporter publishes only. With [`ReporterOptions::discovery`] set it subscribes to exactly
//! one topic, the hub's birth topic (Home Assistant: `homeassistant/status`), and the only thing a
//! message there can do is make it publish the same discovery configs again.
//!
//! **Score framing.** Each score payload (at most [`MAX_SCORE_BYTES`] = 64 bytes) is copied
//! into the batch as-is, with nothing added between payloads. The caller must therefore make
//! payloads self-delimiting; SFN-VAD's score packets are COBS-encoded with a trailing `0x00`
//! delimiter, so a subscriber splits a batch on `0x00` and COBS-decodes each part. A batch is
//! published when it holds `batch_max` payloads or when its oldest payload has waited
//! `batch_interval` (1 s), whichever comes first.
//!
//! **Ordering and duplicates.** Alarms are published in push order, the packet before its JSON
//! mirror, at most `max_inflight_alarms` alarms unacknowledged at a time. After a connection
//! loss every alarm without both PUBACKs is published again, in order, from the first
//! unacknowledged one: the first arrival of each alarm is in order and none is lost (unless the
//! spool overflows, which is counted), but an alarm the broker had received without its PUBACK
//! reaching us arrives twice (ordinary QoS 1 redelivery). Subscribers that care deduplicate on
//! an id inside the packet.
//!
//! # While the broker is away
//! - **Alarms** are written ahead to the spool directory (see [`spool`] for the file format):
//!   every alarm, connected or not, is stored as its own file before it is published and its
//!   file is deleted only after the PUBACKs of both its publishes. So alarms survive a broker
//!   outage and a process restart alike (a new `Reporter` on the same directory delivers them
//!   first, in order). The spool holds at most `spool_max` (1000) alarms; when full, the
//!   **oldest** alarm not currently awaiting its PUBACK is dropped and counted in
//!   [`Stats::dropped_alarms`]. Oldest, because after an outage the current situation at the
//!   camera matters more than stale events, and the subscriber learns the gap from the counter
//!   (and from sequence ids inside the packets).
//! - **Scores** wait in an in-memory ring of `ring_max` (4096) payloads; when full the oldest is
//!   dropped and counted in [`Stats::dropped_scores`]. On reconnect the ring is flushed in full
//!   batches. Scores do not survive a restart.
//!
//! # Counters
//! [`Reporter::stats`] returns [`Stats`]; at any moment
//! `alarms_pushed + alarms_recovered == alarms_acked + dropped_alarms + queued_alarms` and
//! `scores_pushed == scores_published + dropped_scores + queued_scores`.
//!
//! # Example
//! ```no_run
//! use sfn_mqtt::{Reporter, ReporterOptions};
//! let mut opts = ReporterOptions::new("door-cam", "/var/lib/sfn/spool");
//! opts.host = "broker.local".into();
//! let reporter = Reporter::start(opts)?;
//! reporter.set_status(r#"{"fps":12.5}"#)?;
//! reporter.push_score(vec![0x03, 0x11, 0x22, 0x00])?; // a COBS frame
//! reporter.push_alarm(vec![0x01, 0x02], r#"{"score":0.93}"#)?;
//! let stats = reporter.shutdown();
//! println!("{stats:?}");
//! # Ok::<(), sfn_mqtt::Error>(())
//! ```

use std::io;
use std::path::PathBuf;

mod options;
mod reporter;
pub mod spool;
pub mod state;

pub use options::{ReporterOptions, TlsOptions, MAX_PAYLOAD_BYTES, MAX_SCORE_BYTES, MAX_SNAPSHOT_BYTES};
pub use reporter::{Reporter, SnapshotPublisher};
pub use state::{Discovery, Stats, Topics, OFFLINE, ONLINE};

/// Errors of this crate. Network trouble is never an error: it is what the spool is for.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The options do not make sense.
    #[error("invalid MQTT reporter options: {0}")]
    Options(String),
    /// A TLS file could not be read or used; names the file.
    #[error("TLS {what} file {}: {reason}", path.display())]
    Tls { what: &'static str, path: PathBuf, reason: String },
    /// The spool directory (or a file in it) could not be used; names the path.
    #[error("alarm spool {}: {source}", path.display())]
    Spool {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Another reporter holds the spool directory's lock.
    #[error("alarm spool {} is in use by another reporter", .0.display())]
    SpoolLocked(PathBuf),
    /// A score payload larger than [`MAX_SCORE_BYTES`].
    #[error("score payload of {0} bytes exceeds {MAX_SCORE_BYTES}")]
    ScoreTooLarge(usize),
    /// An alarm packet, alarm JSON or status larger than [`MAX_PAYLOAD_BYTES`].
    #[error("{what} of {len} bytes exceeds {max}")]
    PayloadTooLarge { what: &'static str, len: usize, max: usize },
    /// The reporter's background thread is gone.
    #[error("MQTT reporter is stopped")]
    Stopped,
}
