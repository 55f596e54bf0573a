//! `ironclad boot sim`: a simulated device (A/B slots on NOR flash, anti-rollback counter,
//! power cuts) driven one step per invocation, its state kept in a JSON file.
//!
//! The state file holds the flash and the secure element's counter (`SimSnapshot`), plus what a
//! real device keeps only in RAM: which image is running. That is recorded as the device as it
//! was just before the reset that booted it; loading replays that reset (the bootloader is
//! deterministic), puts the current flash back, and re-applies what the application decided
//! since (confirm, revert), which the flash records. So `reset` then `confirm` in two
//! invocations behaves exactly as in one process.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, Subcommand, ValueEnum};
use ironclad_boot::{
    BootMode, BootReport, BootSim, Booted, Error as BootError, InstallReport, SimConfig, SimSnapshot, Slot,
    SlotState, Tear,
};
use ironclad_image::TrustAnchors;
use ironclad_se::{Overwrite, atomic_write};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cmd::fw_io::{key_hash_hex, parse_number, public_pem, read_signing_key};
use crate::output::print_json;

const FORMAT: &str = "ironclad-boot-sim/1";

/// Run a simulated device through boot, update, trial, confirm, revert and recovery, one step
/// per invocation.
///
/// The device has NOR flash (sector erase, aligned writes, power cuts at any operation), two
/// A/B slots with MCUboot trailers, a signature table, and an anti-rollback counter in its
/// secure element. Its state lives in a JSON file (--state). Every step prints what happened;
/// a refused step exits non-zero naming why, and changes nothing.
///
/// The rules (docs/firmware.md has the whole model):
///   - `install` verifies the image (hash, signature by a trusted key, security counter not
///     below the device's) before touching the flash, writes it to the inactive slot and marks
///     it pending; it needs a confirmed running image.
///   - `reset` boots the newest slot that verifies; a pending or trial image uses one of its
///     attempts (default 3) each time; unconfirmed after that, the other slot boots again.
///   - `confirm` makes the running trial permanent and raises the counter to its security
///     counter: older images are refused from then on.
///   - `revert` rejects the running trial (or cancels a pending update).
///   - `recover` writes a signed image from removable media (the factory and SD-card path),
///     confirmed, then resets into it; a factory-fresh device starts this way.
///   - `cut-power-after N` makes the (N+1)-th flash operation from now fail half-done.
///
/// Example session:
///   ironclad boot sim init --state sim.json --trust mastering.pub.pem
///   ironclad boot sim --state sim.json recover v1.0.bin
///   ironclad boot sim --state sim.json install v1.1.bin
///   ironclad boot sim --state sim.json reset
///   ironclad boot sim --state sim.json confirm
///   ironclad boot sim --state sim.json status
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct BootSimArgs {
    /// The simulated device's state file.
    #[arg(long, global = true, value_name = "FILE", default_value = "boot-sim.json")]
    state: PathBuf,
    /// Print what happened as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    step: SimStep,
}

#[derive(Subcommand, Debug)]
enum SimStep {
    /// Create a factory-fresh device (erased flash, counter 0) trusting the given mastering keys.
    Init(InitArgs),
    /// Install an update image into the inactive slot, pending a trial boot.
    Install {
        /// The signed image.
        image: PathBuf,
    },
    /// Reset: the bootloader selects, verifies and boots a slot (powers on after a cut).
    Reset,
    /// Confirm the running trial image; the anti-rollback counter rises to its security counter.
    Confirm,
    /// Reject the running trial image (or cancel a pending update).
    Revert,
    /// Recover from removable media: write a signed image as confirmed, then reset into it.
    Recover {
        /// The signed image.
        image: PathBuf,
    },
    /// Arm a power cut: N more flash operations complete, the next one is interrupted.
    CutPowerAfter {
        /// Flash operations (erases and writes) that complete first.
        ops: u64,
        /// How much of the interrupted operation reaches the flash.
        #[arg(long, value_enum, default_value = "half")]
        tear: TearArg,
    },
    /// Flip one bit in a slot (bit rot, or tampering with a flash programmer).
    FlipBit {
        /// The slot.
        #[arg(long, value_enum)]
        slot: SlotArg,
        /// Offset in the slot.
        #[arg(long, value_parser = parse_number)]
        offset: u64,
        /// Bit number 0..=7.
        #[arg(long, default_value = "0")]
        bit: u8,
    },
    /// Show both slots, the running image, the counter and any armed power cut.
    Status,
}

