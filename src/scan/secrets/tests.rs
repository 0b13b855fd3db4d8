//! Each rule fires on a realistic sample and stays quiet on a near miss or a placeholder. Tokens
//! are assembled at run time so that this file holds no complete credential.

use base64::Engine;

use super::*;

/// Deterministic pseudo-random characters from `alphabet`.
fn random(n: usize, seed: u64, alphabet: &[u8]) -> String {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            alphabet[usize::try_from(state >> 33).unwrap() % alphabet.len()] as char
        })
        .collect()
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn ids(text: &str) -> Vec<&'static str> {
    SecretScanner::builtin().scan(text.as_bytes()).iter().map(|m| m.rule.id).collect()
}

fn pem(label: &str, body: &[u8], headers: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(body);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{headers}{}\n-----END {label}-----\n", lines.join("\n"))
}

fn key_bytes(seed: u64) -> Vec<u8> {
    random(900, seed, ALNUM).into_bytes()
}

fn openssh(cipher: &str) -> String {
    let mut body = b"openssh-key-v1\0".to_vec();
    body.extend_from_slice(&u32::try_from(cipher.len()).unwrap().to_be_bytes());
    body.extend_from_slice(cipher.as_bytes());
    body.extend_from_slice(&key_bytes(7));
    pem("OPENSSH PRIVATE KEY", &body, "")
}

