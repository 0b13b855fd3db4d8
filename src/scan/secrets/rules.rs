//! The built-in secret rules. Each rule has a stable id (what findings, exceptions and docs name),
//! keywords for the prefilter (matched case-insensitively; the regex runs only on a file where one
//! of them occurs) and a `regex::bytes` pattern whose group `secret` is the credential itself: the
//! only part that is masked in the evidence. docs/secrets.md lists them; keep it in step.

use crate::model::Severity;

/// Bump when a rule is added, removed or changes what it matches: it is part of cache keys.
pub const RULES_VERSION: u32 = 1;

/// What a match must also satisfy before it is reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// Not a well-known placeholder (`EXAMPLE`, `xxxx`, `${VAR}`, `<token>` …).
    NotPlaceholder,
    /// Not a placeholder, at least this many bits of Shannon entropy per character, and at least
    /// two character classes. Rules with this check give way to a specific rule on the same text.
    Entropy(f64),
    /// A PEM/armored private key whose body is not encrypted.
    PlainKey,
    /// A PEM private key protected by a passphrase (PKCS#8 `ENCRYPTED`, `Proc-Type: 4,ENCRYPTED`,
    /// or an OpenSSH key with a cipher other than `none`).
    EncryptedKey,
    /// The first segment decodes to a JSON header with `alg`.
    Jwt,
    /// Decodes (base64) to `user:password` with both parts present.
    BasicAuth,
}

#[derive(Debug)]
pub struct Rule {
    /// Stable kebab-case id.
    pub id: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub keywords: &'static [&'static str],
    pub regex: &'static str,
    pub check: Check,
}

impl Rule {
    pub fn is_generic(&self) -> bool {
        matches!(self.check, Check::Entropy(_))
    }
}

/// Shannon entropy (bits per character) a generic assignment's value needs.
pub const GENERIC_MIN_ENTROPY: f64 = 3.5;

const PEM: &str = r"-----BEGIN[ A-Z0-9]{0,20}PRIVATE KEY(?: BLOCK)?-----[ \t]*\r?\n(?P<secret>(?:[A-Za-z0-9+/=:,.()\- \t]*\r?\n)+?)-----END[ A-Z0-9]{0,20}PRIVATE KEY(?: BLOCK)?-----";

/// `key = value`, `key: value`, `"key": "value"`, `key => 'value'`, quotes optional.
macro_rules! assignment {
    ($key:literal, $value:literal) => {
        concat!(
            r#"(?im)"#,
            $key,
            r#"["']?\]?[ \t]*(?:=|:=|:|=>)[ \t]*["']?(?P<secret>"#,
            $value,
            r#")(?:[^A-Za-z0-9/+=]|$)"#
        )
    };
}

