//! The host side of SFN-VAD devices: replay recorded clips through the very edge pipeline, decode packet
//! streams, validate scores and alarms against labels (with contact sheets of the alarm snapshots).

pub mod calibrate;
pub mod contact;
pub mod decode;
pub mod replay;
pub mod threshold;
pub mod validate;
