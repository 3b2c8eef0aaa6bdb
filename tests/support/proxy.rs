//! A fault-injecting HTTP/1.1 proxy in front of a real server: per request it passes through,
//! answers an error status (optionally with `Retry-After`), stalls, or drops the connection.
//! Only for fault injection; everything else in the tests talks to real servers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Pass,
    Status(u16, Option<u64>),
    Stall(Duration),
    Drop,
    /// Answer with this reply instead of asking upstream.
    Respond(Reply),
    /// Pass this request to `http://127.0.0.1:<port>` instead of the upstream (e.g. a token
    /// server on the registry's own origin).
    Forward(u16),
    /// Pass the request upstream, then answer with this status (empty body) instead of
    /// upstream's answer: a DELETE that was applied but whose answer was lost.
    Applied(u16),
    /// Pass the request upstream, then hold the answer this long and drop the connection: a
    /// request the server carried out whose answer the client never gets.
    AppliedThenStall(Duration),
    /// Pass the request upstream and answer with upstream's reply, but with this header set
    /// to this value (a rewritten `Docker-Content-Digest`, say).
    Header(String, String),
}

/// A made-up answer: status, extra headers, and a body of `body` repeated `repeat` times
/// (written as it goes, so a 1 GiB body costs the proxy no memory). Without
/// `content_length` the body ends when the connection closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Arc<Vec<u8>>,
    pub repeat: u64,
    pub content_length: bool,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Arc::new(body.into()),
            repeat: 1,
            content_length: true,
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

pub type Rule = dyn Fn(u64, &str, &str) -> Fault + Send + Sync;

pub struct Proxy {
    pub port: u16,
    pub faults: Arc<AtomicU64>,
    pub requests: Arc<AtomicU64>,
    /// Body bytes the client accepted from `Fault::Respond` replies.
    pub sent: Arc<AtomicU64>,
}

impl Proxy {
    /// Starts on the given runtime; `rule(n, method, path)` decides the fate of request `n`.
    pub fn start(rt: &tokio::runtime::Runtime, upstream: String, rule: Arc<Rule>) -> Proxy {
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let faults = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        let (f, r, b) = (faults.clone(), requests.clone(), sent.clone());
        rt.spawn(async move {
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client");
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let (http, upstream, rule, f, r, b) = (
                    http.clone(),
                    upstream.clone(),
                    rule.clone(),
                    f.clone(),
                    r.clone(),
                    b.clone(),
                );
                tokio::spawn(async move {
                    let _ = serve(sock, &http, &upstream, &*rule, &f, &r, &b).await;
                });
            }
        });
        Proxy {
            port,
            faults,
            requests,
            sent,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

async fn serve(
    mut sock: TcpStream,
    http: &reqwest::Client,
    upstream: &str,
    rule: &Rule,
    faults: &AtomicU64,
    requests: &AtomicU64,
    sent: &AtomicU64,
) -> std::io::Result<()> {
    // Head and body go out as separate writes: without this, Nagle plus delayed ACKs cost
    // 40 ms per keep-alive request.
    sock.set_nodelay(true)?;
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let mut chunk = [0u8; 8192];
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_string();
        let path = first.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 8192];
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        let n = requests.fetch_add(1, Ordering::SeqCst);
        let mut target = upstream.to_string();
        let mut answer_instead = None;
        let mut stall_after = None;
        let mut header_instead: Option<(String, String)> = None;
        match rule(n, &method, &path) {
            Fault::Pass => {}
            Fault::Header(k, v) => {
                faults.fetch_add(1, Ordering::SeqCst);
                header_instead = Some((k.to_ascii_lowercase(), v));
            }
            Fault::AppliedThenStall(d) => {
                faults.fetch_add(1, Ordering::SeqCst);
                stall_after = Some(d);
            }
            Fault::Applied(code) => {
                faults.fetch_add(1, Ordering::SeqCst);
                answer_instead = Some(code);
            }
            Fault::Forward(port) => target = format!("http://127.0.0.1:{port}"),
            Fault::Respond(reply) => {
                faults.fetch_add(1, Ordering::SeqCst);
                let mut head = format!("HTTP/1.1 {} Injected\r\n", reply.status);
                for (k, v) in &reply.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                if reply.content_length {
                    head.push_str(&format!(
                        "Content-Length: {}\r\n\r\n",
                        reply.body.len() as u64 * reply.repeat
                    ));
                } else {
                    head.push_str("Connection: close\r\n\r\n");
                }
                sock.write_all(head.as_bytes()).await?;
                if method != "HEAD" {
                    for _ in 0..reply.repeat {
                        sock.write_all(&reply.body).await?;
                        sent.fetch_add(reply.body.len() as u64, Ordering::SeqCst);
                    }
                }
                if !reply.content_length {
                    return Ok(());
                }
                continue;
            }
            Fault::Drop => {
                faults.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
            Fault::Stall(d) => {
                faults.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(d).await;
                return Ok(());
            }
            Fault::Status(code, retry_after) => {
                faults.fetch_add(1, Ordering::SeqCst);
                let ra = retry_after.map(|s| format!("Retry-After: {s}\r\n")).unwrap_or_default();
                let msg = format!("HTTP/1.1 {code} Injected\r\n{ra}Content-Length: 0\r\n\r\n");
                sock.write_all(msg.as_bytes()).await?;
                continue;
            }
        }
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut rb = http.request(m.clone(), format!("{target}{path}"));
        for (k, v) in &headers {
            if !matches!(k.as_str(), "host" | "connection" | "content-length") {
                rb = rb.header(k.as_str(), v.as_str());
            }
        }
        let resp = match rb.body(body).send().await {
            Ok(r) => r,
            Err(_) => return Ok(()),
        };
        if let Some(d) = stall_after {
            let _ = resp.bytes().await;
            tokio::time::sleep(d).await;
            return Ok(());
        }
        if let Some(code) = answer_instead {
            let _ = resp.bytes().await;
            let msg = format!("HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\n\r\n");
            sock.write_all(msg.as_bytes()).await?;
            continue;
        }
        let status = resp.status();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        let upstream_len = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        for (k, v) in resp.headers() {
            if header_instead.as_ref().is_some_and(|(h, _)| h == k.as_str()) {
                continue;
            }
            if !matches!(k.as_str(), "transfer-encoding" | "connection" | "content-length") {
                out.push_str(&format!("{}: {}\r\n", k, v.to_str().unwrap_or("")));
            }
        }
        if let Some((k, v)) = &header_instead {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        let bytes = resp.bytes().await.unwrap_or_default();
        let len = if m == reqwest::Method::HEAD {
            upstream_len.unwrap_or_else(|| "0".into())
        } else {
            bytes.len().to_string()
        };
        out.push_str(&format!("Content-Length: {len}\r\n\r\n"));
        sock.write_all(out.as_bytes()).await?;
        if m != reqwest::Method::HEAD {
            sock.write_all(&bytes).await?;
        }
    }
}
