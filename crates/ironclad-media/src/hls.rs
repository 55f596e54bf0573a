//! HLS media playlists: adding and removing the SAMPLE-AES `EXT-X-KEY` tag (RFC 8216 §4.3.2.4).
//!
//! Encryption inserts, before the first media segment,
//! `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="<uri>",IV=0x<32 hex>,KEYFORMAT="identity"` and raises
//! `EXT-X-VERSION` to 5 (the `KEYFORMAT` attribute needs it; `IV` needs 2). `identity` means the
//! URI returns the 16 raw key bytes. One explicit IV is written on purpose: without it the IV is
//! the media sequence number, and ffmpeg decrypts packets that straddle a segment boundary with
//! the next segment's IV. Decryption removes the SAMPLE-AES tags and leaves everything else,
//! including the raised version, as it is. Line endings (`\n` or `\r\n`) are kept.

use crate::error::{Error, Result};

/// Largest playlist accepted: far above any real media playlist.
const MAX_PLAYLIST_LEN: usize = 16 << 20;

/// The attributes of a SAMPLE-AES `EXT-X-KEY` tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTag {
    /// Where the key is fetched from (relative to the playlist, or absolute).
    pub uri: String,
    /// The explicit IV; `None` means "the media sequence number" ([`sequence_iv`]).
    pub iv: Option<[u8; 16]>,
    /// `KEYFORMAT`, `None` meaning the default `identity`.
    pub keyformat: Option<String>,
}

impl KeyTag {
    /// A tag for an identity key at `uri` with an explicit IV.
    pub fn sample_aes(uri: impl Into<String>, iv: [u8; 16]) -> Self {
        Self { uri: uri.into(), iv: Some(iv), keyformat: Some("identity".into()) }
    }

    /// The tag line, without line ending.
    pub fn to_line(&self) -> String {
        let mut line = format!("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"{}\"", self.uri);
        if let Some(iv) = self.iv {
            line.push_str(",IV=0x");
            for b in iv {
                line.push_str(&format!("{b:02x}"));
            }
        }
        if let Some(f) = &self.keyformat {
            line.push_str(&format!(",KEYFORMAT=\"{f}\""));
        }
        line
    }

    /// Parses an `#EXT-X-KEY:` line. Returns `None` for `METHOD=NONE`; other methods than
    /// SAMPLE-AES are refused. `line_no` is only used in errors.
    pub fn parse(line: &str, line_no: usize) -> Result<Option<Self>> {
        let bad = |reason| Error::Playlist { line: line_no, reason };
        let attrs = line.trim_end().strip_prefix("#EXT-X-KEY:").ok_or_else(|| bad("not an EXT-X-KEY tag"))?;
        let (mut method, mut uri, mut iv, mut keyformat) = (None, None, None, None);
        for (name, value) in attributes(attrs).map_err(bad)? {
            match name {
                "METHOD" => method = Some(value),
                "URI" => uri = Some(unquote(value).ok_or_else(|| bad("URI is not a quoted string"))?),
                "IV" => iv = Some(parse_iv(value).ok_or_else(|| bad("IV is not 0x and 32 hex digits"))?),
                "KEYFORMAT" => {
                    keyformat = Some(unquote(value).ok_or_else(|| bad("KEYFORMAT is not a quoted string"))?)
                }
                _ => {}
            }
        }
        match method {
            Some("NONE") => Ok(None),
            Some("SAMPLE-AES") => {
                let uri = uri.ok_or_else(|| bad("SAMPLE-AES key without URI"))?.to_owned();
                Ok(Some(Self { uri, iv, keyformat: keyformat.map(str::to_owned) }))
            }
            Some(_) => Err(bad("only METHOD=SAMPLE-AES (or NONE) is supported")),
            None => Err(bad("EXT-X-KEY without METHOD")),
        }
    }
}

/// The IV used when a key tag has no `IV` attribute: the segment's media sequence number as a
/// 128-bit big-endian integer (RFC 8216 §5.2).
pub fn sequence_iv(media_sequence: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[8..].copy_from_slice(&media_sequence.to_be_bytes());
    iv
}

