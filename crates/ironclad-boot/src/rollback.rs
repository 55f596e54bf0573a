//! Anti-rollback (no downgrade): an image's signed security counter (SEC_CNT TLV) against a
//! [`MonotonicCounter`] in the device's secure element, as MCUboot's `MCUBOOT_HW_ROLLBACK_PROT`:
//!
//! - the counter TLV is mandatory; an image below the device counter is refused at install,
//!   at recovery and at every reset;
//! - the device counter is advanced only once the new image is confirmed: by `confirm`, or at
//!   the first reset that boots a confirmed image with a higher counter (which also completes a
//!   `confirm` cut short by a power loss). A trial therefore never burns the counter, and the
//!   previous image stays bootable until the new one is confirmed (mcuboot#2282 was a counter
//!   bumped before a revert).

use std::sync::Arc;

use ironclad_se::{Label, MonotonicCounter};

use crate::error::{Error, Result};
use crate::state::{CounterAdvance, Refusal};

/// The secure-element counter the boot engine uses by default.
pub const DEFAULT_COUNTER: &str = "ironclad-boot.security-counter";

/// A device's anti-rollback counter: a named [`MonotonicCounter`] in its secure element.
#[derive(Clone, Debug)]
pub struct AntiRollback {
    counter: Arc<dyn MonotonicCounter>,
    label: Label,
}

impl AntiRollback {
    /// The counter `label` in `counter` (a secure element).
    pub fn new(counter: Arc<dyn MonotonicCounter>, label: Label) -> Self {
        Self { counter, label }
    }

    /// The counter [`DEFAULT_COUNTER`].
    pub fn with_default_label(counter: Arc<dyn MonotonicCounter>) -> Result<Self> {
        Ok(Self::new(counter, Label::new(DEFAULT_COUNTER)?))
    }

    /// The counter's name.
    pub fn label(&self) -> &Label {
        &self.label
    }

    /// The device counter now.
    pub fn device_counter(&self) -> Result<u64> {
        Ok(self.counter.counter(&self.label)?)
    }

    /// Why an image with this counter may not run on a device at `device`, if it may not.
    pub fn refusal(image: Option<u32>, device: u64) -> Option<Refusal> {
        match image {
            None => Some(Refusal::MissingSecurityCounter),
            Some(image) if u64::from(image) < device => Some(Refusal::Downgrade { image, device }),
            Some(_) => None,
        }
    }

    /// Checks an image's counter against the device counter; returns it when allowed.
    pub fn check(&self, image: Option<u32>) -> Result<u32> {
        let device = self.device_counter()?;
        match (image, Self::refusal(image, device)) {
            (Some(image), None) => Ok(image),
            (Some(image), Some(_)) => Err(Error::Downgrade { image, device }),
            (None, _) => Err(Error::MissingSecurityCounter),
        }
    }

    /// Raises the device counter to a confirmed image's counter (never lowers it).
    pub fn commit(&self, image: u32) -> Result<Option<CounterAdvance>> {
        let from = self.device_counter()?;
        if u64::from(image) <= from {
            return Ok(None);
        }
        let to = self.counter.counter_advance(&self.label, image.into())?;
        Ok(Some(CounterAdvance { from, to }))
    }
}