#[derive(Args, Debug)]
struct InitArgs {
    /// A trusted mastering public key (PEM); repeat for several.
    #[arg(long, value_name = "PEM", required = true)]
    trust: Vec<PathBuf>,
    /// Flash sector (erase unit) size.
    #[arg(long, value_parser = parse_number, default_value = "4096")]
    sector_size: u64,
    /// Flash write alignment: 1, 2, 4, 8, 16 or 32.
    #[arg(long, value_parser = parse_number, default_value = "8")]
    write_align: u64,
    /// Value of an erased byte: 0xff or 0x00.
    #[arg(long, value_parser = parse_number, default_value = "0xff")]
    erased_value: u64,
    /// Size of each slot (a multiple of the sector size).
    #[arg(long, value_parser = parse_number, default_value = "0x10000")]
    slot_size: u64,
    /// Trial boots before an unconfirmed image is abandoned.
    #[arg(long, default_value = "3")]
    max_attempts: u32,
    /// Replace an existing state file.
    #[arg(long)]
    force: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TearArg {
    /// The interrupted operation had no effect.
    Nothing,
    /// Its first half reached the flash.
    Half,
    /// It completed, but the power died before it returned.
    Complete,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SlotArg {
    A,
    B,
}

/// The state file.
#[derive(Serialize, Deserialize)]
struct StateFile {
    format: String,
    /// Trusted mastering keys, PEM.
    trust: Vec<String>,
    /// The flash and the anti-rollback counter now.
    device: SimSnapshot,
    /// The device just before the reset that booted the running image; `None` when nothing
    /// runs (fresh, after a power cut, after a failed reset).
    running: Option<SimSnapshot>,
    /// An armed power cut: the flash operation number it interrupts.
    armed: Option<ArmedCut>,
    /// True after a power cut until the next reset.
    power_off: bool,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
struct ArmedCut {
    at_op: u64,
    tear: Tear,
}

/// A loaded device.
struct Device {
    file: StateFile,
    sim: BootSim,
}

pub(crate) fn run(args: BootSimArgs) -> Result<()> {
    if let SimStep::Init(init) = &args.step {
        return run_init(&args, init);
    }
    let mut device = Device::load(&args.state)?;
    let outcome = device.step(&args);
    device.save(&args.state)?;
    outcome
}

fn run_init(args: &BootSimArgs, init: &InitArgs) -> Result<()> {
    let mut trust = TrustAnchors::new();
    let mut pems = Vec::new();
    let mut hashes = Vec::new();
    for path in &init.trust {
        let key = read_signing_key(path)?;
        hashes.push(key_hash_hex(&key)?);
        pems.push(public_pem(&key)?);
        trust.add_key(key)?;
    }
    let sector = u32::try_from(init.sector_size).context("--sector-size is too large")?;
    ensure!(
        init.slot_size > 0 && init.slot_size.is_multiple_of(init.sector_size),
        "--slot-size {:#x} must be a non-zero multiple of the sector size {:#x}",
        init.slot_size,
        init.sector_size
    );
    let slot_sectors =
        u32::try_from(init.slot_size / init.sector_size).context("--slot-size is too large")?;
    let align = u32::try_from(init.write_align).context("--write-align is too large")?;
    let erased = u8::try_from(init.erased_value).ok().filter(|e| *e == 0 || *e == 0xff);
    let erased = erased.context("--erased-value must be 0xff or 0x00")?;
    let mut config = SimConfig::new(sector, align, erased, slot_sectors).context("flash geometry")?;
    config.max_attempts = init.max_attempts;
    let sim = BootSim::new(config, trust).context("device configuration")?;
    let file = StateFile {
        format: FORMAT.into(),
        trust: pems,
        device: sim.snapshot()?,
        running: None,
        armed: None,
        power_off: false,
    };
    let bytes = serde_json::to_vec(&file)?;
    let overwrite = if init.force { Overwrite::Replace } else { Overwrite::Refuse };
    atomic_write(&args.state, &bytes, overwrite).map_err(|e| match e {
        ironclad_se::Error::Io { .. } if args.state.exists() && !init.force => anyhow::anyhow!(
            "{} exists; pass --force to replace it with a factory-fresh device",
            args.state.display()
        ),
        other => anyhow::Error::new(other).context(format!("writing {}", args.state.display())),
    })?;
    if args.json {
        return print_json(&json!({ "state": args.state, "config": config, "trusted_key_hashes": hashes }));
    }
    println!(
        "init: factory-fresh device in {}: {} KiB slots A and B on flash with {}-byte sectors, {}-byte writes, erased {:#04x}; {} trial attempts; counter 0",
        args.state.display(),
        init.slot_size / 1024,
        sector,
        align,
        erased,
        config.max_attempts
    );
    println!("trusts {} mastering key(s): {}", hashes.len(), hashes.join(", "));
    println!("nothing to boot yet: provision it with `ironclad boot sim recover <image>`");
    Ok(())
}

impl Device {
    fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| {
            format!("reading {} (create a device with `ironclad boot sim init --state {0}`)", path.display())
        })?;
        let file: StateFile = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a boot sim state file", path.display()))?;
        ensure!(file.format == FORMAT, "{} has format {:?}, expected {FORMAT}", path.display(), file.format);
        let mut trust = TrustAnchors::new();
        for text in &file.trust {
            let der = pem::parse(text)?.into_contents();
            trust.add_key(ironclad_image::signing_key_from_spki(&der)?)?;
        }
        let sim = match &file.running {
            Some(base) => replay(base, &file.device, trust)
                .with_context(|| format!("{}: cannot replay the running image's boot", path.display()))?,
            None => BootSim::restore(file.device.clone(), trust)?,
        };
        let mut device = Self { file, sim };
        if let Some(cut) = device.file.armed {
            let ops = device.sim.engine().flash().ops();
            device.sim.engine().flash_mut().cut_power_after(cut.at_op.saturating_sub(ops), cut.tear);
        }
        Ok(device)
    }

    fn save(&mut self, path: &Path) -> Result<()> {
        let cut = self.sim.engine().flash().is_cut();
        self.file.device = self.sim.snapshot()?;
        if cut {
            self.file.armed = None;
            self.file.power_off = true;
        }
        if self.sim.engine().booted().is_none() {
            self.file.running = None;
        }
        let bytes = serde_json::to_vec(&self.file)?;
        atomic_write(path, &bytes, Overwrite::Replace).with_context(|| format!("writing {}", path.display()))
    }

    fn booted(&mut self) -> Option<Booted> {
        self.sim.engine().booted().cloned()
    }

    /// Runs one step, printing what happened.
    fn step(&mut self, args: &BootSimArgs) -> Result<()> {
        let json = args.json;
        match &args.step {
            SimStep::Init(_) => unreachable!("handled before loading"),
            SimStep::Reset => {
                let before = self.sim.snapshot()?;
                let r = self.sim.reset();
                self.file.power_off = false;
                let report = self.outcome("reset", r)?;
                self.file.running = Some(before);
                self.print_boot(&report, json)
            }
            SimStep::Install { image } => {
                let mut src = open(image)?;
                let r = self.sim.engine().install(&mut src);
                let report = self.outcome(&format!("install {}", image.display()), r)?;
                if json {
                    return print_json(&json!({ "step": "install", "installed": report }));
                }
                println!(
                    "install: {} written to slot {} (version {}, security counter {}), pending a trial boot: reset to try it",
                    image.display(),
                    report.slot,
                    report.version,
                    report.security_counter
                );
                print_install_extra(&report);
                Ok(())
            }
            SimStep::Confirm => {
                let before = self.booted();
                let r = self.sim.confirm();
                let advanced = self.outcome("confirm", r)?;
                let Some(b) = before else { bail!("confirm: nothing runs") };
                if json {
                    return print_json(
                        &json!({ "step": "confirm", "slot": b.slot, "counter_advanced": advanced }),
                    );
                }
                if b.mode == BootMode::Confirmed {
                    println!(
                        "confirm: slot {} (version {}) is already confirmed; nothing to do",
                        b.slot, b.version
                    );
                    return Ok(());
                }
                println!("confirm: slot {} (version {}) is now permanent", b.slot, b.version);
                match advanced {
                    Some(a) => println!(
                        "anti-rollback counter {} → {}: images with a lower security counter are refused from now on",
                        a.from, a.to
                    ),
                    None => println!("anti-rollback counter unchanged"),
                }
                Ok(())
            }
            SimStep::Revert => {
                let before = self.booted();
                let r = self.sim.revert();
                let slot = self.outcome("revert", r)?;
                if json {
                    return print_json(&json!({ "step": "revert", "rejected": slot }));
                }
                match before {
                    Some(b) if b.slot == slot => println!(
                        "revert: the trial of version {} in slot {slot} is rejected; the next reset boots slot {}",
                        b.version,
                        slot.other()
                    ),
                    _ => println!(
                        "revert: the update pending in slot {slot} is cancelled; slot {} keeps running",
                        slot.other()
                    ),
                }
                Ok(())
            }
            SimStep::Recover { image } => {
                let mut src = open(image)?;
                self.sim.engine().flash_mut().power_on();
                let r = self.sim.engine().recover(&mut src);
                let written = self.outcome(&format!("recover {}", image.display()), r)?;
                let before = self.sim.snapshot()?;
                let r = self.sim.reset();
                self.file.power_off = false;
                let boot = self.outcome("reset after recovery", r)?;
                self.file.running = Some(before);
                if json {
                    return print_json(&json!({ "step": "recover", "recovered": written, "booted": boot }));
                }
                println!(
                    "recover: {} written to slot {} as confirmed (version {}, security counter {})",
                    image.display(),
                    written.slot,
                    written.version,
                    written.security_counter
                );
                print_install_extra(&written);
                self.print_boot(&boot, false)
            }
            SimStep::CutPowerAfter { ops, tear } => {
                let tear = match tear {
                    TearArg::Nothing => Tear::Nothing,
                    TearArg::Half => Tear::Half,
                    TearArg::Complete => Tear::Complete,
                };
                let now = self.sim.engine().flash().ops();
                self.file.armed = Some(ArmedCut { at_op: now + ops, tear });
                if json {
                    return print_json(
                        &json!({ "step": "cut_power_after", "ops": ops, "at_op": now + ops, "tear": tear }),
                    );
                }
                println!(
                    "cut-power-after: the next {ops} flash operation(s) complete; operation #{} is interrupted ({})",
                    now + ops,
                    tear_text(tear)
                );
                Ok(())
            }
            SimStep::FlipBit { slot, offset, bit } => {
                ensure!(*bit < 8, "--bit must be 0..=7");
                let slot = match slot {
                    SlotArg::A => Slot::A,
                    SlotArg::B => Slot::B,
                };
                let offset = u32::try_from(*offset).context("--offset is too large")?;
                self.sim.flip_bit(slot, offset, *bit).context("flip-bit")?;
                if json {
                    return print_json(
                        &json!({ "step": "flip_bit", "slot": slot, "offset": offset, "bit": bit }),
                    );
                }
                println!(
                    "flip-bit: bit {bit} of byte {offset:#x} in slot {slot} flipped; the next reset re-checks every image"
                );
                Ok(())
            }
            SimStep::Status => self.print_status(&args.state, json),
        }
    }

    /// Turns a step's result into the value or an error that says what happened.
    fn outcome<T>(&mut self, step: &str, r: ironclad_boot::Result<T>) -> Result<T> {
        match r {
            Ok(v) => Ok(v),
            Err(BootError::PowerCut) => {
                let ops = self.sim.engine().flash().ops();
                bail!(
                    "{step}: power cut at flash operation #{} (the interrupted operation is torn); the device is off: `ironclad boot sim reset` powers it on",
                    ops.saturating_sub(1)
                )
            }
            Err(e @ BootError::NoBootableImage { .. }) => {
                bail!("{step}: {e}; only recovery helps: `ironclad boot sim recover <image>`")
            }
            Err(BootError::NotBooted) if self.file.power_off => {
                bail!(
                    "{step} refused: the device is off after a power cut; `ironclad boot sim reset` powers it on"
                )
            }
            Err(BootError::NotBooted) => bail!(
                "{step} refused: no image is running; `ironclad boot sim reset` boots one (a factory-fresh device is provisioned with `ironclad boot sim recover <image>`)"
            ),
            // Display only: the boot errors already include their source's text.
            Err(e) => bail!("{step} refused: {e}"),
        }
    }

    fn print_boot(&self, report: &BootReport, json: bool) -> Result<()> {
        if json {
            return print_json(&json!({ "step": "reset", "booted": report }));
        }
        let b = &report.booted;
        let mode = match b.mode {
            BootMode::Confirmed => "confirmed".to_owned(),
            BootMode::Trial { attempt, of } => {
                format!(
                    "TRIAL attempt {attempt} of {of}: confirm it, or after {of} unconfirmed boots the other slot boots"
                )
            }
            BootMode::Reverted => "reverted".to_owned(),
        };
        println!(
            "reset: booted slot {} version {} (security counter {}), {mode}",
            b.slot, b.version, b.security_counter
        );
        for r in &report.refused {
            println!("  slot {} not booted: {}", r.slot, r.refusal);
        }
        if let Some(a) = report.counter_advanced {
            println!("  anti-rollback counter {} → {}", a.from, a.to);
        }
        println!("  verified: hash {} matches the signature table", hex::encode(b.digest));
        Ok(())
    }

    fn print_status(&mut self, path: &Path, json: bool) -> Result<()> {
        let state = self.sim.state()?;
        let armed = self.file.armed;
        if json {
            let mut value = serde_json::to_value(&state)?;
            value["power_off"] = json!(self.file.power_off);
            value["armed_cut"] = json!(armed.map(|a| json!({ "at_op": a.at_op, "tear": a.tear })));
            return print_json(&value);
        }
        let g = state.config.geometry;
        println!(
            "device {}: {}-byte sectors, {}-byte writes, erased {:#04x}; {} trial attempts; {} flash operations so far",
            path.display(),
            g.sector_size,
            g.write_align,
            g.erased_value,
            state.config.max_attempts,
            state.flash_ops
        );
        match &state.device.booted {
            Some(b) => println!("running: slot {} version {} ({})", b.slot, b.version, mode_text(b.mode)),
            None if self.file.power_off => println!("running: nothing, the power was cut (reset powers on)"),
            None => println!("running: nothing (reset to boot)"),
        }
        println!("anti-rollback counter: {}", state.device.security_counter);
        for s in &state.device.slots {
            let image = match &s.image {
                Some(i) => format!(
                    "version {}, security counter {}",
                    i.version,
                    i.security_counter.map_or_else(|| "none".into(), |c| c.to_string())
                ),
                None => "no image".into(),
            };
            let generation = s.generation.map_or_else(String::new, |g| format!(", install #{g}"));
            println!(
                "slot {} ({} KiB at {:#x}): {}, {image}{generation}",
                s.slot,
                s.region.size / 1024,
                s.region.offset,
                state_text(s.state)
            );
        }
        if let Some(a) = armed {
            println!("armed: power cut at flash operation #{} ({})", a.at_op, tear_text(a.tear));
        }
        Ok(())
    }
}

/// Rebuilds the device with its running image: the reset that booted it is replayed from the
/// state before it, then the current flash is put back and the application's decisions since
/// (recorded in the flash) are applied again; the counter must come out as saved.
fn replay(base: &SimSnapshot, now: &SimSnapshot, trust: TrustAnchors) -> Result<BootSim> {
    let mut sim = BootSim::restore(base.clone(), trust)?;
    let report = sim.reset()?;
    *sim.engine().flash_mut() = now.flash.clone();
    if matches!(report.booted.mode, BootMode::Trial { .. }) {
        let state = sim.engine().state()?;
        match state.slots[report.booted.slot.index()].state {
            SlotState::Confirmed => {
                sim.confirm()?;
            }
            SlotState::Rejected => {
                sim.revert()?;
            }
            _ => {}
        }
    }
    let counter = sim.engine().rollback().device_counter()?;
    ensure!(counter == now.counter, "the replayed counter is {counter}, the saved one {}", now.counter);
    Ok(sim)
}

fn open(path: &Path) -> Result<File> {
    File::open(path).with_context(|| format!("opening {}", path.display()))
}

fn print_install_extra(report: &InstallReport) {
    if report.decrypted {
        println!("  the image was encrypted and is stored decrypted");
    }
    println!(
        "  hash {} recorded in the signature table (install #{})",
        hex::encode(report.digest),
        report.generation
    );
}

fn tear_text(tear: Tear) -> &'static str {
    match tear {
        Tear::Nothing => "it has no effect",
        Tear::Half => "half of it reaches the flash",
        Tear::Complete => "it completes but does not return",
    }
}

fn mode_text(mode: BootMode) -> String {
    match mode {
        BootMode::Confirmed => "confirmed".into(),
        BootMode::Trial { attempt, of } => format!("trial attempt {attempt} of {of}"),
        BootMode::Reverted => "reverted, the next reset boots the other slot".into(),
    }
}

fn state_text(state: SlotState) -> String {
    match state {
        SlotState::Empty => "empty".into(),
        SlotState::Pending => "pending a trial boot".into(),
        SlotState::Trial { attempts_used } => format!("on trial, {attempts_used} attempt(s) used"),
        SlotState::Confirmed => "confirmed".into(),
        SlotState::Rejected => "rejected (reverted)".into(),
        SlotState::Exhausted { attempts } => format!("trial exhausted after {attempts} attempts"),
    }
}
