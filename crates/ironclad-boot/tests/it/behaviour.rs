//! The A/B engine's rules, each on every geometry: trial, confirm, revert, anti-rollback,
//! refusals at install, corruption and tampering detected at reset, recovery.

use std::io::Cursor;

use ironclad_boot::*;
use ironclad_image::{Pad, SignOptions, SlotLayout, sign};

use crate::common::*;

fn each_device(test: impl Fn(&str, SimConfig)) {
    for (name, config) in geometries() {
        test(name, config);
    }
}

/// v1 (counter 1) confirmed in slot A.
fn v1_device(config: SimConfig) -> Device {
    Device::provisioned(config, &release("1.0.0", 1))
}

/// Installs `image`, boots it on trial and confirms it.
fn update(d: &mut Device, image: &[u8]) -> BootReport {
    d.install(image).unwrap();
    let trial = d.reboot().unwrap();
    assert!(matches!(trial.booted.mode, BootMode::Trial { attempt: 1, of: 3 }));
    d.engine.confirm().unwrap();
    trial
}

#[test]
fn unconfirmed_trial_falls_back_after_the_attempts_run_out() {
    each_device(|name, config| {
        let mut d = v1_device(config);
        let v2 = release("2.0.0", 2);
        let installed = d.install(&v2).unwrap();
        assert_eq!((installed.slot, installed.state), (Slot::B, SlotState::Pending));
        assert_eq!(d.slot_state(Slot::B), SlotState::Pending);
        for attempt in 1..=3 {
            let r = d.reboot().unwrap();
            d.check_booted(&r, 1);
            assert_eq!(
                (r.booted.slot, r.booted.mode),
                (Slot::B, BootMode::Trial { attempt, of: 3 }),
                "{name}"
            );
            // The last attempt leaves none: the slot is exhausted while that attempt runs.
            let expected = if attempt < 3 {
                SlotState::Trial { attempts_used: attempt }
            } else {
                SlotState::Exhausted { attempts: 3 }
            };
            assert_eq!(d.slot_state(Slot::B), expected);
        }
        let r = d.reboot().unwrap();
        assert_eq!((r.booted.slot, r.booted.mode), (Slot::A, BootMode::Confirmed), "{name}");
        assert_eq!(
            r.refused,
            vec![SlotRefusal { slot: Slot::B, refusal: Refusal::Exhausted { attempts: 3 } }]
        );
        assert_eq!(d.counter(), 1, "a trial never advances the counter");
        // A new update may replace the failed one.
        d.install(&release("2.0.1", 2)).unwrap();
        assert_eq!(d.reboot().unwrap().booted.slot, Slot::B);
    });
}

#[test]
fn attempt_count_is_configurable() {
    let (_, mut config) = geometries().remove(1);
    config.max_attempts = 1;
    let mut d = v1_device(config);
    d.install(&release("2.0.0", 2)).unwrap();
    assert_eq!(d.reboot().unwrap().booted.mode, BootMode::Trial { attempt: 1, of: 1 });
    assert_eq!(d.reboot().unwrap().booted.slot, Slot::A);
}

#[test]
fn confirmed_update_survives_resets() {
    each_device(|name, config| {
        let mut d = v1_device(config);
        let v2 = release("2.0.0", 2);
        update(&mut d, &v2);
        assert_eq!(d.counter(), 2, "{name}: confirm advances the counter");
        assert_eq!(d.slot_state(Slot::B), SlotState::Confirmed);
        let ops = d.ops();
        for _ in 0..5 {
            let r = d.reboot().unwrap();
            d.check_booted(&r, 2);
            assert_eq!(
                (r.booted.slot, r.booted.mode, r.booted.digest),
                (Slot::B, BootMode::Confirmed, digest_of(&v2))
            );
            assert!(r.refused.is_empty());
        }
        assert_eq!(d.ops(), ops, "booting a confirmed image writes nothing");
        // The next update goes to slot A, over v1.
        let r = update(&mut d, &release("3.0.0", 3));
        assert_eq!(r.booted.slot, Slot::A);
        assert_eq!(d.counter(), 3);
    });
}

#[test]
fn downgrade_refused_by_the_image_security_counter() {
    each_device(|name, config| {
        let mut d = v1_device(config);
        update(&mut d, &release("2.0.0", 2));
        let ops = d.ops();
        let older = release("1.5.0", 1);
        assert!(matches!(d.install(&older), Err(Error::Downgrade { image: 1, device: 2 })), "{name}");
        assert!(matches!(d.recover(&older), Err(Error::Downgrade { image: 1, device: 2 })));
        assert_eq!(d.ops(), ops, "nothing written for a refused image");
        // Equal counters are not a downgrade (a re-release, a different build).
        d.reboot().unwrap();
        d.install(&release("2.0.1", 2)).unwrap();
        // A missing counter is refused outright.
        let uncounted = release_by(&keys().trusted, "9.0.0", None, &[]);
        assert!(matches!(d.install(&uncounted), Err(Error::MissingSecurityCounter)));
    });
}

