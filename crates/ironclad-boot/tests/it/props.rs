//! Property: random sequences of install (good, downgraded, untrusted, uncounted, corrupt,
//! encrypted images), reset, confirm, revert, recovery and power cuts never make the device
//! boot an image that does not verify independently or is below the device counter, never
//! leave the counter ahead of every confirmed image, and never brick a device that only ever
//! received signed images.

use std::sync::OnceLock;

use ironclad_boot::*;
use proptest::prelude::*;

use crate::common::*;

struct Catalog {
    images: Vec<Vec<u8>>,
    /// Digests of the images a device may ever boot.
    bootable: Vec<[u8; 32]>,
    /// Indices of images every install must refuse.
    refused: Vec<usize>,
}

fn catalog() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(|| {
        let mut corrupt = release("3.0.1", 3);
        corrupt[100] ^= 0x10;
        let images = vec![
            release("1.0.0", 1),
            release("2.0.0", 2),
            release("2.0.1", 2),
            release("3.0.0", 3),
            release("0.9.0", 0),
            encrypted_release("4.0.0", 4),
            release_by(&keys().rogue, "9.0.0", Some(9), &[]),
            release_by(&keys().trusted, "9.0.0", None, &[]),
            corrupt,
        ];
        let bootable = images[..6].iter().map(|i| digest_of(i)).collect();
        Catalog { images, bootable, refused: vec![6, 7, 8] }
    })
}

#[derive(Clone, Debug)]
enum Action {
    Install(usize),
    Reset,
    Confirm,
    Revert,
    Recover(usize),
    Cut(u64, Tear),
}

fn action() -> impl Strategy<Value = Action> {
    let n = catalog().images.len();
    prop_oneof![
        3 => (0..n).prop_map(Action::Install),
        4 => Just(Action::Reset),
        2 => Just(Action::Confirm),
        1 => Just(Action::Revert),
        1 => (0..n).prop_map(Action::Recover),
        2 => (0u64..24, prop::sample::select(Tear::ALL.to_vec())).prop_map(|(n, t)| Action::Cut(n, t)),
    ]
}

/// Some confirmed slot holds an image whose counter reaches the device counter.
fn counter_backed_by_a_confirmed_image(d: &mut Device) {
    let counter = d.counter();
    let state = d.engine.state().unwrap();
    let backed = state.slots.iter().any(|s| {
        s.state == SlotState::Confirmed
            && s.image.as_ref().and_then(|i| i.security_counter).is_some_and(|c| u64::from(c) >= counter)
    });
    assert!(backed, "counter {counter} ahead of every confirmed image: {state:?}");
}

fn reset_and_check(d: &mut Device) -> Result<BootReport> {
    let counter_before = d.counter();
    let r = d.reboot();
    match &r {
        Ok(report) => {
            d.check_booted(report, counter_before);
            assert!(catalog().bootable.contains(&report.booted.digest), "booted an unknown image");
        }
        Err(Error::PowerCut) => {}
        Err(e) => panic!("a device fed only signed images failed to boot: {e}"),
    }
    r
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_never_boot_an_unverified_image(
        geometry in 0usize..3,
        actions in prop::collection::vec(action(), 1..32),
    ) {
        let (_, config) = geometries().remove(geometry);
        let cat = catalog();
        let mut d = Device::provisioned(config, &cat.images[0]);
        for a in actions {
            let r: Result<()> = match a {
                Action::Install(i) => {
                    let r = d.install(&cat.images[i]).map(drop);
                    if cat.refused.contains(&i) {
                        prop_assert!(r.is_err(), "installed refused image {}", i);
                    }
                    r
                }
                Action::Recover(i) => {
                    let r = d.recover(&cat.images[i]).map(drop);
                    if cat.refused.contains(&i) {
                        prop_assert!(r.is_err(), "recovered refused image {}", i);
                    }
                    r
                }
                Action::Reset => reset_and_check(&mut d).map(drop),
                Action::Confirm => d.engine.confirm().map(drop),
                Action::Revert => d.engine.revert().map(drop),
                Action::Cut(n, tear) => {
                    d.engine.flash_mut().cut_power_after(n, tear);
                    Ok(())
                }
            };
            if matches!(r, Err(Error::PowerCut)) {
                prop_assert!(d.engine.booted().is_none(), "a power cut stops the running image");
            }
            if d.engine.flash().is_cut() {
                continue;
            }
            counter_backed_by_a_confirmed_image(&mut d);
        }
        d.engine.flash_mut().disarm();
        reset_and_check(&mut d).unwrap();
        counter_backed_by_a_confirmed_image(&mut d);
    }
}
