//! Registry credentials from a `kubernetes.io/dockerconfigjson` secret in a real kube-apiserver
//! (Domino's `domino-registry`, or `REGISTRY_AUTH_SECRET`), and from a mounted password file,
//! against a real registry with basic auth.

mod support;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use std::process::{Command, Output, Stdio};
use support::registry::Registry;

const USER: &str = "domino-registry";
const PASSWORD: &str = "pw-that-must-not-leak";

fn docker_secret(name: &str, host_key: &str, user: &str, password: &str) -> Secret {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let json = serde_json::json!({"auths": {host_key: {"auth": auth}}});
    let mut s = Secret::default();
    s.metadata.name = Some(name.into());
    s.type_ = Some("kubernetes.io/dockerconfigjson".into());
    s.data = Some(
        [(
            ".dockerconfigjson".to_string(),
            ByteString(json.to_string().into_bytes()),
        )]
        .into(),
    );
    s
}

#[test]
fn credentials_come_from_the_dockerconfigjson_secret_or_a_password_file_and_failures_name_the_secret() {
    let k = support::kube::shared();
    let reg = Registry::start_with_basic_auth(USER, PASSWORD);
    let ns = "registry-secret-test";
    let dir = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)]| -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_registry-cleaner"));
        c.args([
            "report",
            "--registry",
            &reg.url(),
            "--without",
            "mongo",
            "--without",
            "keycloak",
        ])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("KUBECONFIG", &k.kubeconfig)
        .env("PLATFORM_NAMESPACE", ns)
        .env("COMPUTE_NAMESPACE", ns)
        .stdin(Stdio::null());
        for (key, v) in env {
            c.env(key, v);
        }
        let out = c.output().expect("run registry-cleaner");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(PASSWORD), "the password leaked: {all}");
        out
    };
    let err = |o: &Output| String::from_utf8_lossy(&o.stderr).to_string();
    let rt = support::runtime();
    let client = rt.block_on(async {
        registry_cleaner::sources::kube::client(&registry_cleaner::sources::kube::KubeSettings {
            kubeconfig: Some(k.kubeconfig.display().to_string()),
            ..Default::default()
        })
        .await
        .expect("client")
    });
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    rt.block_on(support::kube::create_namespace(&client, ns));

    // No credentials anywhere: the registry refuses, exit 2.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));

    // Domino's own secret, keyed with a scheme and a trailing slash: found by default.
    let key = format!("https://{}/", reg.host());
    rt.block_on(secrets.create(
        &PostParams::default(),
        &docker_secret("domino-registry", &key, USER, PASSWORD),
    ))
    .expect("secret");
    let out = run(&[]);
    assert!(out.status.success(), "{}", err(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["sources"]["registry"]["status"], "ok");

    // A named secret that does not exist stops the run and names it (no silent fallback).
    let out = run(&[("REGISTRY_AUTH_SECRET", "custom-registry")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains(&format!("{ns}/custom-registry")), "{}", err(&out));

    // A named secret without an entry for this registry, and one with a wrong password.
    rt.block_on(secrets.create(
        &PostParams::default(),
        &docker_secret("custom-registry", "other.example:5000", USER, PASSWORD),
    ))
    .expect("secret");
    let out = run(&[("REGISTRY_AUTH_SECRET", "custom-registry")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("no auths entry"), "{}", err(&out));
    rt.block_on(secrets.create(
        &PostParams::default(),
        &docker_secret("wrong-registry", reg.host().as_str(), USER, "not-the-password"),
    ))
    .expect("secret");
    let out = run(&[("REGISTRY_AUTH_SECRET", "wrong-registry")]);
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));

    // A mounted password file (user domino-registry by default) wins over the secrets.
    let file = dir.path().join("registry-password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let f = file.display().to_string();
    let out = run(&[
        ("REGISTRY_PASSWORD_FILE", f.as_str()),
        ("REGISTRY_AUTH_SECRET", "wrong-registry"),
    ]);
    assert!(out.status.success(), "{}", err(&out));
    std::fs::write(&file, "wrong\n").unwrap();
    let out = run(&[("REGISTRY_PASSWORD_FILE", f.as_str())]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a wrong file password is not rescued by the secret"
    );
}
