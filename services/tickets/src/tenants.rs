//! What a tenant is made of, checked: the pure half of tenant
//! administration. Every check's message names the field, because an admin
//! reads it in a 400 answer.
//!
//! Stored shapes (the `tenant_configs` JSON columns, read by the workers
//! too): `settings` is [`Settings`] (`servicedesk_url`, `servicedesk_auth`,
//! `kb_api_url`), `preferences` is [`Preferences`] (`sources`,
//! `note_format`, `max_words`, `mask_pii`). Secrets never appear in either:
//! they are sealed secrets of `Owner::tenant(id)` under [`API_KEY`],
//! [`WEBHOOK_SECRET`] and [`WEBHOOK_SECRET_PREVIOUS`].

use csp_domain::{ContextSource, NoteFormat, TenantId};
use csp_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The one ticketing tool with a connector today.
pub const TOOL_TYPE: &str = "servicedesk_plus";
/// Sealed-secret key names of a tenant.
pub const API_KEY: &str = "api_key";
pub const WEBHOOK_SECRET: &str = "webhook_secret";
pub const WEBHOOK_SECRET_PREVIOUS: &str = "webhook_secret_previous";
/// How long the previous webhook secret stays valid after a rotation: a
/// day, long enough to update the ServiceDesk Plus custom function in
/// working hours anywhere. A second rotation within it drops the oldest
/// secret at once.
pub const WEBHOOK_SECRET_GRACE: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest API key accepted, in bytes.
pub const MAX_API_KEY_BYTES: usize = 4096;
pub(crate) const MAX_NAME_CHARS: usize = 200;
pub(crate) const MAX_URL_BYTES: usize = 2048;
pub(crate) const MAX_WORDS: u32 = 500;
/// What the API shows instead of a secret, and what an update ignores.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// How csp authenticates to the tenant's ServiceDesk Plus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceDeskAuth {
    /// On-premises: `authtoken: <api_key>`.
    #[default]
    Authtoken,
    /// Cloud: `Authorization: Zoho-oauthtoken <api_key>`.
    ZohoOauth,
}

impl ServiceDeskAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authtoken => "authtoken",
            Self::ZohoOauth => "zoho_oauth",
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" | "authtoken" => Ok(Self::Authtoken),
            "zoho_oauth" => Ok(Self::ZohoOauth),
            _ => Err("servicedesk_auth must be authtoken or zoho_oauth".into()),
        }
    }
}

/// A tenant's non-secret tool settings (the `settings` JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub servicedesk_url: String,
    #[serde(default)]
    pub servicedesk_auth: ServiceDeskAuth,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kb_api_url: Option<String>,
}

/// `enhancement_preferences` (the `preferences` JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    pub sources: Vec<ContextSource>,
    #[serde(default)]
    pub note_format: NoteFormat,
    pub max_words: u32,
    #[serde(default)]
    pub mask_pii: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            sources: ContextSource::ALL.to_vec(),
            note_format: NoteFormat::Html,
            max_words: MAX_WORDS,
            mask_pii: false,
        }
    }
}

impl Preferences {
    /// From the API: an empty list of sources means all of them, an empty
    /// format html, a `max_words` of 0 (unset in proto3) 500. The message
    /// replaces the whole set.
    pub fn from_proto(p: &pb::EnhancementPreferences) -> Result<Self, String> {
        let mut sources = Vec::new();
        for s in &p.sources {
            let source = s.trim().parse::<ContextSource>().map_err(|_| {
                format!(
                    "enhancement_preferences.sources: unknown source '{}'. Supported: ticket_history, kb, ip_inventory.",
                    shown(s)
                )
            })?;
            if !sources.contains(&source) {
                sources.push(source);
            }
        }
        if sources.is_empty() {
            sources = ContextSource::ALL.to_vec();
        }
        let note_format = match p.note_format.trim() {
            "" => NoteFormat::Html,
            f => f.parse::<NoteFormat>().map_err(|_| {
                "enhancement_preferences.note_format must be html or markdown".to_owned()
            })?,
        };
        let max_words = match p.max_words {
            0 => MAX_WORDS,
            n if n <= MAX_WORDS => n,
            _ => {
                return Err(format!(
                    "enhancement_preferences.max_words must be between 1 and {MAX_WORDS}"
                ));
            }
        };
        Ok(Self {
            sources,
            note_format,
            max_words,
            mask_pii: p.mask_pii,
        })
    }

    pub fn to_proto(&self) -> pb::EnhancementPreferences {
        pb::EnhancementPreferences {
            sources: self.sources.iter().map(|s| s.as_str().to_owned()).collect(),
            note_format: self.note_format.as_str().to_owned(),
            max_words: self.max_words,
            mask_pii: self.mask_pii,
        }
    }

