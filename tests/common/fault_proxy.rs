//! An HTTP proxy in front of a real registry that answers the first requests matching a path
//! fragment with an error status (and `Retry-After`), then forwards. For retry tests: no real
//! registry can be made to throttle or fail on cue.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub struct Fault {
    pub path_contains: &'static str,
    pub status: u16,
    pub retry_after: Option<u64>,
    /// How many matching requests fail; `usize::MAX` for all.
    pub times: usize,
}

pub struct FaultProxy {
    pub host: String,
    /// Requests answered with an injected fault.
    pub injected: Arc<AtomicUsize>,
    /// Every request line seen (`GET /v2/…`), faulted or forwarded.
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl FaultProxy {
    pub fn start(upstream: &str, faults: Vec<Fault>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let host = listener.local_addr().expect("addr").to_string();
        let injected = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&injected);
        let faults = Arc::new(Mutex::new(faults));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let upstream = upstream.to_string();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (faults, counter, upstream) = (Arc::clone(&faults), Arc::clone(&counter), upstream.clone());
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || {
                    let _ = handle(client, &upstream, &faults, &counter, &seen);
                });
            }
        });
        Self { host, injected, requests }
    }
}

fn handle(
    client: TcpStream,
    upstream: &str,
    faults: &Mutex<Vec<Fault>>,
    counter: &AtomicUsize,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        // One request per connection keeps the proxy simple; the client reconnects.
        if !line.to_ascii_lowercase().starts_with("connection:") {
            head.push(line.clone());
        }
    }
    let path = head.first().and_then(|l| l.split_whitespace().nth(1)).unwrap_or_default().to_string();
    if let (Ok(mut seen), Some(line)) = (seen.lock(), head.first()) {
        seen.push(line.split_whitespace().take(2).collect::<Vec<_>>().join(" "));
    }
    let mut client = client;
    let fault = {
        let mut faults = faults.lock().map_err(|_| std::io::Error::other("lock"))?;
        faults.iter_mut().find(|f| f.times > 0 && path.contains(f.path_contains)).map(|f| {
            f.times = f.times.saturating_sub(1);
            (f.status, f.retry_after)
        })
    };
    if let Some((status, retry_after)) = fault {
        counter.fetch_add(1, Ordering::SeqCst);
        let retry = retry_after.map(|s| format!("Retry-After: {s}\r\n")).unwrap_or_default();
        return write!(
            client,
            "HTTP/1.1 {status} Injected\r\n{retry}Content-Length: 8\r\nConnection: close\r\n\r\ninjected"
        );
    }
    let mut server = TcpStream::connect(upstream)?;
    for line in &head {
        let line =
            if line.to_ascii_lowercase().starts_with("host:") { format!("Host: {upstream}\r\n") } else { line.clone() };
        server.write_all(line.as_bytes())?;
    }
    server.write_all(b"Connection: close\r\n\r\n")?;
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = server.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        client.write_all(&buf[..n])?;
    }
}
