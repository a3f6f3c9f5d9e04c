//! Synthesis: one model call that turns the prompt into the note's text (seed story 2.9), over
//! the Anthropic Messages API or any OpenAI-compatible chat-completions API (OpenRouter).
//!
//! Each call has a 30 s deadline and is repeated once after a transient failure (timeout,
//! connection, 429, 5xx); the cost comes from the API when it says (OpenRouter's
//! `usage.cost`), else from the tokens and a price table. Errors carry the API's own message,
//! redacted, and never the key: the key is only ever put into a request header.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use csp_http::{HttpClient, HttpError, Limits};
use csp_redact::KnownSecrets;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::prompt::Prompt;

/// The seed's request parameters.
pub const MAX_TOKENS: u32 = 1000;
pub const TEMPERATURE: f64 = 0.3;
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The Messages API version this client speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// An answer larger than this is no note.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// What one synthesis produced and cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthesis {
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    /// The model that answered, as the API reported it (else the one asked for).
    pub model: String,
}

impl Synthesis {
    /// The cost in micro-dollars, the unit of the budget store, rounded up.
    pub fn cost_micros(&self) -> u64 {
        let micros = (self.cost_usd * 1_000_000.0).ceil();
        if micros.is_finite() && micros > 0.0 {
            micros as u64
        } else {
            0
        }
    }
}

/// Why a synthesis failed. Texts are safe to log and store: redacted, and never the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SynthesisError {
    #[error("the model API did not answer within {} s", .0.as_secs())]
    Timeout(Duration),
    #[error("cannot reach the model API: {0}")]
    Connect(String),
    /// A non-2xx answer with the API's message.
    #[error("the model API answered {status}: {message}")]
    Http { status: u16, message: String },
    /// The model declined (`stop_reason: refusal`, `finish_reason: content_filter`).
    #[error("the model refused to answer")]
    Refused,
    #[error("the model answered with no text")]
    Empty,
    #[error("the model API's answer could not be read: {0}")]
    Decode(String),
    #[error("the model API is misconfigured: {0}")]
    Config(String),
}

impl SynthesisError {
    /// Failures that say the API is down or overloaded (timeouts, connections, 429, 5xx,
    /// 529): worth one retry, and what the model-API circuit breaker counts.
    pub fn is_outage(&self) -> bool {
        match self {
            SynthesisError::Timeout(_) | SynthesisError::Connect(_) => true,
            SynthesisError::Http { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// A short reason for the fallback note ("model timed out").
    pub fn short_reason(&self) -> &'static str {
        match self {
            SynthesisError::Timeout(_) => "model timed out",
            SynthesisError::Connect(_) => "model API unreachable",
            SynthesisError::Http { status: 429, .. } => "model API rate-limited",
            SynthesisError::Http { status, .. } if *status >= 500 => "model API unavailable",
            SynthesisError::Http { .. } => "model API rejected the request",
            SynthesisError::Refused => "model declined to answer",
            SynthesisError::Empty => "model returned no text",
            SynthesisError::Decode(_) => "model answer unreadable",
            SynthesisError::Config(_) => "model API misconfigured",
        }
    }
}

/// A model that writes the note.
#[async_trait::async_trait]
pub trait Synthesizer: Send + Sync {
    /// The model asked for.
    fn model(&self) -> &str;
    async fn synthesize(&self, prompt: &Prompt) -> Result<Synthesis, SynthesisError>;
}

/// Prices in USD per million tokens (input, output).
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    prices: BTreeMap<String, (f64, f64)>,
    /// Used for a model the table does not know, so that an unknown model is never free
    /// against a tenant's budget.
    pub fallback: (f64, f64),
}

impl Default for PriceTable {
    /// List prices of the models a deployment is likely to name, by their Anthropic and
    /// OpenRouter ids; unknown models are priced like Sonnet ($3 / $15).
    fn default() -> Self {
        let prices = [
            ("claude-opus-4-1", (15.0, 75.0)),
            ("claude-opus-4", (15.0, 75.0)),
            ("claude-sonnet-4-5", (3.0, 15.0)),
            ("claude-sonnet-4", (3.0, 15.0)),
            ("claude-haiku-4-5", (1.0, 5.0)),
            ("claude-3-5-haiku", (0.8, 4.0)),
            ("claude-3-5-sonnet", (3.0, 15.0)),
            ("anthropic/claude-sonnet-4.5", (3.0, 15.0)),
            ("anthropic/claude-haiku-4.5", (1.0, 5.0)),
            ("openai/gpt-4o-mini", (0.15, 0.6)),
            ("openai/gpt-4o", (2.5, 10.0)),
            ("gpt-4o-mini", (0.15, 0.6)),
            ("gpt-4o", (2.5, 10.0)),
        ];
        Self {
            prices: prices.into_iter().map(|(m, p)| (m.to_owned(), p)).collect(),
            fallback: (3.0, 15.0),
        }
    }
}

impl PriceTable {
    /// A table with these prices only (USD per million input and output tokens).
    pub fn new(
        prices: impl IntoIterator<Item = (String, (f64, f64))>,
        fallback: (f64, f64),
    ) -> Self {
        Self {
            prices: prices.into_iter().collect(),
            fallback,
        }
    }

