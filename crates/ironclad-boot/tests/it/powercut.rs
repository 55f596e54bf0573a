//! Power loss at every flash operation (MCUboot sim's `run_perm_with_fails`, but exhaustive):
//! for each scenario and each geometry, the uninterrupted run's erase/write operations are
//! counted, then the scenario is replayed once per operation index × tear model, cutting the
//! power at that operation. After each cut the device is rebooted and driven on by an agent
//! (retry the install, confirm or revert the trial, recover) until the scenario's end state.
//! After every reset the booted image is re-verified independently, must not be a downgrade,
//! and the counter must not be ahead of a confirmation. Small images (one or two sectors) run
//! every scenario on three geometries; images of several sectors (so cuts land between sector
//! erases and in the middle of the payload) run the update scenarios on two more.

use std::sync::OnceLock;

use ironclad_boot::*;

use crate::common::*;

struct Release {
    image: Vec<u8>,
    digest: [u8; 32],
    counter: u64,
}

type Releases = [Release; 3];

fn make_releases(payload_len: usize) -> Releases {
    [1, 2, 3].map(|n| {
        let image = release_sized(&format!("{n}.0.0"), n, payload_len);
        Release { digest: digest_of(&image), image, counter: n.into() }
    })
}

/// v1..v3 with 1,000-byte payloads: one or two sectors.
fn releases() -> &'static Releases {
    static FX: OnceLock<Releases> = OnceLock::new();
    FX.get_or_init(|| make_releases(1000))
}

/// v1..v3 with 9,000-byte payloads: three 4 KiB sectors, ten 1 KiB sectors.
fn large_releases() -> &'static Releases {
    static FX: OnceLock<Releases> = OnceLock::new();
    FX.get_or_init(|| make_releases(9000))
}

/// Geometries whose slots hold the large releases.
fn large_geometries() -> Vec<(&'static str, SimConfig)> {
    vec![
        (
            "1KiB sectors, 1-byte writes, erased 0x00, 12-sector slots",
            SimConfig::new(1024, 1, 0x00, 12).unwrap(),
        ),
        (
            "4KiB sectors, 16-byte writes, erased 0xff, 4-sector slots",
            SimConfig::new(4096, 16, 0xff, 4).unwrap(),
        ),
    ]
}

