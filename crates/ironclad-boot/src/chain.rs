//! The verified boot chain: ROM → bootloader → kernel → rootfs, each stage an image in flash
//! verified with the keys the stage before it trusts, the first with keys fixed in the ROM.
//!
//! A stage's image is in a fixed [`Region`] or is the A/B slot pair ([`StageImage::Slots`],
//! exactly one per chain; the engine chooses the slot). Where a stage's keys come from is a
//! policy, [`StageTrust`]:
//! - [`StageTrust::Anchors`]: keys provisioned for the stage (the ROM's, or a device
//!   configuration's);
//! - [`StageTrust::DeclaredByPrevious`]: the keys the previous stage's *signed* image names in
//!   its protected [`NEXT_STAGE_KEYS`] TLV, so trust flows from the ROM key alone and a new
//!   bootloader release can rotate the kernel key.
//!
//! Stages before the slots are verified at every reset and halt the boot when they fail
//! ([`Error::Stage`](crate::Error::Stage)): there is nothing to fall back to. Stages after the
//! slots are verified for each candidate slot; a failure there refuses that slot and the other
//! one is tried.

use std::io::{Read, Seek};

use ironclad_image::{Image, Limits, TrustAnchors, VerifiedImage, signing_key_from_spki};
use ironclad_se::PublicKey;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::flash::{Flash, Region, RegionReader};
use crate::state::{Refusal, StageReport};

/// The protected vendor TLV (ironclad's 0x1CA0 range) in which a stage names the signing keys
/// of the next stage: repeated `u16 LE length ‖ SubjectPublicKeyInfo DER`.
pub const NEXT_STAGE_KEYS: u16 = 0x1CA1;

/// The `(type, value)` of a [`NEXT_STAGE_KEYS`] TLV naming `keys`, ready for
/// `SignOptions::custom_tlvs` when mastering the previous stage.
pub fn next_stage_keys_tlv(keys: &[PublicKey]) -> Result<(u16, Vec<u8>)> {
    if keys.is_empty() {
        return Err(Error::Config { field: "next_stage_keys", reason: "no key given".into() });
    }
    let mut value = Vec::new();
    for key in keys {
        let spki = key.spki_der().ok_or(Error::Config {
            field: "next_stage_keys",
            reason: format!("a {} key has no public key", key.algorithm().name()),
        })?;
        signing_key_from_spki(&spki)?;
        value.extend_from_slice(&(spki.len() as u16).to_le_bytes());
        value.extend_from_slice(&spki);
    }
    if value.len() > usize::from(u16::MAX) {
        return Err(Error::Config { field: "next_stage_keys", reason: "too many keys for one TLV".into() });
    }
    Ok((NEXT_STAGE_KEYS, value))
}

/// The keys a verified stage names for the next one (`None` when it names none).
pub fn declared_keys(image: &VerifiedImage) -> Result<Option<TrustAnchors>, String> {
    let Some(tlv) = image.image().protected_area().and_then(|a| a.get(NEXT_STAGE_KEYS)) else {
        return Ok(None);
    };
    let mut rest = tlv.data.as_slice();
    let mut anchors = TrustAnchors::new();
    while !rest.is_empty() {
        let bad = || "malformed NEXT_STAGE_KEYS TLV".to_string();
        let len = rest.get(..2).map(|l| usize::from(u16::from_le_bytes([l[0], l[1]]))).ok_or_else(bad)?;
        let spki = rest.get(2..2 + len).ok_or_else(bad)?;
        let key = signing_key_from_spki(spki).map_err(|e| e.to_string())?;
        anchors.add_key(key).map_err(|e| e.to_string())?;
        rest = &rest[2 + len..];
    }
    if anchors.is_empty() {
        return Err("empty NEXT_STAGE_KEYS TLV".into());
    }
    Ok(Some(anchors))
}

/// Where a stage's verification keys come from.
#[derive(Clone, Debug)]
pub enum StageTrust {
    /// Keys provisioned for this stage (required for the first stage: the ROM's keys).
    Anchors(TrustAnchors),
    /// The keys the previous stage's signed image names in its [`NEXT_STAGE_KEYS`] TLV.
    DeclaredByPrevious,
}

/// Where a stage's image lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum StageImage {
    /// A fixed region (one copy).
    Region(Region),
    /// The A/B slots of the boot engine's layout.
    Slots,
}

/// One stage of the chain.
#[derive(Clone, Debug)]
pub struct Stage {
    /// Its name in reports ("bootloader", "kernel", "rootfs").
    pub name: String,
    /// Its image.
    pub image: StageImage,
    /// Its keys.
    pub trust: StageTrust,
}

impl Stage {
    /// A stage in a fixed region.
    pub fn region(name: impl Into<String>, region: Region, trust: StageTrust) -> Self {
        Self { name: name.into(), image: StageImage::Region(region), trust }
    }

    /// The A/B slot stage.
    pub fn slots(name: impl Into<String>, trust: StageTrust) -> Self {
        Self { name: name.into(), image: StageImage::Slots, trust }
    }
}

/// The ordered stages a reset verifies.
#[derive(Clone, Debug)]
pub struct Chain {
    stages: Vec<Stage>,
    slots: usize,
}

impl Chain {
    /// The MCU case: one stage, the application in the A/B slots, verified with `trust` (the
    /// bootloader itself is verified by ROM outside this model).
    pub fn slots_only(trust: TrustAnchors) -> Self {
        Self { stages: vec![Stage::slots("application", StageTrust::Anchors(trust))], slots: 0 }
    }

