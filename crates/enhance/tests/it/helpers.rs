use std::time::Duration;

use csp_enhance::{
    CallOptions, GatheredContext, KbArticle, PriceTable, ProviderConfig, SimilarTicket,
    Synthesizer, SystemInfo, TicketInput,
};
use csp_mock_llm::{MockLlm, Options};

pub(crate) const KEY: &str = "sk-test-0123456789abcdef0123";

/// A mock model that demands [`KEY`].
pub(crate) async fn mock() -> MockLlm {
    MockLlm::start(Options {
        api_key: Some(KEY.to_owned()),
        ..Options::default()
    })
    .await
    .expect("the mock starts")
}

/// Quick retries and a short deadline, so fault tests take milliseconds.
pub(crate) fn options() -> CallOptions {
    CallOptions {
        timeout: Duration::from_millis(500),
        retries: 1,
        retry_delay: Duration::from_millis(10),
        prices: PriceTable::default(),
    }
}

pub(crate) fn anthropic(mock: &MockLlm, key: &str) -> Box<dyn Synthesizer> {
    csp_enhance::synthesizer(
        ProviderConfig::Anthropic {
            base_url: mock.base_url(),
            api_key: key.into(),
            model: "claude-sonnet-4-5".into(),
        },
        csp_http::HttpClient::new().unwrap(),
        options(),
    )
    .unwrap()
}

/// OpenRouter-style: the base URL ends in `/api/v1`.
pub(crate) fn openrouter(mock: &MockLlm, key: &str) -> Box<dyn Synthesizer> {
    csp_enhance::synthesizer(
        ProviderConfig::OpenAiCompatible {
            base_url: format!("{}/api/v1/", mock.base_url()),
            api_key: key.into(),
            model: "openai/gpt-4o-mini".into(),
            referer: Some("https://msp.example".into()),
            title: Some("csp tickets".into()),
        },
        csp_http::HttpClient::new().unwrap(),
        options(),
    )
    .unwrap()
}

pub(crate) fn ticket() -> TicketInput {
    TicketInput {
        ticket_id: "4521".into(),
        subject: "Printer offline".into(),
        description:
            "The printer at 10.0.0.7 stopped printing after the update. My password: Sup3rS3cret!"
                .into(),
        priority: "High".into(),
    }
}

pub(crate) fn context() -> GatheredContext {
    GatheredContext {
        similar_tickets: vec![SimilarTicket {
            ticket_id: "3900".into(),
            description: "Printer offline after the driver update".into(),
            resolution: "Restarted the spooler on prn-01.".into(),
            resolved_date: "2026-01-05".into(),
        }],
        kb_articles: vec![KbArticle {
            title: "Printer troubleshooting".into(),
            summary: "Steps to bring a network printer back.".into(),
            url: "https://kb.acme.example/printers".into(),
        }],
        systems: vec![SystemInfo {
            ip: "10.0.0.7".into(),
            hostname: "prn-01".into(),
            role: "printer".into(),
            client: "Acme".into(),
            location: "HQ".into(),
        }],
        ips: vec!["10.0.0.7".parse().unwrap()],
        ..GatheredContext::default()
    }
}
