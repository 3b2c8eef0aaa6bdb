//! Hostile or huge answers, and credentials that must stay home (issue 10, items 6 and 7).
//! A real registry (and the Keycloak fake) behind the fault-injecting proxy, which answers
//! chosen requests with made-up replies: oversized bodies, `Link`s that loop or leave the
//! registry, redirects and token realms on another origin, Keycloak pages that never end. A
//! second listener records what would leak to another host. Everything fails closed, with a
//! message naming what was refused.

mod support;

use registry_cleaner::model::TagState;
use registry_cleaner::ops::scan::{ScanOptions, scan};
use registry_cleaner::settings::Secret;
use registry_cleaner::sources::keycloak::{Directory, KeycloakSettings};
use registry_cleaner::sources::registry::{Credentials, RegistryClient, RegistryOptions};
use registry_cleaner::world::{self, sample_registry};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::proxy::{Fault, Proxy, Reply};
use support::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NOW: i64 = 1_760_000_000;
const ENV: &str = "dominodatalab/environment";
const TAG: &str = "65a000000000000000000002-2";

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

fn fast(url: &str) -> RegistryOptions {
    let mut o = RegistryOptions::new(url);
    o.initial_backoff = Duration::from_millis(5);
    o.max_retries = 0;
    o
}

fn with_creds(mut o: RegistryOptions, user: &str, pass: &str) -> RegistryOptions {
    o.credentials = Some(Credentials {
        username: user.into(),
        password: Secret::new(pass),
    });
    o
}

