//! SAMPLE-AES H.264 throughput on one core: encrypt and decrypt of a long 1080p-like Annex-B
//! stream, best of several runs, in GB/s of clear stream.
//!
//! ```sh
//! cargo run --release -p ironclad-media --example throughput            # synthetic, 256 MiB
//! cargo run --release -p ironclad-media --example throughput -- x.h264  # any Annex-B file
//! ```
//!
//! The synthetic stream mimics a high-rate 1080p camera (research/media.md §5): 30-frame GOPs,
//! one ≈320 KB IDR slice and ≈100 KB P slices of random (so incompressible, escaped) bytes, with
//! AUD, SPS and PPS units. Random slice data has EPB-triggering patterns at the natural rate.

use std::time::{Duration, Instant};

use ironclad_media::SampleAes;

fn synthetic(total: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut s = Vec::with_capacity(total + (1 << 20));
    let mut frame = 0usize;
    while s.len() < total {
        s.extend_from_slice(&[0, 0, 0, 1, 0x09, 0xf0]);
        let idr = frame.is_multiple_of(30);
        if idr {
            s.extend_from_slice(&[
                0, 0, 0, 1, 0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5,
            ]);
            s.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0]);
        }
        s.extend_from_slice(&[0, 0, 1, if idr { 0x65 } else { 0x41 }]);
        let len = if idr { 320_000 } else { 90_000 + (rnd() % 20_000) as usize };
        let mut zeros = 0;
        let mut left = len;
        while left > 0 {
            for b in rnd().to_le_bytes() {
                if zeros >= 2 && b <= 3 {
                    s.push(3);
                    zeros = 0;
                }
                s.push(b);
                zeros = if b == 0 { zeros + 1 } else { 0 };
            }
            left = left.saturating_sub(8);
        }
        s.push(0x80); // rbsp_stop_one_bit: a slice never ends in zero
        frame += 1;
    }
    s
}

fn best_of(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stream = match std::env::args().nth(1) {
        Some(path) => std::fs::read(path)?,
        None => synthetic(256 << 20),
    };
    let aes = SampleAes::new(&[0x2b; 16], [0x0f; 16])?;
    let mut enc = Vec::with_capacity(stream.len() + stream.len() / 64);
    let mut dec = Vec::with_capacity(stream.len());
    let stats = aes.encrypt_h264(&stream, &mut enc)?;
    aes.decrypt_h264(&enc, &mut dec)?;
    assert!(dec == stream, "round trip failed");

    let runs = 5;
    let t_enc = best_of(runs, || {
        enc.clear();
        aes.encrypt_h264(&stream, &mut enc).expect("encrypt");
    });
    let t_dec = best_of(runs, || {
        dec.clear();
        aes.decrypt_h264(&enc, &mut dec).expect("decrypt");
    });
    let gb = stream.len() as f64 / 1e9;
    println!(
        "stream {:.1} MB, {} NAL units ({} encrypted), +{} bytes of EPBs after encryption",
        stream.len() as f64 / 1e6,
        stats.nal_units,
        stats.protected,
        enc.len() - stream.len()
    );
    println!("encrypt          {:6.2} GB/s  ({:?})", gb / t_enc.as_secs_f64(), t_enc);
    println!("decrypt          {:6.2} GB/s  ({:?})", gb / t_dec.as_secs_f64(), t_dec);
    println!("encrypt+decrypt  {:6.2} GB/s  (one core, best of {runs})", gb / (t_enc + t_dec).as_secs_f64());
    Ok(())
}
