//! A fake kubelet for the real kube-apiserver: a Node whose address and kubelet port point at
//! this TLS listener, so `exec` on a pod bound to that node reaches it (the API server passes
//! the WebSocket upgrade through). It plays a container where `registry garbage-collect` runs
//! until a `pkill -f` stops it (closing the exec stream does not: a real process lives on),
//! `pgrep -f` exits 0 while it runs and 1 once it is gone, and anything else succeeds. Every
//! exec's command is recorded, with whether the StatefulSet's template still had the
//! read-only variable when garbage-collect ended.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Default)]
pub struct State {
    /// Every exec, its command words.
    pub commands: Mutex<Vec<Vec<String>>>,
    /// garbage-collect is "running" (started and not yet killed).
    pub gc_running: AtomicBool,
    /// Set when garbage-collect ended: whether the template was still read-only then.
    pub ended_while_read_only: Mutex<Option<bool>>,
    /// `pkill` does nothing (garbage-collect survives it).
    pub unkillable: AtomicBool,
    /// garbage-collect processes running now, the most ever at once, and how many ended
    /// while the StatefulSet's template was writable (a GC sweeping while pushes land).
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
    pub ended_writable: AtomicUsize,
    /// garbage-collect processes that have ended (killed or finished).
    pub ended: AtomicUsize,
    /// When non-zero, a garbage-collect finishes by itself (exit 0) after this many ms unless
    /// killed first; zero: it runs until a `pkill`.
    pub finish_after_ms: AtomicU64,
    stop: tokio::sync::Notify,
}

pub struct Kubelet {
    pub state: Arc<State>,
    pub node: String,
}

