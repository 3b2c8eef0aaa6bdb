//! The Bearer token flow against a real registry configured for token auth: a small token
//! server issues ES256 JWTs (x5c-signed with a test CA the registry trusts), counting how
//! often it is asked, so the test can see tokens reused per scope and fetched again after the
//! registry rejects one.

mod support;

use base64::Engine as _;
use registry_cleaner::ops::scan::{ScanOptions, scan};
use registry_cleaner::settings::Secret;
use registry_cleaner::sources::registry::{Credentials, RegistryClient, RegistryOptions};
use registry_cleaner::world::{self, sample_registry};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use support::proxy::{Fault, Proxy};
use support::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NOW: i64 = 1_760_000_000;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

struct Signer {
    key: ring::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
}

/// An EC P-256 key and self-signed certificate made with openssl; the registry trusts it.
fn make_signer(dir: &std::path::Path) -> Signer {
    let run = |args: &[&str]| support::openssl(dir, args);
    run(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "key.pem"]);
    run(&[
        "pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER", "-out", "key.p8",
    ]);
    run(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "key.pem",
        "-subj",
        "/CN=token-issuer",
        "-days",
        "2",
        "-out",
        "cert.pem",
    ]);
    run(&["x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der"]);
    let rng = ring::rand::SystemRandom::new();
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &std::fs::read(dir.join("key.p8")).unwrap(),
        &rng,
    )
    .expect("pkcs8 key");
    Signer {
        key,
        cert_der: std::fs::read(dir.join("cert.der")).unwrap(),
    }
}

fn jwt(s: &Signer, scope: &str, ttl: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let header = serde_json::json!({ "alg": "ES256", "typ": "JWT", "x5c": [base64::engine::general_purpose::STANDARD.encode(&s.cert_der)] });
    let access: Vec<serde_json::Value> = scope
        .split(' ')
        .filter_map(|sc| {
            let mut parts = sc.splitn(3, ':');
            let (t, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({ "type": t, "name": name, "actions": actions.split(',').collect::<Vec<_>>() }))
        })
        .collect();
    let claims = serde_json::json!({
        "iss": "test-issuer", "sub": "alice", "aud": "test-registry",
        "exp": now + ttl, "nbf": now - 10, "iat": now - 10, "jti": format!("{now}-{scope}"), "access": access,
    });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = s
        .key
        .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
        .expect("sign");
    format!("{input}.{}", b64(sig.as_ref()))
}

