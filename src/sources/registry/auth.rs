//! Registry credentials and the auth handshake: anonymous, Basic, and the Bearer token flow
//! from `WWW-Authenticate` (realm/service/scope) with per-scope token reuse. Credentials come
//! from settings or from `~/.docker/config.json` (`auths`, `credHelpers`, `credsStore`).

use crate::model::secret::Secret;
use base64::Engine as _;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Username and password; the password never appears in Debug output. Username
/// [`IDENTITY_TOKEN_USER`] means `password` is an identity token (an OAuth2 refresh token), as
/// Docker's credential helpers say it.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

/// Docker's convention: a credential whose username is this carries an identity token.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

impl Credentials {
    /// An identity token (`identitytoken` in a Docker config, `az acr login`): exchanged at
    /// the token realm with the OAuth2 refresh-token grant, never sent as Basic credentials.
    pub fn identity_token(token: &str) -> Credentials {
        Credentials {
            username: IDENTITY_TOKEN_USER.into(),
            password: Secret::new(token),
        }
    }

    pub fn is_identity_token(&self) -> bool {
        self.username == IDENTITY_TOKEN_USER
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    Some(Challenge::Bearer {
        realm: params.get("realm")?.clone(),
        service: params.get("service").cloned(),
        scope: params.get("scope").cloned(),
    })
}

/// `key="value",key2="v,2"`: commas inside quotes belong to the value (scopes contain them).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let (value, remaining) = if let Some(stripped) = after.strip_prefix('"') {
            match stripped.find('"') {
                Some(end) => (&stripped[..end], &stripped[end + 1..]),
                None => (stripped, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.insert(key, value.to_string());
        rest = remaining.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
    }
    out
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub value: Secret,
    pub expires: Instant,
}

/// The longest a Bearer token is reused, whatever `expires_in` the token server claims.
pub(crate) const MAX_TOKEN_REUSE: Duration = Duration::from_secs(3600);

/// Bearer tokens by scope, reused until shortly before they expire.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    tokens: HashMap<String, Token>,
}

impl TokenCache {
    pub fn get(&self, scope: &str) -> Option<Secret> {
        let t = self.tokens.get(scope)?;
        (Instant::now() + Duration::from_secs(10) < t.expires).then(|| t.value.clone())
    }
    /// Keeps a token for `expires_in` seconds as the token server said, but at least 20 s and
    /// at most [`MAX_TOKEN_REUSE`]: a huge (hostile or broken) lifetime can neither overflow
    /// the clock nor keep a token past the hour; the registry's 401 fetches a new one anyway.
    pub fn put(&mut self, scope: &str, value: Secret, expires_in: u64) {
        let life = Duration::from_secs(expires_in.max(20)).min(MAX_TOKEN_REUSE);
        let now = Instant::now();
        let expires = now.checked_add(life).unwrap_or(now);
        self.tokens.insert(scope.to_string(), Token { value, expires });
    }
    pub fn forget(&mut self, scope: &str) {
        self.tokens.remove(scope);
    }
}

/// A registry host as a Docker config key compares: scheme and path dropped, a default port
/// (443, or 80 with `http://`) dropped, lowercased. `https://Reg.example:443/v1/` and
/// `reg.example` are the same key; `reg.example:5000` is not.
pub fn registry_key(s: &str) -> String {
    let s = s.trim();
    let (default_port, rest) = if let Some(r) = s.strip_prefix("http://") {
        (":80", r)
    } else if let Some(r) = s.strip_prefix("https://") {
        (":443", r)
    } else {
        (":443", s)
    };
    let host = rest.split('/').next().unwrap_or("").to_ascii_lowercase();
    match host.strip_suffix(default_port) {
        Some(h) => h.to_string(),
        None => host,
    }
}

/// The value under the key of `map` that names `registry` (see [`registry_key`]).
fn entry_for<'a>(map: &'a serde_json::Value, registry: &str) -> Option<(&'a str, &'a serde_json::Value)> {
    let want = registry_key(registry);
    map.as_object()?
        .iter()
        .find(|(k, _)| registry_key(k) == want)
        .map(|(k, v)| (k.as_str(), v))
}

/// Credentials for `registry` from the `auths` of a Docker config JSON (a file, or a
/// `kubernetes.io/dockerconfigjson` secret's `.dockerconfigjson`): `username`/`password` or a
/// base64 `auth` of `user:password`. `source` names the file or secret in errors, which never
/// contain a secret.
pub fn docker_config_auths(
    json: &serde_json::Value,
    registry: &str,
    source: &str,
) -> Result<Option<Credentials>, String> {
    let Some((k, entry)) = entry_for(&json["auths"], registry) else {
        return Ok(None);
    };
    // An identity token wins over `auth` (which then holds a placeholder user and no password).
    if let Some(t) = entry["identitytoken"].as_str().filter(|t| !t.trim().is_empty()) {
        return Ok(Some(Credentials::identity_token(t.trim())));
    }
    if let Some(auth) = entry["auth"].as_str().filter(|a| !a.trim().is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| format!("{source}: auths.{k}.auth is not base64"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| format!("{source}: auths.{k}.auth is not UTF-8"))?;
        let (u, p) = decoded
            .split_once(':')
            .ok_or_else(|| format!("{source}: auths.{k}.auth is not user:password"))?;
        return Ok(Some(Credentials {
            username: u.to_string(),
            password: Secret::new(p),
        }));
    }
    if let (Some(u), Some(p)) = (entry["username"].as_str(), entry["password"].as_str()) {
        return Ok(Some(Credentials {
            username: u.to_string(),
            password: Secret::new(p),
        }));
    }
    Err(format!(
        "{source}: auths.{k} has neither auth nor username and password"
    ))
}

