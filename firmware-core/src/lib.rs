//! # sfn-firmware-core: the SFN-VAD alarm unit
//!
//! The logic a small field unit (a microcontroller with a serial link, a siren and a relay) runs:
//! `no_std`, allocation-free, panic-free, and independent of any HAL beyond
//! [`embedded_hal::digital::OutputPin`]. Time is passed in by the caller (milliseconds from any
//! monotonic clock), so the same code runs on the device and in host tests.
//!
//! [`AlarmUnit::on_bytes`] feeds the bytes read from the serial port through a
//! [`sfn_wire::Deframer`], counts good, corrupt and other-version frames and
//! sequence gaps, and keeps the alarm state from the packets. [`AlarmUnit::tick`] runs the
//! heartbeat and the siren's fault pattern; [`AlarmUnit::acknowledge`] is the local button.
//!
//! # State machine
//!
//! * **Alarm**: on after a `Raised` or `Active` packet (the latter covers a unit that restarts
//!   mid-alarm), off after a `Cleared` or `Idle` packet. Held while the link is lost.
//! * **Relay latch**: set when the alarm turns on and by every `Raised` packet; cleared only by
//!   [`acknowledge`](AlarmUnit::acknowledge). Acknowledging during an alarm releases the relay;
//!   it latches again on the next `Raised` packet or off→on transition.
//! * **Link**: `Up` while an accepted packet arrived less than `heartbeat_timeout_ms` ago
//!   (counted from construction before the first packet); then `Lost { since_ms }` with
//!   `since_ms` = the deadline that passed, until the next accepted packet.
//! * **Siren**: on while the alarm is on; otherwise, while the link is lost, on for
//!   `fault_pulse_on_ms` at the start of every `fault_pulse_period_ms` counted from `since_ms`
//!   (1 s every 10 s by default); otherwise off.
//!
//! Pins are written only when their wanted level differs from the last level written
//! successfully; a failed write is counted and retried on the next update (every accepted
//! packet, every [`on_bytes`](AlarmUnit::on_bytes), [`tick`](AlarmUnit::tick) and
//! [`acknowledge`](AlarmUnit::acknowledge)).
//!
//! ```
//! use core::convert::Infallible;
//! use embedded_hal::digital::{ErrorType, OutputPin};
//! use sfn_firmware_core::{AlarmUnit, Config};
//! use sfn_wire::{AlarmState, ScorePacket};
//!
//! struct Led(bool);
//! impl ErrorType for Led { type Error = Infallible; }
//! impl OutputPin for Led {
//!     fn set_low(&mut self) -> Result<(), Infallible> { self.0 = false; Ok(()) }
//!     fn set_high(&mut self) -> Result<(), Infallible> { self.0 = true; Ok(()) }
//! }
//!
//! let mut unit = AlarmUnit::new(Config::default(), Led(false), Led(false), 0);
//! let raised = ScorePacket { seq: 1, alarm: AlarmState::Raised, ..ScorePacket::default() };
//! unit.on_bytes(&raised.to_frame().unwrap(), 100);
//! assert!(unit.status().alarm && unit.pins().0 .0 && unit.pins().1 .0);
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects, clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::unreachable, clippy::todo, clippy::unimplemented)]

use embedded_hal::digital::OutputPin;
use sfn_wire::{AlarmState, Deframer, ScorePacket, WireError, MAX_FRAMED};

/// Configuration of an [`AlarmUnit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    /// The link is lost when no accepted packet arrived for this long. `0` disables the
    /// heartbeat (the link is never reported lost).
    pub heartbeat_timeout_ms: u64,
    /// Accept only packets from this model (`ScorePacket::model_id`); `None` accepts any.
    /// Packets from other models are counted and otherwise ignored (no alarm, no heartbeat,
    /// no sequence tracking).
    pub model_id: Option<[u8; 4]>,
    /// While the link is lost (and no alarm is on) the siren is on for this long ...
    pub fault_pulse_on_ms: u64,
    /// ... at the start of every period of this length (`0`: on continuously if
    /// `fault_pulse_on_ms > 0`).
    pub fault_pulse_period_ms: u64,
}

impl Config {
    /// 5 s heartbeat, any model, fault pulse 1 s every 10 s.
    pub const DEFAULT: Self = Self { heartbeat_timeout_ms: 5_000, model_id: None, fault_pulse_on_ms: 1_000, fault_pulse_period_ms: 10_000 };
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// State of the link to the camera, from the heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// An accepted packet arrived within the heartbeat timeout (or the unit started less than
    /// a timeout ago).
    Up,
    /// Fault: no accepted packet for the heartbeat timeout.
    Lost {
        /// When the timeout expired (last accepted packet, or construction, + timeout).
        since_ms: u64,
    },
}

