//! The verified boot chain ROM → bootloader → kernel (A/B) → rootfs: trust flows from the ROM
//! key through NEXT_STAGE_KEYS TLVs; a broken stage before the slots halts, after the slots
//! it refuses the slot.

use std::io::Cursor;
use std::sync::{Arc, OnceLock};

use ironclad_boot::*;
use ironclad_image::hazmat::SoftwareSigner;
use ironclad_image::{ImageSigner, TrustAnchors};
use ironclad_se::{KeyAlgorithm, MemorySe, PublicKey};

use crate::common::*;

struct ChainKeys {
    rom: SoftwareSigner,
    kernel: SoftwareSigner,
    rootfs: SoftwareSigner,
    other: SoftwareSigner,
}

fn ck() -> &'static ChainKeys {
    static K: OnceLock<ChainKeys> = OnceLock::new();
    K.get_or_init(|| ChainKeys {
        rom: SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap(),
        kernel: SoftwareSigner::generate(KeyAlgorithm::EcdsaP256).unwrap(),
        rootfs: SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap(),
        other: SoftwareSigner::generate(KeyAlgorithm::Ed25519).unwrap(),
    })
}

const BOOTLOADER: Region = Region::new(0, 2048);
const ROOTFS: Region = Region::new(2048, 2048);

fn geometry() -> Geometry {
    Geometry::new(1024, 8, 0xff, 4 + 2 + 2 * 8).unwrap()
}

fn declaring(keys: &[&PublicKey]) -> Vec<(u16, Vec<u8>)> {
    let keys: Vec<PublicKey> = keys.iter().map(|k| (*k).clone()).collect();
    vec![next_stage_keys_tlv(&keys).unwrap()]
}

fn kernel(version: &str, counter: u32, rootfs_key: &PublicKey) -> Vec<u8> {
    release_by(&ck().kernel, version, Some(counter), &declaring(&[rootfs_key]))
}

fn chain() -> Chain {
    let rom = TrustAnchors::with_key(ck().rom.public_key().clone()).unwrap();
    Chain::new(vec![
        Stage::region("bootloader", BOOTLOADER, StageTrust::Anchors(rom)),
        Stage::slots("kernel", StageTrust::DeclaredByPrevious),
        Stage::region("rootfs", ROOTFS, StageTrust::DeclaredByPrevious),
    ])
    .unwrap()
}

/// Bootloader and rootfs programmed at the factory; kernel v1 provisioned by recovery.
fn device() -> BootEngine<SimFlash> {
    let mut flash = SimFlash::new(geometry()).unwrap();
    let bl = release_by(&ck().rom, "0.9.0", Some(1), &declaring(&[ck().kernel.public_key()]));
    flash.program_raw(BOOTLOADER.offset, &bl).unwrap();
    let rootfs = release_by(&ck().rootfs, "1.0.0", None, &[]);
    flash.program_raw(ROOTFS.offset, &rootfs).unwrap();
    let layout = Layout::contiguous(&geometry(), 4096, 8).unwrap();
    let se = Arc::new(MemorySe::new());
    let rollback = AntiRollback::with_default_label(se).unwrap();
    let mut engine = BootEngine::new(flash, BootConfig::new(layout, chain()), rollback).unwrap();
    engine.recover(&mut Cursor::new(kernel("1.0.0", 1, ck().rootfs.public_key()))).unwrap();
    engine
}

#[test]
fn trust_flows_from_the_rom_key_through_every_stage() {
    let mut engine = device();
    let r = engine.reset().unwrap();
    let names: Vec<&str> = r.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["bootloader", "kernel", "rootfs"]);
    assert_eq!(r.stages[1].digest, r.booted.digest);
    assert_eq!(r.stages[1].version.to_string(), "1.0.0+0");
    // An update signed with the kernel key the bootloader declares installs and boots.
    engine.install(&mut Cursor::new(kernel("2.0.0", 2, ck().rootfs.public_key()))).unwrap();
    let r = engine.reset().unwrap();
    assert_eq!((r.booted.slot, r.stages.len()), (Slot::B, 3));
}

