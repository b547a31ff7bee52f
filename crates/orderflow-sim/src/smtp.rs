//! An SMTP sink: a real SMTP server on 127.0.0.1 that takes every message and keeps it, for
//! tests and the demo to see what orderflow mailed, and that can refuse transactions on
//! demand.
//!
//! It speaks RFC 5321 without TLS: `EHLO`/`HELO`, `AUTH PLAIN` and `AUTH LOGIN` (any
//! credentials are taken, and the user name kept), `MAIL FROM`, `RCPT TO`, `DATA` with
//! dot-unstuffing, `RSET`, `NOOP`, `VRFY`, `QUIT`. A fault answers a transaction's end of
//! data with its code instead of `250`, and the message is not kept.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::net::{TcpListener, TcpStream};

use crate::serve::lock;

/// The largest message taken; larger ones are answered 552.
pub const MAX_MESSAGE: usize = 10 * 1024 * 1024;
/// The longest command line taken.
const MAX_LINE: usize = 64 * 1024;

/// A message the sink took: its envelope, its data as sent (dot-unstuffed, CRLF line ends)
/// and the headers tests look at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The name the client gave in `EHLO` or `HELO`.
    pub helo: String,
    /// The user name the client authenticated as, if it did.
    pub auth_user: Option<String>,
    /// `MAIL FROM`, without the angle brackets.
    pub mail_from: String,
    /// Each `RCPT TO`, without the angle brackets.
    pub rcpt_to: Vec<String>,
    /// The data between `DATA` and the final dot.
    pub data: String,
    /// The `Subject` header, unfolded and with encoded words decoded.
    pub subject: Option<String>,
    /// The `Message-ID` header as written, angle brackets included.
    pub message_id: Option<String>,
    /// The `To` header, unfolded and with encoded words decoded.
    pub to: Option<String>,
}

impl ReceivedMail {
    fn new(helo: &str, auth_user: Option<String>, envelope: Envelope, data: String) -> Self {
        let mut mail = Self {
            helo: helo.to_owned(),
            auth_user,
            mail_from: envelope.from,
            rcpt_to: envelope.to,
            data,
            subject: None,
            message_id: None,
            to: None,
        };
        mail.subject = mail.header("subject");
        mail.message_id = mail.header("message-id");
        mail.to = mail.header("to");
        mail
    }

    /// The first header of that name (any case), unfolded, encoded words decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        header_in(head_of(&self.data), name)
    }

    /// Everything after the headers, as sent.
    pub fn body(&self) -> &str {
        split_head(&self.data).1
    }

    /// The plain-text part, with its transfer encoding undone: the whole body of a
    /// `text/plain` message, or the first `text/plain` part of a multipart one.
    pub fn text(&self) -> Option<String> {
        text_part(&self.data)
    }
}

/// Faults for the next transactions.
#[derive(Debug, Clone, Default)]
pub struct SmtpFaults {
    queue: Arc<Mutex<VecDeque<u16>>>,
}

impl SmtpFaults {
    /// The next `count` transactions are answered `code` at the end of their data: 451 (try
    /// again later), 554 (refused), or any other 4xx or 5xx.
    pub fn fail_next(&self, count: usize, code: u16) {
        lock(&self.queue).extend(std::iter::repeat_n(code, count));
    }

    pub fn clear(&self) {
        lock(&self.queue).clear();
    }

    pub fn pending(&self) -> usize {
        lock(&self.queue).len()
    }

    fn take(&self) -> Option<u16> {
        lock(&self.queue).pop_front()
    }
}

#[derive(Debug, Default)]
struct Mailbox {
    messages: Mutex<Vec<ReceivedMail>>,
    refused: AtomicUsize,
}

