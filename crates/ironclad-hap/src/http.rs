//! The small part of HTTP/1.1 that HAP uses, parsed incrementally from a buffer: requests with
//! an optional `Content-Length` body; responses with `Content-Length`, chunked or no body; and
//! HAP's `EVENT/1.0` notifications. Own code rather than hyper because a HAP connection switches
//! to encrypted frames mid-stream and carries unsolicited `EVENT/1.0` messages, which an HTTP
//! library does not model.

use crate::error::{Error, Result};

/// Longest request line plus headers accepted.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

pub(crate) const TLV8: &str = "application/pairing+tlv8";
pub(crate) const HAP_JSON: &str = "application/hap+json";

/// A request received by the accessory.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// The path without the query string.
    pub(crate) fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub(crate) fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }
}

/// A response (or an `EVENT/1.0` notification) received by the controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// True for `EVENT/1.0` notifications.
    pub event: bool,
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

struct Head {
    start: String,
    headers: Vec<(String, String)>,
    len: usize,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> Result<Option<usize>> {
        match self.header("content-length") {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| Error::Http("bad Content-Length")),
        }
    }
}

fn parse_head(buf: &[u8]) -> Result<Option<Head>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(Error::TooLarge { what: "header block", len: buf.len(), limit: MAX_HEAD });
        }
        return Ok(None);
    };
    if end > MAX_HEAD {
        return Err(Error::TooLarge { what: "header block", len: end, limit: MAX_HEAD });
    }
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| Error::Http("header block is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(Error::Http("header line without ':'"))?;
        if name.is_empty() || name.contains(' ') {
            return Err(Error::Http("bad header name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(Some(Head { start, headers, len: end + 4 }))
}

/// Takes one complete request off the front of `buf`, if there is one.
pub(crate) fn parse_request(buf: &mut Vec<u8>, max_body: usize) -> Result<Option<Request>> {
    let Some(head) = parse_head(buf)? else { return Ok(None) };
    let mut parts = head.start.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::Http("bad request line"));
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(Error::Http("unsupported HTTP version"));
    }
    if head.header("transfer-encoding").is_some() {
        return Err(Error::Http("chunked request bodies are not supported"));
    }
    let len = head.content_length()?.unwrap_or(0);
    if len > max_body {
        return Err(Error::TooLarge { what: "request body", len, limit: max_body });
    }
    if buf.len() < head.len + len {
        return Ok(None);
    }
    let body = buf[head.len..head.len + len].to_vec();
    let request = Request { method: method.to_owned(), target: target.to_owned(), body };
    buf.drain(..head.len + len);
    Ok(Some(request))
}

/// Takes one complete response or event off the front of `buf`, if there is one.
pub(crate) fn parse_response(buf: &mut Vec<u8>, max_body: usize) -> Result<Option<Response>> {
    let Some(head) = parse_head(buf)? else { return Ok(None) };
    let mut parts = head.start.splitn(3, ' ');
    let (version, status) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let event = match version {
        "HTTP/1.1" | "HTTP/1.0" => false,
        "EVENT/1.0" => true,
        _ => return Err(Error::Http("bad status line")),
    };
    let status: u16 = status.parse().map_err(|_| Error::Http("bad status code"))?;
    let content_type = head.header("content-type").map(str::to_owned);
    let chunked = head.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let (body, used) = if status == 204 || status == 304 || (100..200).contains(&status) {
        (Vec::new(), 0)
    } else if chunked {
        match dechunk(&buf[head.len..], max_body)? {
            Some(done) => done,
            None => return Ok(None),
        }
    } else {
        // Without a length, HAP peers send no body (aiohomekit reads it the same way).
        let len = head.content_length()?.unwrap_or(0);
        if len > max_body {
            return Err(Error::TooLarge { what: "response body", len, limit: max_body });
        }
        if buf.len() < head.len + len {
            return Ok(None);
        }
        (buf[head.len..head.len + len].to_vec(), len)
    };
    buf.drain(..head.len + used);
    Ok(Some(Response { event, status, content_type, body }))
}

/// Decodes a chunked body: `Some((body, bytes used))` once the last chunk and trailers are in.
fn dechunk(mut input: &[u8], max_body: usize) -> Result<Option<(Vec<u8>, usize)>> {
    let total = input.len();
    let mut body = Vec::new();
    loop {
        let Some(eol) = input.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
        let line = std::str::from_utf8(&input[..eol]).map_err(|_| Error::Http("bad chunk size"))?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| Error::Http("bad chunk size"))?;
        input = &input[eol + 2..];
        if size == 0 {
            // Trailers (ignored) end with an empty line.
            loop {
                let Some(eol) = input.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
                input = &input[eol + 2..];
                if eol == 0 {
                    return Ok(Some((body, total - input.len())));
                }
            }
        }
        if body.len() + size > max_body {
            return Err(Error::TooLarge { what: "response body", len: body.len() + size, limit: max_body });
        }
        if input.len() < size + 2 {
            return Ok(None);
        }
        if &input[size..size + 2] != b"\r\n" {
            return Err(Error::Http("chunk not followed by CRLF"));
        }
        body.extend_from_slice(&input[..size]);
        input = &input[size + 2..];
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        207 => "Multi-Status",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        470 => "Connection Authorization Required",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// `HTTP/1.1 <status>` with a body (or none for 204).
pub(crate) fn response_bytes(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes();
    if status != 204 {
        out.extend_from_slice(
            format!("Content-Type: {content_type}\r\nContent-Length: {}\r\n", body.len()).as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    if status != 204 {
        out.extend_from_slice(body);
    }
    out
}

/// An `EVENT/1.0 200 OK` notification carrying HAP JSON.
pub(crate) fn event_bytes(body: &[u8]) -> Vec<u8> {
    let mut out =
        format!("EVENT/1.0 200 OK\r\nContent-Type: {HAP_JSON}\r\nContent-Length: {}\r\n\r\n", body.len())
            .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A request in one buffer (some accessories mishandle requests split over several packets).
pub(crate) fn request_bytes(
    method: &str,
    target: &str,
    host: &str,
    content_type: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n").into_bytes();
    if !body.is_empty() || method != "GET" {
        out.extend_from_slice(
            format!("Content-Type: {content_type}\r\nContent-Length: {}\r\n", body.len()).as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_arrive_in_pieces() {
        let wire = request_bytes("POST", "/pair-setup", "127.0.0.1", TLV8, &[6, 1, 1, 0, 1, 0]);
        let mut buf = Vec::new();
        for (i, b) in wire.iter().enumerate() {
            buf.push(*b);
            let parsed = parse_request(&mut buf, 1024).unwrap();
            assert_eq!(parsed.is_some(), i == wire.len() - 1);
            if let Some(r) = parsed {
                assert_eq!(
                    (r.method.as_str(), r.path(), r.body.as_slice()),
                    ("POST", "/pair-setup", &[6, 1, 1, 0, 1, 0][..])
                );
            }
        }
        assert!(buf.is_empty());
        let mut two = request_bytes("GET", "/characteristics?id=1.11", "h", HAP_JSON, b"");
        two.extend_from_slice(&wire);
        let first = parse_request(&mut two, 1024).unwrap().unwrap();
        assert_eq!((first.path(), first.query()), ("/characteristics", "id=1.11"));
        assert_eq!(parse_request(&mut two, 1024).unwrap().unwrap().body.len(), 6);
    }

    #[test]
    fn limits_and_garbage() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        assert!(matches!(parse_request(&mut big, 10), Err(Error::TooLarge { .. })));
        let mut body = b"PUT / HTTP/1.1\r\nContent-Length: 11\r\n\r\n".to_vec();
        assert!(matches!(parse_request(&mut body, 10), Err(Error::TooLarge { .. })));
        for bad in [&b"GET /\r\n\r\n"[..], b"GET / HTTP/1.1\r\nno colon\r\n\r\n", b"GET / SPDY/3\r\n\r\n"] {
            assert!(parse_request(&mut bad.to_vec(), 10).is_err());
        }
    }

    #[test]
    fn responses_events_and_chunks() {
        let mut buf = response_bytes(200, TLV8, b"\x06\x01\x02");
        buf.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        buf.extend_from_slice(&event_bytes(b"{}"));
        buf.extend_from_slice(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        );
        let r = parse_response(&mut buf, 100).unwrap().unwrap();
        assert_eq!((r.status, r.event, r.body.as_slice()), (200, false, &b"\x06\x01\x02"[..]));
        assert_eq!(r.content_type.as_deref(), Some(TLV8));
        assert_eq!(parse_response(&mut buf, 100).unwrap().unwrap().status, 204);
        let e = parse_response(&mut buf, 100).unwrap().unwrap();
        assert!(e.event && e.body == b"{}");
        let mut partial = buf[..buf.len() - 3].to_vec();
        assert_eq!(parse_response(&mut partial, 100).unwrap(), None);
        assert_eq!(parse_response(&mut buf, 100).unwrap().unwrap().body, b"abcde");
        assert!(buf.is_empty());
    }
}