    /// Adds or replaces one model's price.
    pub fn set(&mut self, model: impl Into<String>, input_per_mtok: f64, output_per_mtok: f64) {
        self.prices
            .insert(model.into(), (input_per_mtok, output_per_mtok));
    }

    /// The price of `model`: its own entry, else the longest entry it starts with (dated ids
    /// such as `claude-sonnet-4-5-20250929`), else the fallback.
    pub fn price(&self, model: &str) -> (f64, f64) {
        if let Some(p) = self.prices.get(model) {
            return *p;
        }
        self.prices
            .iter()
            .filter(|(m, _)| model.starts_with(m.as_str()))
            .max_by_key(|(m, _)| m.len())
            .map_or(self.fallback, |(_, p)| *p)
    }

    pub fn cost_usd(&self, model: &str, input_tokens: u64, output_tokens: u64) -> f64 {
        let (input, output) = self.price(model);
        (input_tokens as f64 * input + output_tokens as f64 * output) / 1_000_000.0
    }
}

/// Which API to call, chosen by configuration.
#[derive(Clone)]
pub enum ProviderConfig {
    /// `POST {base_url}/v1/messages`, `x-api-key`, `anthropic-version: 2023-06-01`.
    Anthropic {
        /// Like `ANTHROPIC_BASE_URL`: `https://api.anthropic.com`, no `/v1`.
        base_url: String,
        api_key: SecretString,
        model: String,
    },
    /// `POST {base_url}/chat/completions` with a bearer key.
    OpenAiCompatible {
        /// With the version path: `https://openrouter.ai/api/v1`.
        base_url: String,
        api_key: SecretString,
        model: String,
        /// OpenRouter's optional `HTTP-Referer` (your site) and `X-Title` (your app) headers.
        referer: Option<String>,
        title: Option<String>,
    },
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProviderConfig::Anthropic {
                base_url, model, ..
            } => f
                .debug_struct("Anthropic")
                .field("base_url", &csp_redact::url(base_url))
                .field("model", model)
                .finish_non_exhaustive(),
            ProviderConfig::OpenAiCompatible {
                base_url,
                model,
                referer,
                title,
                ..
            } => f
                .debug_struct("OpenAiCompatible")
                .field("base_url", &csp_redact::url(base_url))
                .field("model", model)
                .field("referer", referer)
                .field("title", title)
                .finish_non_exhaustive(),
        }
    }
}

/// Call settings besides the provider.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts after the first one, for transient failures only.
    pub retries: u32,
    /// Pause before a retry.
    pub retry_delay: Duration,
    pub prices: PriceTable,
}

impl Default for CallOptions {
    /// 30 s, one retry after 1 s, [`PriceTable::default`].
    fn default() -> Self {
        Self {
            timeout: TIMEOUT,
            retries: 1,
            retry_delay: Duration::from_secs(1),
            prices: PriceTable::default(),
        }
    }
}

/// The synthesizer for `config`.
pub fn synthesizer(
    config: ProviderConfig,
    client: HttpClient,
    options: CallOptions,
) -> Result<Box<dyn Synthesizer>, SynthesisError> {
    Ok(match config {
        ProviderConfig::Anthropic {
            base_url,
            api_key,
            model,
        } => Box::new(Anthropic {
            url: join(&base_url, "v1/messages")?,
            key: header_value(api_key.expose_secret(), "api key")?,
            call: Call {
                client,
                options,
                known: KnownSecrets::new([api_key.expose_secret()]),
            },
            model,
        }),
        ProviderConfig::OpenAiCompatible {
            base_url,
            api_key,
            model,
            referer,
            title,
        } => {
            let mut headers = vec![(
                AUTHORIZATION,
                header_value(&format!("Bearer {}", api_key.expose_secret()), "api key")?,
            )];
            if let Some(referer) = referer.filter(|r| !r.is_empty()) {
                headers.push((
                    http::HeaderName::from_static("http-referer"),
                    header_value(&referer, "HTTP-Referer")?,
                ));
            }
            if let Some(title) = title.filter(|t| !t.is_empty()) {
                headers.push((
                    http::HeaderName::from_static("x-title"),
                    header_value(&title, "X-Title")?,
                ));
            }
            Box::new(OpenAiCompatible {
                url: join(&base_url, "chat/completions")?,
                headers,
                call: Call {
                    client,
                    options,
                    known: KnownSecrets::new([api_key.expose_secret()]),
                },
                model,
            })
        }
    })
}