/// A running SMTP sink. Dropping it stops it.
#[derive(Debug)]
pub struct SmtpSink {
    addr: SocketAddr,
    faults: SmtpFaults,
    mailbox: Arc<Mailbox>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SmtpSink {
    /// Listens on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let faults = SmtpFaults::default();
        let mailbox = Arc::new(Mailbox::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(accept(listener, faults.clone(), mailbox.clone(), stopped));
        Ok(Self {
            addr,
            faults,
            mailbox,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `smtp://127.0.0.1:<port>`: plain SMTP, no TLS.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn faults(&self) -> &SmtpFaults {
        &self.faults
    }

    /// The messages taken, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        lock(&self.mailbox.messages).clone()
    }

    /// How many transactions a fault refused.
    pub fn refused(&self) -> usize {
        self.mailbox.refused.load(Ordering::Relaxed)
    }

    /// The messages taken once there are at least `count`, or whatever there is after
    /// `timeout`.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count || Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops listening and drops the sessions in progress.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn accept(
    listener: TcpListener,
    faults: SmtpFaults,
    mailbox: Arc<Mailbox>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    // Sessions live in the set so that stopping the sink ends them too.
    let mut sessions = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let session = Session::new(stream, faults.clone(), mailbox.clone());
                    sessions.spawn(session.run());
                }
                Err(error) => tracing::warn!(%error, "the SMTP sink could not accept"),
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

/// A line-oriented connection over a socket, using readiness and non-blocking reads so that
/// the sink needs nothing of tokio beyond its `net` feature.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    /// The next line without its line end; `None` at the end of the stream.
    async fn line(&mut self, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            if self.buffer.len() > limit {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "line too long",
                ));
            }
            self.stream.readable().await?;
            let mut chunk = [0_u8; 8192];
            match self.stream.try_read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(read) => {
                    self.buffer.extend_from_slice(&chunk[..read]);
                    // lettre writes a message and its closing `.` line separately, so with
                    // Nagle's algorithm the `.` waits for the message to be acknowledged, and
                    // a delayed ACK holds that for ~40 ms. Real servers cost that round trip;
                    // a sandbox that is meant to answer at once acknowledges at once. The
                    // kernel leaves quick-ack mode by itself, so it is asked again each read.
                    let _ = socket2::SockRef::from(&self.stream).set_tcp_quickack(true);
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
    }

    async fn send(&mut self, reply: &str) -> std::io::Result<()> {
        let bytes = reply.as_bytes();
        let mut written = 0;
        while written < bytes.len() {
            self.stream.writable().await?;
            match self.stream.try_write(&bytes[written..]) {
                Ok(count) => written += count,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
struct Envelope {
    from: String,
    to: Vec<String>,
}

#[derive(Debug)]
struct Session {
    connection: Connection,
    faults: SmtpFaults,
    mailbox: Arc<Mailbox>,
    helo: Option<String>,
    auth_user: Option<String>,
    /// `Some` between `MAIL FROM` and the end of the transaction.
    envelope: Option<Envelope>,
}

/// What a command line asks for, the verb folded to upper case.
fn verb_and_argument(line: &str) -> (String, &str) {
    let (verb, argument) = line.split_once(' ').unwrap_or((line, ""));
    (verb.to_ascii_uppercase(), argument.trim())
}

/// `FROM:<a@b> SIZE=10` after `MAIL` → `a@b`; `None` when malformed.
fn path_argument<'a>(argument: &'a str, keyword: &str) -> Option<&'a str> {
    let (given, rest) = argument.split_at_checked(keyword.len())?;
    if !given.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = rest.trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    Some(&inner[..end])
}

impl Session {
    fn new(stream: TcpStream, faults: SmtpFaults, mailbox: Arc<Mailbox>) -> Self {
        Self {
            connection: Connection {
                stream,
                buffer: Vec::new(),
            },
            faults,
            mailbox,
            helo: None,
            auth_user: None,
            envelope: None,
        }
    }

    async fn run(mut self) {
        if let Err(error) = self.converse().await {
            tracing::debug!(%error, "an SMTP sink session ended with an error");
        }
    }

    async fn converse(&mut self) -> std::io::Result<()> {
        self.connection
            .send("220 sink.orderflow.test ESMTP orderflow-sim\r\n")
            .await?;
        while let Some(line) = self.connection.line(MAX_LINE).await? {
            let line = String::from_utf8_lossy(&line).into_owned();
            let (verb, argument) = verb_and_argument(&line);
            let reply = match verb.as_str() {
                "EHLO" | "HELO" if argument.is_empty() => {
                    "501 5.5.4 A domain is required\r\n".to_owned()
                }
                "EHLO" => {
                    self.helo = Some(argument.to_owned());
                    self.envelope = None;
                    format!(
                        "250-sink.orderflow.test greets {argument}\r\n250-8BITMIME\r\n\
                         250-SMTPUTF8\r\n250-SIZE {MAX_MESSAGE}\r\n250-AUTH PLAIN LOGIN\r\n\
                         250 ENHANCEDSTATUSCODES\r\n"
                    )
                }
                "HELO" => {
                    self.helo = Some(argument.to_owned());
                    self.envelope = None;
                    format!("250 sink.orderflow.test greets {argument}\r\n")
                }
                "AUTH" => self.authenticate(argument).await?,
                "MAIL" => self.mail(argument),
                "RCPT" => self.rcpt(argument),
                "DATA" => self.data().await?,
                "RSET" => {
                    self.envelope = None;
                    "250 2.0.0 Ok\r\n".to_owned()
                }
                "NOOP" => "250 2.0.0 Ok\r\n".to_owned(),
                "VRFY" => {
                    "252 2.5.0 Cannot verify the user, but will take the message\r\n".to_owned()
                }
                "QUIT" => {
                    self.connection.send("221 2.0.0 Bye\r\n").await?;
                    return Ok(());
                }
                _ => "500 5.5.2 Command not recognised\r\n".to_owned(),
            };
            self.connection.send(&reply).await?;
        }
        Ok(())
    }

    fn mail(&mut self, argument: &str) -> String {
        if self.helo.is_none() {
            return "503 5.5.1 Send EHLO or HELO first\r\n".to_owned();
        }
        if self.envelope.is_some() {
            return "503 5.5.1 A transaction is already open\r\n".to_owned();
        }
        match path_argument(argument, "FROM:") {
            Some(from) => {
                self.envelope = Some(Envelope {
                    from: from.to_owned(),
                    to: Vec::new(),
                });
                "250 2.1.0 Ok\r\n".to_owned()
            }
            None => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".to_owned(),
        }
    }

    fn rcpt(&mut self, argument: &str) -> String {
        let Some(envelope) = &mut self.envelope else {
            return "503 5.5.1 Send MAIL FROM first\r\n".to_owned();
        };
        match path_argument(argument, "TO:") {
            Some(to) if !to.is_empty() => {
                envelope.to.push(to.to_owned());
                "250 2.1.5 Ok\r\n".to_owned()
            }
            _ => "501 5.5.4 Syntax: RCPT TO:<address>\r\n".to_owned(),
        }
    }

    async fn data(&mut self) -> std::io::Result<String> {
        let ready = self.envelope.as_ref().is_some_and(|e| !e.to.is_empty());
        if !ready {
            return Ok("503 5.5.1 Send RCPT TO first\r\n".to_owned());
        }
        self.connection
            .send("354 End data with <CR><LF>.<CR><LF>\r\n")
            .await?;
        let mut data = Vec::new();
        let mut too_large = false;
        loop {
            let Some(line) = self.connection.line(MAX_MESSAGE).await? else {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            };
            if line == b"." {
                break;
            }
            // Dot-unstuffing (RFC 5321 4.5.2): a leading dot was doubled by the sender.
            let line = line.strip_prefix(b".").unwrap_or(&line);
            if data.len() + line.len() + 2 > MAX_MESSAGE {
                too_large = true;
                continue;
            }
            data.extend_from_slice(line);
            data.extend_from_slice(b"\r\n");
        }
        let envelope = self.envelope.take().unwrap_or_default();
        if too_large {
            return Ok("552 5.3.4 Message too big\r\n".to_owned());
        }
        if let Some(code) = self.faults.take() {
            self.mailbox.refused.fetch_add(1, Ordering::Relaxed);
            let reply = match code {
                400..=499 => {
                    format!("{code} 4.3.0 Simulated temporary failure, try again later\r\n")
                }
                _ => format!("{code} 5.3.0 Simulated rejection\r\n"),
            };
            return Ok(reply);
        }
        let data = String::from_utf8_lossy(&data).into_owned();
        let helo = self.helo.clone().unwrap_or_default();
        let mail = ReceivedMail::new(&helo, self.auth_user.clone(), envelope, data);
        let mut messages = lock(&self.mailbox.messages);
        messages.push(mail);
        Ok(format!("250 2.0.0 Ok: queued as {}\r\n", messages.len()))
    }

    async fn authenticate(&mut self, argument: &str) -> std::io::Result<String> {
        if self.helo.is_none() {
            return Ok("503 5.5.1 Send EHLO first\r\n".to_owned());
        }
        let (mechanism, initial) = verb_and_argument(argument);
        let user = match mechanism.as_str() {
            "PLAIN" => {
                let response = if initial.is_empty() {
                    self.challenge("").await?
                } else {
                    Some(initial.to_owned())
                };
                // authzid NUL authcid NUL password
                response
                    .and_then(|r| BASE64.decode(r.trim()).ok())
                    .and_then(|decoded| {
                        let text = String::from_utf8(decoded).ok()?;
                        let mut parts = text.split('\0');
                        let _authzid = parts.next()?;
                        let authcid = parts.next()?;
                        parts.next()?;
                        Some(authcid.to_owned())
                    })
            }
            "LOGIN" => {
                let user = match initial {
                    "" => self.challenge("VXNlcm5hbWU6").await?,
                    given => Some(given.to_owned()),
                };
                let user = user
                    .and_then(|u| BASE64.decode(u.trim()).ok())
                    .and_then(|u| String::from_utf8(u).ok());
                match user {
                    Some(user) => self.challenge("UGFzc3dvcmQ6").await?.map(|_| user),
                    None => None,
                }
            }
            _ => return Ok("504 5.5.4 Unrecognised authentication mechanism\r\n".to_owned()),
        };
        Ok(match user {
            Some(user) => {
                self.auth_user = Some(user);
                "235 2.7.0 Authentication successful\r\n".to_owned()
            }
            None => "501 5.5.2 Cannot decode the response\r\n".to_owned(),
        })
    }

    /// Sends a `334` challenge and reads the client's line; `None` if it cancels with `*`.
    async fn challenge(&mut self, prompt: &str) -> std::io::Result<Option<String>> {
        self.connection.send(&format!("334 {prompt}\r\n")).await?;
        let Some(line) = self.connection.line(MAX_LINE).await? else {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        };
        let line = String::from_utf8_lossy(&line).into_owned();
        Ok((line.trim() != "*").then_some(line))
    }
}

/// `(headers, body)` of a message: split at the first empty line.
fn split_head(data: &str) -> (&str, &str) {
    if let Some(at) = data.find("\r\n\r\n") {
        return (&data[..at + 2], &data[at + 4..]);
    }
    if let Some(at) = data.find("\n\n") {
        return (&data[..at + 1], &data[at + 2..]);
    }
    (data, "")
}

fn head_of(data: &str) -> &str {
    split_head(data).0
}

/// The first header of that name in a header block, unfolded, encoded words decoded.
fn header_in(head: &str, name: &str) -> Option<String> {
    let mut found: Option<String> = None;
    for line in head.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            // A folded continuation of the header before.
            if let Some(value) = &mut found {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if found.is_some() {
            break;
        }
        if let Some((field, value)) = line.split_once(':')
            && field.trim().eq_ignore_ascii_case(name)
        {
            found = Some(value.trim().to_owned());
        }
    }
    found.map(|value| decode_words(&value))
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`); the blank between
/// two encoded words is not part of the text. Words in charsets other than UTF-8 and ASCII
/// are left as they are.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        let decoded = candidate[2..].split_once("?=").and_then(|(word, tail)| {
            let mut parts = word.splitn(3, '?');
            let charset = parts.next()?.to_ascii_lowercase();
            let encoding = parts.next()?.to_ascii_lowercase();
            let text = parts.next()?;
            if !matches!(charset.as_str(), "utf-8" | "us-ascii") {
                return None;
            }
            let bytes = match encoding.as_str() {
                "b" => BASE64.decode(text).ok()?,
                "q" => quoted_printable(&text.replace('_', " ")),
                _ => return None,
            };
            Some((String::from_utf8(bytes).ok()?, tail))
        });
        match decoded {
            Some((text, tail)) => {
                if !(after_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = tail;
                after_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &candidate[2..];
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Quoted-printable decoding: `=XX` is a byte, `=` at a line end a soft break.
fn quoted_printable(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if bytes[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            if let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The value of a header parameter: `boundary` in `multipart/alternative; boundary="x"`.
fn parameter(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|part| {
        let (key, value) = part.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// The text of the first `text/plain` entity in `entity` (headers and body).
fn text_part(entity: &str) -> Option<String> {
    let (head, body) = split_head(entity);
    let content_type = header_in(head, "content-type").unwrap_or_else(|| "text/plain".into());
    let kind = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if kind.starts_with("multipart/") {
        let boundary = parameter(&content_type, "boundary")?;
        let delimiter = format!("--{boundary}");
        return body
            .split(delimiter.as_str())
            .skip(1)
            .take_while(|part| !part.starts_with("--"))
            .find_map(|part| text_part(part.trim_start_matches(['\r', '\n'])));
    }
    if kind != "text/plain" {
        return None;
    }
    let encoding = header_in(head, "content-transfer-encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            BASE64.decode(compact).ok()?
        }
        "quoted-printable" => quoted_printable(body),
        _ => body.as_bytes().to_vec(),
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Some(text.trim_end_matches(['\r', '\n']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_decode_and_adjacent_ones_join() {
        assert_eq!(decode_words("Plain subject"), "Plain subject");
        assert_eq!(
            decode_words("=?utf-8?b?T3JkZXIg4oCc?= =?utf-8?b?Q2Fmw6nigJ0=?= shipped"),
            "Order “Café” shipped"
        );
        assert_eq!(decode_words("=?UTF-8?Q?Caf=C3=A9_ok?="), "Café ok");
        assert_eq!(decode_words("a =?x?y"), "a =?x?y");
    }

    #[test]
    fn headers_unfold_and_the_first_of_a_name_wins() {
        let data = "Subject: a long\r\n  subject\r\nTo: x@y\r\nSubject: second\r\n\r\nbody\r\n";
        assert_eq!(
            header_in(head_of(data), "SUBJECT").as_deref(),
            Some("a long subject")
        );
        assert_eq!(header_in(head_of(data), "to").as_deref(), Some("x@y"));
        assert_eq!(header_in(head_of(data), "cc"), None);
    }

    #[test]
    fn the_plain_text_part_is_found_and_decoded() {
        let data = "Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\n\
                    Content-Type: text/plain; charset=utf-8\r\n\
                    Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 =\r\nok\r\n\
                    --b1\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b1--\r\n";
        assert_eq!(text_part(data).as_deref(), Some("Café ok"));
        let single = "Content-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8=\r\n";
        assert_eq!(text_part(single).as_deref(), Some("hello"));
    }

    #[test]
    fn mail_paths_are_read_between_angle_brackets() {
        assert_eq!(
            path_argument("FROM:<a@b> BODY=8BITMIME", "FROM:"),
            Some("a@b")
        );
        assert_eq!(path_argument("from: <a@b>", "FROM:"), Some("a@b"));
        assert_eq!(path_argument("FROM:<>", "FROM:"), Some(""));
        assert_eq!(path_argument("TO:a@b", "TO:"), None);
    }

    /// Speaks to the sink line by line over a blocking socket: each `(line, reply code)` in
    /// turn, `None` for a line that gets no reply of its own (data lines).
    fn converse(addr: SocketAddr, script: &[(&str, Option<&str>)]) -> Vec<String> {
        use std::io::{BufRead, BufReader, Write};
        let stream = std::net::TcpStream::connect(addr).expect("connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("a timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("a clone"));
        let mut writer = stream;
        let reply = |reader: &mut BufReader<std::net::TcpStream>| {
            // The last line of a reply has a space after the code.
            let mut all = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("a reply");
                all.push_str(&line);
                if line.len() < 4 || line.as_bytes()[3] == b' ' {
                    return all;
                }
            }
        };
        let mut replies = vec![reply(&mut reader)];
        for (line, expected) in script {
            writer
                .write_all(format!("{line}\r\n").as_bytes())
                .expect("written");
            if let Some(code) = expected {
                let got = reply(&mut reader);
                assert!(got.starts_with(code), "{line:?} got {got:?}");
                replies.push(got);
            }
        }
        replies
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_plain_session_follows_the_rfc_sequence() {
        let sink = SmtpSink::start().await.expect("starts");
        let addr = sink.addr();
        let replies = tokio::task::spawn_blocking(move || {
            converse(
                addr,
                &[
                    ("MAIL FROM:<a@x>", Some("503")),
                    ("HELO client.example", Some("250")),
                    ("RCPT TO:<b@y>", Some("503")),
                    ("MAIL FROM:<a@x>", Some("250")),
                    ("DATA", Some("503")),
                    ("RSET", Some("250")),
                    ("DATA", Some("503")),
                    ("NOOP", Some("250")),
                    ("WHAT", Some("500")),
                    ("mail from:<a@x>", Some("250")),
                    ("RCPT TO:<b@y>", Some("250")),
                    ("RCPT TO:<c@z>", Some("250")),
                    ("DATA", Some("354")),
                    ("Subject: dots", None),
                    ("Message-ID: <m1@x>", None),
                    ("", None),
                    ("..leading", None),
                    ("...", None),
                    (".", Some("250")),
                    ("AUTH LOGIN", Some("334")),
                    ("dXNlcg==", Some("334")),
                    ("cGFzcw==", Some("235")),
                    ("QUIT", Some("221")),
                ],
            )
        })
        .await
        .expect("the script ran");

        assert!(replies[0].starts_with("220"));
        let messages = sink.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(messages.len(), 1);
        let mail = &messages[0];
        assert_eq!(mail.helo, "client.example");
        assert_eq!(mail.mail_from, "a@x");
        assert_eq!(mail.rcpt_to, vec!["b@y".to_owned(), "c@z".to_owned()]);
        assert_eq!(mail.subject.as_deref(), Some("dots"));
        assert_eq!(mail.message_id.as_deref(), Some("<m1@x>"));
        assert_eq!(mail.body(), ".leading\r\n..\r\n");
        sink.stop().await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_fault_refuses_the_transaction_and_keeps_nothing() {
        let sink = SmtpSink::start().await.expect("starts");
        sink.faults().fail_next(1, 451);
        let addr = sink.addr();
        let transaction = [
            ("EHLO client.example", Some("250")),
            ("MAIL FROM:<a@x>", Some("250")),
            ("RCPT TO:<b@y>", Some("250")),
            ("DATA", Some("354")),
            ("Subject: once", None),
            ("", None),
            ("body", None),
        ];
        tokio::task::spawn_blocking(move || {
            let mut script = transaction.to_vec();
            script.push((".", Some("451")));
            script.extend_from_slice(&transaction[1..]);
            script.push((".", Some("250")));
            converse(addr, &script)
        })
        .await
        .expect("the script ran");

        assert_eq!(sink.refused(), 1);
        assert_eq!(sink.messages().len(), 1);
        assert_eq!(sink.faults().pending(), 0);
    }
}