/// Serves `GET /token?service=..&scope=..` (Basic auth alice:secret) with short-lived tokens.
fn token_server(rt: &tokio::runtime::Runtime, signer: Arc<Signer>, ttl: i64, issued: Arc<AtomicU64>) -> u16 {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    rt.spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let (signer, issued) = (signer.clone(), issued.clone());
            tokio::spawn(async move {
                // The head, then as much body as Content-Length says.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text[..end]
                            .lines()
                            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let req = String::from_utf8_lossy(&buf).to_string();
                let target = req.split_whitespace().nth(1).unwrap_or("").to_string();
                let post = req.starts_with("POST ");
                // GET: the query; POST (refresh-token grant): the form body.
                let params = if post {
                    req.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default()
                } else {
                    target.split_once('?').map(|x| x.1.to_string()).unwrap_or_default()
                };
                let pairs: Vec<(String, String)> = url::form_urlencoded::parse(params.as_bytes())
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let get = |k: &str| pairs.iter().filter(|(x, _)| x == k).map(|(_, v)| v.clone()).collect::<Vec<_>>();
                let scope = get("scope").join(" ");
                let good = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("alice:secret"));
                let authed = if post {
                    get("grant_type") == ["refresh_token"] && get("refresh_token") == ["refresh-alice"]
                } else {
                    req.lines().any(|l| l.to_ascii_lowercase().starts_with("authorization:") && l.contains(&good[6..]))
                };
                let key = if post { "access_token" } else { "token" };
                let (status, body) = if authed {
                    issued.fetch_add(1, Ordering::SeqCst);
                    ("200 OK", serde_json::json!({ key: jwt(&signer, &scope, ttl), "expires_in": ttl }).to_string())
                } else {
                    ("401 Unauthorized", "{}".to_string())
                };
                let resp = format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

fn opts() -> ScanOptions {
    ScanOptions {
        prefix: "dominodatalab".into(),
        repositories: None,
        fetch_config: true,
        verify_blobs: false,
        concurrency: 4,
        cache: None,
    }
}

#[test]
fn bearer_tokens_are_fetched_per_scope_reused_and_refreshed_after_a_401() {
    let rt = support::runtime();
    let mut reg = Registry::start();
    let signer = Arc::new(make_signer(reg.dir.path()));
    let issued = Arc::new(AtomicU64::new(0));
    // First tokens that live 60 s (reuse), later tokens that live 1 s: the registry's 401 on
    // an expired token must make the client fetch a new one and carry on.
    let port = token_server(&rt, signer.clone(), 60, issued.clone());
    // The token server shares the registry's origin (as GitLab's and Harbor's do): a proxy
    // sends `/token` to it and everything else to the registry. Registry credentials go to a
    // plain-http realm only on the registry's own origin.
    let token_port = Arc::new(AtomicU64::new(port as u64));
    let tp = token_port.clone();
    let rule = Arc::new(move |_n: u64, _m: &str, path: &str| {
        if path.starts_with("/token") {
            Fault::Forward(tp.load(Ordering::SeqCst) as u16)
        } else {
            Fault::Pass
        }
    });
    let proxy = Proxy::start(&rt, reg.url(), rule);
    std::fs::write(
        reg.dir.path().join("root.pem"),
        std::fs::read(reg.dir.path().join("cert.pem")).unwrap(),
    )
    .unwrap();
    reg.extra_env = vec![
        ("REGISTRY_AUTH".into(), "token".into()),
        ("REGISTRY_AUTH_TOKEN_REALM".into(), format!("{}/token", proxy.url())),
        // Upload Locations relative to the origin the client used (the proxy).
        ("REGISTRY_HTTP_RELATIVEURLS".into(), "true".into()),
        ("REGISTRY_AUTH_TOKEN_SERVICE".into(), "test-registry".into()),
        ("REGISTRY_AUTH_TOKEN_ISSUER".into(), "test-issuer".into()),
        (
            "REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE".into(),
            reg.dir.path().join("root.pem").display().to_string(),
        ),
    ];
    reg.stop();
    reg.resume();
    let mut o = RegistryOptions::new(&proxy.url());
    o.credentials = Some(Credentials {
        username: "alice".into(),
        password: Secret::new("secret"),
    });
    let c = RegistryClient::new(o.clone()).unwrap();
    let specs = sample_registry("dominodatalab", NOW);
    rt.block_on(world::push(&c, &specs[..4]))
        .expect("push through token auth");
    let inv = rt
        .block_on(scan(&RegistryClient::new(o.clone()).unwrap(), &opts(), &|_| {}))
        .expect("scan through token auth");
    assert_eq!(inv.tags.len(), 4);
    let scan_requests = issued.load(Ordering::SeqCst);
    // Reuse: pushing needs push scopes, a scan one token per scope — not one per request.
    assert!(scan_requests <= 4 + 4, "tokens issued so far {scan_requests}");
    let before = issued.load(Ordering::SeqCst);
    let c2 = RegistryClient::new(o.clone()).unwrap();
    rt.block_on(scan(&c2, &opts(), &|_| {})).unwrap();
    let per_scan = issued.load(Ordering::SeqCst) - before;
    // Scopes: the /v2/ probe, the catalog, and pull on each of the two repositories.
    assert!(per_scan <= 4, "one token per scope in a scan, got {per_scan}");
    assert!(
        c2.stats.requests.load(Ordering::Relaxed) > 3 * per_scan,
        "tokens were reused across requests"
    );

    // Without credentials the token server refuses: a clear error, no secrets.
    let err = rt
        .block_on(scan(
            &RegistryClient::new(RegistryOptions::new(&proxy.url())).unwrap(),
            &opts(),
            &|_| {},
        ))
        .unwrap_err()
        .to_string();
    assert!(err.contains("401"), "{err}");

    // Short-lived tokens: the registry rejects an expired one with 401 and the client fetches
    // a new one and carries on.
    let issued_short = Arc::new(AtomicU64::new(0));
    let short_port = token_server(&rt, signer, 1, issued_short.clone());
    token_port.store(short_port as u64, Ordering::SeqCst);
    let c3 = RegistryClient::new(o.clone()).unwrap();
    rt.block_on(scan(&c3, &opts(), &|_| {})).expect("first scan");
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let again = rt
        .block_on(scan(&c3, &opts(), &|_| {}))
        .expect("scan after the tokens expired");
    assert_eq!(again.tags.len(), 4);
    assert!(
        issued_short.load(Ordering::SeqCst) >= 2 * 2,
        "tokens were refreshed after expiry"
    );

    // An identity token (what `az acr login` writes): exchanged with the refresh-token grant
    // (a POST form), never sent as Basic credentials; a wrong one is a 401 naming no secret.
    let mut idt = RegistryOptions::new(&proxy.url());
    idt.credentials = Some(Credentials::identity_token("refresh-alice"));
    let before = issued_short.load(Ordering::SeqCst);
    let inv = rt
        .block_on(scan(&RegistryClient::new(idt).unwrap(), &opts(), &|_| {}))
        .expect("scan with an identity token");
    assert_eq!(inv.tags.len(), 4);
    assert!(
        issued_short.load(Ordering::SeqCst) > before,
        "tokens came from the refresh grant"
    );
    let mut bad = RegistryOptions::new(&proxy.url());
    bad.credentials = Some(Credentials::identity_token("refresh-mallory"));
    let err = rt
        .block_on(scan(&RegistryClient::new(bad).unwrap(), &opts(), &|_| {}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("401") && !err.contains("refresh-mallory"), "{err}");

    // A plain-http realm on another origin (the token server's own port) never gets the
    // registry credentials: the scan fails closed, naming the realm, and nothing is issued.
    reg.extra_env[1].1 = format!("http://127.0.0.1:{short_port}/token");
    reg.stop();
    reg.resume();
    let before = issued_short.load(Ordering::SeqCst);
    let err = rt
        .block_on(scan(&RegistryClient::new(o).unwrap(), &opts(), &|_| {}))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "refusing to send the registry credentials to token realm http://127.0.0.1:{short_port}"
        )),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
    assert_eq!(
        issued_short.load(Ordering::SeqCst),
        before,
        "the realm got no credentials"
    );
}