/// A second HTTP listener ("another host"): records every request head it gets and answers
/// 200 with an empty listing.
struct Listener {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Listener {
    fn start(rt: &tokio::runtime::Runtime) -> Listener {
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let h = heads.clone();
        rt.spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let h = h.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    h.lock().unwrap().push(String::from_utf8_lossy(&buf).to_string());
                    let body = r#"{"repositories":[],"tags":[],"token":"leaked","access_token":"leaked"}"#;
                    let resp = format!(
                        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        Listener { port, heads }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    fn authorization_seen(&self) -> bool {
        self.heads()
            .iter()
            .any(|h| h.to_ascii_lowercase().contains("\r\nauthorization:"))
    }
}

fn pushed_registry(rt: &tokio::runtime::Runtime) -> Registry {
    let reg = Registry::start();
    let c = RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap();
    rt.block_on(world::push(&c, &sample_registry("dominodatalab", NOW)))
        .expect("push");
    reg
}

// ---- Item 6: body caps ----

#[test]
fn an_oversized_manifest_makes_its_tag_broken_never_truncated() {
    let rt = support::runtime();
    let reg = pushed_registry(&rt);
    // 5 MiB with an honest Content-Length: refused from the header.
    let big = Reply::new(200, vec![b' '; 5 << 20])
        .header("Content-Type", "application/vnd.docker.distribution.manifest.v2+json");
    let rule = Arc::new(move |_n: u64, m: &str, path: &str| {
        if m == "GET" && path.ends_with(&format!("/manifests/{TAG}")) {
            Fault::Respond(big.clone())
        } else {
            Fault::Pass
        }
    });
    let proxy = Proxy::start(&rt, reg.url(), rule);
    let c = RegistryClient::new(fast(&proxy.url())).unwrap();
    let inv = rt.block_on(scan(&c, &opts(), &|_| {})).expect("scan");
    let bad = inv.find_tag(ENV, TAG).unwrap();
    match &inv.tag(bad).state {
        TagState::Broken { reason, .. } => {
            assert!(reason.contains("manifest is larger than the 4 MiB limit"), "{reason}")
        }
        other => panic!("an oversized manifest must make its tag broken: {other:?}"),
    }
    let broken = inv
        .tags
        .iter()
        .filter(|t| matches!(t.state, TagState::Broken { .. }))
        .count();
    assert_eq!(broken, 1, "only that tag");
}

#[test]
fn a_one_gib_manifest_without_content_length_is_refused_after_the_cap() {
    let rt = support::runtime();
    // 1 GiB streamed until the connection closes: no length to refuse up front.
    let huge = Reply {
        repeat: 1024,
        content_length: false,
        ..Reply::new(200, vec![b' '; 1 << 20])
    };
    let rule = Arc::new(move |_n: u64, _m: &str, _p: &str| Fault::Respond(huge.clone()));
    let proxy = Proxy::start(&rt, "http://127.0.0.1:9".into(), rule);
    let c = RegistryClient::new(fast(&proxy.url())).unwrap();
    let started = Instant::now();
    let e = rt
        .block_on(c.get_manifest(ENV, "t"))
        .expect_err("a 1 GiB manifest is refused")
        .to_string();
    let took = started.elapsed();
    assert!(e.contains("larger than the 4 MiB limit"), "{e}");
    let sent = proxy.sent.load(Ordering::SeqCst);
    eprintln!("1 GiB manifest refused after {took:?}; the proxy wrote {sent} bytes");
    assert!(sent < 64 << 20, "reading stopped near the cap, not at 1 GiB: {sent}");
}

#[test]
fn an_oversized_config_blob_is_refused() {
    let rt = support::runtime();
    let huge = Reply {
        repeat: 9,
        content_length: false,
        ..Reply::new(200, vec![b'{'; 1 << 20])
    };
    let rule = Arc::new(move |_n: u64, _m: &str, _p: &str| Fault::Respond(huge.clone()));
    let proxy = Proxy::start(&rt, "http://127.0.0.1:9".into(), rule);
    let c = RegistryClient::new(fast(&proxy.url())).unwrap();
    let e = rt
        .block_on(c.get_blob(ENV, "sha256:00"))
        .expect_err("a 9 MiB config is refused")
        .to_string();
    assert!(e.contains("blob is larger than the 8 MiB limit"), "{e}");
}

#[test]
fn an_error_body_is_read_only_up_to_a_few_kib() {
    let rt = support::runtime();
    let huge = Reply {
        repeat: 1024,
        content_length: false,
        ..Reply::new(500, vec![b'x'; 1 << 20])
    };
    let rule = Arc::new(move |_n: u64, _m: &str, _p: &str| Fault::Respond(huge.clone()));
    let proxy = Proxy::start(&rt, "http://127.0.0.1:9".into(), rule);
    let c = RegistryClient::new(fast(&proxy.url())).unwrap();
    let started = Instant::now();
    let e = rt.block_on(c.get_manifest(ENV, "t")).expect_err("500").to_string();
    let took = started.elapsed();
    assert!(e.contains("HTTP 500"), "{e}");
    assert!(e.len() < 1024, "the message keeps a short excerpt: {} bytes", e.len());
    let sent = proxy.sent.load(Ordering::SeqCst);
    eprintln!("1 GiB error body: error after {took:?}; the proxy wrote {sent} bytes");
    assert!(sent < 64 << 20, "a 1 GiB error body was read whole: {sent}");
}

// ---- Item 6: pagination ----

#[test]
fn a_link_back_to_the_same_page_or_a_cycle_is_refused_not_followed_forever() {
    let rt = support::runtime();
    let rule = Arc::new(|_n: u64, _m: &str, path: &str| {
        if path == "/v2/" {
            Fault::Respond(Reply::new(200, "{}"))
        } else if path.starts_with("/v2/_catalog") {
            // The first page links to itself.
            Fault::Respond(
                Reply::new(200, r#"{"repositories":["dominodatalab/environment"]}"#)
                    .header("Link", r#"</v2/_catalog?n=1000>; rel="next""#),
            )
        } else if path.contains("/tags/list") {
            // Page A links to B, B back to A.
            let next = if path.contains("last=b") { "a" } else { "b" };
            Fault::Respond(Reply::new(200, format!(r#"{{"name":"x","tags":["{next}"]}}"#)).header(
                "Link",
                &format!(r#"</v2/dominodatalab/environment/tags/list?last={next}&n=1000>; rel="next""#),
            ))
        } else {
            Fault::Status(404, None)
        }
    });
    let proxy = Proxy::start(&rt, "http://127.0.0.1:9".into(), rule);
    let c = RegistryClient::new(fast(&proxy.url())).unwrap();
    let twenty = Duration::from_secs(20);
    let e = rt
        .block_on(async { tokio::time::timeout(twenty, c.catalog()).await })
        .expect("pagination looped for 20 s")
        .expect_err("self link")
        .to_string();
    assert!(e.contains("points back at a page already read"), "{e}");
    let e = rt
        .block_on(async { tokio::time::timeout(twenty, c.tags(ENV)).await })
        .expect("pagination looped for 20 s")
        .expect_err("cycle")
        .to_string();
    assert!(e.contains("points back at a page already read"), "{e}");
    // The scan fails closed on it rather than scan a partial catalog.
    let e = rt.block_on(scan(&c, &opts(), &|_| {})).expect_err("scan").to_string();
    assert!(e.contains("already read"), "{e}");
}

#[test]
fn endless_distinct_pages_stop_at_the_page_cap() {
    let rt = support::runtime();
    let rule = Arc::new(|n: u64, _m: &str, _path: &str| {
        Fault::Respond(
            Reply::new(200, r#"{"repositories":[]}"#)
                .header("Link", &format!(r#"</v2/_catalog?last=r{n}&n=1000>; rel="next""#)),
        )
    });
    let proxy = Proxy::start(&rt, "http://127.0.0.1:9".into(), rule);
    let c = RegistryClient::new(fast(&proxy.url())).unwrap();
    let started = Instant::now();
    let e = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(120), c.catalog()).await })
        .expect("pagination never stopped")
        .expect_err("page cap")
        .to_string();
    assert!(e.contains("more than 10000 pages"), "{e}");
    let requests = proxy.requests.load(Ordering::SeqCst);
    eprintln!("page cap: {requests} requests, {:?}", started.elapsed());
    assert_eq!(requests, 10_000);
}

// ---- Item 7: credentials stay with the registry's origin ----

#[test]
fn a_link_to_another_origin_is_refused_and_sees_no_credentials() {
    let rt = support::runtime();
    let reg = Registry::start_with_basic_auth("alice", "wonderland");
    let other = Listener::start(&rt);
    let link = format!(r#"<{}/v2/_catalog?last=a&n=1000>; rel="next""#, other.url());
    let rule = Arc::new(move |_n: u64, _m: &str, path: &str| {
        if path.starts_with("/v2/_catalog") {
            Fault::Respond(Reply::new(200, r#"{"repositories":["a"]}"#).header("Link", &link))
        } else {
            Fault::Pass
        }
    });
    let proxy = Proxy::start(&rt, reg.url(), rule);
    let c = RegistryClient::new(with_creds(fast(&proxy.url()), "alice", "wonderland")).unwrap();
    rt.block_on(c.ping()).expect("basic auth through the proxy");
    let e = rt.block_on(c.catalog()).expect_err("foreign Link").to_string();
    assert!(e.contains("refusing to follow a Link to http://127.0.0.1:"), "{e}");
    assert!(!e.contains("wonderland"), "{e}");
    assert!(!other.authorization_seen(), "{:?}", other.heads());
    assert!(other.heads().is_empty(), "not followed at all: {:?}", other.heads());
}

#[test]
fn a_redirect_to_another_origin_is_refused() {
    let rt = support::runtime();
    let reg = Registry::start_with_basic_auth("alice", "wonderland");
    let other = Listener::start(&rt);
    let location = format!("{}/v2/dominodatalab/environment/tags/list", other.url());
    let rule = Arc::new(move |_n: u64, _m: &str, path: &str| {
        if path.contains("/tags/list") {
            Fault::Respond(Reply::new(307, "").header("Location", &location))
        } else {
            Fault::Pass
        }
    });
    let proxy = Proxy::start(&rt, reg.url(), rule);
    let c = RegistryClient::new(with_creds(fast(&proxy.url()), "alice", "wonderland")).unwrap();
    rt.block_on(c.ping()).expect("basic auth through the proxy");
    let e = rt.block_on(c.tags(ENV)).expect_err("foreign redirect").to_string();
    assert!(
        e.contains("refusing to follow a redirect from http://127.0.0.1:"),
        "{e}"
    );
    assert!(other.heads().is_empty(), "not followed: {:?}", other.heads());
}

#[test]
fn an_upload_location_on_another_origin_gets_no_credentials() {
    let rt = support::runtime();
    let reg = Registry::start_with_basic_auth("alice", "wonderland");
    let other = Listener::start(&rt);
    let location = format!("{}/v2/dominodatalab/environment/blobs/uploads/u1?_state=x", other.url());
    let rule = Arc::new(move |_n: u64, m: &str, path: &str| {
        if m == "POST" && path.contains("/blobs/uploads/") {
            Fault::Respond(Reply::new(202, "").header("Location", &location))
        } else {
            Fault::Pass
        }
    });
    let proxy = Proxy::start(&rt, reg.url(), rule);
    let c = RegistryClient::new(with_creds(fast(&proxy.url()), "alice", "wonderland")).unwrap();
    let bytes = b"layer".to_vec();
    let digest = world::sha256_digest(&bytes);
    // The listener answers 201, so the upload "succeeds" there — without our credentials.
    let _ = rt.block_on(c.push_blob(ENV, &digest, bytes));
    let heads = other.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(heads[0].starts_with("PUT "), "{heads:?}");
    assert!(
        !other.authorization_seen(),
        "credentials went to another origin: {heads:?}"
    );
}

#[test]
fn a_plain_http_token_realm_on_another_origin_gets_no_basic_credentials() {
    let rt = support::runtime();
    let other = Listener::start(&rt);
    let challenge = format!(
        r#"Bearer realm="{}/token",service="test-registry",scope="registry:catalog:*""#,
        other.url()
    );
    let rule = Arc::new(move |_n: u64, _m: &str, _p: &str| {
        Fault::Respond(
            Reply::new(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#).header("WWW-Authenticate", &challenge),
        )
    });
    let proxy = Proxy::start(&rt, "http://127.0.0.1:9".into(), rule);
    let c = RegistryClient::new(with_creds(fast(&proxy.url()), "alice", "secret")).unwrap();
    let e = rt.block_on(c.ping()).expect_err("refused realm").to_string();
    assert!(
        e.contains("refusing to send the registry credentials to token realm http://127.0.0.1:"),
        "{e}"
    );
    assert!(!e.contains("secret\""), "{e}");
    assert!(
        !other.authorization_seen(),
        "Basic credentials reached the realm: {:?}",
        other.heads()
    );
}

// ---- Item 6: Keycloak ----

fn keycloak_seed(users: usize) -> serde_json::Value {
    let users: Vec<_> = (0..users)
        .map(|i| serde_json::json!({ "username": format!("u{i}"), "enabled": true }))
        .collect();
    serde_json::json!({ "realms": [{ "realm": "DominoRealm", "users": users }] })
}

fn keycloak_settings(url: &str) -> KeycloakSettings {
    KeycloakSettings {
        host: format!("{url}/"),
        password: Some("admin".into()),
        page_size: 2,
        ..KeycloakSettings::default()
    }
}

#[test]
fn a_huge_keycloak_token_lifespan_neither_panics_nor_is_trusted() {
    let rt = support::runtime();
    let kc = support::keycloak::KeycloakServer::start(&keycloak_seed(3), u64::MAX);
    let dir = Directory::new(&keycloak_settings(&kc.url)).unwrap();
    let users = rt.block_on(dir.users()).expect("users");
    assert_eq!(users.len(), 3);
    assert_eq!(dir.tokens_acquired(), 1);
}

/// A user added while the pages are read (sorted first, so every later page shifts by one:
/// one user comes twice and the new one is never seen): the pass is read again, and the
/// second pass, on a list that no longer changes, has every user. A list that changes on every
/// pass is refused. Before the count check the first pass was taken as the whole list, without
/// the new (enabled) account.
#[test]
fn a_user_added_while_keycloak_pages_are_read_is_not_missed() {
    let rt = support::runtime();
    let kc = support::keycloak::KeycloakServer::start_args(&keycloak_seed(5), 60, &["--insert-while-paging", "1"]);
    let dir = Directory::new(&keycloak_settings(&kc.url)).unwrap();
    let users = rt.block_on(dir.users()).expect("read again once the list holds still");
    let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
    assert!(names.contains(&"aaa-added-1"), "{names:?}");
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "a user read twice: {names:?}");

    let kc = support::keycloak::KeycloakServer::start_args(&keycloak_seed(5), 60, &["--insert-while-paging", "100"]);
    let dir = Directory::new(&keycloak_settings(&kc.url)).unwrap();
    let e = rt
        .block_on(dir.users())
        .expect_err("a list that never holds still")
        .to_string();
    assert!(e.contains("changed while it was read, 3 times"), "{e}");
}

#[test]
fn keycloak_pages_that_never_end_fail_closed() {
    let rt = support::runtime();
    let kc = support::keycloak::KeycloakServer::start(&keycloak_seed(3), 60);
    // A server that ignores `first`: every page is the same full page.
    let page = r#"[{"id":"a","username":"a","enabled":true},{"id":"b","username":"b","enabled":true}]"#;
    let rule = Arc::new(move |_n: u64, _m: &str, path: &str| {
        if path.contains("/users") {
            Fault::Respond(Reply::new(200, page).header("Content-Type", "application/json"))
        } else {
            Fault::Pass
        }
    });
    let proxy = Proxy::start(&rt, kc.url.clone(), rule);
    let dir = Directory::new(&keycloak_settings(&proxy.url())).unwrap();
    let e = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), dir.users()).await })
        .expect("Keycloak paging never stopped")
        .expect_err("a repeated page")
        .to_string();
    assert!(e.contains("repeats the previous page"), "{e}");
    assert!(!e.contains("admin\""), "{e}");

    // Distinct full pages past the user cap.
    let kc = support::keycloak::KeycloakServer::start(&keycloak_seed(30), 60);
    let dir = Directory::new(&keycloak_settings(&kc.url)).unwrap().with_max_users(10);
    let e = rt.block_on(dir.users()).expect_err("over the cap").to_string();
    assert!(e.contains("more than 10 users and every page is full"), "{e}");
}