#[test]
fn the_builtin_rules_compile_with_unique_kebab_case_ids_and_keywords() {
    let scanner = SecretScanner::new(RULES).unwrap();
    assert_eq!(scanner.rules.len(), RULES.len());
    let mut seen = std::collections::BTreeSet::new();
    for rule in RULES {
        assert!(seen.insert(rule.id), "duplicate id {}", rule.id);
        assert!(rule.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{}", rule.id);
        assert!(!rule.keywords.is_empty() && !rule.title.is_empty(), "{}", rule.id);
    }
    assert!(rule("private-key").is_some() && rule("nope").is_none());
}

#[test]
fn private_keys_plain_and_encrypted() {
    for label in ["RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY", "PRIVATE KEY", "PGP PRIVATE KEY BLOCK"] {
        let text = format!("# deploy key\n{}", pem(label, &key_bytes(1), ""));
        let found = SecretScanner::builtin().scan(text.as_bytes());
        assert_eq!(found.iter().map(|m| m.rule.id).collect::<Vec<_>>(), ["private-key"], "{label}");
        assert_eq!(found[0].line, 2);
        assert!(found[0].evidence.starts_with(&format!("-----BEGIN {label}----- ")), "{}", found[0].evidence);
    }
    assert_eq!(ids(&openssh("none")), ["private-key"]);
    assert_eq!(ids(&openssh("aes256-ctr")), ["private-key-encrypted"]);
    assert_eq!(ids(&pem("ENCRYPTED PRIVATE KEY", &key_bytes(2), "")), ["private-key-encrypted"]);
    let legacy =
        pem("RSA PRIVATE KEY", &key_bytes(3), "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0A1B2C3D4E5F\n\n");
    assert_eq!(ids(&legacy), ["private-key-encrypted"]);
    assert_eq!(rule("private-key-encrypted").map(|r| r.severity), Some(crate::model::Severity::Low));

    // Near misses: a header named in code, a public key, a certificate, an empty body.
    assert!(ids(r#"if line == "-----BEGIN RSA PRIVATE KEY-----": parse()"#).is_empty());
    assert!(ids(&pem("PUBLIC KEY", &key_bytes(4), "")).is_empty());
    assert!(ids(&pem("CERTIFICATE", &key_bytes(5), "")).is_empty());
    assert!(ids("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n").is_empty());
}

#[test]
fn aws_key_id_and_secret() {
    let id = format!("AKIA{}", random(16, 11, BASE32));
    let secret = random(40, 12, BASE64);
    let text = format!("[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n");
    let found = SecretScanner::builtin().scan(text.as_bytes());
    let got: Vec<_> = found.iter().map(|m| (m.rule.id, m.line, m.evidence.as_str())).collect();
    let masked = format!("{}{}", &secret[..4], "*".repeat(32));
    assert_eq!(
        got,
        [
            ("aws-access-key-id", 2, "AKIA****************"),
            ("aws-secret-access-key", 3, format!("aws_secret_access_key = {masked}").as_str()),
        ]
    );
    assert_eq!(ids(&format!("AWS_SECRET_ACCESS_KEY: \"{secret}\"")), ["aws-secret-access-key"]);
    assert_eq!(ids(&format!(r#"{{"SecretAccessKey": "{secret}"}}"#)), ["aws-secret-access-key"]);
    // AWS's documentation keys, a key id inside a longer word, a 39-character secret.
    assert!(ids("aws_access_key_id = AKIAIOSFODNN7EXAMPLE").is_empty());
    assert!(ids("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").is_empty());
    assert!(ids(&format!("X{id}")).is_empty());
    // A 39-character value is no AWS key, though still a high-entropy assignment.
    assert_eq!(ids(&format!("aws_secret_access_key = {}", &secret[..39])), ["generic-secret"]);
}

#[test]
fn gcp_service_account_json() {
    let body = random(1200, 21, BASE64);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let key = format!("-----BEGIN PRIVATE KEY-----\\n{}\\n-----END PRIVATE KEY-----\\n", lines.join("\\n"));
    let json = format!(
        "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"picket-prod\",\n  \"private_key_id\": \"{}\",\n  \
         \"private_key\": \"{key}\",\n  \"client_email\": \"ci@picket-prod.iam.gserviceaccount.com\"\n}}\n",
        random(40, 22, b"0123456789abcdef")
    );
    let found = SecretScanner::builtin().scan(json.as_bytes());
    assert_eq!(found.iter().map(|m| (m.rule.id, m.line)).collect::<Vec<_>>(), [("gcp-service-account-key", 5)]);
    assert!(!found[0].evidence.contains(&body[..20]));
    // The same JSON with a redacted key.
    let redacted = json.replace(&key, "-----BEGIN PRIVATE KEY-----\\nREDACTED\\n-----END PRIVATE KEY-----\\n");
    assert!(ids(&redacted).is_empty());
}

#[test]
fn azure_storage_keys() {
    let key = format!("{}==", random(86, 31, BASE64));
    let connection = format!(
        "DefaultEndpointsProtocol=https;AccountName=picketprod;AccountKey={key};EndpointSuffix=core.windows.net"
    );
    assert_eq!(ids(&connection), ["azure-storage-connection-string"]);
    assert_eq!(ids(&format!("AZURE_STORAGE_KEY={key}\n")), ["azure-storage-account-key"]);
    assert_eq!(ids(&format!("storage_account_key: '{key}'")), ["azure-storage-account-key"]);
    // The storage emulator's well-known key is public, but the shape is what matters: a short key misses.
    assert!(ids("DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc==").is_empty());
    assert!(ids(&format!("AccountKey={}==", "x".repeat(86))).is_empty());
}

#[test]
fn github_gitlab_slack_stripe_npm_pypi_tokens() {
    let cases = [
        (format!("ghp_{}", random(36, 41, ALNUM)), "github-pat"),
        (format!("github_pat_{}_{}", random(22, 42, ALNUM), random(59, 43, ALNUM)), "github-fine-grained-pat"),
        (format!("gho_{}", random(36, 44, ALNUM)), "github-oauth-token"),
        (format!("ghu_{}", random(36, 45, ALNUM)), "github-app-token"),
        (format!("ghs_{}", random(36, 46, ALNUM)), "github-app-token"),
        (format!("ghr_{}", random(76, 47, ALNUM)), "github-refresh-token"),
        (format!("glpat-{}", random(20, 48, ALNUM)), "gitlab-pat"),
        (
            format!(
                "xoxb-{}-{}-{}",
                random(12, 49, b"0123456789"),
                random(13, 50, b"0123456789"),
                random(24, 51, ALNUM)
            ),
            "slack-token",
        ),
        (
            format!(
                "xoxp-{}-{}-{}-{}",
                random(11, 52, b"0123456789"),
                random(11, 53, b"0123456789"),
                random(12, 54, b"0123456789"),
                random(32, 55, b"0123456789abcdef")
            ),
            "slack-token",
        ),
        (
            format!(
                "https://hooks.slack.com/services/T{}/B{}/{}",
                random(8, 56, BASE32),
                random(10, 57, BASE32),
                random(24, 58, ALNUM)
            ),
            "slack-webhook-url",
        ),
        (format!("sk_live_{}", random(24, 59, ALNUM)), "stripe-secret-key"),
        (format!("rk_live_{}", random(99, 60, ALNUM)), "stripe-secret-key"),
        (format!("npm_{}", random(36, 61, ALNUM)), "npm-access-token"),
        (
            format!(
                "pypi-AgEIcHlwaS5vcmc{}",
                random(120, 62, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
            ),
            "pypi-upload-token",
        ),
    ];
    for (token, id) in &cases {
        let text = format!("export CI_SETTING=1\nurl: {token}\n");
        let found = SecretScanner::builtin().scan(text.as_bytes());
        assert_eq!(found.iter().map(|m| (m.rule.id, m.line)).collect::<Vec<_>>(), [(*id, 2)], "{token}");
        assert!(!found[0].evidence.contains(token.as_str()));
        assert!(found[0].evidence.contains('*'));
    }
    // Near misses: too short, test-mode Stripe keys, placeholders, a config key name.
    for near in [
        format!("ghp_{}", random(30, 63, ALNUM)),
        "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".to_string(),
        format!("glpat-{}", random(12, 64, ALNUM)),
        "xoxb-YOUR-BOT-TOKEN-HERE".to_string(),
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX".to_string(),
        format!("sk_test_{}", random(24, 65, ALNUM)),
        "npm_config_cache=/tmp/npm".to_string(),
        "pypi-AgEIcHlwaS5vcmc".to_string(),
    ] {
        assert!(ids(&near).is_empty(), "{near}");
    }
}

#[test]
fn docker_config_auths() {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("ci-bot:{}", random(24, 71, ALNUM)));
    let config = format!(
        "{{\n\t\"auths\": {{\n\t\t\"registry.example.com\": {{\n\t\t\t\"auth\": \"{auth}\"\n\t\t}}\n\t}}\n}}\n"
    );
    let found = SecretScanner::builtin().scan(config.as_bytes());
    assert_eq!(found.iter().map(|m| (m.rule.id, m.line)).collect::<Vec<_>>(), [("docker-config-auth", 4)]);
    assert_eq!(found[0].evidence, format!("\"auth\": \"{}{}", &auth[..4], "*".repeat(32)));
    // No user:password inside, an empty password, or no `auths` at all.
    let not_pair = base64::engine::general_purpose::STANDARD.encode("justatokenvalue");
    assert!(ids(&config.replace(&auth, &not_pair)).is_empty());
    let empty = base64::engine::general_purpose::STANDARD.encode("ci-bot:");
    assert!(ids(&config.replace(&auth, &empty)).is_empty());
    assert!(ids(&format!("{{\"auth\": \"{auth}\"}}")).is_empty());
}

#[test]
fn jwts_need_a_json_header() {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let token = format!(
        "{}.{}.{}",
        b64(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64(r#"{"sub":"svc-ci","iat":1700000000}"#),
        random(43, 81, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    );
    assert_eq!(ids(&format!("Authorization: Bearer {token}")), ["jwt"]);
    // The generic rule gives way to the specific one on the same value.
    assert_eq!(ids(&format!("AUTH_TOKEN=\"{token}\"")), ["jwt"]);
    let bad_header = format!("{}.{}", b64(r#"{"typ":"JWT"}"#), token.split_once('.').unwrap().1);
    assert!(ids(&format!("Bearer {bad_header}")).is_empty());
}

#[test]
fn generic_assignments_need_entropy_and_no_placeholder() {
    let value = random(24, 91, ALNUM);
    for line in [
        format!("DB_PASSWORD={value}"),
        format!("api_key = \"{value}\""),
        format!("  client_secret: '{value}'"),
        format!("\"auth_token\": \"{value}\","),
        format!("$config['secret'] => '{value}';"),
        format!("export GH_TOKEN={value}!x;"),
        format!("password: \"{value}(x)\""),
    ] {
        let found = SecretScanner::builtin().scan(line.as_bytes());
        assert_eq!(found.iter().map(|m| m.rule.id).collect::<Vec<_>>(), ["generic-secret"], "{line}");
        assert!(!found[0].evidence.contains(&value), "{}", found[0].evidence);
    }
    for near in [
        "password = \"changeme\"",
        "password=${DB_PASSWORD}",
        "api_key: <your-api-key>",
        "token = \"xxxxxxxxxxxxxxxxxxxxxxxx\"",
        "SECRET_KEY = 'django-insecure-example-key-for-docs'",
        "password = get_password_from_environment()",
        "token_url = \"https://oauth2.googleapis.com/token\"",
        "secret_file: /run/secrets/database_password",
        "password: {{ .Values.db.password }}",
        "tokenizer = SentencePieceTokenizer",
        "password = \"aaaaaaaaaaaa\"",
        "my $password = shift;",
        "    ...     '?tokena=A&amp;tokenb=B\">package_name-0.1.2.tar.gz')",
        "tokens[level][token] = list(Inform6Lexer.tokens[token])",
        "const authKey = hasAuth(regKey, opts)",
        "  let indtokens = s:GetTokensFromLine(a:line, 0, 0, &tabstop)",
        "\t  _M_token = _S_token_ord_char;",
    ] {
        assert!(ids(near).is_empty(), "{near}");
    }
}

#[test]
fn masking_keeps_at_most_four_characters() {
    assert_eq!(mask("ghp_abcdefghijklmnopqrstuvwxyz0123456789"), format!("ghp_{}", "*".repeat(32)));
    assert_eq!(mask("hunter2hunter2"), "hun***********");
    assert_eq!(mask("abc"), "***");
    assert_eq!(mask("AB CD\nEF GH"), "AB******");
    assert!(shannon_entropy(b"aaaa") < 0.01 && (shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
}

#[test]
fn binaries_and_noise_paths_are_skipped() {
    let token = format!("ghp_{}", random(36, 101, ALNUM));
    let mut binary = b"\x7fELF\x02\x01\x01\0".to_vec();
    binary.extend_from_slice(token.as_bytes());
    assert!(SecretScanner::builtin().scan(&binary).is_empty());
    for path in [
        "usr/share/doc/openssl/README",
        "usr/share/man/man1/ssh.1",
        "usr/lib/python3.11/test/keycert.pem",
        "usr/local/lib/python3.12/test/certdata/keycert.pem",
        "usr/lib/python3/dist-packages/cryptography/hazmat/tests/keys.py",
        "app/node_modules/jsonwebtoken/test/priv.pem",
        "usr/local/go/src/crypto/tls/handshake_test.go",
        "root/go/pkg/mod/golang.org/x/crypto@v0.1.0/ssh/testdata/keys.go",
        "etc/ssl/certs/ca-certificates.crt",
        "usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt",
        "app/__pycache__/settings.cpython-311.pyc",
        "usr/lib/python3/dist-packages/PyJWT-2.6.0.egg-info/PKG-INFO",
        "usr/local/lib/python3.11/site-packages/requests-2.19.0.dist-info/METADATA",
    ] {
        assert!(skips_path(path), "{path}");
    }
    for path in [
        "app/.env",
        "root/.ssh/id_rsa",
        "app/tests/deploy.pem",
        "etc/ssl/private/server.key",
        "usr/lib/python3.11/settings.py",
    ] {
        assert!(!skips_path(path), "{path}");
    }
}

#[test]
fn the_collector_bounds_reads_and_never_keeps_a_full_secret() {
    let token = format!("ghp_{}", random(36, 111, ALNUM));
    let secret = random(40, 112, BASE64);
    let text = format!("GITHUB_TOKEN={token}\naws_secret_access_key={secret}\n");
    let limits = Limits { max_secret_file_bytes: 1024, ..Limits::default() };
    let mut collector = SecretCollector::new(&limits);
    assert!(collector.wants("app/.env", 10) && !collector.wants("app/.env", 1025) && !collector.wants("app/.env", 0));
    let mut scratch = Vec::new();
    collector.read_and_scan(Some("sha256:aa"), "app/.env", text.as_bytes(), &mut scratch).unwrap();
    // Past the cap: the tail is not read.
    let long = format!("{}\n{text}", "#".repeat(2000));
    collector.read_and_scan(None, "app/long.env", long.as_bytes(), &mut scratch).unwrap();
    let (findings, warnings) = collector.finish();
    assert_eq!(warnings, ["1 files over 1024 bytes were not scanned for secrets"]);
    let got: Vec<_> = findings.iter().map(|f| (f.id.as_str(), f.line, f.locations[0].path.as_str())).collect();
    assert_eq!(got, [("github-pat", Some(1), "/app/.env"), ("aws-secret-access-key", Some(2), "/app/.env")]);
    let first = &findings[0];
    assert_eq!((first.kind, first.data_source.as_str()), (FindingKind::Secret, DATA_SOURCE));
    assert_eq!(first.locations[0].layer.as_deref(), Some("sha256:aa"));
    assert!(first.remediation.as_deref().is_some_and(|r| r.contains("rotate")));
    let debug = format!("{findings:?}");
    let json = serde_json::to_string(&findings).unwrap();
    for output in [&debug, &json] {
        assert!(!output.contains(&token) && !output.contains(&secret), "{output}");
        assert!(!output.contains(&token[4..12]) && !output.contains(&secret[4..12]));
    }
}

#[test]
fn the_generic_rule_does_not_run_on_installed_packages() {
    let text = format!("API_TOKEN = \"{}\"\nGITHUB = \"ghp_{}\"\n", random(24, 121, ALNUM), random(36, 122, ALNUM));
    let mut collector = SecretCollector::new(&Limits::default());
    collector.scan_file(None, "usr/lib/python3/dist-packages/oauthlib/parameters.py", text.as_bytes());
    collector.scan_file(None, "app/settings.py", text.as_bytes());
    let (findings, _) = collector.finish();
    let got: Vec<_> = findings.iter().map(|f| (f.locations[0].path.as_str(), f.id.as_str())).collect();
    assert_eq!(
        got,
        [
            ("/app/settings.py", "generic-secret"),
            ("/app/settings.py", "github-pat"),
            ("/usr/lib/python3/dist-packages/oauthlib/parameters.py", "github-pat"),
        ]
    );
}

#[test]
fn many_hits_of_one_rule_do_not_hide_a_more_severe_secret() {
    // 150 AWS key ids (HIGH, an early rule), then a GitHub token (CRITICAL, a later rule).
    let mut text: String =
        (0..150).map(|i| format!("aws_access_key_id = AKIA{}\n", random(16, 1000 + i, BASE32))).collect();
    text.push_str(&format!("GITHUB_TOKEN=ghp_{}\n", random(36, 999, ALNUM)));
    let (found, truncated) = SecretScanner::builtin().scan_bounded(text.as_bytes(), true);
    assert!(truncated);
    assert_eq!(found.len(), MAX_PER_FILE);
    let last = found.last().unwrap();
    assert_eq!((last.rule.id, last.line), ("github-pat", 151), "kept, in file order");
    assert!(found[..MAX_PER_FILE - 1].iter().all(|m| m.rule.id == "aws-access-key-id"));

    let mut collector = SecretCollector::new(&Limits::default());
    collector.scan_file(None, "app/keys.env", text.as_bytes());
    collector.scan_file(None, "app/one.env", b"aws_access_key_id = AKIAQWERTYUIOPASDFGHJ\n");
    let (findings, warnings) = collector.finish();
    assert!(findings.iter().any(|f| f.id == "github-pat"));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("1 files had more secret matches") && warnings[0].ends_with("/app/keys.env"));
    let (_, truncated) = SecretScanner::builtin().scan_bounded(b"aws_access_key_id = AKIAQWERTYUIOPASDFGHJ\n", true);
    assert!(!truncated);
}
