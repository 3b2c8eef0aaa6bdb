//! Reads Keycloak users (realm `DominoRealm` by default) through the admin API, paging, with an
//! admin token that is cached and refreshed before it expires. Owns the Keycloak settings;
//! never prints the password.

use crate::model::ObjectId;
use crate::model::users::KeycloakUser;
use ::keycloak::prelude::reqwest;
use ::keycloak::{KeycloakAdmin, KeycloakAdminToken, KeycloakError, KeycloakTokenSupplier};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// `keycloak:` in config.yaml; `host` from `KEYCLOAK_HOST`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct KeycloakSettings {
    /// e.g. `https://keycloak.example.com/auth/` or `http://127.0.0.1:8080`.
    pub host: String,
    pub realm: String,
    /// Realm the admin logs in to.
    pub admin_realm: String,
    pub client_id: String,
    pub username: String,
    #[serde(skip_serializing)]
    pub password: Option<String>,
    pub page_size: i32,
    pub timeout_secs: u64,
    /// `--ca-cert` / `registry.ca_cert`: a PEM CA trusted besides the system roots (a
    /// Keycloak behind an internal CA).
    pub ca_cert: Option<std::path::PathBuf>,
    /// `--insecure` / `registry.insecure`: skip certificate verification.
    pub insecure: bool,
}

impl Default for KeycloakSettings {
    fn default() -> Self {
        KeycloakSettings {
            host: String::new(),
            realm: "DominoRealm".into(),
            admin_realm: "master".into(),
            client_id: "admin-cli".into(),
            username: "admin".into(),
            password: None,
            page_size: 100,
            timeout_secs: 15,
            ca_cert: None,
            insecure: false,
        }
    }
}

impl std::fmt::Debug for KeycloakSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeycloakSettings")
            .field("host", &self.host)
            .field("realm", &self.realm)
            .field("admin_realm", &self.admin_realm)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("page_size", &self.page_size)
            .field("ca_cert", &self.ca_cert)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl KeycloakSettings {
    /// Base URL without a trailing slash; `…/auth/` keeps `/auth` (Keycloak before 17).
    pub fn base_url(&self) -> String {
        self.host.trim_end_matches('/').to_string()
    }
}

/// An admin token that is fetched on first use, reused, and fetched again shortly before it
/// expires (Keycloak's master realm default lifespan is 60 s; a long run outlives it).
pub struct CachedToken {
    settings: KeycloakSettings,
    client: reqwest::Client,
    cached: Mutex<Option<(String, Instant)>>,
    /// How many tokens were acquired (tests prove refresh with it).
    pub acquired: std::sync::atomic::AtomicUsize,
}

impl CachedToken {
    pub fn new(settings: KeycloakSettings, client: reqwest::Client) -> Self {
        CachedToken {
            settings,
            client,
            cached: Mutex::new(None),
            acquired: 0.into(),
        }
    }

    async fn token(&self, url: &str) -> Result<String, KeycloakError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, refresh_at)) = cached.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let s = &self.settings;
        let password = s.password.as_deref().unwrap_or_default();
        let t = KeycloakAdminToken::acquire_custom_realm(
            url,
            &s.username,
            password,
            &s.admin_realm,
            &s.client_id,
            "password",
            &self.client,
        )
        .await?;
        self.acquired.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = t.access_token().to_string();
        *cached = Some((token.clone(), refresh_at(Instant::now(), t.expires_in())));
        Ok(token)
    }
}

/// The longest an admin token is reused, whatever lifespan the server claims.
const MAX_TOKEN_REUSE: Duration = Duration::from_secs(3600);

/// When to fetch a new token: at 80% of the lifespan, at least a second early, so a request
/// never carries a token that expires on the way. A huge (hostile or broken) `expires_in` is
/// capped at [`MAX_TOKEN_REUSE`] instead of overflowing the clock.
fn refresh_at(now: Instant, expires_in: usize) -> Instant {
    let life = Duration::from_secs(u64::try_from(expires_in).unwrap_or(u64::MAX)).min(MAX_TOKEN_REUSE);
    let margin = (life / 5).max(Duration::from_secs(1)).min(life);
    now.checked_add(life - margin).unwrap_or(now)
}

/// Shared handle so the directory can still see the supplier after handing it to the client.
#[derive(Clone)]
pub struct SharedToken(pub Arc<CachedToken>);

#[async_trait::async_trait]
impl KeycloakTokenSupplier for SharedToken {
    async fn get(&self, url: &str) -> Result<String, KeycloakError> {
        self.0.token(url).await
    }
}

/// Why the Keycloak source failed; every message names the setting to check (password
/// redacted).
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("keycloak: no host configured (set KEYCLOAK_HOST or keycloak.host)")]
    NoHost,
    #[error("keycloak: no admin password configured (set KEYCLOAK_PASSWORD)")]
    NoPassword,
    #[error("keycloak: cannot build an HTTP client: {0}")]
    Client(String),
    /// Reading users failed; `status` is the HTTP status when there was one.
    #[error("{message}")]
    Read { status: Option<u16>, message: String },
}

