//! `ironclad fw inspect`: what an image says about itself (header, TLVs, trailer), unverified.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use ironclad_image::{ImageInfo, Limits, TlvInfo};

use crate::cmd::fw_io::{open_image, parse_number};
use crate::output::print_json;

/// Show an image's header, TLVs and trailer, like `imgtool dumpinfo`. Nothing is verified.
///
/// Only the header, the TLV areas and the last bytes of the slot are read, never the payload.
/// With --json the `header`, `tlv_area` and `trailer` objects carry the same keys and values as
/// `imgtool dumpinfo -f json` (absent parts are null where imgtool writes {}); `summary` adds the
/// interpreted fields (version, flags, security counter, product class, key ids, encryption).
/// Whether to trust any of it is `fw verify`'s job.
///
/// imgtool equivalent:
///   imgtool dumpinfo app.signed.bin        (imgtool dumpinfo -f json app.signed.bin)
///
/// Example:
///   ironclad fw inspect app.signed.bin --json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct FwInspectArgs {
    /// The image.
    image: PathBuf,
    /// Refuse images larger than this slot (default 1 GiB).
    #[arg(long, value_parser = parse_number)]
    slot_size: Option<u64>,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: FwInspectArgs) -> Result<()> {
    let limits = args.slot_size.map_or_else(Limits::default, Limits::for_slot);
    let (_, image) = open_image(&args.image, &limits)?;
    let info = image.inspect();
    if args.json {
        return print_json(&info);
    }
    print!("{}", render(&args.image.display().to_string(), &info));
    Ok(())
}

fn render(name: &str, info: &ImageInfo) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    let h = &info.header;
    let s = &info.summary;
    line(format!("{name} (unverified)"));
    line("header:".into());
    line(format!("  magic:              {:#010x}", h.magic));
    line(format!("  load_addr:          {:#x}", h.load_addr));
    line(format!("  hdr_size:           {:#x}", h.hdr_size));
    line(format!("  protected_tlv_size: {:#x}", h.protected_tlv_size));
    line(format!("  img_size:           {:#x} ({})", h.img_size, h.img_size));
    let flags = if s.flags.is_empty() { "none".to_owned() } else { s.flags.join(" | ") };
    line(format!("  flags:              {:#x} ({flags})", h.flags));
    line(format!("  version:            {}", h.version));
    let tlvs = |out: &mut Vec<String>, list: &[TlvInfo]| {
        for t in list {
            let data = hex::encode(&t.data);
            let shown = if data.len() > 64 { format!("{}…", &data[..64]) } else { data };
            out.push(format!("  {:#06x} {:<22} len {:>4}  {shown}", t.tlv_type, t.type_name, t.len));
        }
    };
    let mut rows = Vec::new();
    if let Some(prot) = &info.tlv_area.tlv_hdr_prot {
        rows.push(format!("protected TLVs (magic {:#06x}, {} bytes, signed):", prot.magic, prot.tlv_tot));
        tlvs(&mut rows, &info.tlv_area.tlvs_prot);
    } else {
        rows.push("protected TLVs: none".into());
    }
    let un = &info.tlv_area.tlv_hdr;
    rows.push(format!("unprotected TLVs (magic {:#06x}, {} bytes):", un.magic, un.tlv_tot));
    tlvs(&mut rows, &info.tlv_area.tlvs);
    for r in rows {
        line(r);
    }
    match &info.trailer {
        Some(t) => {
            line("trailer:".into());
            line(format!("  magic:     {}", t.magic));
            let byte = |b: Option<u8>| b.map_or_else(|| "-".to_owned(), |b| format!("{b:#04x}"));
            line(format!("  image_ok:  {}", byte(t.image_ok)));
            line(format!("  copy_done: {}", byte(t.copy_done)));
            line(format!("  swap_info: {}", byte(t.swap_info)));
            if let Some(size) = t.swap_size {
                line(format!("  swap_size: {size:#x}"));
            }
        }
        None => line("trailer: none (not padded to a slot)".into()),
    }
    line("summary:".into());
    line(format!("  version:          {}", s.version));
    line(format!(
        "  security counter: {}",
        s.security_counter.map_or_else(|| "none".to_owned(), |c| c.to_string())
    ));
    if let Some(class) = &s.product_class {
        line(format!("  product class:    {class}"));
    }
    if let Some(hash) = &s.hash {
        line(format!("  hash (recorded):  {hash}"));
    }
    for k in &s.key_ids {
        line(format!("  {:<16}  {}", format!("{}:", k.kind.to_lowercase()), k.value));
    }
    line(format!("  signatures:       {}", s.signatures.join(", ")));
    match &s.encryption {
        Some(e) => {
            line(format!("  encryption:       {}, key wrap {}", e.cipher, e.key_wrap.unwrap_or("missing")))
        }
        None => line("  encryption:       none".into()),
    }
    line(format!(
        "  image length:     {} (+{} bytes of slot padding and trailer)",
        s.image_len, s.trailing_len
    ));
    out
}