/// Counters since construction. All saturate at `u32::MAX`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Counters {
    /// Packets decoded and accepted (matching model).
    pub good: u32,
    /// Frames dropped as corrupt: bad COBS, CRC, length, body, or overlong.
    pub corrupt: u32,
    /// Intact frames of another format version.
    pub other_version: u32,
    /// Valid packets ignored because their `model_id` is not the configured one.
    pub foreign_model: u32,
    /// Accepted packets with the same sequence number as the previous one.
    pub duplicates: u32,
    /// Sequence gaps: accepted packets whose sequence number skipped ahead.
    pub seq_gaps: u32,
    /// Packets lost in those gaps (sum of the skipped sequence numbers).
    pub lost_packets: u32,
    /// Sequence numbers that jumped backwards (sender restarted or reordered); not counted as
    /// losses, tracking resumes from the new number.
    pub seq_restarts: u32,
    /// Alarm off→on transitions.
    pub alarms: u32,
    /// Transitions into [`Link::Lost`].
    pub link_losses: u32,
    /// Failed siren pin writes.
    pub siren_pin_errors: u32,
    /// Failed relay pin writes.
    pub relay_pin_errors: u32,
}

/// A snapshot of an [`AlarmUnit`], from [`AlarmUnit::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Status {
    /// The alarm is on (last accepted packet was `Raised` or `Active`).
    pub alarm: bool,
    /// The relay latch is set (an alarm happened and was not acknowledged yet).
    pub relay_latched: bool,
    /// Heartbeat state.
    pub link: Link,
    /// Level the siren pin should have now (alarm, or fault pulse).
    pub siren_wanted: bool,
    /// Last level written successfully to the siren pin; `None` before the first successful
    /// write or after a failed one (a retry is pending).
    pub siren_written: Option<bool>,
    /// Last level written successfully to the relay pin; `None` as for `siren_written`.
    pub relay_written: Option<bool>,
    /// Alarm state of the last accepted packet.
    pub last_alarm: Option<AlarmState>,
    /// Sequence number of the last accepted packet.
    pub last_seq: Option<u16>,
    /// Time of the last accepted packet.
    pub last_good_ms: Option<u64>,
    /// Counters.
    pub counters: Counters,
}

/// One output pin and the last level written to it successfully.
#[derive(Debug)]
struct Output<P> {
    pin: P,
    written: Option<bool>,
}

impl<P: OutputPin> Output<P> {
    /// Writes `on` unless it is already the pin's level; counts a failure in `errors` and
    /// forgets the level so that the next call retries.
    fn drive(&mut self, on: bool, errors: &mut u32) {
        if self.written == Some(on) {
            return;
        }
        let result = if on { self.pin.set_high() } else { self.pin.set_low() };
        match result {
            Ok(()) => self.written = Some(on),
            Err(_) => {
                self.written = None;
                *errors = errors.saturating_add(1);
            }
        }
    }
}

/// The alarm unit: decodes the serial stream, keeps alarm and link state, drives a siren and a
/// latched relay (active high: `set_high` = on).
#[derive(Debug)]
pub struct AlarmUnit<SIREN, RELAY> {
    config: Config,
    deframer: Deframer<MAX_FRAMED>,
    siren: Output<SIREN>,
    relay: Output<RELAY>,
    alarm: bool,
    latched: bool,
    link: Link,
    /// Start of the current heartbeat interval: construction or the last accepted packet.
    heartbeat_from_ms: u64,
    last_good_ms: Option<u64>,
    last_seq: Option<u16>,
    last_alarm: Option<AlarmState>,
    siren_wanted: bool,
    counters: Counters,
}

impl<SIREN: OutputPin, RELAY: OutputPin> AlarmUnit<SIREN, RELAY> {
    /// A unit with no alarm and the link up, started at `now_ms`; drives both pins low.
    pub fn new(config: Config, siren: SIREN, relay: RELAY, now_ms: u64) -> Self {
        let mut unit = Self {
            config,
            deframer: Deframer::new(),
            siren: Output { pin: siren, written: None },
            relay: Output { pin: relay, written: None },
            alarm: false,
            latched: false,
            link: Link::Up,
            heartbeat_from_ms: now_ms,
            last_good_ms: None,
            last_seq: None,
            last_alarm: None,
            siren_wanted: false,
            counters: Counters::default(),
        };
        unit.update_outputs(now_ms);
        unit
    }