/// The image running before the scenario and the one it installs.
fn old_new(goal: Goal, r: &'static Releases) -> (&'static Release, &'static Release) {
    match goal {
        Goal::SecondUpdate => (&r[1], &r[2]),
        Goal::Provision => (&r[0], &r[0]),
        _ => (&r[0], &r[1]),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Goal {
    /// install v2, trial boot, confirm, reset: ends on v2 confirmed, counter 2.
    Complete,
    /// install v2, never confirmed: ends on v1 with v2's slot exhausted, counter 1.
    Exhaust,
    /// install v2, trial boot, revert, reset: ends on v1 with v2's slot rejected.
    Revert,
    /// factory-fresh device, recover v1, reset: ends on v1 confirmed.
    Provision,
    /// after v1 → v2: install v3 over v1 (slot A, table's other copy), trial, confirm, reset.
    SecondUpdate,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Install,
    Reboot,
    Confirm,
    Revert,
    Recover,
}

fn steps(goal: Goal) -> Vec<Op> {
    use Op::*;
    match goal {
        Goal::Complete | Goal::SecondUpdate => vec![Install, Reboot, Confirm, Reboot],
        Goal::Exhaust => vec![Install, Reboot, Reboot, Reboot, Reboot],
        Goal::Revert => vec![Install, Reboot, Revert, Reboot],
        Goal::Provision => vec![Recover, Reboot],
    }
}

fn run(goal: Goal, r: &'static Releases, step: Op, d: &mut Device) -> Result<()> {
    let new = &old_new(goal, r).1.image;
    match step {
        Op::Install => d.install(new).map(drop),
        Op::Reboot => d.reboot().map(drop),
        Op::Confirm => d.engine.confirm().map(drop),
        Op::Revert => d.engine.revert().map(drop),
        Op::Recover => d.recover(new).map(drop),
    }
}

/// The device a goal starts from.
fn base(goal: Goal, r: &'static Releases, config: SimConfig) -> Device {
    match goal {
        Goal::Provision => Device::fresh(config),
        Goal::SecondUpdate => {
            let mut d = Device::provisioned(config, &r[0].image);
            d.install(&r[1].image).unwrap();
            d.engine.reset().unwrap();
            d.engine.confirm().unwrap();
            d
        }
        _ => Device::provisioned(config, &r[0].image),
    }
}

/// The device each replay starts from, running (reset done: a confirmed boot writes nothing).
fn start(goal: Goal, base: &Device) -> Device {
    let mut d = base.clone_powered_off();
    if goal != Goal::Provision {
        d.engine.reset().unwrap();
    }
    d
}

/// Invariants that hold after every reset, whatever was cut.
fn check_reset(goal: Goal, r: &'static Releases, d: &mut Device, report: &BootReport, counter_before: u64) {
    d.check_booted(report, counter_before);
    let (old, new) = old_new(goal, r);
    let digest = report.booted.digest;
    assert!(digest == old.digest || digest == new.digest, "booted an image outside the scenario");
    // The counter moves to the new image's only once the new image is confirmed.
    if d.counter() >= new.counter && new.counter > old.counter {
        let state = d.engine.state().unwrap();
        let confirmed =
            state.slots.iter().any(|s| s.table_digest == Some(new.digest) && s.state == SlotState::Confirmed);
        assert!(confirmed, "counter advanced before confirmation: {state:?}");
    }
}

/// After the cut: reboot and act like the update agent / the operator until the goal's end.
fn drive_to_end(goal: Goal, r: &'static Releases, d: &mut Device) {
    let (_, new) = old_new(goal, r);
    for _ in 0..24 {
        let counter_before = d.counter();
        let report = match d.reboot() {
            Ok(r) => r,
            Err(Error::NoBootableImage { .. }) if goal == Goal::Provision => {
                d.recover(&new.image).unwrap();
                continue;
            }
            Err(e) => panic!("{goal:?}: reset failed after a cut: {e}"),
        };
        check_reset(goal, r, d, &report, counter_before);
        let on_v2 = report.booted.digest == new.digest && goal != Goal::Provision;
        let other = report.booted.slot.other();
        let updating = matches!(goal, Goal::Complete | Goal::SecondUpdate);
        match (goal, on_v2, report.booted.mode) {
            (_, true, BootMode::Trial { .. }) if updating => drop(d.engine.confirm().unwrap()),
            (_, true, BootMode::Confirmed) if updating => return,
            (_, false, _) if updating => drop(d.install(&new.image).unwrap()),
            (Goal::Exhaust, true, mode) => assert!(matches!(mode, BootMode::Trial { .. }), "{mode:?}"),
            (Goal::Revert, true, BootMode::Trial { .. }) => drop(d.engine.revert().unwrap()),
            (Goal::Exhaust | Goal::Revert, false, _) => match d.slot_state(other) {
                SlotState::Exhausted { .. } if goal == Goal::Exhaust => return,
                SlotState::Rejected if goal == Goal::Revert => return,
                SlotState::Empty => drop(d.install(&new.image).unwrap()),
                s => panic!("{goal:?}: v1 booted while slot {other} is {s:?}"),
            },
            (Goal::Provision, false, BootMode::Confirmed) => return,
            (goal, on_v2, mode) => panic!("{goal:?}: unexpected boot (v2: {on_v2}, {mode:?})"),
        }
    }
    panic!("{goal:?}: no end state after 24 resets");
}

/// The end state every run of `goal` must reach.
fn check_end(goal: Goal, r: &'static Releases, d: &mut Device, max_attempts: u32) {
    let booted = d.engine.booted().expect("running").clone();
    let (old, new) = old_new(goal, r);
    let (running, other_state) = match goal {
        Goal::Complete | Goal::SecondUpdate => (new, SlotState::Confirmed),
        Goal::Exhaust => (old, SlotState::Exhausted { attempts: max_attempts }),
        Goal::Revert => (old, SlotState::Rejected),
        Goal::Provision => (new, SlotState::Empty),
    };
    assert_eq!((booted.digest, booted.mode), (running.digest, BootMode::Confirmed), "{goal:?}");
    assert_eq!(d.counter(), running.counter, "{goal:?}");
    assert_eq!(d.slot_state(booted.slot.other()), other_state, "{goal:?}: the other slot");
}

fn exhaustive(goal: Goal) {
    exhaustive_on(goal, releases(), geometries());
}

fn exhaustive_on(goal: Goal, r: &'static Releases, geometries: Vec<(&'static str, SimConfig)>) {
    let image_len = old_new(goal, r).1.image.len();
    for (name, config) in geometries {
        let base = base(goal, r, config);

        // The uninterrupted run: its operation count is the number of cut points.
        let mut clean = start(goal, &base);
        let first = clean.ops();
        let mut per_step = Vec::new();
        for step in steps(goal) {
            let before = clean.ops();
            run(goal, r, step, &mut clean).unwrap();
            per_step.push(format!("{step:?} {}", clean.ops() - before));
        }
        let total = clean.ops() - first;
        check_end(goal, r, &mut clean, config.max_attempts);

        let mut exercised = 0u64;
        for cut in 0..total {
            for tear in Tear::ALL {
                let mut d = start(goal, &base);
                d.engine.flash_mut().cut_power_after(cut, tear);
                let interrupted =
                    steps(goal).into_iter().map(|s| run(goal, r, s, &mut d)).find(|res| res.is_err());
                assert!(
                    matches!(interrupted, Some(Err(Error::PowerCut))),
                    "{goal:?} on {name}: cut {cut} {tear:?} gave {interrupted:?}"
                );
                assert!(d.engine.booted().is_none(), "a power cut stops the running image");
                drive_to_end(goal, r, &mut d);
                check_end(goal, r, &mut d, config.max_attempts);
            }
            exercised += 1;
        }
        eprintln!(
            "power cut {goal:?}, {image_len}-byte image, on {name}: {exercised} cut points (of {total} flash operations: {}) × {} tears",
            per_step.join(", "),
            Tear::ALL.len()
        );
        assert!(total > 0);
        assert_eq!(exercised, total);
    }
}

#[test]
fn update_completes_after_a_cut_at_every_operation() {
    exhaustive(Goal::Complete);
}

#[test]
fn unconfirmed_trial_reverts_after_a_cut_at_every_operation() {
    exhaustive(Goal::Exhaust);
}

#[test]
fn explicit_revert_survives_a_cut_at_every_operation() {
    exhaustive(Goal::Revert);
}

#[test]
fn provisioning_by_recovery_survives_a_cut_at_every_operation() {
    exhaustive(Goal::Provision);
}

#[test]
fn second_update_over_the_older_slot_survives_a_cut_at_every_operation() {
    exhaustive(Goal::SecondUpdate);
}

#[test]
fn multi_sector_update_completes_after_a_cut_at_every_operation() {
    exhaustive_on(Goal::Complete, large_releases(), large_geometries());
}

#[test]
fn multi_sector_unconfirmed_trial_reverts_after_a_cut_at_every_operation() {
    exhaustive_on(Goal::Exhaust, large_releases(), large_geometries());
}

#[test]
fn multi_sector_second_update_survives_a_cut_at_every_operation() {
    exhaustive_on(Goal::SecondUpdate, large_releases(), large_geometries());
}