/// The HTTP client, trusting what the registry trusts: the same `--ca-cert` and `--insecure`,
/// since an install with an internal CA signs Keycloak's certificate with it too.
fn http_client(s: &KeycloakSettings) -> Result<reqwest::Client, DirectoryError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_secs(s.timeout_secs))
        .danger_accept_invalid_certs(s.insecure);
    if let Some(path) = &s.ca_cert {
        let pem = std::fs::read(path).map_err(|e| {
            DirectoryError::Client(format!(
                "reading CA certificate {} (--ca-cert / registry.ca_cert): {e}",
                path.display()
            ))
        })?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
            DirectoryError::Client(format!(
                "CA certificate {} (--ca-cert / registry.ca_cert) is not valid PEM: {e}",
                path.display()
            ))
        })?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|e| DirectoryError::Client(e.to_string()))
}

/// A connected admin client; keep it to read users more than once.
pub struct Directory {
    admin: KeycloakAdmin<SharedToken>,
    token: Arc<CachedToken>,
    settings: KeycloakSettings,
    max_users: usize,
}

/// More users than this in one realm means the server is not paging (or is hostile): reading
/// stops with an error rather than loop or fill memory.
pub const MAX_USERS: usize = 1_000_000;

impl Directory {
    pub fn new(settings: &KeycloakSettings) -> Result<Directory, DirectoryError> {
        if settings.host.is_empty() {
            return Err(DirectoryError::NoHost);
        }
        if settings.password.is_none() {
            return Err(DirectoryError::NoPassword);
        }
        let client = http_client(settings)?;
        let token = Arc::new(CachedToken::new(settings.clone(), client.clone()));
        let admin = KeycloakAdmin::new(&settings.base_url(), SharedToken(token.clone()), client);
        Ok(Directory {
            admin,
            token,
            settings: settings.clone(),
            max_users: MAX_USERS,
        })
    }

    /// Lowers the user cap (tests; the default is [`MAX_USERS`]).
    pub fn with_max_users(mut self, max_users: usize) -> Directory {
        self.max_users = max_users;
        self
    }

    /// Acquires an admin token, nothing more (`doctor`).
    pub async fn check_token(&self) -> Result<(), DirectoryError> {
        self.token
            .token(&self.settings.base_url())
            .await
            .map(|_| ())
            .map_err(|e| describe(&self.settings, e))
    }

    /// Tokens acquired so far.
    pub fn tokens_acquired(&self) -> usize {
        self.token.acquired.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every user of the realm, page by page. Fails closed when paging never ends: a page that
    /// repeats the previous one (the server ignores `first`), or more than `max_users` users.
    /// Offset paging over a list that changes meanwhile skips or repeats users (one added or
    /// removed before the current offset shifts every later page): after each pass the users
    /// are counted (`users/count`), and a pass that saw a user id twice or a number of distinct
    /// users other than that count is read again, up to `PAGING_PASSES` times, then refused.
    /// (An addition and a removal both before the offset cancel out and are not detected.)
    pub async fn users(&self) -> Result<Vec<KeycloakUser>, DirectoryError> {
        let s = &self.settings;
        let mut last = String::new();
        for _ in 0..PAGING_PASSES {
            let (users, seen) = self.users_once().await?;
            let count = self
                .admin
                .realm_users_count_get(
                    &s.realm, None, None, None, None, None, None, None, None, None, None, None, None, None,
                )
                .await
                .map_err(|e| describe(s, e))?;
            match (seen.repeated.as_deref(), seen.distinct()) {
                (None, n) if i64::from(count) == n as i64 => return Ok(users),
                (Some(id), n) => last = format!("user {id} came twice ({n} distinct users, {count} counted)"),
                (None, n) => last = format!("{n} distinct users read, {count} counted"),
            }
        }
        Err(paging_error(
            s,
            format!("the user list changed while it was read, {PAGING_PASSES} times (last: {last})"),
        ))
    }

    /// One pass over the pages: the users, and which user ids it saw.
    async fn users_once(&self) -> Result<(Vec<KeycloakUser>, Seen), DirectoryError> {
        let s = &self.settings;
        let page_size = s.page_size.max(1);
        let mut seen = Seen::default();
        let mut out = Vec::new();
        let mut first: i32 = 0;
        let mut previous_ids: Option<Vec<Option<String>>> = None;
        loop {
            let page = self
                .admin
                .realm_users_get(
                    &s.realm,
                    Some(false),
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    Some(first),
                    None,
                    None,
                    None,
                    None,
                    Some(page_size),
                    None,
                    None,
                    None,
                )
                .await
                .map_err(|e| describe(s, e))?;
            let n = page.len();
            let ids: Vec<Option<String>> = page.iter().map(|u| u.id.clone()).collect();
            if n > 0 && ids.iter().all(Option::is_some) && previous_ids.as_ref() == Some(&ids) {
                return Err(paging_error(
                    s,
                    format!("the page at first={first} repeats the previous page (the server ignores `first`)"),
                ));
            }
            previous_ids = Some(ids);
            for u in &page {
                match &u.id {
                    Some(id) if !seen.ids.insert(id.clone()) => {
                        seen.repeated.get_or_insert_with(|| id.clone());
                    }
                    Some(_) => {}
                    None => seen.without_id += 1,
                }
                let username = u.username.as_deref().unwrap_or_default();
                let enabled = u.enabled.unwrap_or(true);
                let values = u
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get("domino-user-id"))
                    .cloned()
                    .unwrap_or_default();
                let mut ids = Vec::new();
                for v in &values {
                    match ObjectId::parse(v) {
                        Ok(id) => ids.push(id),
                        // An enabled account whose id cannot be read might be the live account
                        // of a user whose old, disabled account carries the id: then that user
                        // would be taken for deactivated. Stop rather than guess.
                        Err(_) if enabled => {
                            return Err(DirectoryError::Read {
                                status: None,
                                message: format!(
                                    "keycloak: enabled user '{username}' has domino-user-id {v:?}, which is not a 24-hex ObjectId; deactivation cannot be decided while it is unreadable (fix the attribute)"
                                ),
                            });
                        }
                        // A disabled account's unreadable id deactivates nobody.
                        Err(_) => {}
                    }
                }
                if ids.is_empty() {
                    out.push(KeycloakUser {
                        username: username.to_string(),
                        domino_id: None,
                        enabled,
                    });
                }
                // Every value counts (an account may carry more than one id).
                for id in ids {
                    out.push(KeycloakUser {
                        username: username.to_string(),
                        domino_id: Some(id),
                        enabled,
                    });
                }
            }
            if n < page_size as usize {
                return Ok((out, seen));
            }
            if out.len() > self.max_users {
                return Err(paging_error(
                    s,
                    format!("more than {} users and every page is full", self.max_users),
                ));
            }
            first = first
                .checked_add(page_size)
                .ok_or_else(|| paging_error(s, format!("the page offset passed {}", i32::MAX)))?;
        }
    }
}

