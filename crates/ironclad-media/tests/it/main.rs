//! ironclad-media integration tests, one binary: real ffmpeg interop, a committed ffmpeg clip,
//! property tests and the G.711 known answers.
#![allow(clippy::unwrap_used)]

mod ffmpeg_hls;
mod g711_vectors;
mod properties;
mod ts_fixture;
