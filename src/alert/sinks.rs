//! Where notifications go, and in what shape: a JSON webhook, Slack and Teams incoming webhooks,
//! Alertmanager's `/api/v2/alerts`, Loki's push API, syslog (RFC 5424 over UDP, TCP with octet
//! counting, or a unix socket). Each sink has a minimum severity. Delivery is one call per batch;
//! [`super::outbox`] keeps the queue and retries.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::StoredAlert;
use super::fold::container_label;
use crate::model::Severity;

/// How long one delivery may take.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    Webhook,
    Slack,
    Teams,
    Alertmanager,
    Loki,
    Syslog,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SinkConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: SinkKind,
    /// HTTP sinks: the webhook's URL, or Alertmanager's and Loki's base URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Syslog: `udp://host:514`, `tcp://host:601`, `unix:///dev/log`.
    #[serde(default)]
    pub address: Option<String>,
    /// Only alerts at least this severe.
    #[serde(default, deserialize_with = "crate::model::optional_severity", skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    /// Loki stream labels added to picket's own.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// One queued notification: the alert and the response rule that sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub rule: String,
    pub category: String,
    pub alert: StoredAlert,
}

/// Why a delivery failed: worth retrying (the sink is down, busy) or not (it refuses this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    Retry(String),
    Rejected(String),
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Retry(e) => write!(f, "{e}"),
            Self::Rejected(e) => write!(f, "rejected: {e}"),
        }
    }
}

impl SinkConfig {
    pub fn check(&self) -> Result<(), String> {
        match self.kind {
            SinkKind::Syslog => {
                let address = self
                    .address
                    .as_deref()
                    .ok_or("a syslog sink needs an address (udp://host:514, tcp://host:601, unix:///dev/log)")?;
                SyslogAddress::parse(address).map(|_| ())
            }
            _ => {
                let url = self.url.as_deref().ok_or_else(|| format!("a {} sink needs a url", self.kind.as_str()))?;
                let parsed = reqwest::Url::parse(url).map_err(|e| format!("url '{url}': {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!("url '{url}': http or https"));
                }
                Ok(())
            }
        }
    }

    /// Whether this sink takes alerts of `severity`.
    pub fn takes(&self, severity: Severity) -> bool {
        self.min_severity.is_none_or(|min| severity >= min)
    }

    /// How many notifications one delivery carries (the APIs that take lists get many).
    pub fn batch(&self) -> usize {
        match self.kind {
            SinkKind::Alertmanager | SinkKind::Loki | SinkKind::Syslog => 100,
            _ => 1,
        }
    }
}

impl SinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Teams => "teams",
            Self::Alertmanager => "alertmanager",
            Self::Loki => "loki",
            Self::Syslog => "syslog",
        }
    }
}

fn rfc3339(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(0)).map(|t| t.to_string()).unwrap_or_default()
}

/// One line for chat: `HIGH shell-from-server on shop/web-6f7b9/web (node-1): A shell … — /bin/sh`.
pub fn summary(n: &Notification) -> String {
    let a = &n.alert.alert;
    let (what, action) = (a.event.object(), a.action.as_str());
    format!(
        "{} {} on {} ({}): {} — {what} [{action}]",
        a.severity,
        a.rule,
        container_label(&n.alert),
        n.alert.node,
        a.title
    )
}

fn color(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "8B0000",
        Severity::High => "D9534F",
        Severity::Medium => "F0AD4E",
        _ => "5BC0DE",
    }
}

/// The request body of one delivery (HTTP sinks).
pub fn http_body(kind: SinkKind, batch: &[Notification], labels: &std::collections::BTreeMap<String, String>) -> Value {
    match kind {
        SinkKind::Webhook => {
            let n = &batch[0];
            json!({ "source": "picket", "responseRule": n.rule, "category": n.category, "summary": summary(n), "alert": n.alert })
        }
        SinkKind::Slack => {
            let n = &batch[0];
            json!({ "text": summary(n), "attachments": [{ "color": format!("#{}", color(n.alert.alert.severity)),
                    "text": n.alert.alert.why, "footer": format!("picket · {}", n.rule) }] })
        }
        SinkKind::Teams => {
            let n = &batch[0];
            json!({ "@type": "MessageCard", "@context": "http://schema.org/extensions", "summary": summary(n),
                    "themeColor": color(n.alert.alert.severity), "title": n.alert.alert.title,
                    "text": format!("{}\n\n{}", summary(n), n.alert.alert.why) })
        }
        SinkKind::Alertmanager => Value::Array(
            batch
                .iter()
                .map(|n| {
                    let a = &n.alert.alert;
                    let c = n.alert.container.as_ref();
                    let mut labels = json!({ "alertname": a.rule, "severity": a.severity.as_str().to_lowercase(),
                        "node": n.alert.node, "source": "picket", "category": n.category, "container": container_label(&n.alert) });
                    if let Some(ns) = c.and_then(|c| c.pod_namespace.clone()) {
                        labels["namespace"] = json!(ns);
                    }
                    if let Some(pod) = c.and_then(|c| c.pod_name.clone()) {
                        labels["pod"] = json!(pod);
                    }
                    json!({ "labels": labels, "annotations": { "summary": summary(n), "description": a.why, "alert_id": a.id },
                            "startsAt": rfc3339(a.at_unix_ms) })
                })
                .collect(),
        ),
        SinkKind::Loki => {
            let streams: Vec<Value> = batch
                .iter()
                .map(|n| {
                    let a = &n.alert.alert;
                    let mut stream = json!({ "source": "picket", "rule": a.rule, "severity": a.severity.as_str().to_lowercase(),
                        "node": n.alert.node, "category": n.category });
                    if let Some(ns) = n.alert.container.as_ref().and_then(|c| c.pod_namespace.clone()) {
                        stream["namespace"] = json!(ns);
                    }
                    for (k, v) in labels {
                        stream[k] = json!(v);
                    }
                    let line = serde_json::to_string(&json!({ "summary": summary(n), "alert": n.alert })).unwrap_or_default();
                    json!({ "stream": stream, "values": [[format!("{}", u128::from(a.at_unix_ms) * 1_000_000), line]] })
                })
                .collect();
            json!({ "streams": streams })
        }
        SinkKind::Syslog => Value::Null,
    }
}

