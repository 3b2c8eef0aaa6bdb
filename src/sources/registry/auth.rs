//! Registry credentials and the auth handshake: anonymous, Basic, and the Bearer token flow
//! from `WWW-Authenticate` (realm/service/scope) with per-scope token reuse. Credentials come
//! from settings or from `~/.docker/config.json` (`auths`, `credHelpers`, `credsStore`).

use crate::model::secret::Secret;
use base64::Engine as _;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Username and password; the password never appears in Debug output.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
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
    pub fn put(&mut self, scope: &str, value: Secret, expires_in: u64) {
        let expires = Instant::now() + Duration::from_secs(expires_in.max(20));
        self.tokens.insert(scope.to_string(), Token { value, expires });
    }
    pub fn forget(&mut self, scope: &str) {
        self.tokens.remove(scope);
    }
}

/// Credentials for `registry` (host[:port]) from a Docker config file: a `credHelpers` entry,
/// then `credsStore`, then a base64 `auths` entry. Errors are reasons, never secrets.
pub fn docker_config_credentials(config: &Path, registry: &str) -> Result<Option<Credentials>, String> {
    let text = match std::fs::read_to_string(config) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", config.display())),
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", config.display()))?;
    let keys = [
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if let Some(helper) = keys.iter().find_map(|k| json["credHelpers"][k].as_str()) {
        return credential_helper(helper, registry).map(Some);
    }
    for k in &keys {
        let entry = &json["auths"][k];
        if let Some(auth) = entry["auth"].as_str() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| format!("{}: auths.{k}.auth is not base64", config.display()))?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| format!("{}: auths.{k}.auth is not UTF-8", config.display()))?;
            let (u, p) = decoded
                .split_once(':')
                .ok_or_else(|| format!("{}: auths.{k}.auth is not user:password", config.display()))?;
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
    }
    if let Some(store) = json["credsStore"].as_str() {
        return credential_helper(store, registry).map(Some);
    }
    Ok(None)
}

/// Runs `docker-credential-<helper> get` with the registry on stdin (the helper protocol).
fn credential_helper(helper: &str, registry: &str) -> Result<Credentials, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("running {program}: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(registry.as_bytes())
        .map_err(|e| format!("writing to {program}: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("running {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{program} found no credentials for {registry}"));
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
        assert!(
            docker_config_credentials(&dir.path().join("missing.json"), "x")
                .unwrap()
                .is_none()
        );
    }
}