/// Adds the SAMPLE-AES key tag to a clear media playlist (see the module docs).
pub fn encrypt_playlist(playlist: &str, key: &KeyTag) -> Result<String> {
    if key.uri.contains(['"', '\n', '\r']) {
        return Err(Error::Playlist { line: 0, reason: "key URI contains a quote or line break" });
    }
    let lines = checked_lines(playlist)?;
    let eol = if playlist.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(playlist.len() + 128);
    let mut key_written = false;
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("#EXT-X-KEY:") {
            return Err(Error::Playlist { line: i + 1, reason: "playlist already has EXT-X-KEY tags" });
        }
        if !key_written && i > 0 && is_segment_line(line) {
            out.push_str(&key.to_line());
            out.push_str(eol);
            key_written = true;
        }
        if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
            let v: u32 =
                v.trim().parse().map_err(|_| Error::Playlist { line: i + 1, reason: "bad version" })?;
            out.push_str(&format!("#EXT-X-VERSION:{}", v.max(5)));
        } else {
            out.push_str(line);
        }
        out.push_str(eol);
        if i == 0 && !playlist.contains("#EXT-X-VERSION:") {
            out.push_str("#EXT-X-VERSION:5");
            out.push_str(eol);
        }
    }
    if !key_written {
        out.push_str(&key.to_line());
        out.push_str(eol);
    }
    if !playlist.ends_with('\n') {
        out.truncate(out.len() - eol.len());
    }
    Ok(out)
}

/// Removes the SAMPLE-AES key tags from a media playlist; returns the clear playlist and the
/// tags removed, in order.
pub fn decrypt_playlist(playlist: &str) -> Result<(String, Vec<KeyTag>)> {
    let lines = checked_lines(playlist)?;
    let eol = if playlist.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(playlist.len());
    let mut keys = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("#EXT-X-KEY:")
            && let Some(tag) = KeyTag::parse(line, i + 1)?
        {
            keys.push(tag);
            continue;
        }
        out.push_str(line);
        out.push_str(eol);
    }
    if !playlist.ends_with('\n') {
        out.truncate(out.len().saturating_sub(eol.len()));
    }
    Ok((out, keys))
}

/// The media segment URIs of a playlist, in order.
pub fn segment_uris(playlist: &str) -> Vec<&str> {
    playlist.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
}

/// Lines without their endings, after checking the playlist is a media playlist within limits.
fn checked_lines(playlist: &str) -> Result<Vec<&str>> {
    if playlist.len() > MAX_PLAYLIST_LEN {
        return Err(Error::TooLarge { what: "playlist", len: playlist.len(), max: MAX_PLAYLIST_LEN });
    }
    let lines: Vec<&str> = playlist.lines().map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    if lines.first().map(|l| l.trim_end()) != Some("#EXTM3U") {
        return Err(Error::Playlist { line: 1, reason: "does not start with #EXTM3U" });
    }
    if let Some(i) = lines.iter().position(|l| l.starts_with("#EXT-X-STREAM-INF")) {
        return Err(Error::Playlist { line: i + 1, reason: "a master playlist; pass each media playlist" });
    }
    Ok(lines)
}

/// Whether the line starts the first media segment (a segment tag or a URI).
fn is_segment_line(line: &str) -> bool {
    const SEGMENT_TAGS: [&str; 6] = [
        "#EXTINF",
        "#EXT-X-BYTERANGE",
        "#EXT-X-DISCONTINUITY",
        "#EXT-X-PROGRAM-DATE-TIME",
        "#EXT-X-MAP",
        "#EXT-X-GAP",
    ];
    let line = line.trim();
    (!line.is_empty() && !line.starts_with('#')) || SEGMENT_TAGS.iter().any(|t| line.starts_with(t))
}