fn join(base: &str, path: &str) -> Result<String, SynthesisError> {
    let base = base.trim().trim_end_matches('/');
    let lower = base.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(SynthesisError::Config(format!(
            "the base URL must start with http:// or https://: {}",
            csp_redact::url(base)
        )));
    }
    Ok(format!("{base}/{path}"))
}

fn header_value(value: &str, what: &str) -> Result<HeaderValue, SynthesisError> {
    let mut v = HeaderValue::from_str(value)
        // Never the value: it may be the key.
        .map_err(|_| SynthesisError::Config(format!("the {what} is not a valid header value")))?;
    v.set_sensitive(true);
    Ok(v)
}

struct Anthropic {
    url: String,
    key: HeaderValue,
    model: String,
    call: Call,
}

struct OpenAiCompatible {
    url: String,
    headers: Vec<(http::HeaderName, HeaderValue)>,
    model: String,
    call: Call,
}

/// What both providers share: the client, the settings, and the key as a value to scrub from
/// anything an API echoes back.
struct Call {
    client: HttpClient,
    options: CallOptions,
    known: KnownSecrets,
}

#[async_trait::async_trait]
impl Synthesizer for Anthropic {
    fn model(&self) -> &str {
        &self.model
    }

    async fn synthesize(&self, prompt: &Prompt) -> Result<Synthesis, SynthesisError> {
        let body = json!({
            "model": self.model,
            "max_tokens": MAX_TOKENS,
            "temperature": TEMPERATURE,
            "system": prompt.system,
            "messages": [{"role": "user", "content": prompt.user}],
        });
        let build = || {
            http::Request::post(&self.url)
                .header(CONTENT_TYPE, "application/json")
                .header("x-api-key", self.key.clone())
                .header("anthropic-version", ANTHROPIC_VERSION)
                .body(Bytes::from(body.to_string()))
        };
        let answer: MessagesAnswer = self.call.run(build).await?;
        if answer.stop_reason.as_deref() == Some("refusal") {
            return Err(SynthesisError::Refused);
        }
        let text: String = answer
            .content
            .iter()
            .filter(|b| b.kind == "text")
            .filter_map(|b| b.text.as_deref())
            .collect::<Vec<_>>()
            .join("\n");
        let model = answer.model.unwrap_or_else(|| self.model.clone());
        let (input_tokens, output_tokens) = (answer.usage.input_tokens, answer.usage.output_tokens);
        finish(
            text,
            input_tokens,
            output_tokens,
            None,
            model,
            &self.call.options.prices,
        )
    }
}

#[async_trait::async_trait]
impl Synthesizer for OpenAiCompatible {
    fn model(&self) -> &str {
        &self.model
    }

    async fn synthesize(&self, prompt: &Prompt) -> Result<Synthesis, SynthesisError> {
        let body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.user},
            ],
            "max_tokens": MAX_TOKENS,
            "temperature": TEMPERATURE,
        });
        let build = || {
            let mut req = http::Request::post(&self.url).header(CONTENT_TYPE, "application/json");
            for (name, value) in &self.headers {
                req = req.header(name, value.clone());
            }
            req.body(Bytes::from(body.to_string()))
        };
        let answer: ChatAnswer = self.call.run(build).await?;
        let choice = answer
            .choices
            .into_iter()
            .next()
            .ok_or(SynthesisError::Empty)?;
        if choice.finish_reason.as_deref() == Some("content_filter")
            || choice
                .message
                .refusal
                .as_deref()
                .is_some_and(|r| !r.trim().is_empty())
        {
            return Err(SynthesisError::Refused);
        }
        let text = match choice.message.content {
            Some(Value::String(s)) => s,
            // Some compatible servers send content parts.
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        };
        let model = answer.model.unwrap_or_else(|| self.model.clone());
        finish(
            text,
            answer.usage.prompt_tokens,
            answer.usage.completion_tokens,
            answer.usage.cost,
            model,
            &self.call.options.prices,
        )
    }
}