#[test]
fn downgrade_refused_by_the_secure_element_counter() {
    each_device(|name, config| {
        let mut d = v1_device(config);
        d.install(&release("2.0.0", 2)).unwrap();
        // The secure element has seen counter 5 (a newer release on a replaced board, or a
        // counter advanced by the fleet policy): everything below is refused, at reset too.
        use ironclad_se::MonotonicCounter;
        d.se.counter_advance(&counter_label(), 5).unwrap();
        assert!(matches!(d.install(&release("4.0.0", 4)), Err(Error::Downgrade { image: 4, device: 5 })));
        let Err(Error::NoBootableImage { refused }) = d.reboot() else {
            panic!("{name}: booted a downgrade")
        };
        assert_eq!(
            refused,
            vec![
                SlotRefusal { slot: Slot::B, refusal: Refusal::Downgrade { image: 2, device: 5 } },
                SlotRefusal { slot: Slot::A, refusal: Refusal::Downgrade { image: 1, device: 5 } },
            ]
        );
        assert!(matches!(d.recover(&release("4.0.0", 4)), Err(Error::Downgrade { image: 4, device: 5 })));
        d.recover(&release("5.0.0", 5)).unwrap();
        let r = d.reboot().unwrap();
        d.check_booted(&r, 5);
        assert_eq!(r.booted.security_counter, 5);
    });
}

#[test]
fn untrusted_key_refused_at_install() {
    each_device(|name, config| {
        let mut d = v1_device(config);
        let ops = d.ops();
        let rogue = release_by(&keys().rogue, "9.0.0", Some(9), &[]);
        let e = d.install(&rogue).unwrap_err();
        assert!(matches!(e, Error::Image(ironclad_image::Error::UnknownKey)), "{name}: {e}");
        assert!(matches!(d.recover(&rogue), Err(Error::Image(ironclad_image::Error::UnknownKey))));
        // A trusted image altered after signing: the hash no longer matches.
        let mut altered = release("2.0.0", 2);
        altered[40] ^= 1;
        let e = d.install(&altered).unwrap_err();
        assert!(matches!(e, Error::Image(ironclad_image::Error::HashMismatch { .. })), "{e:?}");
        assert_eq!(d.ops(), ops, "verified before anything is written");
        assert_eq!(d.slot_state(Slot::B), SlotState::Empty);
        d.reboot().unwrap();
        assert_eq!(d.engine.booted().unwrap().slot, Slot::A);
    });
}

#[test]
fn corrupted_active_image_is_detected_at_reset_and_the_other_slot_boots() {
    each_device(|name, config| {
        let mut d = v1_device(config);
        let v1b = release("1.0.1", 1); // same counter: v1 stays an allowed fallback
        update(&mut d, &v1b);
        assert_eq!(d.reboot().unwrap().booted.slot, Slot::B);
        // One bit of slot B's payload rots.
        let b = config.layout().unwrap().slot(Slot::B);
        d.engine.flash_mut().flip_bit(b.offset + 100, 3);
        let r = d.reboot().unwrap();
        d.check_booted(&r, 1);
        assert_eq!(r.booted.slot, Slot::A, "{name}");
        assert!(matches!(&r.refused[..], [SlotRefusal { slot: Slot::B, refusal: Refusal::Invalid { .. } }]));
        // The running image is intact and can be updated again (over the rotten slot).
        d.install(&release("1.0.2", 1)).unwrap();
        assert_eq!(d.reboot().unwrap().booted.slot, Slot::B);
    });
}

#[test]
fn corrupted_only_image_leaves_recovery_as_the_way_out() {
    let (_, config) = geometries().remove(0);
    let mut d = v1_device(config);
    update(&mut d, &release("2.0.0", 2));
    let b = config.layout().unwrap().slot(Slot::B);
    d.engine.flash_mut().flip_bit(b.offset + 7, 0); // in the header
    let Err(Error::NoBootableImage { refused }) = d.reboot() else { panic!("booted a corrupt image") };
    assert!(matches!(refused[0].refusal, Refusal::Invalid { .. }));
    assert_eq!(refused[1].refusal, Refusal::Downgrade { image: 1, device: 2 });
    let rec = d.recover(&release("2.0.0", 2)).unwrap();
    // Nothing boots: recovery writes the older install (A, whose v1 is a downgrade now).
    assert_eq!((rec.slot, rec.state), (Slot::A, SlotState::Confirmed));
    let r = d.reboot().unwrap();
    assert_eq!((r.booted.slot, r.booted.security_counter), (Slot::A, 2));
}

