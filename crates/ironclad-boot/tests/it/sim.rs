//! The step-by-step driver: a whole device life (provision, update, trial, confirm, refused
//! downgrade, revert, power cut, bit rot, recovery), its JSON state and event log, and resuming
//! from a snapshot.

use ironclad_boot::*;

use crate::common::*;

#[test]
fn a_device_life_step_by_step() {
    let mut sim = BootSim::new(SimConfig::small(), trust()).unwrap();
    assert!(matches!(sim.reset(), Err(Error::NoBootableImage { .. })));
    let r = sim.recover(&release("1.0.0", 1)).unwrap();
    assert_eq!((r.booted.slot, r.booted.mode), (Slot::A, BootMode::Confirmed));

    // Update, trial, confirm.
    sim.install(&release("2.0.0", 2)).unwrap();
    let r = sim.reset().unwrap();
    assert_eq!(r.booted.mode, BootMode::Trial { attempt: 1, of: 3 });
    assert_eq!(sim.confirm().unwrap(), Some(CounterAdvance { from: 1, to: 2 }));

    // A downgrade is refused; an update that is reverted falls back.
    assert!(matches!(sim.install(&release("1.0.1", 1)), Err(Error::Downgrade { image: 1, device: 2 })));
    sim.install(&release("3.0.0", 3)).unwrap();
    assert_eq!(sim.reset().unwrap().booted.slot, Slot::A);
    assert_eq!(sim.revert().unwrap(), Slot::A);
    assert_eq!(sim.reset().unwrap().booted.slot, Slot::B);

    // The power fails in the middle of the next install; the device still boots v2.
    sim.cut_power_after(3, Tear::Half);
    assert!(matches!(sim.install(&release("3.0.1", 3)), Err(Error::PowerCut)));
    assert!(sim.state().is_err(), "the flash is off");
    let r = sim.reset().unwrap();
    assert_eq!((r.booted.slot, r.booted.version.to_string().as_str()), (Slot::B, "2.0.0+0"));

    // Bit rot in the running slot: v1 is a downgrade now, so only recovery helps.
    sim.flip_bit(Slot::B, 64, 2).unwrap();
    assert!(matches!(sim.reset(), Err(Error::NoBootableImage { .. })));
    let r = sim.recover(&release("3.0.0", 3)).unwrap();
    assert_eq!(r.booted.security_counter, 3);

    let state = sim.state().unwrap();
    assert_eq!(state.device.security_counter, 3);
    assert!(state.flash_ops > 0);
    let json = serde_json::to_value(&state).unwrap();
    assert_eq!(json["device"]["booted"]["mode"]["mode"], "confirmed");
    assert_eq!(json["device"]["slots"][0]["slot"], "A");
    assert!(json["device"]["booted"]["digest"].as_str().unwrap().len() == 64);

    let events = serde_json::to_value(sim.events()).unwrap();
    let kinds: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "refused",
            "recovered",
            "booted",
            "installed",
            "booted",
            "confirmed",
            "refused",
            "installed",
            "booted",
            "reverted",
            "booted",
            "cut_armed",
            "power_cut",
            "booted",
            "bit_flipped",
            "refused",
            "recovered",
            "booted"
        ]
    );
}

#[test]
fn a_snapshot_resumes_the_same_device() {
    let mut sim = BootSim::new(SimConfig::mcu(), trust()).unwrap();
    sim.recover(&release("1.0.0", 1)).unwrap();
    sim.install(&release("2.0.0", 2)).unwrap();
    sim.reset().unwrap(); // trial attempt 1
    let json = serde_json::to_string(&sim.snapshot().unwrap()).unwrap();
    let snapshot: SimSnapshot = serde_json::from_str(&json).unwrap();
    let mut resumed = BootSim::restore(snapshot, trust()).unwrap();
    let r = resumed.reset().unwrap();
    assert_eq!(r.booted.mode, BootMode::Trial { attempt: 2, of: 3 }, "attempts live in flash");
    resumed.confirm().unwrap();
    assert_eq!(resumed.state().unwrap().device.security_counter, 2);
    // A snapshot taken later carries the counter.
    let mut again = BootSim::restore(resumed.snapshot().unwrap(), trust()).unwrap();
    assert!(matches!(again.install(&release("1.0.1", 1)), Err(Error::NotBooted)));
    again.reset().unwrap();
    assert!(matches!(again.install(&release("1.0.1", 1)), Err(Error::Downgrade { .. })));
}