fn finish(
    text: String,
    input_tokens: u64,
    output_tokens: u64,
    reported_cost: Option<f64>,
    model: String,
    prices: &PriceTable,
) -> Result<Synthesis, SynthesisError> {
    if text.trim().is_empty() {
        return Err(SynthesisError::Empty);
    }
    let cost_usd = reported_cost
        .filter(|c| c.is_finite() && *c >= 0.0)
        .unwrap_or_else(|| prices.cost_usd(&model, input_tokens, output_tokens));
    Ok(Synthesis {
        text,
        input_tokens,
        output_tokens,
        cost_usd,
        model,
    })
}

impl Call {
    /// Sends the request (built anew for each attempt), retrying transient failures, and
    /// decodes a 2xx answer.
    async fn run<T, B>(&self, build: B) -> Result<T, SynthesisError>
    where
        T: serde::de::DeserializeOwned,
        B: Fn() -> Result<http::Request<Bytes>, http::Error>,
    {
        let limits = Limits {
            timeout: self.options.timeout,
            max_body_bytes: MAX_ANSWER_BYTES,
        };
        let mut attempt = 0;
        loop {
            let req = build()
                .map_err(|e| SynthesisError::Config(format!("cannot build the request: {e}")))?;
            let result = match self.client.send(req, limits).await {
                Ok(resp) if resp.status().is_success() => serde_json::from_slice::<T>(resp.body())
                    .map_err(|e| {
                        SynthesisError::Decode(csp_redact::redact_text(&e.to_string()).into_owned())
                    }),
                Ok(resp) => Err(SynthesisError::Http {
                    status: resp.status().as_u16(),
                    message: api_message(resp.body()),
                }),
                Err(e) => Err(from_http(e, self.options.timeout)),
            }
            .map_err(|e| self.scrub(e));
            match result {
                Err(e) if e.is_outage() && attempt < self.options.retries => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "model call failed; retrying");
                    tokio::time::sleep(self.options.retry_delay).await;
                }
                other => return other,
            }
        }
    }

    /// The key itself, should an API or a proxy echo it, leaves no error.
    fn scrub(&self, e: SynthesisError) -> SynthesisError {
        let clean = |s: String| self.known.redact(&s).into_owned();
        match e {
            SynthesisError::Connect(m) => SynthesisError::Connect(clean(m)),
            SynthesisError::Http { status, message } => SynthesisError::Http {
                status,
                message: clean(message),
            },
            SynthesisError::Decode(m) => SynthesisError::Decode(clean(m)),
            SynthesisError::Config(m) => SynthesisError::Config(clean(m)),
            other => other,
        }
    }
}

fn from_http(e: HttpError, timeout: Duration) -> SynthesisError {
    match e {
        HttpError::Timeout => SynthesisError::Timeout(timeout),
        HttpError::Connect(m) | HttpError::Tls(m) => SynthesisError::Connect(m),
        HttpError::Status { status, body } => SynthesisError::Http {
            status: status.as_u16(),
            message: api_message(body.as_bytes()),
        },
        HttpError::TooLarge { limit } => {
            SynthesisError::Decode(format!("the answer is larger than {limit} bytes"))
        }
        HttpError::Decode(m) => SynthesisError::Decode(m),
        HttpError::InvalidUrl(m) => SynthesisError::Config(m),
    }
}

/// The API's error message (`error.message` in both wire formats), else the start of the body;
/// redacted and at most 300 characters.
fn api_message(body: &[u8]) -> String {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/message").or_else(|| v.get("message")))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(600)]).into_owned());
    let one_line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    csp_redact::redact_text(&one_line)
        .chars()
        .take(300)
        .collect()
}

/// The parts of a Messages API answer that matter here.
#[derive(Deserialize)]
struct MessagesAnswer {
    #[serde(default)]
    content: Vec<ContentBlock>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: MessagesUsage,
}

#[derive(Deserialize)]
struct ContentBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize, Default)]
struct MessagesUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

/// The parts of a chat-completions answer that matter here.
#[derive(Deserialize)]
struct ChatAnswer {
    #[serde(default)]
    choices: Vec<ChatChoice>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: ChatUsage,
}

