//! Kubernetes object names as the API server validates them (RFC 1123): what options that
//! name a namespace or a Secret are checked against before anything is written.

/// Lowercase letters, digits and `-`, starting and ending with a letter or digit.
fn label_chars(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 label (a namespace's name): at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && label_chars(s)
}

/// A DNS-1123 subdomain (most objects' names, Secrets' included): labels joined by `.`, at
/// most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(label_chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains() {
        assert!(is_dns_label("kubeflow-user-1"));
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad:?}");
        }
        assert!(is_dns_subdomain("kubeflow-oidc"));
        assert!(is_dns_subdomain("oidc.kubeflow.example"));
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "Kubeflow_OIDC",
            "-oidc",
            &"a".repeat(254),
        ] {
            assert!(!is_dns_subdomain(bad), "{bad:?}");
        }
    }
}