#[test]
fn validly_signed_image_placed_without_install_does_not_boot() {
    each_device(|name, config| {
        let mut d = v1_device(config);
        let v2 = release("2.0.0", 2);
        update(&mut d, &v2);
        // An attacker with a flash programmer puts a trusted, counter-valid but never
        // installed release into slot A with a confirmed trailer (imgtool --pad --confirm).
        let other = release("2.0.9", 2);
        let layout = config.layout().unwrap();
        let a = layout.slot(Slot::A);
        let padded = padded(&other, config, a.size, Pad::Confirm);
        d.engine.flash_mut().program_raw(a.offset, &padded).unwrap();
        assert_eq!(
            d.slot_state(Slot::A),
            SlotState::Confirmed,
            "{name}: imgtool's trailer reads as confirmed"
        );
        let r = d.reboot().unwrap();
        assert_eq!(r.booted.slot, Slot::B);
        // Slot B is newer and boots first; make A the only candidate and it is still refused.
        let b = layout.slot(Slot::B);
        d.engine.flash_mut().flip_bit(b.offset + 100, 1);
        let Err(Error::NoBootableImage { refused }) = d.reboot() else {
            panic!("{name}: booted a planted image")
        };
        assert!(
            refused.contains(&SlotRefusal { slot: Slot::A, refusal: Refusal::DigestMismatch }),
            "{refused:?}"
        );
    });
}

/// The image padded to the slot with imgtool's trailer for this geometry.
fn padded(image: &[u8], config: SimConfig, slot_size: u32, pad: Pad) -> Vec<u8> {
    // Re-sign the same payload with --pad: same key, same version, trailer per the geometry.
    let parsed = ironclad_image::Image::parse(image, &ironclad_image::Limits::default()).unwrap();
    let mut o = SignOptions::new(parsed.header().version);
    o.security_counter = parsed.security_counter();
    o.erased_value = config.geometry.erased_value;
    o.slot =
        Some(SlotLayout { align: config.geometry.write_align as u8, ..SlotLayout::new(slot_size.into()) });
    o.pad = Some(pad);
    let body = &image[32..32 + parsed.header().img_size as usize];
    let mut out = Vec::new();
    sign(&keys().trusted, &o, body, body.len() as u64, &mut out).unwrap();
    assert_eq!(out.len(), slot_size as usize);
    out
}

#[test]
fn imgtool_padded_trailers_read_as_pending_and_confirmed() {
    each_device(|name, config| {
        let a = config.layout().unwrap().slot(Slot::A);
        for (pad, state) in [(Pad::Test, SlotState::Pending), (Pad::Confirm, SlotState::Confirmed)] {
            let mut d = Device::fresh(config);
            let image = padded(&release("1.0.0", 1), config, a.size, pad);
            d.engine.flash_mut().program_raw(a.offset, &image).unwrap();
            assert_eq!(d.slot_state(Slot::A), state, "{name} {pad:?}");
            // Not installed through the engine: no signature-table entry, so it does not boot.
            let Err(Error::NoBootableImage { refused }) = d.reboot() else { panic!("booted") };
            assert_eq!(refused[0], SlotRefusal { slot: Slot::A, refusal: Refusal::NotInTable });
        }
    });
}

#[test]
fn revert_rejects_the_trial_and_the_previous_image_boots() {
    each_device(|name, config| {
        let mut d = v1_device(config);
        d.install(&release("2.0.0", 2)).unwrap();
        assert!(matches!(d.reboot().unwrap().booted.mode, BootMode::Trial { .. }));
        assert!(matches!(d.install(&release("3.0.0", 3)), Err(Error::TrialPending { slot: Slot::B })));
        assert_eq!(d.engine.revert().unwrap(), Slot::B);
        assert!(matches!(d.engine.confirm(), Err(Error::Reverted { slot: Slot::B })));
        assert_eq!(d.slot_state(Slot::B), SlotState::Rejected);
        let r = d.reboot().unwrap();
        assert_eq!((r.booted.slot, r.booted.mode), (Slot::A, BootMode::Confirmed), "{name}");
        assert_eq!(r.refused, vec![SlotRefusal { slot: Slot::B, refusal: Refusal::Rejected }]);
        assert_eq!(d.counter(), 1);
        // Cancelling a pending update from the confirmed image.
        d.install(&release("2.0.1", 2)).unwrap();
        assert_eq!(d.engine.revert().unwrap(), Slot::B);
        assert_eq!(d.reboot().unwrap().booted.slot, Slot::A);
        assert!(matches!(d.engine.revert(), Err(Error::NothingToRevert)));
    });
}