    /// Feeds bytes read from the serial stream at `now_ms`: checks the heartbeat, decodes every
    /// frame the bytes complete (updating the pins after each accepted packet), then updates
    /// the pins. Chunking does not matter: the same bytes split anywhere, at the same times,
    /// give the same state and the same pin writes (with working pins).
    pub fn on_bytes(&mut self, bytes: &[u8], now_ms: u64) {
        self.check_heartbeat(now_ms);
        for &byte in bytes {
            match self.deframer.push(byte) {
                None => {}
                Some(Ok(packet)) => self.on_packet(&packet, now_ms),
                Some(Err(WireError::Version { .. })) => {
                    self.counters.other_version = self.counters.other_version.saturating_add(1);
                }
                Some(Err(_)) => {
                    self.counters.corrupt = self.counters.corrupt.saturating_add(1);
                }
            }
        }
        self.update_outputs(now_ms);
    }

    /// Advances time: checks the heartbeat and updates the pins (fault pulse, retries of
    /// failed writes). Call it regularly, e.g. every 10–100 ms.
    pub fn tick(&mut self, now_ms: u64) {
        self.check_heartbeat(now_ms);
        self.update_outputs(now_ms);
    }

    /// The local button: releases the relay latch and the relay. It latches again on the next
    /// `Raised` packet or alarm off→on transition.
    pub fn acknowledge(&mut self) {
        self.latched = false;
        self.relay.drive(self.latched, &mut self.counters.relay_pin_errors);
    }

    /// Drops the frame in progress (e.g. after the serial port was reopened).
    pub fn reset_stream(&mut self) {
        self.deframer.reset();
    }

    /// A snapshot of states and counters.
    pub fn status(&self) -> Status {
        Status {
            alarm: self.alarm,
            relay_latched: self.latched,
            link: self.link,
            siren_wanted: self.siren_wanted,
            siren_written: self.siren.written,
            relay_written: self.relay.written,
            last_alarm: self.last_alarm,
            last_seq: self.last_seq,
            last_good_ms: self.last_good_ms,
            counters: self.counters,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The siren and relay pins.
    pub fn pins(&self) -> (&SIREN, &RELAY) {
        (&self.siren.pin, &self.relay.pin)
    }

    /// Gives the pins back.
    pub fn release(self) -> (SIREN, RELAY) {
        (self.siren.pin, self.relay.pin)
    }

    fn on_packet(&mut self, packet: &ScorePacket, now_ms: u64) {
        if let Some(model) = self.config.model_id {
            if packet.model_id != model {
                self.counters.foreign_model = self.counters.foreign_model.saturating_add(1);
                return;
            }
        }
        let c = &mut self.counters;
        c.good = c.good.saturating_add(1);
        if let Some(last) = self.last_seq {
            match packet.seq.wrapping_sub(last) {
                0 => c.duplicates = c.duplicates.saturating_add(1),
                1 => {}
                step if step < 0x8000 => {
                    c.seq_gaps = c.seq_gaps.saturating_add(1);
                    c.lost_packets = c.lost_packets.saturating_add(u32::from(step.saturating_sub(1)));
                }
                _ => c.seq_restarts = c.seq_restarts.saturating_add(1),
            }
        }
        self.last_seq = Some(packet.seq);
        self.last_alarm = Some(packet.alarm);
        self.last_good_ms = Some(now_ms);
        self.heartbeat_from_ms = now_ms;
        self.link = Link::Up;

        let was_on = self.alarm;
        self.alarm = packet.alarm.is_on();
        if self.alarm && !was_on {
            self.counters.alarms = self.counters.alarms.saturating_add(1);
            self.latched = true;
        }
        if packet.alarm == AlarmState::Raised {
            self.latched = true;
        }
        self.update_outputs(now_ms);
    }

    fn check_heartbeat(&mut self, now_ms: u64) {
        let timeout = self.config.heartbeat_timeout_ms;
        if timeout == 0 || self.link != Link::Up {
            return;
        }
        let deadline = self.heartbeat_from_ms.saturating_add(timeout);
        if now_ms >= deadline {
            self.link = Link::Lost { since_ms: deadline };
            self.counters.link_losses = self.counters.link_losses.saturating_add(1);
        }
    }

    fn fault_pulse(&self, now_ms: u64) -> bool {
        match self.link {
            Link::Up => false,
            Link::Lost { since_ms } => {
                let on = self.config.fault_pulse_on_ms;
                match now_ms.saturating_sub(since_ms).checked_rem(self.config.fault_pulse_period_ms) {
                    Some(phase) => phase < on,
                    None => on > 0,
                }
            }
        }
    }

    fn update_outputs(&mut self, now_ms: u64) {
        self.siren_wanted = self.alarm || self.fault_pulse(now_ms);
        self.siren.drive(self.siren_wanted, &mut self.counters.siren_pin_errors);
        self.relay.drive(self.latched, &mut self.counters.relay_pin_errors);
    }
}
