//! What application protocol a flow speaks, from its first bytes in one direction, whatever the
//! port. Each recogniser gets the bytes (cut at the sensor's bound, so a message may end early)
//! and the direction; the first that recognises them wins (as NeuVector recruits its parsers
//! per new session). Every read is bounds-checked: hostile bytes give `Unknown`, never a panic.

use serde::{Deserialize, Serialize};

/// Which end sent the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The end that connected.
    Client,
    /// The end that accepted.
    Server,
}

/// A protocol and what its first message says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "lowercase")]
pub enum Protocol {
    Http {
        method: String,
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
    },
    /// A client's HTTP/2 connection preface, and what its first request's headers say when the
    /// bytes reach them (unencrypted HTTP/2 only: h2c, or gRPC without TLS).
    Http2 {
        /// `:method`, `:path` and `:authority` of the first HEADERS frame (HPACK-decoded).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        method: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        authority: Option<String>,
        /// Its `content-type` is `application/grpc…`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        grpc: bool,
    },
    Tls {
        /// The server name the client asked for (SNI).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sni: Option<String>,
    },
    Ssh {
        /// `SSH-2.0-OpenSSH_9.2p1`.
        banner: String,
    },
    Mysql {
        /// The server's version from its greeting.
        version: String,
    },
    Postgresql {
        /// `startup`, `ssl` (an SSLRequest) or `gssenc`.
        message: String,
    },
    Redis {
        /// The first command (`PING`, `GET`, …).
        command: String,
    },
    Mongodb {
        /// The wire operation: `msg`, `query`, `compressed`, …
        op: String,
    },
    Kafka {
        /// The request's API key (0 Produce, 1 Fetch, 3 Metadata, 18 ApiVersions, …).
        api_key: i16,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        client_id: String,
    },
    Unknown,
}

impl Protocol {
    /// Its name as policies write applications (`HTTP`, `TLS`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Http { .. } => "HTTP",
            Self::Http2 { grpc: true, .. } => "GRPC",
            Self::Http2 { .. } => "HTTP2",
            Self::Tls { .. } => "TLS",
            Self::Ssh { .. } => "SSH",
            Self::Mysql { .. } => "MySQL",
            Self::Postgresql { .. } => "PostgreSQL",
            Self::Redis { .. } => "Redis",
            Self::Mongodb { .. } => "MongoDB",
            Self::Kafka { .. } => "Kafka",
            Self::Unknown => "unknown",
        }
    }
}

/// One protocol's recogniser: what the bytes say, if they are its.
type Recogniser = fn(&[u8], Direction) -> Option<Protocol>;

/// The protocol `bytes` (a flow's first bytes from `direction`) speak.
pub fn identify(bytes: &[u8], direction: Direction) -> Protocol {
    let recognisers: [Recogniser; 9] = [http2, http, tls, ssh, postgresql, mysql, redis, mongodb, kafka];
    recognisers.iter().find_map(|recognise| recognise(bytes, direction)).unwrap_or(Protocol::Unknown)
}