#[test]
fn operations_need_a_booted_image() {
    let (_, config) = geometries().remove(1);
    let mut d = Device::fresh(config);
    assert!(matches!(d.install(&release("1.0.0", 1)), Err(Error::NotBooted)));
    assert!(matches!(d.engine.confirm(), Err(Error::NotBooted)));
    assert!(matches!(d.engine.revert(), Err(Error::NotBooted)));
    assert!(matches!(d.reboot(), Err(Error::NoBootableImage { .. })));
}

#[test]
fn encrypted_update_is_stored_decrypted_and_verifies_in_place() {
    each_device(|name, config| {
        let mut d = v1_device(config);
        let enc = encrypted_release("2.0.0", 2);
        let report = d.install(&enc).unwrap();
        assert!(report.decrypted, "{name}");
        assert_eq!(report.digest, digest_of(&enc));
        let r = d.reboot().unwrap();
        d.check_booted(&r, 1); // verifies the slot as plaintext
        assert_eq!(r.booted.digest, digest_of(&enc));
    });
    // A device without the decryption key refuses it before writing anything.
    let (_, config) = geometries().remove(0);
    let mut flash = v1_device(config).engine.flash().clone();
    flash.power_on();
    let se = std::sync::Arc::new(ironclad_se::MemorySe::new());
    let rollback = AntiRollback::new(se, counter_label());
    let boot = BootConfig::new(config.layout().unwrap(), Chain::slots_only(trust()));
    let mut engine = BootEngine::new(flash, boot, rollback).unwrap();
    engine.reset().unwrap();
    let e = engine.install(&mut Cursor::new(encrypted_release("2.0.0", 2))).unwrap_err();
    assert!(matches!(e, Error::NoDecryptionKey), "{e}");
}

#[test]
fn image_larger_than_the_slot_is_refused() {
    let (_, config) = geometries().remove(1); // 4 KiB slots, 432-byte trailer
    let mut d = v1_device(config);
    let mut o = SignOptions::new("2.0.0".parse().unwrap());
    o.security_counter = Some(2);
    let body = payload(3700, 1);
    let mut image = Vec::new();
    sign(&keys().trusted, &o, &body[..], body.len() as u64, &mut image).unwrap();
    assert!(image.len() < 4096, "fits the slot without the trailer");
    assert!(matches!(d.install(&image), Err(Error::ImageTooLarge { max: 4096, .. })));
    let huge = payload(5000, 2);
    let mut image = Vec::new();
    sign(&keys().trusted, &o, &huge[..], huge.len() as u64, &mut image).unwrap();
    assert!(matches!(d.install(&image), Err(Error::Image(ironclad_image::Error::ImageTooLarge { .. }))));
}

#[test]
fn recovery_rules() {
    each_device(|name, config| {
        // Factory-fresh: recovery provisions slot A.
        let mut d = Device::fresh(config);
        let rec = d.recover(&release("1.0.0", 1)).unwrap();
        assert_eq!((rec.slot, rec.state), (Slot::A, SlotState::Confirmed), "{name}");
        assert_eq!(d.counter(), 0, "the counter moves when the recovered image boots");
        let r = d.reboot().unwrap();
        assert_eq!(r.counter_advanced, Some(CounterAdvance { from: 0, to: 1 }));
        // With a good image running, recovery writes the other slot and keeps it.
        let rec = d.recover(&encrypted_release("1.1.0", 1)).unwrap();
        assert_eq!(rec.slot, Slot::B);
        assert!(d.engine.booted().is_none(), "recovery ends the running image");
        let r = d.reboot().unwrap();
        d.check_booted(&r, 1);
        assert_eq!((r.booted.slot, r.booted.mode), (Slot::B, BootMode::Confirmed));
        // Same refusals as an update.
        let rogue = release_by(&keys().rogue, "9.0.0", Some(9), &[]);
        assert!(matches!(d.recover(&rogue), Err(Error::Image(ironclad_image::Error::UnknownKey))));
        let uncounted = release_by(&keys().trusted, "9.0.0", None, &[]);
        assert!(matches!(d.recover(&uncounted), Err(Error::MissingSecurityCounter)));
        assert_eq!(d.reboot().unwrap().booted.slot, Slot::B, "refused recoveries change nothing");
    });
}