pub static RULES: &[Rule] = &[
    Rule {
        id: "private-key",
        title: "Private key",
        severity: Severity::High,
        keywords: &["PRIVATE KEY"],
        regex: PEM,
        check: Check::PlainKey,
    },
    Rule {
        id: "private-key-encrypted",
        title: "Passphrase-protected private key",
        severity: Severity::Low,
        keywords: &["PRIVATE KEY"],
        regex: PEM,
        check: Check::EncryptedKey,
    },
    Rule {
        id: "aws-access-key-id",
        title: "AWS access key ID",
        severity: Severity::High,
        keywords: &["AKIA", "ASIA", "ABIA", "ACCA", "A3T"],
        regex: r"\b(?P<secret>(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
        check: Check::NotPlaceholder,
    },
    Rule {
        id: "aws-secret-access-key",
        title: "AWS secret access key",
        severity: Severity::Critical,
        keywords: &[
            "aws_secret",
            "aws-secret",
            "awssecret",
            "aws.secret",
            "secret_access",
            "secretaccess",
            "secret-access",
        ],
        regex: assignment!(
            r"(?:aws[_\-.]?secret[_\-.]?(?:access[_\-.]?)?key|secret[_\-.]?access[_\-.]?key)",
            r"[A-Za-z0-9/+]{40}"
        ),
        check: Check::NotPlaceholder,
    },
    Rule {
        id: "gcp-service-account-key",
        title: "Google Cloud service account private key",
        severity: Severity::Critical,
        keywords: &["service_account"],
        regex: r#""private_key"[ \t]*:[ \t]*"-----BEGIN (?:RSA )?PRIVATE KEY-----\\n(?P<secret>[A-Za-z0-9+/=\\]{64,}?)-----END (?:RSA )?PRIVATE KEY-----"#,
        check: Check::NotPlaceholder,
    },
    Rule {
        id: "azure-storage-connection-string",
        title: "Azure storage connection string with an account key",
        severity: Severity::Critical,
        keywords: &["AccountKey="],
        regex: r"(?i)AccountKey=(?P<secret>[A-Za-z0-9+/]{86}==)",
        check: Check::NotPlaceholder,
    },
    Rule {
        id: "azure-storage-account-key",
        title: "Azure storage account key",
        severity: Severity::Critical,
        keywords: &["storage"],
        regex: assignment!(
            r"(?:azure[_\-.]?)?storage[_\-.]?(?:account[_\-.]?)?(?:access[_\-.]?)?key",
            r"[A-Za-z0-9+/]{86}=="
        ),
        check: Check::NotPlaceholder,
    },
    Rule {
        id: "github-pat",
        title: "GitHub personal access token (classic)",
        severity: Severity::Critical,
        keywords: &["ghp_"],
        regex: r"\b(?P<secret>ghp_[A-Za-z0-9]{36})\b",
        check: Check::NotPlaceholder,
    },
    Rule {
        id: "github-fine-grained-pat",
        title: "GitHub fine-grained personal access token",
        severity: Severity::Critical,
        keywords: &["github_pat_"],
        regex: r"\b(?P<secret>github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})\b",
        check: Check::NotPlaceholder,
    },
    Rule {
        id: "github-oauth-token",
        title: "GitHub OAuth access token",
        severity: Severity::High,
        keywords: &["gho_"],
        regex: r"\b(?P<secret>gho_[A-Za-z0-9]{36})\b",
        check: Check::NotPlaceholder,
    },
    Rule {
        id: "github-app-token",
        title: "GitHub App user-to-server or installation token",
        severity: Severity::High,
        keywords: &["ghu_", "ghs_"],
        regex: r"\b(?P<secret>gh[us]_[A-Za-z0-9]{36})\b",
        check: Check::NotPlaceholder,
    },
    Rule {
        id: "github-refresh-token",
        title: "GitHub refresh token",
        severity: Severity::High,
        keywords: &["ghr_"],
        regex: r"\b(?P<secret>ghr_[A-Za-z0-9]{36,76})\b",
        check: Check::NotPlaceholder,
    },
    Rule {
        id: "gitlab-pat",
        title: "GitLab personal access token",
        severity: Severity::Critical,
        keywords: &["glpat-"],
        regex: r"\b(?P<secret>glpat-[A-Za-z0-9_\-]{20,64})(?:[^A-Za-z0-9_\-]|$)",
        check: Check::NotPlaceholder,
    },
    Rule {
        id: "slack-token",
        title: "Slack token",
        severity: Severity::High,
        keywords: &["xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-"],
        regex: r"\b(?P<secret>xox[abprs]-(?:[0-9]{1,13}-){1,3}[A-Za-z0-9]{10,48})\b",
        check: Check::NotPlaceholder,
    },
    Rule {
        id: "slack-webhook-url",
        title: "Slack incoming webhook URL",
        severity: Severity::Medium,
        keywords: &["hooks.slack.com"],
        regex: r"https://hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9]{8,}/[A-Za-z0-9]{8,}/[A-Za-z0-9]{16,})",
        check: Check::NotPlaceholder,
    },
    Rule {
        id: "stripe-secret-key",
        title: "Stripe live secret or restricted key",
        severity: Severity::Critical,
        keywords: &["sk_live_", "rk_live_"],
        regex: r"\b(?P<secret>[rs]k_live_[A-Za-z0-9]{24,247})\b",
        check: Check::NotPlaceholder,
    },
    Rule {
        id: "npm-access-token",
        title: "npm access token",
        severity: Severity::Critical,
        keywords: &["npm_"],
        regex: r"\b(?P<secret>npm_[A-Za-z0-9]{36})\b",
        check: Check::NotPlaceholder,
    },
    Rule {
        id: "pypi-upload-token",
        title: "PyPI upload token",
        severity: Severity::Critical,
        keywords: &["pypi-AgE"],
        regex: r"\b(?P<secret>pypi-AgE[A-Za-z0-9_\-]{70,})",
        check: Check::NotPlaceholder,
    },
    Rule {
        id: "docker-config-auth",
        title: "Registry credentials in a Docker config (auths)",
        severity: Severity::High,
        keywords: &[r#""auths""#],
        regex: r#""auth"[ \t]*:[ \t]*"(?P<secret>[A-Za-z0-9+/]{6,}={0,2})""#,
        check: Check::BasicAuth,
    },
    Rule {
        id: "jwt",
        title: "JSON Web Token",
        severity: Severity::Medium,
        keywords: &["eyJ"],
        regex: r"\b(?P<secret>eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{16,})",
        check: Check::Jwt,
    },
    Rule {
        id: "generic-secret",
        title: "High-entropy value assigned to a password, secret, token or API key",
        severity: Severity::Medium,
        keywords: &[
            "password",
            "passwd",
            "secret",
            "token",
            "api_key",
            "apikey",
            "api-key",
            "access_key",
            "accesskey",
            "access-key",
            "auth_key",
        ],
        regex: assignment!(
            r"(?:password|passwd|secret|token|api[_\-]?key|access[_\-]?key|auth[_\-]?key)[A-Za-z0-9_\-]{0,24}",
            r#"[^"'\s]{8,200}"#
        ),
        check: Check::Entropy(GENERIC_MIN_ENTROPY),
    },
];
