//! The demo's media stage: a camera's owner claims it, the camera gets its stream key from the
//! cloud's key vault over its authenticated session and encrypts a synthetic 1080p H.264
//! stream (SAMPLE-AES) and its G.711 audio; the owner fetches the same key through the owner
//! endpoint and decrypts both byte-exact; another owner is refused the key.

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use ironclad_agent::{DeviceConnection, DeviceIdentity, OperatorClient, ServerEndpoint};
use ironclad_media::{G711Cipher, SampleAes};
use ironclad_proto::ErrorCode;
use ironclad_server::{Registry, Role};
use zeroize::Zeroizing;

use crate::station::Device;

/// The camera's stream name.
const STREAM: &str = "front";
/// Frames of video (10 s at 30 fps) and of audio (20 ms G.711 frames over the same 10 s).
const VIDEO_FRAMES: usize = 300;
const AUDIO_FRAMES: usize = 500;
const G711_FRAME: usize = 160;

/// A deterministic pseudo-random byte source (xorshift): the demo's clip is the same every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Slice payload bytes: never zero, so no start code appears inside a NAL.
    fn fill(&mut self, out: &mut Vec<u8>, len: usize) {
        out.extend((0..len).map(|_| (self.next() as u8) | 1));
    }
}

/// An Annex-B stream shaped like a 1080p camera's: SPS, PPS and an IDR slice every 30 frames
/// (about 60 KB), P slices (5-25 KB) between, an access unit delimiter before each frame.
pub(crate) fn synthetic_h264() -> Vec<u8> {
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(VIDEO_FRAMES * 20_000);
    for frame in 0..VIDEO_FRAMES {
        out.extend_from_slice(&[0, 0, 0, 1, 0x09, 0xf0]);
        if frame % 30 == 0 {
            out.extend_from_slice(&[
                0, 0, 0, 1, 0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5,
            ]);
            out.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0]);
            out.extend_from_slice(&[0, 0, 0, 1, 0x65]);
            noise.fill(&mut out, 60_000);
        } else {
            out.extend_from_slice(&[0, 0, 0, 1, 0x41]);
            let len = 5_000 + (noise.next() % 20_000) as usize;
            noise.fill(&mut out, len);
        }
    }
    out
}

fn synthetic_g711() -> Vec<u8> {
    let mut noise = Noise(0xD1B5_4A32_D192_ED03);
    let mut out = Vec::with_capacity(AUDIO_FRAMES * G711_FRAME);
    noise.fill(&mut out, AUDIO_FRAMES * G711_FRAME);
    out
}

fn key_bytes(hex_key: &str) -> Result<Zeroizing<[u8; 16]>> {
    let raw = Zeroizing::new(hex::decode(hex_key).context("malformed key")?);
    let mut key = Zeroizing::new([0u8; 16]);
    ensure!(raw.len() == 16, "a media key has 16 bytes, got {}", raw.len());
    key.copy_from_slice(&raw);
    Ok(key)
}

/// Runs the stage for `camera` (provisioned, enrolled, not revoked). Returns the detail line.
pub(crate) fn media_stage(
    rt: &tokio::runtime::Runtime,
    endpoint: &ServerEndpoint,
    registry: &Registry,
    camera: &Device,
) -> Result<String> {
    rt.block_on(async {
        let owner_secret = registry.create_api_token("demo-owner", Role::Owner).await?.secret;
        let stranger_secret = registry.create_api_token("demo-stranger", Role::Owner).await?.secret;
        let mut owner = OperatorClient::connect(endpoint, &owner_secret).await?;

        // The owner claims the camera (in the field the code reaches it over pairing).
        let mut device = DeviceConnection::connect(endpoint, DeviceIdentity::from_secure_element(camera.se.clone())?)
            .await?;
        device.authenticate().await?;
        if !owner.owned_devices().await?.iter().any(|d| d.device_id == camera.id) {
            let code = owner.new_claim_code().await?;
            device.claim(&code.code).await.context("claiming the camera")?;
        }

        // The camera: its stream key from the vault, then SAMPLE-AES video and G.711 audio.
        let device_key = device.media_key(STREAM).await.context("the camera's stream key")?;
        let key = key_bytes(&device_key.key_hex)?;
        let iv = ironclad_media::hls::sequence_iv(0);
        let video = synthetic_h264();
        let audio = synthetic_g711();
        let started = Instant::now();
        let mut encrypted = Vec::with_capacity(video.len());
        let stats = SampleAes::new(&key, iv)?.encrypt_h264(&video, &mut encrypted)?;
        let mut encrypted_audio = audio.clone();
        G711Cipher::new(&key, iv)?.apply_frames(0, G711_FRAME, &mut encrypted_audio)?;
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        ensure!(encrypted != video && encrypted_audio != audio, "nothing was encrypted");
        ensure!(stats.protected == VIDEO_FRAMES, "{} of {VIDEO_FRAMES} slices protected", stats.protected);

        // The owner: the same key through the owner endpoint, and both streams back exactly.
        let owner_key = owner.owner_media_key(&camera.id, STREAM).await.context("the owner's key fetch")?;
        ensure!(owner_key.key_id == device_key.key_id, "owner got {} not {}", owner_key.key_id, device_key.key_id);
        let key = key_bytes(&owner_key.key_hex)?;
        let mut decrypted = Vec::with_capacity(video.len());
        SampleAes::new(&key, iv)?.decrypt_h264(&encrypted, &mut decrypted)?;
        G711Cipher::new(&key, iv)?.apply_frames(0, G711_FRAME, &mut encrypted_audio)?;
        ensure!(decrypted == video, "the owner's decrypted video differs from the camera's");
        ensure!(encrypted_audio == audio, "the owner's decrypted audio differs from the camera's");

        // Anyone else: refused.
        let mut stranger = OperatorClient::connect(endpoint, &stranger_secret).await?;
        match stranger.owner_media_key(&camera.id, STREAM).await {
            Ok(_) => anyhow::bail!("another owner got the camera's key"),
            Err(e) => ensure!(e.wire_code() == Some(ErrorCode::Forbidden), "unexpected refusal: {e}"),
        }
        Ok(format!(
            "{}: key {} from the cloud vault; {:.1} MB of H.264 ({} NAL units, {} slices SAMPLE-AES) + {} G.711 frames encrypted at {:.0} MB/s; its owner fetched the key and decrypted byte-exact; another owner refused",
            camera.id,
            device_key.key_id,
            video.len() as f64 / 1e6,
            stats.nal_units,
            stats.protected,
            AUDIO_FRAMES,
            (video.len() + audio.len()) as f64 / 1e6 / secs,
        ))
    })
}