#[derive(Deserialize)]
struct ChatChoice {
    message: ChatMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChatMessage {
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Deserialize, Default)]
struct ChatUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    /// OpenRouter's cost of the call, in credits (USD).
    #[serde(default)]
    cost: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_by_exact_id_prefix_or_fallback() {
        let prices = PriceTable::default();
        assert_eq!(prices.price("claude-sonnet-4-5"), (3.0, 15.0));
        assert_eq!(prices.price("claude-sonnet-4-5-20250929"), (3.0, 15.0));
        assert_eq!(prices.price("claude-haiku-4-5-20251001"), (1.0, 5.0));
        assert_eq!(prices.price("openai/gpt-4o-mini"), (0.15, 0.6));
        assert_eq!(prices.price("something/else"), (3.0, 15.0));
        let cost = prices.cost_usd("openai/gpt-4o-mini", 1_000_000, 2_000_000);
        assert!((cost - 1.35).abs() < 1e-12, "{cost}");
        let mut custom = PriceTable::new([], (0.0, 0.0));
        custom.set("m", 1.0, 2.0);
        assert_eq!(custom.cost_usd("m", 500_000, 250_000), 1.0);
        assert_eq!(custom.cost_usd("other", 500_000, 250_000), 0.0);
    }

    #[test]
    fn micros_round_up() {
        let s = Synthesis {
            text: "x".into(),
            input_tokens: 1,
            output_tokens: 1,
            cost_usd: 0.000_018,
            model: "m".into(),
        };
        assert_eq!(s.cost_micros(), 18);
        assert_eq!(
            Synthesis {
                cost_usd: 0.000_000_1,
                ..s.clone()
            }
            .cost_micros(),
            1
        );
        assert_eq!(
            Synthesis {
                cost_usd: f64::NAN,
                ..s
            }
            .cost_micros(),
            0
        );
    }

    #[test]
    fn api_messages_are_extracted_and_redacted() {
        let body = br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}"#;
        let m = api_message(body);
        assert!(m.starts_with("invalid x-api-key"), "{m}");
        assert!(!m.contains("AAAAAAAAAAAA"), "{m}");
        assert_eq!(
            api_message(br#"{"error":{"message":"Rate limit exceeded","code":429}}"#),
            "Rate limit exceeded"
        );
        assert_eq!(api_message(b"Bad Gateway\n"), "Bad Gateway");
    }

    #[test]
    fn outage_classes() {
        assert!(SynthesisError::Timeout(TIMEOUT).is_outage());
        assert!(SynthesisError::Connect("x".into()).is_outage());
        for status in [429, 500, 502, 503, 529] {
            assert!(
                SynthesisError::Http {
                    status,
                    message: String::new()
                }
                .is_outage(),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404] {
            assert!(
                !SynthesisError::Http {
                    status,
                    message: String::new()
                }
                .is_outage(),
                "{status}"
            );
        }
        assert!(!SynthesisError::Refused.is_outage());
        assert_eq!(
            SynthesisError::Timeout(TIMEOUT).short_reason(),
            "model timed out"
        );
        assert_eq!(
            SynthesisError::Timeout(TIMEOUT).to_string(),
            "the model API did not answer within 30 s"
        );
    }

    #[test]
    fn config_debug_and_errors_never_show_the_key() {
        let key = "sk-or-v1-0123456789abcdef0123456789abcdef";
        let config = ProviderConfig::OpenAiCompatible {
            base_url: "https://openrouter.ai/api/v1".into(),
            api_key: SecretString::from(key),
            model: "openai/gpt-4o-mini".into(),
            referer: Some("https://msp.example".into()),
            title: Some("csp".into()),
        };
        assert!(!format!("{config:?}").contains(key));
        let bad = ProviderConfig::Anthropic {
            base_url: "https://api.anthropic.com".into(),
            api_key: SecretString::from("bad\nkey-0123456789abcdef"),
            model: "claude-sonnet-4-5".into(),
        };
        let Err(e) = synthesizer(bad, HttpClient::new().unwrap(), CallOptions::default()) else {
            panic!("a key with a newline is refused");
        };
        assert!(!e.to_string().contains("0123456789abcdef"), "{e}");
        let Err(e) = synthesizer(
            ProviderConfig::Anthropic {
                base_url: "ftp://x".into(),
                api_key: SecretString::from("k"),
                model: "m".into(),
            },
            HttpClient::new().unwrap(),
            CallOptions::default(),
        ) else {
            panic!("a non-http base URL is refused");
        };
        assert!(matches!(e, SynthesisError::Config(_)), "{e:?}");
    }
}