    /// What a stored tenant holds; a row that does not parse (written by an
    /// older version) reads as the defaults rather than failing the tenant.
    pub fn from_stored(v: &serde_json::Value) -> Self {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }
}

impl Settings {
    pub fn from_stored(v: &serde_json::Value) -> Self {
        serde_json::from_value(v.clone()).unwrap_or(Settings {
            servicedesk_url: String::new(),
            servicedesk_auth: ServiceDeskAuth::Authtoken,
            kb_api_url: None,
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("settings serialise")
    }
}

/// A checked `CreateTenantRequest`; the secrets still in the clear (the
/// caller seals them at once).
pub(crate) struct NewTenantInput {
    pub tenant_id: TenantId,
    pub name: String,
    pub settings: Settings,
    pub preferences: Preferences,
    pub monthly_budget_micros: Option<i64>,
    pub api_key: secrecy::SecretString,
}

/// Checks a create request, field by field in the order of the form.
pub(crate) fn check_create(r: &pb::CreateTenantRequest) -> Result<NewTenantInput, String> {
    let tenant_id = TenantId::parse(r.tenant_id.trim()).map_err(|e| e.to_string())?;
    let name = check_name(&r.name)?;
    check_tool_type(&r.tool_type)?;
    let servicedesk_url = check_url("servicedesk_url", &r.servicedesk_url)?;
    let servicedesk_auth = ServiceDeskAuth::parse(&r.servicedesk_auth)?;
    let api_key = match r.api_key.trim() {
        "" | REDACTED => return Err("api_key is required".into()),
        _ => check_api_key(&r.api_key)?,
    };
    let kb_api_url = check_optional_url("kb_api_url", &r.kb_api_url)?;
    let preferences = match &r.enhancement_preferences {
        Some(p) => Preferences::from_proto(p)?,
        None => Preferences::default(),
    };
    let monthly_budget_micros = check_budget(r.monthly_budget_micros)?;
    Ok(NewTenantInput {
        tenant_id,
        name,
        settings: Settings {
            servicedesk_url,
            servicedesk_auth,
            kb_api_url,
        },
        preferences,
        monthly_budget_micros,
        api_key,
    })
}

/// A checked `UpdateTenantRequest` against the stored settings.
#[derive(Default)]
pub(crate) struct UpdateInput {
    pub name: Option<String>,
    pub settings: Option<Settings>,
    pub preferences: Option<Preferences>,
    pub monthly_budget_micros: Option<Option<i64>>,
    pub is_active: Option<bool>,
    pub api_key: Option<secrecy::SecretString>,
    /// The names of the fields that change, for the audit row.
    pub changed: Vec<&'static str>,
}

pub(crate) fn check_update(
    r: &pb::UpdateTenantRequest,
    current: &Settings,
) -> Result<UpdateInput, String> {
    let mut out = UpdateInput::default();
    if let Some(name) = &r.name {
        out.name = Some(check_name(name)?);
        out.changed.push("name");
    }
    let mut settings = current.clone();
    let mut settings_changed = false;
    if let Some(url) = &r.servicedesk_url {
        settings.servicedesk_url = check_url("servicedesk_url", url)?;
        settings_changed = true;
        out.changed.push("servicedesk_url");
    }
    if let Some(auth) = &r.servicedesk_auth {
        settings.servicedesk_auth = ServiceDeskAuth::parse(auth)?;
        settings_changed = true;
        out.changed.push("servicedesk_auth");
    }
    if let Some(key) = &r.api_key {
        // "" and the redaction marker keep the stored key: a form that
        // shows "[REDACTED]" can be sent back as it is.
        if !matches!(key.trim(), "" | REDACTED) {
            out.api_key = Some(check_api_key(key)?);
            out.changed.push("api_key");
        }
    }
    if let Some(url) = &r.kb_api_url {
        settings.kb_api_url = check_optional_url("kb_api_url", url)?;
        settings_changed = true;
        out.changed.push("kb_api_url");
    }
    if settings_changed {
        out.settings = Some(settings);
    }
    if let Some(p) = &r.enhancement_preferences {
        out.preferences = Some(Preferences::from_proto(p)?);
        out.changed.push("enhancement_preferences");
    }
    if r.clear_monthly_budget {
        out.monthly_budget_micros = Some(None);
        out.changed.push("monthly_budget_micros");
    } else if r.monthly_budget_micros.is_some() {
        out.monthly_budget_micros = Some(check_budget(r.monthly_budget_micros)?);
        out.changed.push("monthly_budget_micros");
    }
    if let Some(active) = r.is_active {
        out.is_active = Some(active);
        out.changed.push("is_active");
    }
    Ok(out)
}

fn check_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters without control characters"
        ));
    }
    Ok(name.to_owned())
}