/// Splits an attribute list (`NAME=value,NAME="quoted, value"`) into pairs.
fn attributes(list: &str) -> Result<Vec<(&str, &str)>, &'static str> {
    let mut out = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=').ok_or("attribute without '='")?;
        let end = if let Some(quoted) = after.strip_prefix('"') {
            1 + quoted.find('"').ok_or("unterminated quoted string")? + 1
        } else {
            after.find(',').unwrap_or(after.len())
        };
        out.push((name.trim(), &after[..end]));
        rest = &after[end..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.is_empty() {
            return Err("junk after a quoted attribute value");
        }
    }
    Ok(out)
}

fn unquote(v: &str) -> Option<&str> {
    v.strip_prefix('"')?.strip_suffix('"')
}

fn parse_iv(v: &str) -> Option<[u8; 16]> {
    let hex = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X"))?;
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut iv = [0u8; 16];
    for (i, b) in iv.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(iv)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const FFMPEG: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
        #EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.000000,\nseg000.ts\n#EXTINF:2.000000,\nseg001.ts\n#EXT-X-ENDLIST\n";

    fn iv() -> [u8; 16] {
        core::array::from_fn(|i| 15 - i as u8)
    }

    #[test]
    fn adds_key_before_first_segment() {
        let key = KeyTag::sample_aes("key.bin", iv());
        let enc = encrypt_playlist(FFMPEG, &key).unwrap();
        let expected = "#EXTM3U\n#EXT-X-VERSION:5\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
            #EXT-X-PLAYLIST-TYPE:VOD\n\
            #EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"key.bin\",IV=0x0f0e0d0c0b0a09080706050403020100,KEYFORMAT=\"identity\"\n\
            #EXTINF:2.000000,\nseg000.ts\n#EXTINF:2.000000,\nseg001.ts\n#EXT-X-ENDLIST\n";
        assert_eq!(enc, expected);
        assert_eq!(segment_uris(&enc), ["seg000.ts", "seg001.ts"]);
        let (clear, keys) = decrypt_playlist(&enc).unwrap();
        assert_eq!(keys, std::slice::from_ref(&key));
        assert_eq!(clear, FFMPEG.replace("VERSION:3", "VERSION:5"));
        assert!(encrypt_playlist(&enc, &key).is_err(), "already encrypted");
    }

    #[test]
    fn crlf_and_missing_version() {
        let p = "#EXTM3U\r\n#EXTINF:4,\r\na.ts\r\n";
        let enc = encrypt_playlist(p, &KeyTag::sample_aes("k", [0; 16])).unwrap();
        assert!(enc.starts_with("#EXTM3U\r\n#EXT-X-VERSION:5\r\n#EXT-X-KEY:METHOD=SAMPLE-AES"));
        assert!(enc.ends_with("\r\n#EXTINF:4,\r\na.ts\r\n"));
    }

    #[test]
    fn parses_other_writers_tags() {
        let t = KeyTag::parse("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://a,b\",KEYFORMATVERSIONS=\"1\"", 3)
            .unwrap()
            .unwrap();
        assert_eq!((t.uri.as_str(), t.iv), ("skd://a,b", None));
        assert_eq!(KeyTag::parse("#EXT-X-KEY:METHOD=NONE", 1).unwrap(), None);
        assert!(KeyTag::parse("#EXT-X-KEY:METHOD=AES-128,URI=\"k\"", 1).is_err());
        assert!(KeyTag::parse("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"k\",IV=0x12", 1).is_err());
        assert!(KeyTag::parse("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"k", 1).is_err());
        assert_eq!(sequence_iv(258)[14..], [1, 2]);
    }

    #[test]
    fn refuses_non_media_playlists() {
        assert!(encrypt_playlist("hello", &KeyTag::sample_aes("k", [0; 16])).is_err());
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n";
        assert!(encrypt_playlist(master, &KeyTag::sample_aes("k", [0; 16])).is_err());
        assert!(encrypt_playlist(FFMPEG, &KeyTag::sample_aes("k\"", [0; 16])).is_err());
    }
}
