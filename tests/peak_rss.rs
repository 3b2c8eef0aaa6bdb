//! Peak memory of the real binary when the registry answers with 1 GiB bodies (issue 10,
//! item 6): a manifest, a config blob, an error body, a token answer, and a DELETE answer,
//! each streamed by the proxy without a `Content-Length` (so nothing can be refused from the
//! header). `scan` and `delete --plan --apply` must fail closed and keep their peak resident
//! set (`VmHWM`, polled from /proc while the process runs) under `LIMIT`. Each case prints its
//! figure; RELIABILITY.md has the figures of one run.

mod support;

use registry_cleaner::sources::registry::{RegistryClient, RegistryOptions};
use registry_cleaner::world::{self, sample_registry};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use support::proxy::{Fault, Proxy, Reply};
use support::registry::Registry;

const NOW: i64 = 1_760_000_000;
const ENV: &str = "dominodatalab/environment";
const TAG: &str = "65a000000000000000000002-2";
const LIMIT: u64 = 64 << 20;

/// 1 GiB of `byte`, streamed until the connection closes.
fn gib(status: u16, byte: u8) -> Reply {
    Reply {
        repeat: 1024,
        content_length: false,
        ..Reply::new(status, vec![byte; 1 << 20])
    }
}

fn cmd(dir: &Path, url: &str, args: &[&str]) -> Command {
    // No scan cache (every body is asked for), no retries.
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        "registry:\n  cache: false\nretry:\n  max_retries: 0\n  initial_delay: 0.01\n",
    )
    .unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_registry-cleaner"));
    c.args(args)
        .args(["--config", config.to_str().unwrap(), "--registry", url])
        .args(["--without", "mongo", "--without", "kubernetes", "--without", "keycloak"])
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env_remove("REGISTRY_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs the command to its end, polling its `VmHWM`; (output, peak bytes).
fn measured(mut c: Command) -> (Output, u64) {
    let child = c.spawn().expect("spawn");
    let status = format!("/proc/{}/status", child.id());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    let poller = std::thread::spawn(move || {
        let mut peak = 0u64;
        while !d.load(Ordering::SeqCst) {
            if let Ok(text) = std::fs::read_to_string(&status)
                && let Some(kb) = text
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb * 1024);
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        peak
    });
    let out = child.wait_with_output().expect("wait");
    done.store(true, Ordering::SeqCst);
    (out, poller.join().unwrap())
}

fn pushed(rt: &tokio::runtime::Runtime) -> Registry {
    let reg = Registry::start();
    let c = RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap();
    rt.block_on(world::push(&c, &sample_registry("dominodatalab", NOW)))
        .expect("push");
    reg
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

fn check(case: &str, peak: u64, sent: u64) {
    eprintln!(
        "peak RSS {case}: {} (VmHWM); the proxy wrote {} of the 1 GiB",
        mib(peak),
        mib(sent)
    );
    assert!(peak > 0, "{case}: no VmHWM read");
    assert!(peak < LIMIT, "{case}: peak RSS {} over {}", mib(peak), mib(LIMIT));
}

#[test]
fn scan_with_a_one_gib_manifest_blob_or_error_body_stays_small_and_refuses_it() {
    let rt = support::runtime();
    let reg = pushed(&rt);
    let dir = tempfile::tempdir().unwrap();
    let config = {
        let specs = sample_registry("dominodatalab", NOW);
        let t = specs.iter().find(|s| s.tag == TAG).unwrap();
        match &t.target {
            world::TagTarget::Image(img) => {
                let m: Value = serde_json::from_slice(&world::build_image(img).manifest).unwrap();
                m["config"]["digest"].as_str().unwrap().to_string()
            }
            _ => unreachable!(),
        }
    };
    for (case, status, byte) in [("manifest", 200, b' '), ("blob", 200, b'{'), ("error", 500, b'x')] {
        let reply = gib(status, byte);
        let cfg = config.clone();
        let rule = Arc::new(move |_n: u64, m: &str, path: &str| {
            let hit = match case {
                "blob" => path.ends_with(&format!("/blobs/{cfg}")),
                _ => path.ends_with(&format!("/manifests/{TAG}")),
            };
            if m == "GET" && hit {
                Fault::Respond(reply.clone())
            } else {
                Fault::Pass
            }
        });
        let proxy = Proxy::start(&rt, reg.url(), rule);
        let (out, peak) = measured(cmd(dir.path(), &proxy.url(), &["scan"]));
        check(
            &format!("scan, 1 GiB {case} body"),
            peak,
            proxy.sent.load(Ordering::SeqCst),
        );
        assert!(proxy.faults.load(Ordering::SeqCst) > 0, "{case}: the fault fired");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Fail closed: the tag is reported broken (its reason names the cap, or the status),
        // never read as a good image.
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{case}: no JSON ({e}), exit {:?}: {stderr}", out.status));
        let text = v.to_string();
        // A manifest or error body: the tag is broken with that reason. A config blob: it is
        // refused (logged) and the image has no creation time (it gets no grace period).
        let (expect, seen) = match case {
            "manifest" => ("manifest is larger than the 4 MiB limit", text.as_str()),
            "blob" => ("blob is larger than the 8 MiB limit", stderr.as_ref()),
            _ => ("HTTP 500", text.as_str()),
        };
        assert!(
            seen.contains(expect),
            "{case}: {expect} not in the output: {:.3000}",
            seen
        );
    }
}

#[test]
fn a_one_gib_token_answer_stays_small_and_the_scan_cannot_run() {
    let rt = support::runtime();
    let reg = pushed(&rt);
    let dir = tempfile::tempdir().unwrap();
    let port = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(0));
    let p = port.clone();
    let reply = gib(200, b'{');
    let rule = Arc::new(move |_n: u64, _m: &str, path: &str| {
        if path.starts_with("/token") {
            return Fault::Respond(reply.clone());
        }
        let realm = format!("http://127.0.0.1:{}/token", p.load(Ordering::SeqCst));
        Fault::Respond(Reply::new(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#).header(
            "WWW-Authenticate",
            &format!(r#"Bearer realm="{realm}",service="registry",scope="registry:catalog:*""#),
        ))
    });
    let proxy = Proxy::start(&rt, reg.url(), rule);
    port.store(proxy.port, Ordering::SeqCst);
    let (out, peak) = measured(cmd(dir.path(), &proxy.url(), &["scan"]));
    check("scan, 1 GiB token answer", peak, proxy.sent.load(Ordering::SeqCst));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(proxy.sent.load(Ordering::SeqCst) > 0, "the token answer was served");
}

#[test]
fn delete_with_one_gib_answers_stays_small_and_fails_closed() {
    let rt = support::runtime();
    let mut reg = pushed(&rt);
    reg.save_state();
    let dir = tempfile::tempdir().unwrap();
    let direct = RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap();
    let victim = format!("{ENV}:{TAG}");
    // (case, which request, reply): the planned manifest's GET in the fresh scan; the DELETE
    // answered 202 with 1 GiB; the DELETE answered 500 with 1 GiB.
    for case in ["fresh-scan manifest", "DELETE 202", "DELETE 500"] {
        reg.reset();
        let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let a = armed.clone();
        let rule = Arc::new(move |_n: u64, m: &str, path: &str| {
            if !a.load(Ordering::SeqCst) || path.contains(&"0".repeat(64)) {
                return Fault::Pass;
            }
            match case {
                "fresh-scan manifest" if m == "GET" && path.ends_with(&format!("/manifests/{TAG}")) => {
                    Fault::Respond(gib(200, b' '))
                }
                "DELETE 202" if m == "DELETE" => Fault::Respond(gib(202, b' ')),
                "DELETE 500" if m == "DELETE" => Fault::Respond(gib(500, b'x')),
                _ => Fault::Pass,
            }
        });
        let proxy = Proxy::start(&rt, reg.url(), rule);
        let url = proxy.url();
        let plan = dir.path().join("plan.json");
        let out = cmd(
            dir.path(),
            &url,
            &["report", "--output", plan.to_str().unwrap(), "--select", &victim],
        )
        .output()
        .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        armed.store(true, Ordering::SeqCst);
        let (out, peak) = measured(cmd(
            dir.path(),
            &url,
            &["delete", "--plan", plan.to_str().unwrap(), "--apply", "--force"],
        ));
        check(
            &format!("delete --apply, 1 GiB {case}"),
            peak,
            proxy.sent.load(Ordering::SeqCst),
        );
        assert!(proxy.faults.load(Ordering::SeqCst) > 0, "{case}: the fault fired");
        let code = out.status.code();
        // Fail closed: exit 1 (failed item), 2 (cannot run) or 3 (nothing deleted), and the
        // manifest is still there.
        assert!(
            matches!(code, Some(1..=3)),
            "{case}: exit {code:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let still = rt.block_on(direct.head_manifest(ENV, TAG)).unwrap();
        assert!(still.is_some(), "{case}: the planned manifest was deleted");
    }
}