fn check_tool_type(tool_type: &str) -> Result<(), String> {
    if tool_type.trim() == TOOL_TYPE {
        Ok(())
    } else {
        Err(format!(
            "Unknown tool_type '{}'. Supported: {TOOL_TYPE}.",
            shown(tool_type)
        ))
    }
}

/// An absolute http(s) URL with a host and no credentials in it (they
/// would end up in logs and in the settings, which are not secret).
pub(crate) fn check_url(field: &str, text: &str) -> Result<String, String> {
    let text = text.trim();
    let bad = || format!("{field} must be an http or https URL");
    if text.is_empty() || text.len() > MAX_URL_BYTES {
        return Err(bad());
    }
    let url = url::Url::parse(text).map_err(|_| bad())?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.username().is_empty()
        && url.password().is_none();
    if !ok {
        return Err(bad());
    }
    // As given (minus surrounding spaces): `Url` would add a trailing '/'.
    Ok(text.to_owned())
}

fn check_optional_url(field: &str, text: &str) -> Result<Option<String>, String> {
    if text.trim().is_empty() {
        Ok(None)
    } else {
        check_url(field, text).map(Some)
    }
}

fn check_api_key(key: &str) -> Result<secrecy::SecretString, String> {
    if key.len() > MAX_API_KEY_BYTES {
        return Err(format!("api_key must be at most {MAX_API_KEY_BYTES} bytes"));
    }
    if key.chars().any(char::is_control) {
        return Err("api_key must not contain control characters".into());
    }
    Ok(secrecy::SecretString::from(key.trim()))
}

fn check_budget(micros: Option<i64>) -> Result<Option<i64>, String> {
    match micros {
        Some(m) if m < 0 => Err("monthly_budget_micros must be 0 or more".into()),
        other => Ok(other),
    }
}

