use std::time::Duration;

use csp_http::{HttpClient, Limits};
use csp_mock_ticketing::{MockRequest, MockSdp, RunningMock};
use csp_ticketing::servicedesk::{RetryPolicy, SdpAuth, SdpClient};
use secrecy::SecretString;

pub(crate) const KEY: &str = "tech-key-0123456789";
pub(crate) const ZOHO: &str = "1000.zoho-access-token";
/// The open ticket a webhook would announce.
pub(crate) const TICKET: &str = "1234";

/// Retries fast enough for tests.
pub(crate) const FAST: RetryPolicy = RetryPolicy {
    attempts: 3,
    base_delay: Duration::from_millis(10),
};

pub(crate) async fn mock() -> RunningMock {
    let mock = MockSdp::builder()
        .authtoken(KEY)
        .oauth_token(ZOHO)
        .hang_for(Duration::from_secs(30))
        .build();
    mock.insert(MockRequest::open(
        1234,
        "Outlook crashes",
        "<div>Outlook crashes on <b>WS-17</b> (10.0.0.5)</div>",
        "High",
    ));
    RunningMock::start(mock).await.unwrap()
}

pub(crate) fn client(m: &RunningMock) -> SdpClient {
    client_with(&m.base_url(), SdpAuth::AuthToken(SecretString::from(KEY)))
}

pub(crate) fn client_with(base: &str, auth: SdpAuth) -> SdpClient {
    SdpClient::new(HttpClient::new().unwrap(), base, auth)
        .unwrap()
        .with_retry(FAST)
        .with_limits(Limits {
            timeout: Duration::from_secs(5),
            ..Limits::default()
        })
}
