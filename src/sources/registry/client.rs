//! The HTTP client: one keep-alive connection pool, bounded concurrency, per-request timeout,
//! retries with backoff for 5xx/429/transport errors honouring `Retry-After`, the auth
//! handshake on 401, and request counting for benchmarks.

use super::auth::{Challenge, Credentials, TokenCache, parse_challenge};
use super::manifest::ACCEPT_MANIFESTS;
use crate::model::secret::Secret;
use reqwest::{Method, StatusCode, header};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `http://host:port` or `https://host:port`, no trailing slash.
    pub base_url: String,
    pub credentials: Option<Credentials>,
    pub insecure: bool,
    pub ca_cert_pem: Option<Vec<u8>>,
    pub timeout: Duration,
    pub max_retries: u32,
    /// First retry delay; doubles each attempt (capped at 30 s).
    pub initial_backoff: Duration,
    pub concurrency: usize,
}

impl RegistryOptions {
    pub fn new(base_url: &str) -> Self {
        RegistryOptions {
            base_url: base_url.trim_end_matches('/').to_string(),
            credentials: None,
            insecure: false,
            ca_cert_pem: None,
            timeout: Duration::from_secs(30),
            max_retries: 3,
            initial_backoff: Duration::from_millis(200),
            concurrency: 8,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{what}: HTTP {status}{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Status {
        what: String,
        status: u16,
        code: Option<String>,
        message: String,
    },
    #[error("{what}: {message}")]
    Transport { what: String, message: String },
    #[error(
        "{what}: the registry requires credentials; set REGISTRY_USERNAME and REGISTRY_PASSWORD or log in with docker"
    )]
    NoCredentials { what: String },
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
}

impl RegistryError {
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// A manifest larger than this is broken: Distribution refuses to store one (its own 4 MiB
/// limit), so a registry that serves one is broken or hostile. Refused, never truncated.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// The largest blob [`RegistryClient::get_blob`] reads (image configs: a few KiB, rarely 1 MiB).
pub const MAX_CONFIG_BYTES: usize = 8 << 20;
/// The largest `_catalog` or `tags/list` page read (1000 names of at most 255 bytes: ~260 KiB).
pub const MAX_LIST_PAGE_BYTES: usize = 8 << 20;
/// The most pages one listing follows; more means the registry's `Link`s never end.
pub const MAX_LIST_PAGES: usize = 10_000;
/// The largest token server answer read.
pub const MAX_TOKEN_BYTES: usize = 1 << 20;
/// How much of an error body is kept (only its first error's code and message are used).
pub const MAX_ERROR_BYTES: usize = 8 << 10;
/// Redirects followed per request.
const MAX_REDIRECTS: usize = 10;

/// Distribution's error code for a manifest that does not exist.
pub const MANIFEST_UNKNOWN: &str = "MANIFEST_UNKNOWN";

/// What a manifest DELETE was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteAnswer {
    /// 202: the registry deleted it.
    Accepted,
    /// 404, with the error code when the body had one.
    NotFound { code: Option<String> },
}

/// Request counters, shared with whoever wants to report them.
#[derive(Debug, Default)]
pub struct RequestStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub manifest_gets: AtomicU64,
    pub manifest_heads: AtomicU64,
    pub blob_gets: AtomicU64,
    pub list_pages: AtomicU64,
    pub deletes: AtomicU64,
    /// Times the adaptive window was halved because the registry pushed back.
    pub concurrency_cuts: AtomicU64,
}

pub struct RegistryClient {
    http: reqwest::Client,
    base: String,
    /// The configured registry's scheme, host and port: the only place credentials go.
    origin: url::Origin,
    host: String,
    creds: Option<Credentials>,
    tokens: Mutex<TokenCache>,
    use_basic: AtomicBool,
    max_retries: u32,
    initial_backoff: Duration,
    limiter: Semaphore,
    window: Window,
    pub stats: Arc<RequestStats>,
}