/// Bytes as text for a detail, control characters dropped and bounded.
fn printable(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(bytes).chars().filter(|c| !c.is_control()).take(max).collect()
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether `bytes` start with an HTTP/2 client's preface (its first 16 bytes: enough to tell).
pub fn starts_http2(bytes: &[u8]) -> bool {
    bytes.starts_with(&HTTP2_PREFACE[..16])
}

fn http2(bytes: &[u8], direction: Direction) -> Option<Protocol> {
    if direction != Direction::Client || !starts_http2(bytes) {
        return None;
    }
    let mut found = Protocol::Http2 { method: String::new(), path: String::new(), authority: None, grpc: false };
    let Some(block) = bytes.get(HTTP2_PREFACE.len()..).and_then(first_header_block) else { return Some(found) };
    if let Protocol::Http2 { method, path, authority, grpc } = &mut found {
        // A fresh decoder is right: the first header block is the first to touch its table. A
        // block cut at the sensor's bound still gives the fields before the cut.
        let mut decoder = loona_hpack::Decoder::new();
        let _ = decoder.decode_with_cb(block, |name, value| match &*name {
            b":method" => *method = printable(&value, 16),
            b":path" => *path = printable(&value, 1024),
            b":authority" => *authority = Some(printable(&value, 255)),
            b"content-type" => *grpc = value.starts_with(b"application/grpc"),
            _ => {}
        });
    }
    Some(found)
}

/// The header block fragment of the first HEADERS frame in `frames` (what follows the
/// preface), without its padding and priority fields; cut where the bytes end.
fn first_header_block(frames: &[u8]) -> Option<&[u8]> {
    const HEADERS: u8 = 1;
    const PADDED: u8 = 0x8;
    const PRIORITY: u8 = 0x20;
    let mut at = 0;
    loop {
        let header = frames.get(at..at + 9)?;
        let len = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        let (kind, flags) = (header[3], header[4]);
        let start = at + 9;
        if kind == HEADERS {
            let end = (start + len).min(frames.len());
            let mut payload = frames.get(start..end)?;
            let mut padding = 0;
            if flags & PADDED != 0 {
                padding = usize::from(*payload.first()?);
                payload = payload.get(1..)?;
            }
            if flags & PRIORITY != 0 {
                payload = payload.get(5..)?;
            }
            // Padding is cut only when the frame is whole.
            if end == start + len {
                payload = payload.get(..payload.len().checked_sub(padding)?)?;
            }
            return Some(payload);
        }
        at = start + len;
    }
}

const METHODS: [&str; 9] = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE"];

fn http(bytes: &[u8], direction: Direction) -> Option<Protocol> {
    if direction == Direction::Server {
        return bytes.starts_with(b"HTTP/1.").then(|| Protocol::Http {
            method: String::new(),
            path: String::new(),
            host: None,
        });
    }
    let line_end = bytes.iter().position(|b| *b == b'\r' || *b == b'\n').unwrap_or(bytes.len());
    let line = std::str::from_utf8(bytes.get(..line_end)?).ok()?;
    let mut parts = line.splitn(3, ' ');
    let method = parts.next()?;
    let path = parts.next()?;
    if !METHODS.contains(&method) || !parts.next().is_none_or(|v| v.starts_with("HTTP/1.")) {
        return None;
    }
    let host = bytes.get(line_end..).and_then(|rest| {
        rest.split(|b| *b == b'\n').find_map(|header| {
            let header = std::str::from_utf8(header).ok()?.trim_end_matches('\r');
            let (name, value) = header.split_once(':')?;
            name.eq_ignore_ascii_case("host").then(|| printable(value.trim().as_bytes(), 255))
        })
    });
    Some(Protocol::Http { method: method.into(), path: printable(path.as_bytes(), 1024), host })
}

/// A TLS handshake record: a ClientHello (with its SNI, when the bytes reach it) from a client, a
/// ServerHello from a server.
fn tls(bytes: &[u8], direction: Direction) -> Option<Protocol> {
    // Record: type 22 (handshake), version 3.x, length; then the handshake type.
    if bytes.first() != Some(&22) || bytes.get(1) != Some(&3) || bytes.len() < 6 {
        return None;
    }
    let handshake = *bytes.get(5)?;
    match (direction, handshake) {
        (Direction::Client, 1) => Some(Protocol::Tls { sni: sni(bytes) }),
        (Direction::Server, 2) => Some(Protocol::Tls { sni: None }),
        _ => None,
    }
}

/// The server_name extension of a ClientHello (record at 0, handshake at 5).
fn sni(bytes: &[u8]) -> Option<String> {
    // Handshake header (4), client version (2), random (32).
    let mut at = 5 + 4 + 2 + 32;
    let session = usize::from(*bytes.get(at)?);
    at += 1 + session;
    let suites = usize::from(be16(bytes, at)?);
    at += 2 + suites;
    let compression = usize::from(*bytes.get(at)?);
    at += 1 + compression;
    let extensions_end = at + 2 + usize::from(be16(bytes, at)?);
    at += 2;
    while at + 4 <= extensions_end.min(bytes.len()) {
        let kind = be16(bytes, at)?;
        let len = usize::from(be16(bytes, at + 2)?);
        at += 4;
        if kind == 0 {
            // server_name_list: length (2), then entries of type (1), length (2), name.
            let name_type = *bytes.get(at + 2)?;
            let name_len = usize::from(be16(bytes, at + 3)?);
            let name = bytes.get(at + 5..at + 5 + name_len)?;
            return (name_type == 0).then(|| printable(name, 255).to_ascii_lowercase());
        }
        at += len;
    }
    None
}

fn ssh(bytes: &[u8], _: Direction) -> Option<Protocol> {
    if !bytes.starts_with(b"SSH-") {
        return None;
    }
    let end = bytes.iter().position(|b| *b == b'\r' || *b == b'\n').unwrap_or(bytes.len());
    Some(Protocol::Ssh { banner: printable(&bytes[..end], 255) })
}

/// A client's StartupMessage (protocol 3.0), SSLRequest or GSSENCRequest: a length, then a code.
fn postgresql(bytes: &[u8], direction: Direction) -> Option<Protocol> {
    if direction != Direction::Client {
        return None;
    }
    let length = be32(bytes, 0)?;
    let message = match (length, be32(bytes, 4)?) {
        (8, 80_877_103) => "ssl",
        (8, 80_877_104) => "gssenc",
        (9..=10_000, 196_608) => "startup",
        _ => return None,
    };
    Some(Protocol::Postgresql { message: message.into() })
}

/// The server's greeting: a 3-byte length, sequence 0, protocol version 10, a version string.
fn mysql(bytes: &[u8], direction: Direction) -> Option<Protocol> {
    if direction != Direction::Server || bytes.len() < 6 {
        return None;
    }
    let length = u32::from(bytes[0]) | u32::from(bytes[1]) << 8 | u32::from(bytes[2]) << 16;
    if bytes[3] != 0 || bytes[4] != 10 || !(10..=1024).contains(&length) {
        return None;
    }
    let version = bytes.get(5..)?;
    let end = version.iter().position(|b| *b == 0)?;
    let version = std::str::from_utf8(&version[..end]).ok()?;
    version.chars().next()?.is_ascii_digit().then(|| Protocol::Mysql { version: version.into() })
}

/// RESP: an array of bulk strings (`*2\r\n$3\r\nGET\r\n…`), or an inline command.
fn redis(bytes: &[u8], direction: Direction) -> Option<Protocol> {
    if direction != Direction::Client {
        return None;
    }
    let head = &bytes[..bytes.len().min(64)];
    // A cut inside a character keeps what is valid before it.
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
    };
    let command = if let Some(rest) = text.strip_prefix('*') {
        let mut lines = rest.split("\r\n");
        lines.next()?.parse::<u32>().ok().filter(|n| (1..=1024).contains(n))?;
        lines.next()?.strip_prefix('$')?.parse::<u32>().ok()?;
        lines.next()?
    } else {
        let first = text.split("\r\n").next()?;
        let word = first.split(' ').next()?;
        if !["PING", "AUTH", "INFO", "HELLO", "QUIT"].contains(&word.to_ascii_uppercase().as_str()) {
            return None;
        }
        word
    };
    let command = command.to_ascii_uppercase();
    (!command.is_empty() && command.bytes().all(|b| b.is_ascii_alphabetic() || b == b'.'))
        .then_some(Protocol::Redis { command })
}

