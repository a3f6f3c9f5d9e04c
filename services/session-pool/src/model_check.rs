//! Is the model API key accepted? The CLI makes no API call before the
//! first user message, so a ready process proves nothing about the key.
//! `GET /v1/models?limit=1` is authenticated, spends no tokens and costs
//! nothing, so the pool asks it before trusting a pre-warmed slot: with a
//! rejected key every pre-warm attempt fails and readiness stays 503.
//!
//! Only 401/403 count as "rejected". Any other answer (an LLM gateway
//! without this endpoint, a 5xx, a timeout) is logged and does not block
//! traffic: outages are the circuit breaker's business, not readiness's.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

const ANTHROPIC_API: &str = "https://api.anthropic.com";
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accepted,
    Rejected {
        status: u16,
    },
    /// No verdict: unreachable, or an answer that says nothing about the key.
    Unknown(String),
}

/// What is known of the model API key.
const KEY_UNCHECKED: u8 = 0;
const KEY_ACCEPTED: u8 = 1;
const KEY_REJECTED: u8 = 2;

/// The key's state, shared by the pool (which checks it before it
/// pre-warms) and the session actors (which report an authentication
/// failure, so the key is checked again).
pub(crate) struct ModelKey {
    check: Option<ModelCheck>,
    state: AtomicU8,
    suspected: Notify,
}

impl ModelKey {
    /// `None`: no credential to check, the key is never "rejected".
    pub(crate) fn new(check: Option<ModelCheck>) -> Self {
        Self {
            check,
            state: AtomicU8::new(KEY_UNCHECKED),
            suspected: Notify::new(),
        }
    }

    /// True when the model API rejected the configured key.
    pub(crate) fn rejected(&self) -> bool {
        self.state.load(Ordering::Acquire) == KEY_REJECTED
    }

    /// An agent saw an authentication failure: verify the key again before
    /// the next pre-warm.
    pub(crate) fn suspect(&self) {
        self.state.store(KEY_UNCHECKED, Ordering::Release);
        self.suspected.notify_one();
    }

    /// Resolves after [`ModelKey::suspect`] (at once if it was called
    /// while nobody waited).
    pub(crate) async fn suspected(&self) {
        self.suspected.notified().await;
    }

    /// Asks the model API whether the key is accepted, unless already known.
    /// False only when the key was rejected.
    pub(crate) async fn ok(&self) -> bool {
        let Some(check) = &self.check else {
            return true;
        };
        if self.state.load(Ordering::Acquire) == KEY_ACCEPTED {
            return true;
        }
        match check.check().await {
            Verdict::Accepted => {
                self.state.store(KEY_ACCEPTED, Ordering::Release);
                true
            }
            Verdict::Rejected { status } => {
                tracing::error!(
                    status,
                    "the model API rejected the configured key (ANTHROPIC_API_KEY / ANTHROPIC_AUTH_TOKEN); not pre-warming"
                );
                self.state.store(KEY_REJECTED, Ordering::Release);
                false
            }
            Verdict::Unknown(why) => {
                // Not a verdict on the key: do not block on an outage.
                tracing::warn!(%why, "could not verify the model API key; going ahead");
                self.state.store(KEY_UNCHECKED, Ordering::Release);
                true
            }
        }
    }
}

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<bytes::Bytes>,
>;

pub(crate) struct ModelCheck {
    client: Client,
    url: http::Uri,
    credential: Credential,
}

impl std::fmt::Debug for ModelCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelCheck")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum Credential {
    ApiKey(String),
    Bearer(String),
}

impl ModelCheck {
    /// From the environment the agents get; `None` without a credential.
    pub(crate) fn from_agent_env(env: &[(String, String)]) -> Option<Self> {
        let get = |name: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let credential = match (get("ANTHROPIC_API_KEY"), get("ANTHROPIC_AUTH_TOKEN")) {
            (Some(key), _) => Credential::ApiKey(key),
            (None, Some(token)) => Credential::Bearer(token),
            (None, None) => return None,
        };
        let base = get("ANTHROPIC_BASE_URL").unwrap_or_else(|| ANTHROPIC_API.to_owned());
        let url = format!("{}/v1/models?limit=1", base.trim_end_matches('/'))
            .parse()
            .ok()?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .ok()?
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Some(Self {
            client,
            url,
            credential,
        })
    }

    pub(crate) async fn check(&self) -> Verdict {
        let req = http::Request::get(self.url.clone()).header("anthropic-version", "2023-06-01");
        let req = match &self.credential {
            Credential::ApiKey(k) => req.header("x-api-key", k),
            Credential::Bearer(t) => req.header("authorization", format!("Bearer {t}")),
        };
        let req = match req.body(http_body_util::Empty::new()) {
            Ok(r) => r,
            Err(_) => return Verdict::Unknown("the credential is not a valid header value".into()),
        };
        match tokio::time::timeout(TIMEOUT, self.client.request(req)).await {
            Ok(Ok(resp)) => match resp.status().as_u16() {
                200..=299 => Verdict::Accepted,
                s @ (401 | 403) => Verdict::Rejected { status: s },
                s => Verdict::Unknown(format!("HTTP {s}")),
            },
            // The error text names the connection problem, never the headers.
            Ok(Err(e)) => Verdict::Unknown(e.to_string()),
            Err(_) => Verdict::Unknown(format!("no answer within {}s", TIMEOUT.as_secs())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    async fn mock(key: &str) -> csp_mock_llm::MockLlm {
        csp_mock_llm::MockLlm::start(csp_mock_llm::Options {
            api_key: Some(key.into()),
            ..Default::default()
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn accepted_and_rejected_keys_are_told_apart() {
        let m = mock("right").await;
        let good = ModelCheck::from_agent_env(&env(&[
            ("ANTHROPIC_BASE_URL", &m.base_url()),
            ("ANTHROPIC_API_KEY", "right"),
        ]))
        .unwrap();
        assert_eq!(good.check().await, Verdict::Accepted);
        let bad = ModelCheck::from_agent_env(&env(&[
            ("ANTHROPIC_BASE_URL", &m.base_url()),
            ("ANTHROPIC_API_KEY", "wrong"),
        ]))
        .unwrap();
        assert_eq!(bad.check().await, Verdict::Rejected { status: 401 });
        let bearer = ModelCheck::from_agent_env(&env(&[
            ("ANTHROPIC_BASE_URL", &m.base_url()),
            ("ANTHROPIC_AUTH_TOKEN", "right"),
        ]))
        .unwrap();
        assert_eq!(bearer.check().await, Verdict::Accepted);
        m.shutdown().await;
    }

    #[tokio::test]
    async fn an_unreachable_api_is_no_verdict_and_no_credential_is_no_check() {
        let down = ModelCheck::from_agent_env(&env(&[
            ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9"),
            ("ANTHROPIC_API_KEY", "k"),
        ]))
        .unwrap();
        assert!(matches!(down.check().await, Verdict::Unknown(_)));
        assert!(ModelCheck::from_agent_env(&env(&[("ANTHROPIC_BASE_URL", "http://x")])).is_none());
    }
}