/// Adaptive concurrency (AIMD): start at the configured maximum, halve on 429/503 or when
/// latency grows far past the best seen, and add one slot back after a window's worth of
/// healthy requests. Slots are taken away by forgetting permits as requests finish.
#[derive(Debug)]
struct Window {
    max: usize,
    limit: AtomicUsize,
    /// Permits to forget instead of returning (a decrease not yet applied).
    debt: AtomicUsize,
    healthy: AtomicUsize,
    /// Best and smoothed latency in microseconds.
    best_us: AtomicU64,
    ewma_us: AtomicU64,
    last_cut: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Window {
    fn new(max: usize) -> Window {
        Window {
            max,
            limit: AtomicUsize::new(max),
            debt: AtomicUsize::new(0),
            healthy: AtomicUsize::new(0),
            best_us: AtomicU64::new(u64::MAX),
            ewma_us: AtomicU64::new(0),
            last_cut: std::sync::Mutex::new(None),
        }
    }

    /// Called once per finished request with its outcome and latency.
    fn observe(&self, limiter: &Semaphore, stats: &RequestStats, throttled: bool, latency: Duration) {
        let us = latency.as_micros().min(u64::MAX as u128) as u64;
        self.best_us.fetch_min(us.max(1), Ordering::Relaxed);
        let ewma = self.ewma_us.load(Ordering::Relaxed);
        let ewma = if ewma == 0 { us } else { (ewma * 7 + us) / 8 };
        self.ewma_us.store(ewma, Ordering::Relaxed);
        let slow = ewma > self.best_us.load(Ordering::Relaxed).saturating_mul(8) && ewma > 50_000;
        if throttled || slow {
            self.cut(limiter, stats);
        } else if self.healthy.fetch_add(1, Ordering::Relaxed) + 1 >= self.limit.load(Ordering::Relaxed) * 4 {
            // Every change of `limit` happens under the same lock as `cut`, so the number of
            // permits in existence (available + held - debt) always equals `limit` (≥ 1).
            let _guard = self.last_cut.lock().expect("window lock");
            self.healthy.store(0, Ordering::Relaxed);
            let cur = self.limit.load(Ordering::Relaxed);
            if cur < self.max && self.debt.load(Ordering::Relaxed) == 0 {
                self.limit.store(cur + 1, Ordering::Relaxed);
                limiter.add_permits(1);
            }
        }
    }

    /// Halves the window, at most once per 500 ms so one burst of 429s counts once.
    fn cut(&self, limiter: &Semaphore, stats: &RequestStats) {
        let mut last = self.last_cut.lock().expect("window lock");
        if last.is_some_and(|t| t.elapsed() < Duration::from_millis(500)) {
            return;
        }
        *last = Some(std::time::Instant::now());
        let cur = self.limit.load(Ordering::Relaxed);
        let new = (cur / 2).max(1);
        if new < cur {
            self.limit.store(new, Ordering::Relaxed);
            let forgotten = limiter.forget_permits(cur - new);
            self.debt.fetch_add(cur - new - forgotten, Ordering::Relaxed);
            stats.concurrency_cuts.fetch_add(1, Ordering::Relaxed);
            tracing::info!(from = cur, to = new, "registry is pushing back; lowering concurrency");
        }
        self.healthy.store(0, Ordering::Relaxed);
    }

    /// Whether a finished request's permit should be forgotten to pay a decrease.
    fn take_debt(&self) -> bool {
        self.debt
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| d.checked_sub(1))
            .is_ok()
    }
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A successful manifest GET.
#[derive(Debug, Clone)]
pub struct ManifestResponse {
    pub digest: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl RegistryClient {
    pub fn new(opts: RegistryOptions) -> Result<Self, RegistryError> {
        let what = || format!("configuring the HTTP client for {}", opts.base_url);
        let base_url = url::Url::parse(&opts.base_url).map_err(|e| RegistryError::Invalid {
            what: what(),
            message: format!("not a URL: {e}"),
        })?;
        let origin = base_url.origin();
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(redirect_policy())
            .timeout(opts.timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(opts.concurrency.max(1) * 2)
            .user_agent(concat!("registry-cleaner/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(opts.insecure);
        if let Some(pem) = &opts.ca_cert_pem {
            let cert = reqwest::Certificate::from_pem(pem).map_err(|e| RegistryError::Invalid {
                what: what(),
                message: format!("CA certificate is not valid PEM: {e}"),
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| RegistryError::Invalid {
            what: what(),
            message: e.to_string(),
        })?;
        let host = opts.base_url.split("://").nth(1).unwrap_or(&opts.base_url).to_string();
        Ok(RegistryClient {
            http,
            base: opts.base_url,
            origin,
            host,
            creds: opts.credentials,
            tokens: Mutex::new(TokenCache::default()),
            use_basic: AtomicBool::new(false),
            max_retries: opts.max_retries,
            initial_backoff: opts.initial_backoff,
            limiter: Semaphore::new(opts.concurrency.max(1)),
            window: Window::new(opts.concurrency.max(1)),
            stats: Arc::new(RequestStats::default()),
        })
    }

    /// The concurrency the adaptive window currently allows.
    pub fn current_concurrency(&self) -> usize {
        self.window.limit.load(Ordering::Relaxed)
    }

    /// `host:port` as shown in reports.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `GET /v2/`: reachable, speaks the API, and our credentials (if needed) work.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        self.send(Method::GET, "/v2/", "", None, None, "probing /v2/")
            .await
            .map(|_| ())
    }

    /// Every repository in `_catalog`, following `Link` pagination.
    pub async fn catalog(&self) -> Result<Vec<String>, RegistryError> {
        self.paginated(
            "/v2/_catalog?n=1000",
            "registry:catalog:*",
            "repositories",
            "listing repositories",
        )
        .await
    }

    /// Every tag of `repo`, following `Link` pagination (pages of 1000). A repository that
    /// does not exist has no tags.
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>, RegistryError> {
        let path = format!("/v2/{}/tags/list?n=1000", enc_repo(repo));
        match self
            .paginated(&path, &pull_scope(repo), "tags", &format!("listing tags of {repo}"))
            .await
        {
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            other => other,
        }
    }

    /// GETs a manifest by tag or digest; the digest is the SHA-256 of the body, checked
    /// against `Docker-Content-Digest` when the registry sends it.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<ManifestResponse, RegistryError> {
        let what = format!("reading manifest {repo}:{reference}");
        self.stats.manifest_gets.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .send(
                Method::GET,
                &format!("/v2/{}/manifests/{}", enc_repo(repo), enc_ref(reference)),
                &pull_scope(repo),
                Some(ACCEPT_MANIFESTS),
                None,
                &what,
            )
            .await?;
        let header_digest = header_str(&resp, "docker-content-digest");
        let content_type = header_str(&resp, "content-type");
        let body = read_capped(resp, MAX_MANIFEST_BYTES, "manifest", &what).await?;
        let digest = crate::model::digest::sha256_digest(&body);
        if let Some(h) = header_digest
            && h != digest
            && h.starts_with("sha256:")
        {
            return Err(RegistryError::Invalid {
                what,
                message: format!("body digest {digest} differs from Docker-Content-Digest {h}"),
            });
        }
        Ok(ManifestResponse {
            digest,
            content_type,
            body,
        })
    }

    /// HEADs a manifest: its digest, or `None` when the tag or digest does not exist.
    pub async fn head_manifest(&self, repo: &str, reference: &str) -> Result<Option<String>, RegistryError> {
        let what = format!("resolving {repo}:{reference}");
        self.stats.manifest_heads.fetch_add(1, Ordering::Relaxed);
        let path = format!("/v2/{}/manifests/{}", enc_repo(repo), enc_ref(reference));
        match self
            .send(
                Method::HEAD,
                &path,
                &pull_scope(repo),
                Some(ACCEPT_MANIFESTS),
                None,
                &what,
            )
            .await
        {
            Ok(resp) => header_str(&resp, "docker-content-digest")
                .map(Some)
                .ok_or_else(|| RegistryError::Invalid {
                    what,
                    message: "no Docker-Content-Digest header".into(),
                }),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GETs a small blob (an image config), at most [`MAX_CONFIG_BYTES`]; a larger one is an
    /// error, never truncated.
    pub async fn get_blob(&self, repo: &str, digest: &str) -> Result<Vec<u8>, RegistryError> {
        let what = format!("reading blob {digest} of {repo}");
        self.stats.blob_gets.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .send(
                Method::GET,
                &format!("/v2/{}/blobs/{}", enc_repo(repo), enc_ref(digest)),
                &pull_scope(repo),
                None,
                None,
                &what,
            )
            .await?;
        read_capped(resp, MAX_CONFIG_BYTES, "blob", &what).await
    }

    /// Whether a blob exists in `repo`.
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool, RegistryError> {
        let what = format!("checking blob {digest} of {repo}");
        match self
            .send(
                Method::HEAD,
                &format!("/v2/{}/blobs/{}", enc_repo(repo), enc_ref(digest)),
                &pull_scope(repo),
                None,
                None,
                &what,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes a manifest by digest. `Ok(false)`: the registry answered 404 (which alone does
    /// not prove it is gone: see [`RegistryClient::manifest_gone`]); 405 means deletes are off.
    pub async fn delete_manifest(&self, repo: &str, digest: &str) -> Result<bool, RegistryError> {
        match self.delete_manifest_answer(repo, digest).await? {
            DeleteAnswer::Accepted => Ok(true),
            DeleteAnswer::NotFound { .. } => Ok(false),
        }
    }

    /// Deletes a manifest by digest and says exactly what the registry answered.
    pub async fn delete_manifest_answer(&self, repo: &str, digest: &str) -> Result<DeleteAnswer, RegistryError> {
        let what = format!("deleting manifest {repo}@{digest}");
        self.stats.deletes.fetch_add(1, Ordering::Relaxed);
        let scope = format!("repository:{repo}:delete");
        match self
            .send(
                Method::DELETE,
                &format!("/v2/{}/manifests/{}", enc_repo(repo), enc_ref(digest)),
                &scope,
                None,
                None,
                &what,
            )
            .await
        {
            Ok(_) => Ok(DeleteAnswer::Accepted),
            Err(RegistryError::Status { status: 404, code, .. }) => Ok(DeleteAnswer::NotFound { code }),
            Err(e) => Err(e),
        }
    }

    /// Whether the registry confirms a manifest is gone: a GET by digest answers 404 with the
    /// error code `MANIFEST_UNKNOWN`. `Ok(false)`: it is still served. A bare 404 (no code, or
    /// another code) or any other failure is an error: absence is never inferred.
    pub async fn manifest_gone(&self, repo: &str, digest: &str) -> Result<bool, RegistryError> {
        match self.get_manifest(repo, digest).await {
            Ok(_) => Ok(false),
            Err(RegistryError::Status {
                status: 404,
                code: Some(c),
                ..
            }) if c == MANIFEST_UNKNOWN => Ok(true),
            Err(RegistryError::Status {
                status: 404,
                code,
                what,
                message,
            }) => Err(RegistryError::Invalid {
                what,
                message: format!(
                    "404 without MANIFEST_UNKNOWN (code {}: {message}): the registry does not confirm the manifest is gone",
                    code.as_deref().unwrap_or("none")
                ),
            }),
            Err(e) => Err(e),
        }
    }

    /// Uploads a blob unless the repository already has it (monolithic POST + PUT). Besides
    /// DELETE, the product writes only the 2-byte empty config of an untag's throwaway
    /// (`ops::untag`); the test kit builds worlds with it.
    pub async fn push_blob(&self, repo: &str, digest: &str, bytes: Vec<u8>) -> Result<(), RegistryError> {
        if self.blob_exists(repo, digest).await? {
            return Ok(());
        }
        let what = format!("uploading blob {digest} to {repo}");
        let scope = format!("repository:{repo}:pull,push");
        let resp = self
            .send(
                Method::POST,
                &format!("/v2/{}/blobs/uploads/", enc_repo(repo)),
                &scope,
                None,
                None,
                &what,
            )
            .await?;
        let location = header_str(&resp, "location").ok_or_else(|| RegistryError::Invalid {
            what: what.clone(),
            message: "upload has no Location".into(),
        })?;
        let sep = if location.contains('?') { '&' } else { '?' };
        let target = format!("{location}{sep}digest={digest}");
        self.send(
            Method::PUT,
            &target,
            &scope,
            None,
            Some((bytes, "application/octet-stream")),
            &what,
        )
        .await?;
        Ok(())
    }

    /// Puts a manifest under `reference` (a tag or its digest) and returns its digest (an
    /// untag's throwaway; the test kit's worlds).
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: Vec<u8>,
    ) -> Result<String, RegistryError> {
        let what = format!("pushing manifest {repo}:{reference}");
        let digest = crate::model::digest::sha256_digest(&body);
        let scope = format!("repository:{repo}:pull,push");
        self.send(
            Method::PUT,
            &format!("/v2/{}/manifests/{}", enc_repo(repo), enc_ref(reference)),
            &scope,
            None,
            Some((body, media_type)),
            &what,
        )
        .await?;
        Ok(digest)
    }

    /// Follows `Link: <…>; rel="next"` pages. Fails closed (never a partial list) when a link
    /// leaves the registry's origin, points back at a page already read, or the pages exceed
    /// [`MAX_LIST_PAGES`].
    async fn paginated(&self, first: &str, scope: &str, field: &str, what: &str) -> Result<Vec<String>, RegistryError> {
        let invalid = |message: String| RegistryError::Invalid {
            what: what.to_string(),
            message,
        };
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut next = Some(first.to_string());
        while let Some(path) = next.take() {
            let url = self.url_for(&path);
            if !self.is_registry_origin(&url) {
                return Err(invalid(format!(
                    "refusing to follow a Link to {} (not the registry {})",
                    origin_of(&url),
                    self.origin.ascii_serialization()
                )));
            }
            if !seen.insert(url) {
                return Err(invalid(format!(
                    "the registry's Link points back at a page already read ({path}); refusing to loop"
                )));
            }
            if seen.len() > MAX_LIST_PAGES {
                return Err(invalid(format!(
                    "more than {MAX_LIST_PAGES} pages; refusing to follow the registry's Links further"
                )));
            }
            self.stats.list_pages.fetch_add(1, Ordering::Relaxed);
            let resp = self.send(Method::GET, &path, scope, None, None, what).await?;
            next = header_str(&resp, "link").and_then(|l| next_link(&l));
            let bytes = read_capped(resp, MAX_LIST_PAGE_BYTES, "list page", what).await?;
            let body: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| invalid(format!("the page is not JSON: {e}")))?;
            // Distribution answers `null` for a repository whose tags are all deleted; an
            // answer without the field, or with anything but names in it, is not an empty
            // list (reading it as one would hide tags from the re-check).
            match body.get(field) {
                Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::Array(items)) => {
                    for v in items {
                        let name = v
                            .as_str()
                            .ok_or_else(|| invalid(format!("`{field}` holds {v}, not a name")))?;
                        out.push(name.to_string());
                    }
                }
                Some(other) => return Err(invalid(format!("`{field}` is {other}, not a list"))),
                None => return Err(invalid(format!("the page has no `{field}` field"))),
            }
        }
        Ok(out)
    }

    /// The full URL of `path` (absolute `/v2/...` or already a full URL).
    fn url_for(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Whether `url` has the configured registry's scheme, host and port.
    fn is_registry_origin(&self, url: &str) -> bool {
        url::Url::parse(url).is_ok_and(|u| u.origin() == self.origin)
    }

    /// One request with auth and retries. `path` is absolute (`/v2/...`) or a full URL (upload
    /// locations may be either).
    async fn send(
        &self,
        method: Method,
        path: &str,
        scope: &str,
        accept: Option<&str>,
        body: Option<(Vec<u8>, &str)>,
        what: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = self.url_for(path);
        // An absolute URL elsewhere (an upload Location on another host) gets no credentials,
        // and its 401 is not answered with them.
        let ours = self.is_registry_origin(&url);
        let mut attempt = 0u32;
        let mut auth_retried = false;
        loop {
            let result = {
                let permit = self.limiter.acquire().await.expect("semaphore never closed");
                let started = std::time::Instant::now();
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                let mut rb = self.http.request(method.clone(), &url);
                if let Some(a) = accept {
                    rb = rb.header(header::ACCEPT, a);
                }
                if let Some((bytes, ct)) = &body {
                    rb = rb.header(header::CONTENT_TYPE, *ct).body(bytes.clone());
                } else if method == Method::PUT || method == Method::POST {
                    rb = rb.header(header::CONTENT_LENGTH, 0);
                }
                if ours {
                    rb = self.authorize(rb, scope);
                }
                let r = rb.send().await;
                let throttled = match &r {
                    Ok(resp) => matches!(
                        resp.status(),
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                    ),
                    Err(e) => e.is_timeout(),
                };
                self.window
                    .observe(&self.limiter, &self.stats, throttled, started.elapsed());
                if self.window.take_debt() {
                    permit.forget();
                }
                r
            };
            let retry_after = match result {
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_success() {
                        return Ok(resp);
                    }
                    if status == StatusCode::UNAUTHORIZED && !ours {
                        return Err(RegistryError::Invalid {
                            what: what.to_string(),
                            message: format!(
                                "{} asks for credentials, but it is not the registry {}; refusing to send them",
                                origin_of(&url),
                                self.origin.ascii_serialization()
                            ),
                        });
                    }
                    if status == StatusCode::UNAUTHORIZED && !auth_retried {
                        auth_retried = true;
                        let challenge = header_str(&resp, "www-authenticate");
                        self.handle_challenge(challenge.as_deref(), scope, what).await?;
                        continue;
                    }
                    if !(status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error())
                        || attempt >= self.max_retries
                    {
                        return Err(status_error(resp, what).await);
                    }
                    header_str(&resp, "retry-after")
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .map(Duration::from_secs)
                }
                Err(e) => {
                    if attempt >= self.max_retries || e.is_builder() || e.is_redirect() {
                        return Err(transport(what, &e));
                    }
                    None
                }
            };
            attempt += 1;
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            let backoff = self
                .initial_backoff
                .saturating_mul(1 << (attempt - 1).min(8))
                .min(Duration::from_secs(30));
            let delay = retry_after.map_or(backoff, |r| r.min(Duration::from_secs(60)));
            tracing::debug!(what, attempt, ?delay, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    fn authorize(&self, rb: reqwest::RequestBuilder, scope: &str) -> reqwest::RequestBuilder {
        if let Some(token) = self.tokens.lock().expect("token cache lock").get(scope) {
            return rb.bearer_auth(token.expose());
        }
        match (&self.creds, self.use_basic.load(Ordering::Relaxed)) {
            (Some(c), true) => rb.basic_auth(&c.username, Some(c.password.expose())),
            _ => rb,
        }
    }

    async fn handle_challenge(&self, header: Option<&str>, scope: &str, what: &str) -> Result<(), RegistryError> {
        let no_creds = || RegistryError::NoCredentials { what: what.to_string() };
        match header.and_then(parse_challenge) {
            Some(Challenge::Basic) => {
                if self.creds.is_none() {
                    return Err(no_creds());
                }
                if self.creds.as_ref().is_some_and(|c| c.is_identity_token()) {
                    return Err(RegistryError::Invalid {
                        what: what.to_string(),
                        message: "the registry asks for Basic auth, but the credentials are an identity token (usable only with token auth); give a username and password".into(),
                    });
                }
                self.use_basic.store(true, Ordering::Relaxed);
                Ok(())
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope: challenge_scope,
            }) => {
                self.tokens.lock().expect("token cache lock").forget(scope);
                let wanted = challenge_scope.unwrap_or_else(|| scope.to_string());
                let (token, expires_in) = self.fetch_token(&realm, service.as_deref(), &wanted, what).await?;
                self.tokens
                    .lock()
                    .expect("token cache lock")
                    .put(scope, token, expires_in);
                Ok(())
            }
            None => Err(no_creds()),
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        what: &str,
    ) -> Result<(Secret, u64), RegistryError> {
        let what = format!("{what}: getting a token from {realm}");
        let realm_url = url::Url::parse(realm).map_err(|e| RegistryError::Invalid {
            what: what.clone(),
            message: format!("the token realm is not a URL: {e}"),
        })?;
        // Basic credentials go to the realm only over https, or to the registry's own origin.
        let creds_allowed = realm_url.scheme() == "https" || realm_url.origin() == self.origin;
        if self.creds.is_some() && !creds_allowed {
            return Err(RegistryError::Invalid {
                what,
                message: format!(
                    "refusing to send the registry credentials to token realm {} over plain http: it is not the registry {} (the realm must use https or the registry's own origin)",
                    realm_url.origin().ascii_serialization(),
                    self.origin.ascii_serialization()
                ),
            });
        }
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = service {
            query.push(("service", s));
        }
        if !scope.is_empty() {
            query.push(("scope", scope));
        }
        let rb = match &self.creds {
            // OAuth2 refresh-token grant (Distribution's token spec, what `az acr login`'s
            // identity token is for): a POST form, the token never in a URL.
            Some(c) if c.is_identity_token() => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("client_id", "registry-cleaner"),
                    ("refresh_token", c.password.expose()),
                ];
                form.extend(query.iter().copied());
                self.http.post(realm).form(&form)
            }
            Some(c) => self
                .http
                .get(realm)
                .query(&query)
                .basic_auth(&c.username, Some(c.password.expose())),
            None => self.http.get(realm).query(&query),
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let resp = rb.send().await.map_err(|e| transport(&what, &e))?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &what).await);
        }
        let bytes = read_capped(resp, MAX_TOKEN_BYTES, "token response", &what).await?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Invalid {
            what: what.clone(),
            message: format!("the token response is not JSON: {e}"),
        })?;
        let token = v["token"]
            .as_str()
            .or_else(|| v["access_token"].as_str())
            .ok_or_else(|| RegistryError::Invalid {
                what: what.clone(),
                message: "token response has neither \"token\" nor \"access_token\"".into(),
            })?;
        Ok((Secret::new(token), v["expires_in"].as_u64().unwrap_or(60)))
    }
}

fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

fn header_str(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn transport(what: &str, e: &reqwest::Error) -> RegistryError {
    // reqwest's Display omits the cause ("error sending request"); walk the chain for it.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    RegistryError::Transport {
        what: what.to_string(),
        message,
    }
}

async fn status_error(resp: reqwest::Response, what: &str) -> RegistryError {
    let status = resp.status().as_u16();
    let text = String::from_utf8_lossy(&read_prefix(resp, MAX_ERROR_BYTES).await).into_owned();
    let parsed: Option<serde_json::Value> = serde_json::from_str(&text).ok();
    let first = parsed.as_ref().map(|v| &v["errors"][0]);
    let code = first.and_then(|e| e["code"].as_str()).map(str::to_string);
    let message = first
        .and_then(|e| e["message"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| text.chars().take(200).collect::<String>().trim().to_string());
    RegistryError::Status {
        what: what.to_string(),
        status,
        code,
        message,
    }
}

/// Reads a body of at most `cap` bytes, streaming: a `Content-Length` over the cap is refused
/// before reading, and a body that grows past it is refused as soon as it does. Never
/// truncates: `kind` (e.g. "manifest") names what was refused.
async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
    kind: &str,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    let too_big = |size: String| RegistryError::Invalid {
        what: what.to_string(),
        message: format!(
            "the {kind} is larger than the {} limit ({size}); refusing it",
            human_bytes(cap)
        ),
    };
    let declared = resp.content_length();
    if let Some(n) = declared
        && n > cap as u64
    {
        return Err(too_big(format!("Content-Length {n}")));
    }
    let mut body = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport(what, &e))? {
        if body.len() + chunk.len() > cap {
            return Err(too_big(format!("more than {cap} bytes read")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The first `cap` bytes of a body (error bodies: the rest is dropped with the connection).
async fn read_prefix(mut resp: reqwest::Response, cap: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = cap - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= cap {
            break;
        }
    }
    body
}

fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// `scheme://host:port` of a URL, for messages (never its path or query, which may be signed).
fn origin_of(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| "an unparsable URL".to_string(),
        |u| u.origin().ascii_serialization(),
    )
}

/// Redirects are followed within one origin. The one cross-origin hop followed is a blob GET
/// sent on to https storage (Distribution's S3/GCS/Azure drivers redirect to signed URLs);
/// reqwest drops `Authorization` when the host or port changes, so credentials stay home.
/// Anything else that changes origin is refused with an error.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(first) = attempt.previous().first() else {
            return attempt.follow();
        };
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let (from, to) = (first.origin(), attempt.url().origin());
        if from == to || (is_blob_path(first.path()) && attempt.url().scheme() == "https") {
            return attempt.follow();
        }
        let message = format!(
            "refusing to follow a redirect from {} to {} (another origin)",
            from.ascii_serialization(),
            to.ascii_serialization()
        );
        attempt.error(message)
    })
}

/// `/v2/<name>/blobs/<digest>` (not an upload).
fn is_blob_path(path: &str) -> bool {
    path.strip_prefix("/v2/")
        .and_then(|p| p.rsplit_once("/blobs/"))
        .is_some_and(|(name, digest)| !name.is_empty() && digest.contains(':') && !digest.contains('/'))
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .contains("rel=\"next\"")
            .then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

/// What the delete pipeline's last look needs beyond the scan's calls.
impl RegistryClient {
    /// Every tag of `repo`, where a 404 is an error (the scan's [`RegistryClient::tags`] reads
    /// it as "no tags"): right before a DELETE, not being able to list means not knowing.
    pub async fn tags_strict(&self, repo: &str) -> Result<Vec<String>, RegistryError> {
        let path = format!("/v2/{}/tags/list?n=1000", enc_repo(repo));
        self.paginated(&path, &pull_scope(repo), "tags", &format!("re-listing tags of {repo}"))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_is_read_from_the_link_header() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=demo%2Fapp&n=1>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=demo%2Fapp&n=1")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }
}

/// Percent-encodes each `/`-separated segment of a repository name for a URL path. Names are
/// validated before they get here; this makes sure no name can ever change the path's shape.
fn enc_repo(repo: &str) -> String {
    repo.split('/').map(enc_ref).collect::<Vec<_>>().join("/")
}

/// Percent-encodes a tag or digest as one path segment (`:` stays, as in `sha256:...`).
fn enc_ref(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod encoding_tests {
    use super::{enc_ref, enc_repo};

    #[test]
    fn crafted_names_cannot_change_the_path() {
        assert_eq!(enc_repo("dominodatalab/environment"), "dominodatalab/environment");
        assert_eq!(enc_ref("sha256:ab"), "sha256:ab");
        assert_eq!(enc_repo("a/manifests/sha256:00?x="), "a/manifests/sha256:00%3Fx%3D");
        assert_eq!(enc_ref("../x#y"), "..%2Fx%23y");
        assert_eq!(enc_ref("a b%"), "a%20b%25");
    }
}