/// The wire protocol's header: length, request id, response to, opcode (little-endian).
fn mongodb(bytes: &[u8], _: Direction) -> Option<Protocol> {
    let length = le32(bytes, 0)?;
    let op = match le32(bytes, 12)? {
        2013 => "msg",
        2004 => "query",
        2012 => "compressed",
        1 => "reply",
        _ => return None,
    };
    (16..=48_000_000).contains(&length).then(|| Protocol::Mongodb { op: op.into() })
}

/// A request header: length, api key, api version, correlation id, client id (a string).
fn kafka(bytes: &[u8], direction: Direction) -> Option<Protocol> {
    if direction != Direction::Client {
        return None;
    }
    let length = be32(bytes, 0)?;
    let api_key = i16::from_be_bytes(bytes.get(4..6)?.try_into().ok()?);
    let api_version = i16::from_be_bytes(bytes.get(6..8)?.try_into().ok()?);
    let client_len = i16::from_be_bytes(bytes.get(12..14)?.try_into().ok()?);
    if !(14..=100_000_000).contains(&length) || !(0..=75).contains(&api_key) || !(0..=20).contains(&api_version) {
        return None;
    }
    let client_id = match usize::try_from(client_len) {
        Ok(len) => {
            let id = bytes.get(14..14 + len.min(bytes.len().saturating_sub(14)))?;
            if id.len() == len && !id.iter().all(|b| b.is_ascii_graphic()) {
                return None;
            }
            printable(id, 255)
        }
        // -1: a null client id.
        Err(_) if client_len == -1 => String::new(),
        Err(_) => return None,
    };
    Some(Protocol::Kafka { api_key, client_id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{Client, Server};

    /// A ClientHello for `name` as a TLS 1.2/1.3 client sends it (one cipher suite, SNI only).
    fn client_hello(name: &str) -> Vec<u8> {
        let name = name.as_bytes();
        let mut server_name = vec![0u8];
        server_name.extend((name.len() as u16).to_be_bytes());
        server_name.extend(name);
        let mut list = (server_name.len() as u16).to_be_bytes().to_vec();
        list.extend(server_name);
        let mut extension = vec![0, 0];
        extension.extend((list.len() as u16).to_be_bytes());
        extension.extend(list);
        let mut body = vec![3, 3];
        body.extend([7u8; 32]);
        body.push(0);
        body.extend([0, 2, 0x13, 0x01]);
        body.extend([1, 0]);
        body.extend((extension.len() as u16).to_be_bytes());
        body.extend(extension);
        let mut handshake = vec![1, 0];
        handshake.extend((body.len() as u16).to_be_bytes());
        handshake.extend(body);
        let mut record = vec![22, 3, 1];
        record.extend((handshake.len() as u16).to_be_bytes());
        record.extend(handshake);
        record
    }

    #[test]
    fn each_protocol_is_known_by_its_first_bytes_whatever_the_port() {
        let get = b"GET /api/v1/orders?id=7 HTTP/1.1\r\nUser-Agent: curl/7.88\r\nHost: shop.example:8080\r\n\r\n";
        assert_eq!(
            identify(get, Client),
            Protocol::Http {
                method: "GET".into(),
                path: "/api/v1/orders?id=7".into(),
                host: Some("shop.example:8080".into())
            }
        );
        assert_eq!(identify(b"HTTP/1.1 200 OK\r\n", Server).name(), "HTTP");
        assert_eq!(identify(HTTP2_PREFACE, Client).name(), "HTTP2");
        assert_eq!(
            identify(&client_hello("API.Example.com"), Client),
            Protocol::Tls { sni: Some("api.example.com".into()) }
        );
        assert_eq!(identify(&[22, 3, 3, 0, 50, 2, 0, 0, 46], Server), Protocol::Tls { sni: None });
        assert_eq!(
            identify(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", Server),
            Protocol::Ssh { banner: "SSH-2.0-OpenSSH_9.2p1 Debian-2".into() }
        );
        let mut startup = 41u32.to_be_bytes().to_vec();
        startup.extend(196_608u32.to_be_bytes());
        startup.extend(b"user\0postgres\0database\0shop\0\0");
        assert_eq!(identify(&startup, Client), Protocol::Postgresql { message: "startup".into() });
        let ssl = [0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f];
        assert_eq!(identify(&ssl, Client), Protocol::Postgresql { message: "ssl".into() });
        let mut greeting = vec![74, 0, 0, 0, 10];
        greeting.extend(b"10.11.6-MariaDB-0+deb12u1\0");
        greeting.extend([0u8; 40]);
        assert_eq!(identify(&greeting, Server), Protocol::Mysql { version: "10.11.6-MariaDB-0+deb12u1".into() });
        assert_eq!(identify(b"*2\r\n$3\r\nget\r\n$3\r\nkey\r\n", Client), Protocol::Redis { command: "GET".into() });
        assert_eq!(identify(b"PING\r\n", Client), Protocol::Redis { command: "PING".into() });
        let mut op_msg = 40u32.to_le_bytes().to_vec();
        op_msg.extend(1u32.to_le_bytes());
        op_msg.extend(0u32.to_le_bytes());
        op_msg.extend(2013u32.to_le_bytes());
        op_msg.extend([0u8; 24]);
        assert_eq!(identify(&op_msg, Client), Protocol::Mongodb { op: "msg".into() });
        let mut api_versions = 23u32.to_be_bytes().to_vec();
        api_versions.extend(18i16.to_be_bytes());
        api_versions.extend(3i16.to_be_bytes());
        api_versions.extend(1i32.to_be_bytes());
        api_versions.extend(9i16.to_be_bytes());
        api_versions.extend(b"producer1");
        assert_eq!(identify(&api_versions, Client), Protocol::Kafka { api_key: 18, client_id: "producer1".into() });
        assert_eq!(identify(b"just some words", Client), Protocol::Unknown);
        assert_eq!(identify(b"", Server), Protocol::Unknown);
    }

    /// What curl 7.88 sent for `curl --http2-prior-knowledge http://127.0.0.1:18081/orders/7`
    /// (captured): the preface, SETTINGS and WINDOW_UPDATE in one write, HEADERS in the next.
    const CURL_H2C: &[u8] = b"PRI * HTTP/2.0\x0d\x0a\x0d\x0aSM\x0d\x0a\x0d\x0a\x00\x00\x12\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00d\x00\x04\x02\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x04\x08\x00\x00\x00\x00\x00\x01\xff\x00\x01\x00\x00'\x01\x05\x00\x00\x00\x01\x82\x04\x87`\xf6H[\x10\xc3\xbf\x86A\x8b\x08\x9d\x5c\x0b\x81p\xdc\x0b\xc0x?z\x88%\xb6P\xc3\xab\xbc\xf2\xe1S\x03*/*";

    fn h2(method: &str, path: &str, grpc: bool) -> Protocol {
        Protocol::Http2 { method: method.into(), path: path.into(), authority: None, grpc }
    }

    #[test]
    fn an_http2_clients_first_request_is_read_from_its_hpack_headers() {
        let Protocol::Http2 { method, path, authority, grpc } = identify(CURL_H2C, Client) else { panic!("HTTP/2") };
        assert_eq!(
            (method.as_str(), path.as_str(), authority.as_deref(), grpc),
            ("GET", "/orders/7", Some("127.0.0.1:18081"), false)
        );
        // The preface alone (the first write): HTTP/2, nothing more known.
        assert_eq!(identify(&CURL_H2C[..64], Client), h2("", "", false));
        // A HEADERS frame cut by the sensor's bound: the fields before the cut.
        let Protocol::Http2 { method, path, .. } = identify(&CURL_H2C[..64 + 9 + 10], Client) else { panic!() };
        assert_eq!((method.as_str(), path.as_str()), ("GET", "/orders/7"));
        // gRPC: padded and with priority, literal names, never indexed, content-type said.
        let mut encoder = loona_hpack::Encoder::new();
        let block = encoder.encode([
            (&b":method"[..], &b"POST"[..]),
            (b":scheme", b"http"),
            (b":path", b"/shop.Cart/Add"),
            (b":authority", b"cart:50051"),
            (b"content-type", b"application/grpc+proto"),
            (b"te", b"trailers"),
        ]);
        let mut frames = HTTP2_PREFACE.to_vec();
        frames.extend([0, 0, 0, 4, 0, 0, 0, 0, 0]);
        let len = 1 + 5 + block.len() + 3;
        frames.extend([(len >> 16) as u8, (len >> 8) as u8, len as u8, 1, 0x4 | 0x8 | 0x20, 0, 0, 0, 1]);
        frames.extend([3, 0, 0, 0, 0, 15]);
        frames.extend(&block);
        frames.extend([0, 0, 0]);
        let identified = identify(&frames, Client);
        assert_eq!(identified.name(), "GRPC");
        assert_eq!(
            identified,
            Protocol::Http2 {
                method: "POST".into(),
                path: "/shop.Cart/Add".into(),
                authority: Some("cart:50051".into()),
                grpc: true
            }
        );
        // Lengths that lie: a padding longer than the frame, a frame longer than the bytes.
        let mut lying = frames.clone();
        lying[HTTP2_PREFACE.len() + 9 + 9] = 0xff;
        let _ = identify(&lying, Client);
        let mut lying = frames.clone();
        lying[HTTP2_PREFACE.len() + 9] = 0xff;
        assert!(matches!(identify(&lying, Client), Protocol::Http2 { .. }), "read as far as the bytes go");
        assert_eq!(identify(CURL_H2C, Server), Protocol::Unknown, "only a client sends the preface");
    }

    #[test]
    fn cut_and_hostile_bytes_are_unknown_or_partial_never_a_panic() {
        let hello = client_hello("api.example.com");
        for cut in 0..hello.len() {
            let identified = identify(&hello[..cut], Client);
            assert!(matches!(identified, Protocol::Tls { .. } | Protocol::Unknown), "{identified:?}");
        }
        // A ClientHello whose lengths point past its end.
        let mut lying = hello.clone();
        let at = lying.len() - 20;
        lying[at] = 0xff;
        let _ = identify(&lying, Client);
        let seeds: [&[u8]; 5] =
            [b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"*3\r\n$3\r\nSET\r\n", b"SSH-2.0-x\r\n", &hello, CURL_H2C];
        let mut state = 0x2545_f491_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for _ in 0..20_000 {
            let seed = seeds[(next() % 5) as usize];
            let mut bytes = seed.to_vec();
            for _ in 0..(next() % 4) {
                if bytes.is_empty() {
                    break;
                }
                let i = next() as usize % bytes.len();
                bytes[i] = next() as u8;
            }
            let cut = next() as usize % (bytes.len() + 1);
            let random: Vec<u8> = (0..(next() % 64)).map(|_| next() as u8).collect();
            for direction in [Client, Server] {
                let _ = identify(&bytes[..cut], direction);
                let _ = identify(&random, direction);
            }
        }
    }
}
