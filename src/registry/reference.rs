//! Image references: `[host[:port]/]repository[:tag][@sha256:…]`, with Docker Hub defaults.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// The registry as written (`127.0.0.1:5000`, `docker.io`).
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

const DOCKER_HUB: &str = "docker.io";

/// The host a registry's API is on (Docker Hub's lives elsewhere than its name).
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB { "registry-1.docker.io" } else { registry }
}

impl ImageReference {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("'{text}' is not an image reference: {why}");
        if text.is_empty() || text.contains(char::is_whitespace) {
            return Err(bad("empty or contains spaces"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                crate::oci::blob_path(digest).map_err(|e| bad(&e))?;
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, path)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (first.to_string(), path)
            }
            _ => (DOCKER_HUB.to_string(), rest),
        };
        // A tag follows the last ':' after the last '/'.
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), Some(tag.to_string())),
            _ => (path.to_string(), None),
        };
        if repository.is_empty()
            || !repository.split('/').all(|part| {
                !part.is_empty()
                    && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            })
        {
            return Err(bad("repository names are lower-case letters, digits and . _ - separated by /"));
        }
        if let Some(tag) = &tag
            && (tag.is_empty()
                || tag.len() > 128
                || !tag.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
        {
            return Err(bad("a tag is up to 128 letters, digits, '.', '_' or '-'"));
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_string()) } else { tag };
        Ok(Self { registry, repository, tag, digest })
    }

    /// The host to talk to (Docker Hub's API lives elsewhere than its name).
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// What to ask the manifests endpoint for: the digest if pinned, else the tag.
    pub fn manifest_ref(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = ImageReference::parse("127.0.0.1:5000/testbed/tiny:v1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "testbed/tiny", Some("v1"))
        );
        let r = ImageReference::parse("nginx").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let digest = format!("sha256:{}", "ab".repeat(32));
        let r = ImageReference::parse(&format!("localhost:5443/a/b@{digest}")).unwrap();
        assert_eq!((r.tag.as_deref(), r.manifest_ref()), (None, digest.as_str()));
        let r = ImageReference::parse("ghcr.io/org/app:1.2.3").unwrap();
        assert_eq!(r.registry, "ghcr.io");
        for bad in ["", "UPPER/case", "a//b", "host:5000/repo:bad tag", "repo@sha256:short", "x:"] {
            assert!(ImageReference::parse(bad).is_err(), "{bad}");
        }
    }
}
