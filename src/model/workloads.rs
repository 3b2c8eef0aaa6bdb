//! Images that Kubernetes workloads run or will run (pods that are Pending or Running, and the
//! pod templates of controllers), each with the evidence of where it was seen. Pure parsing of
//! image references lives here so the Kubernetes adapter only maps objects to these values.

/// A parsed image reference: `[host/]repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ImageRef {
    /// Registry host (with port) when the reference names one.
    pub host: Option<String>,
    /// Path inside the registry, e.g. `dominodatalab/environment`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:…` when pinned by digest (spec) or resolved by the runtime (`imageID`).
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses a container image or a runtime `imageID` (`docker-pullable://…`, `docker://…`).
    /// Returns `None` for an empty string or a bare runtime id with no repository.
    pub fn parse(s: &str) -> Option<ImageRef> {
        let s = s.trim();
        let s = s.split_once("://").map_or(s, |(_, rest)| rest);
        // A bare runtime image id (`sha256:…`) names no repository.
        if s.starts_with("sha256:") {
            return None;
        }
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (s, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(name[last_slash + i + 1..].to_string())),
            None => (name, None),
        };
        if path.is_empty() || path.starts_with("sha256:") {
            return None;
        }
        let (host, repository) = split_host(path);
        Some(ImageRef {
            host,
            repository,
            tag,
            digest,
        })
    }

    /// Whether this reference names `repository` of our registry. Hosts are not compared: the
    /// same registry is reached under several names (service, cluster DNS, ingress), and
    /// protecting too much is the safe mistake.
    pub fn names_repository(&self, repository: &str) -> bool {
        self.repository == repository
    }
}

/// First path segment is a host when it looks like one (Docker's own rule).
fn split_host(path: &str) -> (Option<String>, String) {
    match path.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (Some(first.to_string()), rest.to_string())
        }
        _ => (None, path.to_string()),
    }
}

/// Where an image was seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    pub namespace: String,
    /// `Pod`, `Deployment`, `StatefulSet`, `DaemonSet`, `Job`, `CronJob`.
    pub kind: String,
    pub name: String,
    pub container: String,
    /// The kubeconfig context it was seen in, when several clusters are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}/{} container {}",
            self.kind, self.namespace, self.name, self.container
        )?;
        match &self.context {
            Some(c) => write!(f, " (context {c})"),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkloadImage {
    pub image: ImageRef,
    pub evidence: Evidence,
}

/// Everything the Kubernetes scan found.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Workloads {
    pub images: Vec<WorkloadImage>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(host: Option<&str>, repo: &str, tag: Option<&str>, digest: Option<&str>) -> Option<ImageRef> {
        Some(ImageRef {
            host: host.map(str::to_string),
            repository: repo.to_string(),
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    #[test]
    fn image_references_split_into_host_repository_tag_and_digest() {
        let d = "sha256:aaaa";
        let cases = [
            (
                "docker-registry:5000/dominodatalab/environment:abc-1",
                r(
                    Some("docker-registry:5000"),
                    "dominodatalab/environment",
                    Some("abc-1"),
                    None,
                ),
            ),
            (
                "dominodatalab/model:m-v1",
                r(None, "dominodatalab/model", Some("m-v1"), None),
            ),
            ("localhost/x/y@sha256:aaaa", r(Some("localhost"), "x/y", None, Some(d))),
            (
                "reg.example.com/x/y:t@sha256:aaaa",
                r(Some("reg.example.com"), "x/y", Some("t"), Some(d)),
            ),
            (
                "docker-pullable://127.0.0.1:5000/x/y@sha256:aaaa",
                r(Some("127.0.0.1:5000"), "x/y", None, Some(d)),
            ),
            ("busybox", r(None, "busybox", None, None)),
            ("127.0.0.1:5000/x/y", r(Some("127.0.0.1:5000"), "x/y", None, None)),
            ("sha256:aaaa", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(ImageRef::parse(input), want, "{input}");
        }
    }
}