/// A user-supplied value echoed in an error: bounded, printable ASCII.
pub(crate) fn shown(text: &str) -> String {
    text.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Where the ticketing tool posts new tickets, relative to the public URL.
pub(crate) fn webhook_path(tool_type: &str, tenant: &TenantId) -> String {
    format!("/webhook/{tool_type}/{tenant}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn valid() -> pb::CreateTenantRequest {
        pb::CreateTenantRequest {
            tenant_id: "acme".into(),
            name: "Acme MSP".into(),
            tool_type: "servicedesk_plus".into(),
            servicedesk_url: "https://sdp.acme.example".into(),
            servicedesk_auth: String::new(),
            api_key: "key-123".into(),
            kb_api_url: String::new(),
            enhancement_preferences: None,
            monthly_budget_micros: None,
        }
    }

    #[test]
    fn a_minimal_tenant_takes_the_defaults() {
        let t = check_create(&valid()).unwrap();
        assert_eq!(t.tenant_id.as_str(), "acme");
        assert_eq!(t.settings.servicedesk_auth, ServiceDeskAuth::Authtoken);
        assert_eq!(t.settings.kb_api_url, None);
        assert_eq!(t.preferences, Preferences::default());
        assert_eq!(t.preferences.sources.len(), 3);
        assert_eq!(t.preferences.max_words, 500);
        assert_eq!(t.api_key.expose_secret(), "key-123");
        // The stored JSON shape the workers read.
        assert_eq!(
            serde_json::to_value(&t.preferences).unwrap(),
            serde_json::json!({"sources": ["ticket_history", "kb", "ip_inventory"],
                               "note_format": "html", "max_words": 500, "mask_pii": false})
        );
        assert_eq!(
            t.settings.to_json(),
            serde_json::json!({"servicedesk_url": "https://sdp.acme.example", "servicedesk_auth": "authtoken"})
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        type Edit = fn(&mut pb::CreateTenantRequest);
        let cases: Vec<(Edit, &str)> = vec![
            (|r| r.tenant_id = "Acme".into(), "tenant_id must be"),
            (|r| r.tenant_id = "a".into(), "tenant_id must be"),
            (|r| r.name = " ".into(), "name must be 1 to 200 characters"),
            (
                |r| r.name = "n".repeat(201),
                "name must be 1 to 200 characters",
            ),
            (
                |r| r.tool_type = "jira".into(),
                "Unknown tool_type 'jira'. Supported: servicedesk_plus.",
            ),
            (
                |r| r.servicedesk_url = "ftp://sdp.example".into(),
                "servicedesk_url must be an http or https URL",
            ),
            (
                |r| r.servicedesk_url = "sdp.example".into(),
                "servicedesk_url must be an http or https URL",
            ),
            (
                |r| r.servicedesk_url = "https://user:pw@sdp.example".into(),
                "servicedesk_url must be an http or https URL",
            ),
            (
                |r| r.servicedesk_url = "".into(),
                "servicedesk_url must be an http or https URL",
            ),
            (
                |r| r.servicedesk_auth = "basic".into(),
                "servicedesk_auth must be authtoken or zoho_oauth",
            ),
            (|r| r.api_key = "".into(), "api_key is required"),
            (|r| r.api_key = REDACTED.into(), "api_key is required"),
            (
                |r| r.api_key = "k".repeat(4097),
                "api_key must be at most 4096 bytes",
            ),
            (
                |r| r.kb_api_url = "javascript:alert(1)".into(),
                "kb_api_url must be an http or https URL",
            ),
            (
                |r| {
                    r.enhancement_preferences = Some(pb::EnhancementPreferences {
                        sources: vec!["monitoring".into()],
                        ..Default::default()
                    })
                },
                "enhancement_preferences.sources: unknown source 'monitoring'. Supported: ticket_history, kb, ip_inventory.",
            ),
            (
                |r| {
                    r.enhancement_preferences = Some(pb::EnhancementPreferences {
                        note_format: "pdf".into(),
                        ..Default::default()
                    })
                },
                "enhancement_preferences.note_format must be html or markdown",
            ),
            (
                |r| {
                    r.enhancement_preferences = Some(pb::EnhancementPreferences {
                        max_words: 501,
                        ..Default::default()
                    })
                },
                "enhancement_preferences.max_words must be between 1 and 500",
            ),
            (
                |r| r.monthly_budget_micros = Some(-1),
                "monthly_budget_micros must be 0 or more",
            ),
        ];
        for (edit, message) in cases {
            let mut r = valid();
            edit(&mut r);
            let err = check_create(&r).err().expect(message);
            assert!(err.starts_with(message), "{err} / {message}");
        }
    }

    #[test]
    fn preferences_and_urls_that_are_fine() {
        let mut r = valid();
        r.servicedesk_auth = "zoho_oauth".into();
        r.kb_api_url = "http://kb.acme.example/search".into();
        r.monthly_budget_micros = Some(0);
        r.enhancement_preferences = Some(pb::EnhancementPreferences {
            sources: vec!["kb".into(), "kb".into(), "ip_inventory".into()],
            note_format: "markdown".into(),
            max_words: 1,
            mask_pii: true,
        });
        let t = check_create(&r).unwrap();
        assert_eq!(t.settings.servicedesk_auth, ServiceDeskAuth::ZohoOauth);
        assert_eq!(
            t.settings.kb_api_url.as_deref(),
            Some("http://kb.acme.example/search")
        );
        assert_eq!(
            t.preferences,
            Preferences {
                sources: vec![ContextSource::Kb, ContextSource::IpInventory],
                note_format: NoteFormat::Markdown,
                max_words: 1,
                mask_pii: true,
            }
        );
        assert_eq!(t.monthly_budget_micros, Some(0));
    }

    #[test]
    fn an_update_changes_only_what_it_names_and_keeps_redacted_keys() {
        let current = Settings {
            servicedesk_url: "https://old.example".into(),
            servicedesk_auth: ServiceDeskAuth::Authtoken,
            kb_api_url: Some("https://kb.example".into()),
        };
        let u = check_update(
            &pb::UpdateTenantRequest {
                tenant_id: "acme".into(),
                api_key: Some(REDACTED.into()),
                ..Default::default()
            },
            &current,
        )
        .unwrap();
        assert!(u.changed.is_empty() && u.settings.is_none() && u.api_key.is_none());
        let u = check_update(
            &pb::UpdateTenantRequest {
                tenant_id: "acme".into(),
                servicedesk_url: Some("https://new.example".into()),
                kb_api_url: Some(String::new()),
                api_key: Some("new-key".into()),
                clear_monthly_budget: true,
                is_active: Some(false),
                ..Default::default()
            },
            &current,
        )
        .unwrap();
        let s = u.settings.unwrap();
        assert_eq!(s.servicedesk_url, "https://new.example");
        assert_eq!(s.kb_api_url, None);
        assert_eq!(u.monthly_budget_micros, Some(None));
        assert_eq!(u.is_active, Some(false));
        assert_eq!(
            u.changed,
            [
                "servicedesk_url",
                "api_key",
                "kb_api_url",
                "monthly_budget_micros",
                "is_active"
            ]
        );
        let err = check_update(
            &pb::UpdateTenantRequest {
                servicedesk_url: Some("nope".into()),
                ..Default::default()
            },
            &current,
        )
        .err()
        .unwrap();
        assert_eq!(err, "servicedesk_url must be an http or https URL");
    }

    #[test]
    fn stored_json_that_does_not_parse_reads_as_defaults() {
        assert_eq!(
            Preferences::from_stored(&serde_json::json!({"x": 1})),
            Preferences::default()
        );
        let stored = serde_json::json!({"sources": ["kb"], "note_format": "markdown", "max_words": 200, "mask_pii": true});
        assert_eq!(Preferences::from_stored(&stored).max_words, 200);
    }
}