/// Delivers one batch to `sink`.
pub async fn deliver(client: &reqwest::Client, sink: &SinkConfig, batch: &[Notification]) -> Result<(), DeliveryError> {
    if batch.is_empty() {
        return Ok(());
    }
    if sink.kind == SinkKind::Syslog {
        let address =
            SyslogAddress::parse(sink.address.as_deref().unwrap_or_default()).map_err(DeliveryError::Rejected)?;
        let messages: Vec<String> = batch.iter().map(syslog_message).collect();
        return tokio::time::timeout(TIMEOUT, send_syslog(&address, &messages)).await.map_err(|_| {
            DeliveryError::Retry(format!("no answer from {} within {}s", address.describe(), TIMEOUT.as_secs()))
        })?;
    }
    let base = sink.url.as_deref().unwrap_or_default().trim_end_matches('/');
    let url = match sink.kind {
        SinkKind::Alertmanager => format!("{base}/api/v2/alerts"),
        SinkKind::Loki => format!("{base}/loki/api/v1/push"),
        _ => sink.url.clone().unwrap_or_default(),
    };
    let body = http_body(sink.kind, batch, &sink.labels);
    let answer = client.post(&url).timeout(TIMEOUT).json(&body).send().await.map_err(|e| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        DeliveryError::Retry(format!("POST {url}: {text}"))
    })?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    let text: String = answer.text().await.unwrap_or_default().chars().take(200).collect();
    let message = format!("POST {url}: {status} {}", text.trim());
    // The sink refuses this notification itself: retrying would hold every one behind it.
    if status.is_client_error() && !matches!(status.as_u16(), 408 | 429) {
        Err(DeliveryError::Rejected(message))
    } else {
        Err(DeliveryError::Retry(message))
    }
}

/// A syslog destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogAddress {
    Udp(String),
    Tcp(String),
    Unix(std::path::PathBuf),
}

impl SyslogAddress {
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(rest) = text.strip_prefix("udp://") {
            Ok(Self::Udp(host_port(rest, text)?))
        } else if let Some(rest) = text.strip_prefix("tcp://") {
            Ok(Self::Tcp(host_port(rest, text)?))
        } else if let Some(path) = text.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!("address '{text}': unix:// takes an absolute path (unix:///dev/log)"));
            }
            Ok(Self::Unix(path.into()))
        } else {
            Err(format!("address '{text}': write udp://host:port, tcp://host:port or unix:///path"))
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Udp(a) => format!("udp://{a}"),
            Self::Tcp(a) => format!("tcp://{a}"),
            Self::Unix(p) => format!("unix://{}", p.display()),
        }
    }
}

fn host_port(rest: &str, text: &str) -> Result<String, String> {
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(rest.to_string()),
        _ => Err(format!("address '{text}': needs host:port")),
    }
}

/// RFC 5424: `<PRI>1 TIMESTAMP HOST picket - ALERT [picket@32473 …] MSG`, facility local0.
pub fn syslog_message(n: &Notification) -> String {
    let a = &n.alert.alert;
    let level = match a.severity {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Unknown => 6,
    };
    let pri = 16 * 8 + level;
    let escape = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"").replace(']', "\\]");
    let host: String = n.alert.node.chars().filter(|c| c.is_ascii_graphic()).take(255).collect();
    let host = if host.is_empty() { "-".to_string() } else { host };
    format!(
        "<{pri}>1 {} {host} picket - {} [picket@32473 rule=\"{}\" severity=\"{}\" container=\"{}\" id=\"{}\" response=\"{}\"] {}",
        rfc3339(a.at_unix_ms),
        n.category,
        escape(&a.rule),
        a.severity.as_str().to_lowercase(),
        escape(&container_label(&n.alert)),
        escape(&a.id),
        escape(&n.rule),
        summary(n)
    )
}

async fn send_syslog(address: &SyslogAddress, messages: &[String]) -> Result<(), DeliveryError> {
    use tokio::io::AsyncWriteExt;
    let retry = |e: std::io::Error| DeliveryError::Retry(format!("{}: {e}", address.describe()));
    match address {
        SyslogAddress::Udp(target) => {
            let local = if target.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" };
            let socket = tokio::net::UdpSocket::bind(local).await.map_err(retry)?;
            for message in messages {
                socket.send_to(message.as_bytes(), target.as_str()).await.map_err(retry)?;
            }
        }
        SyslogAddress::Tcp(target) => {
            // RFC 6587 octet counting: each message is its length, a space, then the message.
            let mut stream = tokio::net::TcpStream::connect(target.as_str()).await.map_err(retry)?;
            for message in messages {
                stream.write_all(format!("{} {message}", message.len()).as_bytes()).await.map_err(retry)?;
            }
            stream.flush().await.map_err(retry)?;
        }
        SyslogAddress::Unix(path) => {
            let socket = tokio::net::UnixDatagram::unbound().map_err(retry)?;
            for message in messages {
                socket.send_to(message.as_bytes(), path).await.map_err(retry)?;
            }
        }
    }
    Ok(())
}
