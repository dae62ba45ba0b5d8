//! The SFN-VAD edge runtime: frames from a camera or a recording -> encoder cache -> decoder -> causal
//! scoring -> alarms (hysteresis) -> score packets and alarm events to sinks; captions refreshed on a
//! budget by their own worker.

pub mod alarm;
pub mod cameras;
pub mod captions;
pub mod config;
pub mod gpio;
pub mod health;
pub mod homeassistant;
pub mod logging;
pub mod mqtt;
pub mod notify;
pub mod pipeline;
pub mod record;
pub mod runtime;
pub mod setup;
pub mod signals;
pub mod sink;
pub mod snapshot;
pub mod timefmt;