    /// A chain of stages, first to last. Exactly one stage is [`StageImage::Slots`], the first
    /// stage has [`StageTrust::Anchors`], names are distinct and non-empty.
    pub fn new(stages: Vec<Stage>) -> Result<Self> {
        let bad = |reason: &str| Err(Error::Config { field: "chain", reason: reason.into() });
        let slot_stages: Vec<usize> =
            stages.iter().enumerate().filter(|(_, s)| s.image == StageImage::Slots).map(|(i, _)| i).collect();
        let [slots] = slot_stages[..] else {
            return bad("exactly one stage must be the A/B slots");
        };
        if !matches!(stages[0].trust, StageTrust::Anchors(_)) {
            return bad("the first stage needs its own anchors (the ROM's keys)");
        }
        for (i, s) in stages.iter().enumerate() {
            if s.name.is_empty() || stages[..i].iter().any(|t| t.name == s.name) {
                return bad("stage names must be non-empty and distinct");
            }
        }
        Ok(Self { stages, slots })
    }

    /// The stages, first to last.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The A/B slot stage.
    pub fn slot_stage(&self) -> &Stage {
        &self.stages[self.slots]
    }

    /// The fixed regions, with their stage names.
    pub(crate) fn regions(&self) -> impl Iterator<Item = (&str, Region)> {
        self.stages.iter().filter_map(|s| match s.image {
            StageImage::Region(r) => Some((s.name.as_str(), r)),
            StageImage::Slots => None,
        })
    }

    /// Verifies the stages before the slots; returns their reports and the slot stage's keys.
    pub(crate) fn verify_before_slots<F: Flash>(
        &self,
        flash: &mut F,
    ) -> Result<(Vec<StageReport>, TrustAnchors)> {
        let mut reports = Vec::new();
        let mut previous: Option<VerifiedImage> = None;
        for stage in &self.stages[..self.slots] {
            let halt = |refusal| Error::Stage { stage: stage.name.clone(), refusal };
            let trust = resolve(&stage.trust, previous.as_ref()).map_err(halt)?;
            let StageImage::Region(region) = stage.image else { unreachable_slots() };
            let verified = verify_region(flash, &region, &trust)?.map_err(halt)?;
            reports.push(report(&stage.name, &verified));
            previous = Some(verified);
        }
        let slot_stage = self.slot_stage();
        let trust = resolve(&slot_stage.trust, previous.as_ref())
            .map_err(|refusal| Error::Stage { stage: slot_stage.name.clone(), refusal })?;
        Ok((reports, trust))
    }

    /// Verifies the stages after the slots, starting from the slot's verified image. The inner
    /// error names the stage that failed.
    pub(crate) fn verify_after_slots<F: Flash>(
        &self,
        flash: &mut F,
        slot_image: &VerifiedImage,
    ) -> Result<Result<Vec<StageReport>, Refusal>> {
        let mut reports = Vec::new();
        let mut previous = None::<VerifiedImage>;
        for stage in &self.stages[self.slots + 1..] {
            let wrap = |refusal| Refusal::Stage { stage: stage.name.clone(), refusal: Box::new(refusal) };
            let trust = match resolve(&stage.trust, Some(previous.as_ref().unwrap_or(slot_image))) {
                Ok(t) => t,
                Err(r) => return Ok(Err(wrap(r))),
            };
            let StageImage::Region(region) = stage.image else { unreachable_slots() };
            match verify_region(flash, &region, &trust)? {
                Ok(v) => {
                    reports.push(report(&stage.name, &v));
                    previous = Some(v);
                }
                Err(r) => return Ok(Err(wrap(r))),
            }
        }
        Ok(Ok(reports))
    }
}

fn unreachable_slots() -> ! {
    // `Chain::new` admits exactly one slot stage, and the loops skip it.
    unreachable!("a second slot stage in a checked chain")
}

fn resolve(trust: &StageTrust, previous: Option<&VerifiedImage>) -> Result<TrustAnchors, Refusal> {
    match trust {
        StageTrust::Anchors(a) => Ok(a.clone()),
        StageTrust::DeclaredByPrevious => {
            let invalid = |error: String| Refusal::Invalid { error };
            let previous = previous.ok_or_else(|| invalid("no previous stage to declare keys".into()))?;
            declared_keys(previous)
                .map_err(invalid)?
                .ok_or_else(|| invalid("the previous stage declares no next-stage keys".into()))
        }
    }
}

/// A stage report for a verified image.
pub(crate) fn report(name: &str, v: &VerifiedImage) -> StageReport {
    StageReport {
        name: name.to_string(),
        version: v.version(),
        security_counter: v.security_counter(),
        digest: *v.digest(),
    }
}

/// Parses and verifies the image at the start of `region`. The outer error is the flash's
/// (a power cut); the inner one says why the contents are refused.
pub(crate) fn verify_region<F: Flash>(
    flash: &mut F,
    region: &Region,
    trust: &TrustAnchors,
) -> Result<Result<VerifiedImage, Refusal>> {
    let mut reader = RegionReader::new(flash, *region);
    let result = verify_source(&mut reader, region, trust);
    if let Some(e) = reader.take_error() {
        return Err(e);
    }
    Ok(result.map_err(|e| Refusal::Invalid { error: e.to_string() }))
}

fn verify_source<R: Read + Seek>(
    src: &mut R,
    region: &Region,
    trust: &TrustAnchors,
) -> Result<VerifiedImage, ironclad_image::Error> {
    let image = Image::read(src, &Limits::for_slot(u64::from(region.size)))?;
    image.verify(src, trust)
}