impl Kubelet {
    /// Starts the listener and creates Node `node` pointing at it. `ns` is where the registry
    /// StatefulSet `docker-registry` lives (read when garbage-collect ends).
    pub fn start(rt: &tokio::runtime::Runtime, client: &kube::Client, node: &str, ns: &str) -> Kubelet {
        let dir = tempfile::tempdir().unwrap();
        let (_ca, cert, key) = super::internal_ca(dir.path());
        let certs: Vec<rustls::pki_types::CertificateDer<'static>> = {
            use rustls::pki_types::pem::PemObject;
            rustls::pki_types::CertificateDer::pem_file_iter(&cert)
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let key = {
            use rustls::pki_types::pem::PemObject;
            rustls::pki_types::PrivateKeyDer::from_pem_file(&key).unwrap()
        };
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State::default());
        let (st, sets) = (state.clone(), Api::<StatefulSet>::namespaced(client.clone(), ns));
        rt.spawn(async move {
            let _dir = dir;
            while let Ok((sock, _)) = listener.accept().await {
                let (acceptor, st, sets) = (acceptor.clone(), st.clone(), sets.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(sock).await {
                        let _ = serve(tls, &st, &sets).await;
                    }
                });
            }
        });
        let n: Node = serde_json::from_value(serde_json::json!({ "metadata": { "name": node } })).unwrap();
        let nodes: Api<Node> = Api::all(client.clone());
        rt.block_on(nodes.create(&PostParams::default(), &n)).expect("node");
        rt.block_on(nodes.patch_status(
            node,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": {
                "addresses": [ { "type": "InternalIP", "address": "127.0.0.1" } ],
                "daemonEndpoints": { "kubeletEndpoint": { "Port": port } },
                "conditions": [ { "type": "Ready", "status": "True" } ] } })),
        ))
        .expect("node status");
        Kubelet {
            state,
            node: node.to_string(),
        }
    }

    pub fn commands(&self) -> Vec<Vec<String>> {
        self.state.commands.lock().unwrap().clone()
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A server WebSocket frame (binary, unmasked) on channel `ch`.
fn frame(ch: u8, payload: &[u8]) -> Vec<u8> {
    let mut data = vec![ch];
    data.extend_from_slice(payload);
    let mut out = vec![0x82];
    if data.len() < 126 {
        out.push(data.len() as u8);
    } else {
        out.push(126);
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(&data);
    out
}

fn status(code: i32) -> Vec<u8> {
    let v = if code == 0 {
        serde_json::json!({ "metadata": {}, "status": "Success" })
    } else {
        serde_json::json!({ "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": format!("command terminated with non-zero exit code: {code}"),
            "details": { "causes": [ { "reason": "ExitCode", "message": code.to_string() } ] } })
    };
    frame(3, v.to_string().as_bytes())
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    st: &State,
    sets: &Api<StatefulSet>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or_default().to_string();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    let command: Vec<String> = path
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.strip_prefix("command="))
        .map(decode)
        .collect();
    st.commands.lock().unwrap().push(command.clone());
    let key = header("Sec-WebSocket-Key");
    let accept = {
        use base64::Engine as _;
        let d = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes(),
        );
        base64::engine::general_purpose::STANDARD.encode(d.as_ref())
    };
    let offered = header("Sec-WebSocket-Protocol");
    let protocol = offered
        .split(',')
        .map(str::trim)
        .find(|p| *p == "v4.channel.k8s.io")
        .or_else(|| offered.split(',').map(str::trim).next())
        .unwrap_or("v4.channel.k8s.io")
        .to_string();
    s.write_all(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await?;
    let joined = command.join(" ");
    let code = if joined.starts_with("registry garbage-collect") {
        let now = st.running.fetch_add(1, Ordering::SeqCst) + 1;
        st.max_running.fetch_max(now, Ordering::SeqCst);
        st.gc_running.store(true, Ordering::SeqCst);
        s.write_all(&frame(1, b"blob eligible for deletion: sha256:aa\n"))
            .await?;
        s.flush().await?;
        // Runs until killed (or, when set, until it finishes); the exec stream closing (the
        // client gone) does not stop it.
        let killed = st.stop.notified();
        tokio::pin!(killed);
        let after = st.finish_after_ms.load(Ordering::SeqCst);
        let finished = async move {
            if after == 0 {
                std::future::pending::<()>().await
            }
            tokio::time::sleep(std::time::Duration::from_millis(after)).await
        };
        tokio::pin!(finished);
        let mut gone = false;
        let mut done = false;
        tokio::select! {
            _ = &mut killed => {}
            _ = &mut finished => done = true,
            _ = async { while !matches!(s.read(&mut chunk).await, Ok(0) | Err(_)) {} } => gone = true,
        };
        if gone {
            tokio::select! {
                _ = &mut killed => {}
                _ = &mut finished => {}
            }
        }
        let ro = sets.get("docker-registry").await.ok().is_some_and(|sts| {
            serde_json::to_string(&sts.spec)
                .unwrap_or_default()
                .contains("REGISTRY_STORAGE_MAINTENANCE_READONLY")
        });
        *st.ended_while_read_only.lock().unwrap() = Some(ro);
        if !ro {
            st.ended_writable.fetch_add(1, Ordering::SeqCst);
        }
        st.ended.fetch_add(1, Ordering::SeqCst);
        if st.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            st.gc_running.store(false, Ordering::SeqCst);
        }
        if gone {
            return Ok(());
        }
        if done { 0 } else { 137 }
    } else if joined.starts_with("pkill -f") && joined.contains("garbage-collect") {
        if st.gc_running.load(Ordering::SeqCst) && !st.unkillable.load(Ordering::SeqCst) {
            st.stop.notify_waiters();
            // The process takes a moment to go.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            0
        } else {
            1
        }
    } else if joined.starts_with("pgrep -f") && joined.contains("garbage-collect") {
        if st.gc_running.load(Ordering::SeqCst) { 0 } else { 1 }
    } else {
        0
    };
    s.write_all(&status(code)).await?;
    s.write_all(&[0x88, 0x00]).await?;
    s.flush().await?;
    Ok(())
}