/// Credentials for `registry` (host[:port]) from a Docker config file: a `credHelpers` entry,
/// then a base64 `auths` entry, then `credsStore`. Keys match ignoring scheme and default port.
/// Errors are reasons, never secrets.
pub fn docker_config_credentials(config: &Path, registry: &str) -> Result<Option<Credentials>, String> {
    let text = match std::fs::read_to_string(config) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", config.display())),
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", config.display()))?;
    if let Some(helper) = entry_for(&json["credHelpers"], registry).and_then(|(_, v)| v.as_str()) {
        return credential_helper(helper, registry).map(Some);
    }
    if let Some(c) = docker_config_auths(&json, registry, &config.display().to_string())? {
        return Ok(Some(c));
    }
    if let Some(store) = json["credsStore"].as_str() {
        return credential_helper(store, registry).map(Some);
    }
    Ok(None)
}

/// Runs `docker-credential-<helper> get` with the registry on stdin (the helper protocol). On
/// failure the helper's own message (stderr, else stdout; first 300 characters) is shown.
fn credential_helper(helper: &str, registry: &str) -> Result<Credentials, String> {
    run_helper(&format!("docker-credential-{helper}"), registry)
}

fn run_helper(program: &str, registry: &str) -> Result<Credentials, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {program}: {e}"))?;
    // A helper that fails may exit before reading stdin: its message matters more than the
    // broken pipe.
    match child.stdin.take().ok_or("no stdin")?.write_all(registry.as_bytes()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(format!("writing to {program}: {e}")),
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("running {program}: {e}"))?;
    if !out.status.success() {
        // On failure helpers print a message, never the secret (there is none to print).
        let said = if out.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
            &out.stderr
        } else {
            &out.stdout
        };
        let said: String = String::from_utf8_lossy(said).trim().chars().take(300).collect();
        return Err(format!(
            "{program} found no credentials for {registry} ({}): {said}",
            out.status
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|_| format!("{program} printed invalid JSON"))?;
    match (v["Username"].as_str(), v["Secret"].as_str()) {
        (Some(u), Some(s)) => Ok(Credentials {
            username: u.to_string(),
            password: Secret::new(s),
        }),
        _ => Err(format!("{program} answer lacks Username/Secret")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges_with_commas_in_scope() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(parse_challenge(r#"Basic realm="test""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn a_huge_expires_in_neither_panics_nor_keeps_a_token_past_the_cap() {
        let mut cache = TokenCache::default();
        cache.put("repository:a:pull", Secret::new("t"), u64::MAX);
        assert_eq!(
            cache.get("repository:a:pull").map(|t| t.expose().to_string()),
            Some("t".into())
        );
        let t = &cache.tokens["repository:a:pull"];
        assert!(t.expires <= Instant::now() + MAX_TOKEN_REUSE, "reuse is capped");
        cache.put("repository:b:pull", Secret::new("u"), 0);
        assert!(
            cache.get("repository:b:pull").is_some(),
            "a zero lifetime still counts 20 s"
        );
    }

    #[test]
    fn docker_config_auths_entry_is_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"reg.example:5000":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
        let c = docker_config_credentials(&path, "reg.example:5000").unwrap().unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password.expose(), "s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(docker_config_credentials(&path, "other:5000").unwrap().is_none());
        assert!(docker_config_credentials(&path, "reg.example").unwrap().is_none());
        assert!(
            docker_config_credentials(&dir.path().join("missing.json"), "x")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn host_keys_match_ignoring_scheme_path_and_default_port() {
        assert_eq!(registry_key("https://Reg.Example:443/v1/"), "reg.example");
        assert_eq!(registry_key("reg.example:443"), "reg.example");
        assert_eq!(registry_key("http://reg.example:80"), "reg.example");
        assert_eq!(registry_key("http://reg.example:443"), "reg.example:443");
        assert_eq!(registry_key("docker-registry:5000"), "docker-registry:5000");
        let auth = base64::engine::general_purpose::STANDARD.encode("u:p:with:colons");
        let json: serde_json::Value = serde_json::json!({"auths": {
            "https://docker-registry:5000/": {"auth": auth},
            "quay.io:443": {"username": "q", "password": "qp"},
            "acr.azurecr.io": {"auth": base64::engine::general_purpose::STANDARD.encode("00000000-0000-0000-0000-000000000000:"), "identitytoken": "refresh-secret"},
            "empty.example": {}
        }});
        let c = docker_config_auths(&json, "docker-registry:5000", "secret x")
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("u", "p:with:colons"));
        let c = docker_config_auths(&json, "quay.io", "secret x").unwrap().unwrap();
        assert_eq!(c.username, "q");
        assert!(
            docker_config_auths(&json, "docker-registry:5001", "secret x")
                .unwrap()
                .is_none()
        );
        // `az acr login`: a placeholder `auth` and the identity token, which wins.
        let c = docker_config_auths(&json, "acr.azurecr.io", "secret x")
            .unwrap()
            .unwrap();
        assert!(
            c.is_identity_token() && c.password.expose() == "refresh-secret",
            "{c:?}"
        );
        assert!(!format!("{c:?}").contains("refresh-secret"));
        let e = docker_config_auths(&json, "empty.example", "secret x").unwrap_err();
        assert!(e.starts_with("secret x: auths.empty.example"), "{e}");
    }

    #[test]
    fn a_failing_credential_helper_shows_its_message() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-failing");
        std::fs::write(
            &helper,
            "#!/bin/sh\necho 'credentials not found in native keychain' >&2\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = run_helper(helper.to_str().unwrap(), "reg.example").unwrap_err();
        assert!(e.contains("credentials not found in native keychain"), "{e}");
    }
}
