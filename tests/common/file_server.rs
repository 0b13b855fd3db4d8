//! A small HTTP/1.1 file server on 127.0.0.1 for `picket db update` tests: serves byte blobs by
//! path with ETags, answers 304 to a matching If-None-Match, and can cut a response short.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct Entry {
    pub body: Vec<u8>,
    pub etag: String,
    /// Send the full Content-Length but close after this many bytes.
    pub cut_after: Option<usize>,
}

#[derive(Clone, Default)]
pub struct Files(Arc<Mutex<BTreeMap<String, Entry>>>);

impl Files {
    pub fn put(&self, path: &str, body: Vec<u8>, etag: &str) {
        self.0.lock().expect("lock").insert(path.to_string(), Entry { body, etag: etag.to_string(), cut_after: None });
    }

    pub fn cut(&self, path: &str, after: usize) {
        if let Some(entry) = self.0.lock().expect("lock").get_mut(path) {
            entry.cut_after = Some(after);
        }
    }

    pub fn remove(&self, path: &str) {
        self.0.lock().expect("lock").remove(path);
    }
}

pub struct FileServer {
    pub base: String,
    pub files: Files,
    /// Request lines with their If-None-Match, in order.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl FileServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let files = Files::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (served, logged) = (files.clone(), Arc::clone(&log));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (files, log) = (served.clone(), Arc::clone(&logged));
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut request = String::new();
                    if reader.read_line(&mut request).is_err() {
                        return;
                    }
                    let mut if_none_match = None;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("if-none-match")
                        {
                            if_none_match = Some(value.trim().to_string());
                        }
                    }
                    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                    log.lock().expect("lock").push(format!("{path} {}", if_none_match.clone().unwrap_or_default()));
                    let entry = files.0.lock().expect("lock").get(&path).cloned();
                    let _ = match entry {
                        None => stream
                            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
                        Some(entry) if if_none_match.as_deref() == Some(entry.etag.as_str()) => {
                            stream.write_all(b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n")
                        }
                        Some(entry) => {
                            let head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: {}\r\nConnection: close\r\n\r\n",
                                entry.body.len(),
                                entry.etag
                            );
                            let body = &entry.body[..entry.cut_after.unwrap_or(entry.body.len()).min(entry.body.len())];
                            stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body))
                        }
                    };
                });
            }
        });
        Self { base, files, log }
    }
}
