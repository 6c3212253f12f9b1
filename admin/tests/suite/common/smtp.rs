//! A tiny in-process SMTP server on 127.0.0.1:0 that records what it is sent, so mail tests need
//! no external relay. It offers no extensions (no STARTTLS, no AUTH), so lettre speaks plain SMTP
//! to `smtp://127.0.0.1:PORT`.

#![allow(dead_code)] // each test binary uses a different part of it

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `MAIL FROM` address.
    pub from: String,
    /// Every `RCPT TO` address, in order.
    pub recipients: Vec<String>,
    /// The DATA section, dot-stuffing undone, CRLF line ends kept.
    pub data: String,
}

impl Received {
    /// The header block (before the first empty line).
    pub fn headers(&self) -> &str {
        self.data.split_once("\r\n\r\n").map_or(self.data.as_str(), |(h, _)| h)
    }

    /// The body (after the first empty line), still in its transfer encoding.
    pub fn body(&self) -> &str {
        self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }

    /// The body with its `Content-Transfer-Encoding` (7bit, quoted-printable, base64) undone.
    pub fn decoded_body(&self) -> String {
        let encoding = self.header("Content-Transfer-Encoding").unwrap_or_default().to_ascii_lowercase();
        let body = self.body();
        let bytes = match encoding.as_str() {
            "quoted-printable" => decode_quoted_printable(body),
            "base64" => {
                use base64::Engine as _;
                let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                base64::engine::general_purpose::STANDARD.decode(compact).expect("valid base64 body")
            }
            _ => body.as_bytes().to_vec(),
        };
        String::from_utf8(bytes).expect("UTF-8 body").replace("\r\n", "\n")
    }

    /// Every header as (name, unfolded value), in order.
    pub fn header_fields(&self) -> Vec<(String, String)> {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in self.headers().split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push_str(line); // unfolding drops only the CRLF
                }
            } else if let Some((name, value)) = line.split_once(':') {
                fields.push((name.to_owned(), value.trim_start().to_owned()));
            } else {
                fields.push((line.to_owned(), String::new()));
            }
        }
        fields
    }

    /// The first header named `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_fields().into_iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
}

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Accepts every message.
    Accept,
    /// Answers `451` to `DATA`: a relay that is temporarily unable to take mail.
    RejectData,
    /// Accepts every message, but only this many milliseconds after its data arrived.
    Slow(u64),
}

/// The running server; stops when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    addr: SocketAddr,
    messages: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        Self::start_with(Mode::Accept).await
    }

    pub async fn start_with(mode: Mode) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP sink");
        let addr = listener.local_addr().expect("SMTP sink address");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&messages);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, mode, Arc::clone(&store)));
            }
        });
        SmtpSink { addr, messages, task }
    }

    /// `smtp://127.0.0.1:PORT`: plain SMTP, as lettre reads it.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The messages received so far.
    pub fn messages(&self) -> Vec<Received> {
        self.messages.lock().expect("sink lock").clone()
    }

    /// Waits until at least `n` messages have arrived or `timeout` has passed, and returns what
    /// has arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One SMTP conversation (RFC 5321's minimum: HELO/EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).
async fn serve(stream: TcpStream, mode: Mode, messages: Arc<Mutex<Vec<Received>>>) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut from: Option<String> = None;
    let mut recipients: Vec<String> = Vec::new();
    if write.write_all(b"220 sink.test ESMTP test sink\r\n").await.is_err() {
        return;
    }
    while let Some(line) = read_line(&mut read).await {
        let (verb, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let reply: &str = match verb.to_ascii_uppercase().as_str() {
            // No extension lines: no STARTTLS, no AUTH.
            "EHLO" | "HELO" => "250 sink.test\r\n",
            "MAIL" => {
                from = Some(path(arg));
                recipients.clear();
                "250 2.1.0 OK\r\n"
            }
            "RCPT" if from.is_some() => {
                recipients.push(path(arg));
                "250 2.1.5 OK\r\n"
            }
            "RCPT" => "503 5.5.1 MAIL first\r\n",
            "DATA" if from.is_none() || recipients.is_empty() => "503 5.5.1 RCPT first\r\n",
            "DATA" if mode == Mode::RejectData => "451 4.3.0 try again later\r\n",
            "DATA" => {
                if write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.is_err() {
                    return;
                }
                let mut data = String::new();
                loop {
                    let Some(line) = read_line(&mut read).await else { return };
                    if line == "." {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line)); // undo dot-stuffing
                    data.push_str("\r\n");
                }
                let message = Received {
                    from: from.take().unwrap_or_default(),
                    recipients: std::mem::take(&mut recipients),
                    data,
                };
                if let Mode::Slow(ms) = mode {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                }
                messages.lock().expect("sink lock").push(message);
                "250 2.0.0 queued\r\n"
            }
            "RSET" => {
                from = None;
                recipients.clear();
                "250 2.0.0 OK\r\n"
            }
            "NOOP" => "250 2.0.0 OK\r\n",
            "QUIT" => {
                let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
                return;
            }
            _ => "502 5.5.2 command not implemented\r\n",
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// One line without its line end; `None` at end of stream.
async fn read_line(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<String> {
    let mut buf = Vec::new();
    match read.read_until(b'\n', &mut buf).await {
        Ok(0) | Err(_) => None,
        Ok(_) => {
            let text = String::from_utf8_lossy(&buf);
            Some(text.trim_end_matches(['\r', '\n']).to_owned())
        }
    }
}

/// RFC 2045 quoted-printable: `=` + CRLF is a soft line break, `=XX` a byte.
fn decode_quoted_printable(text: &str) -> Vec<u8> {
    let text = text.replace("=\r\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The address in `FROM:<a@b> PARAMS` / `TO:<a@b>`.
fn path(arg: &str) -> String {
    let start = arg.find('<').map_or(0, |i| i + 1);
    let end = arg[start..].find('>').map_or(arg.len(), |i| start + i);
    arg[start..end].to_owned()
}