/// Passes over the user pages before a list that keeps changing is refused.
const PAGING_PASSES: usize = 3;

/// The user ids one pass saw.
#[derive(Default)]
struct Seen {
    ids: std::collections::HashSet<String>,
    /// Users without an id (each counts as one).
    without_id: usize,
    /// The first id seen twice.
    repeated: Option<String>,
}

impl Seen {
    fn distinct(&self) -> usize {
        self.ids.len() + self.without_id
    }
}

/// Paging that does not end is refused: the user list would be incomplete or unbounded, and
/// a protection computed from it could not be trusted.
fn paging_error(s: &KeycloakSettings, why: String) -> DirectoryError {
    DirectoryError::Read {
        status: None,
        message: format!(
            "keycloak: reading users of realm {} at {} stopped: {why}; refusing to continue (check the Keycloak server)",
            s.realm,
            s.base_url()
        ),
    }
}

fn describe(s: &KeycloakSettings, e: KeycloakError) -> DirectoryError {
    let status = match &e {
        KeycloakError::HttpFailure { status, .. } => Some(*status),
        KeycloakError::ReqwestFailure(_) => None,
    };
    let hint = match &e {
        KeycloakError::HttpFailure { status: 401, .. } => "check KEYCLOAK_USERNAME/KEYCLOAK_PASSWORD",
        KeycloakError::HttpFailure { status: 404, .. } => {
            "check KEYCLOAK_HOST (with or without /auth) and keycloak.realm"
        }
        KeycloakError::HttpFailure { .. } => "check the Keycloak server",
        KeycloakError::ReqwestFailure(_) => "check KEYCLOAK_HOST",
    };
    let mut text = format!(
        "keycloak: reading users of realm {} at {} failed ({hint}): {e}",
        s.realm,
        s.base_url()
    );
    if let Some(p) = s.password.as_deref().filter(|p| !p.is_empty()) {
        text = text.replace(p, "<redacted>");
    }
    DirectoryError::Read { status, message: text }
}

/// Connects and reads every user. `KEYCLOAK_HOST` may be given with or without the `/auth`
/// path Keycloak used before version 17: when the server answers 404, the other form is tried.
pub async fn load(settings: &KeycloakSettings) -> Result<Vec<KeycloakUser>, DirectoryError> {
    match Directory::new(settings)?.users().await {
        Err(e @ DirectoryError::Read { status: Some(404), .. }) => {
            let base = settings.base_url();
            let other = match base.strip_suffix("/auth") {
                Some(root) => root.to_string(),
                None => format!("{base}/auth"),
            };
            let retry = KeycloakSettings {
                host: other,
                ..settings.clone()
            };
            Directory::new(&retry)?.users().await.map_err(|_| e)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_token_lifespan_is_capped_instead_of_overflowing_the_clock() {
        let now = Instant::now();
        assert!(refresh_at(now, usize::MAX) <= now + MAX_TOKEN_REUSE);
        assert!(refresh_at(now, usize::MAX) > now);
        assert_eq!(refresh_at(now, 60), now + Duration::from_secs(48));
        assert_eq!(refresh_at(now, 0), now);
    }
}
