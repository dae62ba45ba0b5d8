//! Alarm output pin through embedded-hal's [`OutputPin`]: high (or low, if `active_low`) while an
//! alarm is on. On the device the pin comes from linux-embedded-hal's character-device GPIO; any
//! `OutputPin` works, so tests use a recording pin.

use embedded_hal::digital::OutputPin;

use crate::alarm::AlarmState;

/// Drives a pin from alarm states; pin errors are counted, never fatal (the alarm still goes out on the
/// other sinks).
pub struct AlarmPin<P: OutputPin> {
    pin: P,
    active_low: bool,
    on: bool,
    pub errors: u64,
}

impl<P: OutputPin> AlarmPin<P> {
    /// Takes the pin and drives it to "off".
    pub fn new(pin: P, active_low: bool) -> Self {
        let mut p = AlarmPin { pin, active_low, on: true, errors: 0 };
        p.set(false);
        p
    }

    fn set(&mut self, on: bool) {
        if on == self.on {
            return;
        }
        let res = if on != self.active_low { self.pin.set_high() } else { self.pin.set_low() };
        match res {
            Ok(()) => self.on = on,
            Err(e) => {
                self.errors += 1;
                tracing::warn!(error = ?e, "alarm pin write failed");
            }
        }
    }

    /// Follows one frame's alarm state.
    pub fn update(&mut self, state: AlarmState) {
        self.set(matches!(state, AlarmState::Raised | AlarmState::Active));
    }

    /// Whether the pin is driven to "on".
    pub fn is_on(&self) -> bool {
        self.on
    }

    pub fn release(self) -> P {
        self.pin
    }
}

/// The configured Linux GPIO line (character device) as an alarm pin.
#[cfg(feature = "gpio-cdev")]
pub fn cdev_pin(cfg: &crate::config::GpioConfig) -> anyhow::Result<Box<dyn FnMut(AlarmState) + Send>> {
    use anyhow::Context;
    use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
    let what = || format!("gpio {} line {}", cfg.chip.display(), cfg.line);
    let mut chip = Chip::new(&cfg.chip).with_context(what)?;
    let handle = chip.get_line(cfg.line).and_then(|l| l.request(LineRequestFlags::OUTPUT, 0, "sfn-edge")).with_context(what)?;
    let pin = linux_embedded_hal::CdevPin::new(handle).with_context(what)?;
    let mut alarm = AlarmPin::new(pin, cfg.active_low);
    Ok(Box::new(move |s| alarm.update(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::digital::{ErrorKind, ErrorType};

    /// Records every level written; fails writes while `broken`.
    #[derive(Default)]
    struct RecordingPin {
        levels: Vec<bool>,
        broken: bool,
    }

    #[derive(Debug)]
    struct PinError;
    impl embedded_hal::digital::Error for PinError {
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }
    impl ErrorType for RecordingPin {
        type Error = PinError;
    }
    impl OutputPin for RecordingPin {
        fn set_low(&mut self) -> Result<(), PinError> {
            if self.broken {
                return Err(PinError);
            }
            self.levels.push(false);
            Ok(())
        }
        fn set_high(&mut self) -> Result<(), PinError> {
            if self.broken {
                return Err(PinError);
            }
            self.levels.push(true);
            Ok(())
        }
    }

    #[test]
    fn follows_the_alarm_and_writes_only_on_change() {
        use AlarmState::*;
        let mut p = AlarmPin::new(RecordingPin::default(), false);
        for s in [Idle, Idle, Raised, Active, Active, Cleared, Idle, Raised, Cleared] {
            p.update(s);
        }
        assert_eq!(p.release().levels, vec![false, true, false, true, false]);
        // Active low: on = low.
        let mut p = AlarmPin::new(RecordingPin::default(), true);
        p.update(Raised);
        p.update(Cleared);
        assert_eq!(p.release().levels, vec![true, false, true]);
    }

    #[test]
    fn a_failing_pin_is_counted_and_retried() {
        let mut p = AlarmPin::new(RecordingPin::default(), false);
        p.pin.broken = true;
        p.update(AlarmState::Raised);
        assert_eq!(p.errors, 1);
        assert!(!p.is_on());
        p.pin.broken = false;
        p.update(AlarmState::Active);
        assert!(p.is_on());
        assert_eq!(p.release().levels, vec![false, true]);
    }
}
