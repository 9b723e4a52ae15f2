//! A blocking HTTP/1.1 exchange with a server on loopback, enough for readiness probes and
//! for tests that want to poke a server without an HTTP client crate.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// A server's answer to [`http_request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAnswer {
    /// The HTTP status code.
    pub status: u16,
    /// The body, with any chunked transfer coding removed.
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one HTTP/1.1 request to `127.0.0.1:port` and reads the whole answer.
///
/// `path` is the request target (`/api/v0/version?arg=x`); `body`, when given, is the
/// content type and the bytes. The connection is closed after the answer, and connecting,
/// writing and each read are bounded by `timeout`.
///
/// # Errors
/// Any I/O error (connection refused when nothing listens), a timeout, or
/// [`io::ErrorKind::InvalidData`] when the answer is not HTTP.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
    timeout: Duration,
) -> io::Result<HttpAnswer> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;

    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Accept: */*\r\n"
    );
    let payload: &[u8] = match body {
        Some((content_type, bytes)) => {
            request.push_str(&format!("Content-Type: {content_type}\r\n"));
            bytes
        }
        None => &[],
    };
    request.push_str(&format!("Content-Length: {}\r\n\r\n", payload.len()));
    stream.write_all(request.as_bytes())?;
    stream.write_all(payload)?;

    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_answer(&raw)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn parse_answer(raw: &[u8]) -> io::Result<HttpAnswer> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of HTTP header"))?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| invalid("header not UTF-8"))?;
    let rest = &raw[head_end + 4..];

    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| invalid("bad HTTP status line"))?;

    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }

    let body = if chunked {
        dechunk(rest)?
    } else {
        match length {
            Some(n) if n <= rest.len() => rest[..n].to_vec(),
            Some(_) => return Err(invalid("body shorter than Content-Length")),
            None => rest.to_vec(),
        }
    };
    Ok(HttpAnswer { status, body })
}

fn dechunk(mut data: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("truncated chunk size"))?;
        let size_text =
            std::str::from_utf8(&data[..line_end]).map_err(|_| invalid("chunk size not UTF-8"))?;
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| invalid("bad chunk size"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size + 2 {
            return Err(invalid("truncated chunk"));
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_bodies() {
        let plain = parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            .expect("plain answer");
        assert_eq!(
            plain,
            HttpAnswer {
                status: 200,
                body: b"hello".to_vec()
            }
        );

        let chunked = parse_answer(
            b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .expect("chunked answer");
        assert_eq!(
            chunked,
            HttpAnswer {
                status: 404,
                body: b"abcde".to_vec()
            }
        );
    }

    #[test]
    fn garbage_is_invalid_data() {
        let err = parse_answer(b"SSH-2.0-OpenSSH\r\n\r\n").expect_err("not HTTP");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