#[test]
fn a_kernel_signed_with_a_key_the_bootloader_does_not_declare_is_refused() {
    let mut engine = device();
    engine.reset().unwrap();
    // The ROM key is trusted for the bootloader only.
    let by_rom = release_by(&ck().rom, "2.0.0", Some(2), &declaring(&[ck().rootfs.public_key()]));
    let e = engine.install(&mut Cursor::new(by_rom)).unwrap_err();
    assert!(matches!(e, Error::Image(ironclad_image::Error::UnknownKey)), "{e}");
    let by_trusted_app_key = release("2.0.0", 2);
    assert!(engine.recover(&mut Cursor::new(by_trusted_app_key)).is_err());
}

#[test]
fn a_tampered_bootloader_halts_the_chain() {
    let mut engine = device();
    engine.flash_mut().flip_bit(BOOTLOADER.offset + 40, 0);
    let e = engine.reset().unwrap_err();
    let Error::Stage { stage, refusal: Refusal::Invalid { .. } } = &e else { panic!("{e:?}") };
    assert_eq!(stage, "bootloader");
    // Neither update nor recovery proceeds without a verified bootloader.
    let e = engine.recover(&mut Cursor::new(kernel("2.0.0", 2, ck().rootfs.public_key()))).unwrap_err();
    assert!(matches!(e, Error::Stage { .. }), "{e}");
}

#[test]
fn a_rootfs_signed_by_an_undeclared_key_refuses_the_slot() {
    let mut engine = device();
    let rogue_rootfs = release_by(&ck().other, "1.0.1", None, &[]);
    let mut erased = vec![0xff; ROOTFS.size as usize];
    erased[..rogue_rootfs.len()].copy_from_slice(&rogue_rootfs);
    engine.flash_mut().program_raw(ROOTFS.offset, &erased).unwrap();
    let Err(Error::NoBootableImage { refused }) = engine.reset() else { panic!("booted") };
    let Refusal::Stage { stage, refusal } = &refused[0].refusal else { panic!("{refused:?}") };
    assert_eq!(stage, "rootfs");
    assert!(matches!(**refusal, Refusal::Invalid { .. }));
}

#[test]
fn a_kernel_update_declaring_another_rootfs_key_falls_back() {
    let mut engine = device();
    engine.reset().unwrap();
    engine.install(&mut Cursor::new(kernel("2.0.0", 2, ck().other.public_key()))).unwrap();
    let r = engine.reset().unwrap();
    assert_eq!(r.booted.slot, Slot::A);
    assert!(matches!(&r.refused[0], SlotRefusal { slot: Slot::B, refusal: Refusal::Stage { .. } }));
    assert_eq!(engine.rollback().device_counter().unwrap(), 1);
}

#[test]
fn chains_and_layouts_are_checked() {
    let rom = || StageTrust::Anchors(TrustAnchors::with_key(ck().rom.public_key().clone()).unwrap());
    let no_slots = Chain::new(vec![Stage::region("bootloader", BOOTLOADER, rom())]);
    assert!(matches!(no_slots, Err(Error::Config { .. })));
    let first_declared = Chain::new(vec![Stage::slots("kernel", StageTrust::DeclaredByPrevious)]);
    assert!(matches!(first_declared, Err(Error::Config { .. })));
    let duplicate = Chain::new(vec![
        Stage::region("kernel", BOOTLOADER, rom()),
        Stage::slots("kernel", StageTrust::DeclaredByPrevious),
    ]);
    assert!(matches!(duplicate, Err(Error::Config { .. })));
    // A stage region overlapping the slots.
    let overlapping = Chain::new(vec![
        Stage::region("bootloader", Region::new(4096, 1024), rom()),
        Stage::slots("kernel", StageTrust::DeclaredByPrevious),
    ])
    .unwrap();
    let layout = Layout::contiguous(&geometry(), 4096, 8).unwrap();
    let rollback = AntiRollback::with_default_label(Arc::new(MemorySe::new())).unwrap();
    let e =
        BootEngine::new(SimFlash::new(geometry()).unwrap(), BootConfig::new(layout, overlapping), rollback);
    assert!(matches!(e, Err(Error::Config { field: "layout", .. })));
    // Only signing keys can be declared.
    let x25519 = PublicKey::new(KeyAlgorithm::X25519, vec![9; 32]);
    assert!(next_stage_keys_tlv(&[x25519]).is_err());
    assert!(next_stage_keys_tlv(&[]).is_err());
}
