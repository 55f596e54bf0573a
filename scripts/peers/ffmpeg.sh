# Peer: ffmpeg with libx264 (SAMPLE-AES HLS interop: makes the clear clip, then decrypts and
# decodes what ironclad-media encrypts). Sourced by scripts/test.
need_apt ffmpeg ffmpeg
