//! What a tenant is made of, checked: the pure half of tenant
//! administration. Every check's message names the field, because an admin
//! reads it in a 400 answer.
//!
//! A tenant has one ticketing tool (`tool_type`, a [`ToolType`]) and that
//! tool's fields ([`connector::Connector::fields`]: `servicedesk_url`,
//! `jira_url`, `zendesk_subdomain`, ...), checked by the tool's connector.
//!
//! Stored shapes (the `tenant_configs` JSON columns, read by the workers
//! too): `settings` holds the values of the tool's non-secret fields by
//! field name (a ServiceDesk Plus tenant: `servicedesk_url`,
//! `servicedesk_auth`, always written, `authtoken` by default — [`Settings`]
//! reads it), plus the tenant's own `kb_api_url` when set; `preferences` is
//! [`Preferences`] (`sources`, `note_format`, `max_words`, `mask_pii`).
//! Secrets never appear in either: each secret field is a sealed secret of
//! `Owner::tenant(id)` under the field's name ([`API_KEY`],
//! `jira_api_token`, `zendesk_api_token`), beside [`WEBHOOK_SECRET`] and
//! [`WEBHOOK_SECRET_PREVIOUS`].

use csp_domain::{ContextSource, NoteFormat, TenantId};
use csp_proto::v1 as pb;
use csp_ticketing::connector::{self, Field, ToolType};
use csp_ticketing::registry::connector;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The tool the webhook intake has a route for today, and the `tool_type`
/// of tenants created before there were others.
pub const TOOL_TYPE: &str = "servicedesk_plus";
/// Sealed-secret key names of a tenant (a tool's secret fields are sealed
/// under their field names; ServiceDesk Plus' is this one).
pub const API_KEY: &str = "api_key";
pub const WEBHOOK_SECRET: &str = "webhook_secret";
pub const WEBHOOK_SECRET_PREVIOUS: &str = "webhook_secret_previous";
/// How long the previous webhook secret stays valid after a rotation: a
/// day, long enough to update the ServiceDesk Plus custom function in
/// working hours anywhere. A second rotation within it drops the oldest
/// secret at once.
pub const WEBHOOK_SECRET_GRACE: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest secret field (API key, token) accepted, in bytes.
pub const MAX_API_KEY_BYTES: usize = 4096;
pub(crate) const MAX_NAME_CHARS: usize = 200;
pub(crate) const MAX_URL_BYTES: usize = 2048;
pub(crate) const MAX_WORDS: u32 = 500;
/// What the API shows instead of a secret, and what an update ignores.
pub(crate) const REDACTED: &str = "[REDACTED]";
/// A tenant id that is a route of the REST API
/// (`POST /api/v1/tenants/test-connection`): a tenant of that name could
/// not be read or changed there.
const RESERVED_TENANT_IDS: &[&str] = &["test-connection"];
/// The tenant's own setting in the `settings` JSON, beside its tool's.
const KB_API_URL: &str = "kb_api_url";

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
}

/// A ServiceDesk Plus tenant's `settings` JSON as the tools that speak only
/// ServiceDesk Plus read it (the history import). Another tool's tenant
/// reads as an empty `servicedesk_url` (its `kb_api_url` kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(default)]
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

/// A tenant's tool and its fields, checked; the secrets still in the clear
/// (the caller seals them at once).
pub(crate) struct ToolConfig {
    pub tool: ToolType,
    /// The values of the tool's non-secret fields that are set, by name.
    pub values: BTreeMap<&'static str, String>,
    /// The secret fields given, by name.
    pub secrets: BTreeMap<&'static str, SecretString>,
}

impl ToolConfig {
    /// What the tool's connector takes.
    pub(crate) fn settings(&self) -> connector::Settings {
        connector::Settings {
            values: self
                .values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            secrets: self
                .secrets
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        }
    }
}

/// A checked `CreateTenantRequest`.
pub(crate) struct NewTenantInput {
    pub tenant_id: TenantId,
    pub name: String,
    pub tool: ToolConfig,
    pub kb_api_url: Option<String>,
    pub preferences: Preferences,
    pub monthly_budget_micros: Option<i64>,
    /// Its jobs go to a queue of its own (`csp_domain::EnhanceQueue`).
    pub dedicated_queue: bool,
}

impl NewTenantInput {
    /// The `settings` JSON to store.
    pub(crate) fn settings_json(&self) -> serde_json::Value {
        let mut object: serde_json::Map<String, serde_json::Value> = self
            .tool
            .values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone().into()))
            .collect();
        if let Some(url) = &self.kb_api_url {
            object.insert(KB_API_URL.to_owned(), url.clone().into());
        }
        serde_json::Value::Object(object)
    }
}

/// Checks a create request, field by field in the order of the form.
pub(crate) fn check_create(r: &pb::CreateTenantRequest) -> Result<NewTenantInput, String> {
    let tenant_id = TenantId::parse(r.tenant_id.trim()).map_err(|e| e.to_string())?;
    if RESERVED_TENANT_IDS.contains(&tenant_id.as_str()) {
        return Err(format!(
            "tenant_id '{tenant_id}' is reserved (a route of the API): choose another"
        ));
    }
    let name = check_name(&r.name)?;
    let tool = check_tool_type(&r.tool_type)?;
    let given = given_fields(
        tool,
        &r.tool_fields,
        &legacy(&r.servicedesk_url, &r.servicedesk_auth, &r.api_key),
    )?;
    let tool = tool_config(tool, &given)?;
    let kb_api_url = check_optional_url(KB_API_URL, &r.kb_api_url)?;
    let preferences = match &r.enhancement_preferences {
        Some(p) => Preferences::from_proto(p)?,
        None => Preferences::default(),
    };
    let monthly_budget_micros = check_budget(r.monthly_budget_micros)?;
    Ok(NewTenantInput {
        tenant_id,
        name,
        tool,
        kb_api_url,
        preferences,
        monthly_budget_micros,
        dedicated_queue: r.dedicated_queue,
    })
}

/// Checks settings to test before they are saved: the same rules as a
/// create's tool fields.
pub(crate) fn check_connection_settings(r: &pb::ConnectionSettings) -> Result<ToolConfig, String> {
    let tool = check_tool_type(&r.tool_type)?;
    let given = given_fields(
        tool,
        &r.tool_fields,
        &legacy(&r.servicedesk_url, &r.servicedesk_auth, &r.api_key),
    )?;
    tool_config(tool, &given)
}

/// The legacy ServiceDesk Plus fields of a request; "" is absent.
fn legacy<'a>(url: &'a str, auth: &'a str, key: &'a str) -> [(&'static str, Option<&'a str>); 3] {
    let set = |v: &'a str| Some(v).filter(|v| !v.is_empty());
    [
        ("servicedesk_url", set(url)),
        ("servicedesk_auth", set(auth)),
        (API_KEY, set(key)),
    ]
}

/// The tool's fields from a complete set of given values: trimmed,
/// secrets bounded, the tool's defaults filled in, then checked by the
/// tool's connector.
fn tool_config(tool: ToolType, given: &BTreeMap<&'static str, &str>) -> Result<ToolConfig, String> {
    let mut config = ToolConfig {
        tool,
        values: BTreeMap::new(),
        secrets: BTreeMap::new(),
    };
    for field in connector(tool).fields() {
        let Some(value) = given.get(field.name) else {
            continue;
        };
        if field.secret {
            if let Some(secret) = check_secret(field, value)? {
                config.secrets.insert(field.name, secret);
            }
        } else if !value.trim().is_empty() {
            config.values.insert(field.name, value.trim().to_owned());
        }
    }
    defaults(tool, &mut config.values);
    check_tool(tool, &config.settings())?;
    Ok(config)
}

/// Values a tool's tenants always store, so that every reader sees them.
fn defaults(tool: ToolType, values: &mut BTreeMap<&'static str, String>) {
    if tool == ToolType::ServicedeskPlus {
        values
            .entry("servicedesk_auth")
            .or_insert_with(|| ServiceDeskAuth::Authtoken.as_str().to_owned());
    }
}

/// The connector's verdict on `settings`, its message naming the field.
fn check_tool(tool: ToolType, settings: &connector::Settings) -> Result<(), String> {
    connector(tool).check(settings).map_err(|e| e.message)
}

/// A secret field's value: `None` for "" or the redaction marker (absent
/// on a create, kept on an update).
fn check_secret(field: &Field, value: &str) -> Result<Option<SecretString>, String> {
    let name = field.name;
    if is_blank(value) {
        return Ok(None);
    }
    if value.len() > MAX_API_KEY_BYTES {
        return Err(format!("{name} must be at most {MAX_API_KEY_BYTES} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{name} must not contain control characters"));
    }
    Ok(Some(SecretString::from(value.trim())))
}

/// "" or the redaction marker: what a form sends for a secret it did not
/// change, and for a field it does not use.
fn is_blank(value: &str) -> bool {
    matches!(value.trim(), "" | REDACTED)
}

/// The values a request gives for `tool`'s fields, by field name: its
/// `tool_fields` and, where those lack them, the legacy ServiceDesk Plus
/// request fields. A value for a field the tool does not have is refused
/// unless it is blank (a form sends every tool's fields).
fn given_fields<'a>(
    tool: ToolType,
    tool_fields: &'a HashMap<String, String>,
    legacy: &[(&'static str, Option<&'a str>)],
) -> Result<BTreeMap<&'static str, &'a str>, String> {
    let fields = connector(tool).fields();
    let field = |name: &str| fields.iter().find(|f| f.name == name);
    let mut given = BTreeMap::new();
    // Sorted, so that the first problem named is always the same one.
    let mut sent: Vec<(&String, &String)> = tool_fields.iter().collect();
    sent.sort();
    for (name, value) in sent {
        match field(name) {
            Some(f) => {
                given.insert(f.name, value.as_str());
            }
            None if is_blank(value) => {}
            None => return Err(not_a_field(name, tool)),
        }
    }
    for &(name, value) in legacy {
        let Some(value) = value else { continue };
        match field(name) {
            Some(f) => match given.get(f.name) {
                None => {
                    given.insert(f.name, value);
                }
                Some(v) if v.trim() == value.trim() => {}
                Some(_) => {
                    return Err(format!(
                        "{name} is given twice with different values (as {name} and as tool_fields.{name})"
                    ));
                }
            },
            None if is_blank(value) => {}
            None => return Err(not_a_field(name, tool)),
        }
    }
    Ok(given)
}

fn not_a_field(name: &str, tool: ToolType) -> String {
    let names: Vec<&str> = connector(tool).fields().iter().map(|f| f.name).collect();
    format!(
        "{} is not a field of {tool} tenants (their fields: {})",
        shown(name),
        names.join(", ")
    )
}

/// The values of `tool`'s non-secret fields in a stored `settings` JSON.
pub(crate) fn stored_values(
    tool: ToolType,
    settings: &serde_json::Value,
) -> BTreeMap<&'static str, String> {
    connector(tool)
        .fields()
        .iter()
        .filter(|f| !f.secret)
        .filter_map(|f| {
            let value = settings.get(f.name)?.as_str()?;
            Some((f.name, value.to_owned()))
        })
        .collect()
}

/// What an update is checked against: the stored tenant.
pub(crate) struct Current<'a> {
    pub tool: ToolType,
    /// The `settings` JSON.
    pub settings: &'a serde_json::Value,
    /// The names of the sealed secrets it has.
    pub secrets: &'a [String],
}

/// A checked `UpdateTenantRequest` against the stored tenant.
#[derive(Default)]
pub(crate) struct UpdateInput {
    pub name: Option<String>,
    /// The whole new `settings` JSON, when it changes.
    pub settings: Option<serde_json::Value>,
    pub preferences: Option<Preferences>,
    pub monthly_budget_micros: Option<Option<i64>>,
    pub is_active: Option<bool>,
    pub dedicated_queue: Option<bool>,
    /// Secret fields to replace, by name.
    pub secrets: BTreeMap<&'static str, SecretString>,
    /// The names of the fields that change, for the audit row.
    pub changed: Vec<&'static str>,
}

/// The tool cannot change: a tenant's webhook URL, its recorded jobs and
/// its ticket history all name tickets of its tool, so another tool is
/// another tenant.
pub(crate) fn check_update(
    r: &pb::UpdateTenantRequest,
    current: &Current<'_>,
) -> Result<UpdateInput, String> {
    let tool = current.tool;
    let mut out = UpdateInput::default();
    if let Some(t) = &r.tool_type
        && t.trim() != tool.as_str()
    {
        return Err(format!(
            "tool_type cannot be changed (this tenant's is {tool}): create a new tenant for another tool"
        ));
    }
    if let Some(name) = &r.name {
        out.name = Some(check_name(name)?);
        out.changed.push("name");
    }
    let given = given_fields(
        tool,
        &r.tool_fields,
        &[
            ("servicedesk_url", r.servicedesk_url.as_deref()),
            ("servicedesk_auth", r.servicedesk_auth.as_deref()),
            (API_KEY, r.api_key.as_deref()),
        ],
    )?;
    let mut values = stored_values(tool, current.settings);
    let mut tool_changed = false;
    for field in connector(tool).fields() {
        let Some(value) = given.get(field.name) else {
            continue;
        };
        if field.secret {
            // "" and the redaction marker keep the stored secret: a form
            // that shows "[REDACTED]" can be sent back as it is.
            if let Some(secret) = check_secret(field, value)? {
                out.secrets.insert(field.name, secret);
                out.changed.push(field.name);
            }
        } else {
            match value.trim() {
                "" => values.remove(field.name),
                v => values.insert(field.name, v.to_owned()),
            };
            tool_changed = true;
            out.changed.push(field.name);
        }
    }
    defaults(tool, &mut values);
    if tool_changed || !out.secrets.is_empty() {
        // A stored secret is checked for its presence only: it stays sealed.
        let mut settings = connector::Settings {
            values: values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            ..Default::default()
        };
        for field in connector(tool).fields().iter().filter(|f| f.secret) {
            if current.secrets.iter().any(|s| s == field.name) {
                settings
                    .secrets
                    .insert(field.name.to_owned(), SecretString::from("(stored)"));
            }
        }
        for (name, secret) in &out.secrets {
            settings.secrets.insert((*name).to_owned(), secret.clone());
        }
        check_tool(tool, &settings)?;
    }
    let mut kb_api_url = None;
    if let Some(url) = &r.kb_api_url {
        kb_api_url = Some(check_optional_url(KB_API_URL, url)?);
        out.changed.push(KB_API_URL);
    }
    if tool_changed || kb_api_url.is_some() {
        // The stored object with the tool's fields replaced: what else it
        // holds (kb_api_url) stays where it is.
        let mut object = current.settings.as_object().cloned().unwrap_or_default();
        for field in connector(tool).fields().iter().filter(|f| !f.secret) {
            match values.get(field.name) {
                Some(v) => object.insert(field.name.to_owned(), v.clone().into()),
                None => object.remove(field.name),
            };
        }
        match kb_api_url {
            Some(Some(url)) => {
                object.insert(KB_API_URL.to_owned(), url.into());
            }
            Some(None) => {
                object.remove(KB_API_URL);
            }
            None => {}
        }
        out.settings = Some(serde_json::Value::Object(object));
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
    if let Some(dedicated) = r.dedicated_queue {
        out.dedicated_queue = Some(dedicated);
        out.changed.push("dedicated_queue");
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

/// The contract's message for an unknown tool: "Unknown tool_type 'x'.
/// Supported: servicedesk_plus, jira, zendesk."
fn check_tool_type(tool_type: &str) -> Result<ToolType, String> {
    ToolType::parse(tool_type.trim()).map_err(|e| e.to_string())
}

/// An absolute http(s) URL with a host and no credentials in it (they
/// would end up in logs and in the settings, which are not secret).
/// A webhook secret an admin brings from the tool (Zendesk generates its
/// own): 16 to 256 bytes, no whitespace or control characters.
pub(crate) fn check_webhook_secret(secret: &str) -> Result<(), String> {
    if !(16..=256).contains(&secret.len()) {
        return Err("webhook_secret must be 16 to 256 bytes".into());
    }
    if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("webhook_secret must not contain whitespace or control characters".into());
    }
    Ok(())
}

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
            tool_fields: HashMap::new(),
            dedicated_queue: false,
        }
    }

    /// A create request for `tool` with only `fields` (no legacy fields).
    fn of_tool(tool: &str, fields: &[(&str, &str)]) -> pb::CreateTenantRequest {
        pb::CreateTenantRequest {
            tool_type: tool.into(),
            servicedesk_url: String::new(),
            api_key: String::new(),
            tool_fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..valid()
        }
    }

    /// `r` with `field` set to `value` in its tool fields (removed when
    /// `None`).
    fn with(
        mut r: pb::CreateTenantRequest,
        field: &str,
        value: Option<&str>,
    ) -> pb::CreateTenantRequest {
        match value {
            Some(v) => r.tool_fields.insert(field.to_owned(), v.to_owned()),
            None => r.tool_fields.remove(field),
        };
        r
    }

    fn error_of(r: &pb::CreateTenantRequest) -> String {
        match check_create(r) {
            Ok(_) => panic!("accepted: {:?}", r.tool_fields),
            Err(e) => e,
        }
    }

    #[test]
    fn a_minimal_tenant_takes_the_defaults() {
        let t = check_create(&valid()).unwrap();
        assert_eq!(t.tenant_id.as_str(), "acme");
        assert_eq!(t.tool.tool, ToolType::ServicedeskPlus);
        assert_eq!(t.kb_api_url, None);
        assert_eq!(t.preferences, Preferences::default());
        assert_eq!(t.preferences.sources.len(), 3);
        assert_eq!(t.preferences.max_words, 500);
        assert_eq!(t.tool.secrets[API_KEY].expose_secret(), "key-123");
        // The stored JSON shapes the workers read: exactly what a
        // ServiceDesk Plus tenant always stored.
        assert_eq!(
            serde_json::to_value(&t.preferences).unwrap(),
            serde_json::json!({"sources": ["ticket_history", "kb", "ip_inventory"],
                               "note_format": "html", "max_words": 500, "mask_pii": false})
        );
        assert_eq!(
            t.settings_json(),
            serde_json::json!({"servicedesk_url": "https://sdp.acme.example", "servicedesk_auth": "authtoken"})
        );
        let stored = Settings::from_stored(&t.settings_json());
        assert_eq!(stored.servicedesk_url, "https://sdp.acme.example");
        assert_eq!(stored.servicedesk_auth, ServiceDeskAuth::Authtoken);
    }

    #[test]
    fn legacy_and_tool_fields_are_one_set_for_servicedesk_plus() {
        // The same tenant through tool_fields only.
        let t = check_create(&of_tool(
            "servicedesk_plus",
            &[
                ("servicedesk_url", " https://sdp.acme.example "),
                ("servicedesk_auth", "zoho_oauth"),
                ("api_key", "key-123"),
            ],
        ))
        .unwrap();
        assert_eq!(t.tool.values["servicedesk_url"], "https://sdp.acme.example");
        assert_eq!(t.tool.values["servicedesk_auth"], "zoho_oauth");
        assert_eq!(t.tool.secrets[API_KEY].expose_secret(), "key-123");
        // Both, agreeing: fine; disagreeing: refused, naming the field.
        let mut r = valid();
        r.tool_fields
            .insert("servicedesk_url".into(), "https://sdp.acme.example".into());
        assert!(check_create(&r).is_ok());
        r.tool_fields
            .insert("servicedesk_url".into(), "https://other.example".into());
        assert!(
            error_of(&r).starts_with("servicedesk_url is given twice"),
            "{}",
            error_of(&r)
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        type Edit = fn(&mut pb::CreateTenantRequest);
        let cases: Vec<(Edit, &str)> = vec![
            (|r| r.tenant_id = "Acme".into(), "tenant_id must be"),
            (|r| r.tenant_id = "a".into(), "tenant_id must be"),
            (
                |r| r.tenant_id = "test-connection".into(),
                "tenant_id 'test-connection' is reserved",
            ),
            (|r| r.name = " ".into(), "name must be 1 to 200 characters"),
            (
                |r| r.name = "n".repeat(201),
                "name must be 1 to 200 characters",
            ),
            (
                |r| r.tool_type = "freshservice".into(),
                "Unknown tool_type 'freshservice'. Supported: servicedesk_plus, jira, zendesk.",
            ),
            (
                |r| r.tool_type = "".into(),
                "Unknown tool_type ''. Supported: servicedesk_plus, jira, zendesk.",
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
                "servicedesk_url is required",
            ),
            (
                |r| r.servicedesk_auth = "basic".into(),
                "servicedesk_auth must be one of: authtoken, zoho_oauth",
            ),
            (|r| r.api_key = "".into(), "api_key is required"),
            (|r| r.api_key = REDACTED.into(), "api_key is required"),
            (
                |r| r.api_key = "k".repeat(4097),
                "api_key must be at most 4096 bytes",
            ),
            (
                |r| r.api_key = "key\n123".into(),
                "api_key must not contain control characters",
            ),
            (
                |r| {
                    r.tool_fields
                        .insert("jira_url".into(), "https://acme.atlassian.net".into());
                },
                "jira_url is not a field of servicedesk_plus tenants (their fields: servicedesk_url, servicedesk_auth, api_key)",
            ),
            (
                |r| {
                    r.tool_fields.insert("colour".into(), "red".into());
                },
                "colour is not a field of servicedesk_plus tenants",
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
        // Blank values of another tool's fields are what a form sends for
        // the fields it does not show: ignored.
        let mut r = valid();
        r.tool_fields.insert("jira_url".into(), String::new());
        r.tool_fields
            .insert("zendesk_api_token".into(), REDACTED.into());
        assert!(check_create(&r).is_ok());
    }

    const JIRA: &[(&str, &str)] = &[
        ("jira_url", "https://globex.atlassian.net"),
        ("jira_email", "bot@globex.example"),
        ("jira_api_token", "jira-token-123"),
        ("jira_project_key", "OPS"),
    ];

    const ZENDESK: &[(&str, &str)] = &[
        ("zendesk_subdomain", "initech"),
        ("zendesk_email", "bot@initech.example"),
        ("zendesk_api_token", "zd-token-123"),
    ];

    #[test]
    fn a_jira_tenant_stores_its_plain_fields_and_seals_its_token() {
        let t = check_create(&with(
            of_tool("jira", JIRA),
            "jira_issue_type",
            Some(" Service Request "),
        ))
        .unwrap();
        assert_eq!(t.tool.tool, ToolType::Jira);
        assert_eq!(
            t.settings_json(),
            serde_json::json!({
                "jira_url": "https://globex.atlassian.net", "jira_email": "bot@globex.example",
                "jira_project_key": "OPS", "jira_issue_type": "Service Request",
            })
        );
        assert_eq!(
            t.tool.secrets.keys().copied().collect::<Vec<_>>(),
            ["jira_api_token"]
        );
        assert_eq!(
            t.tool.secrets["jira_api_token"].expose_secret(),
            "jira-token-123"
        );
        // jira_issue_type is optional.
        assert!(check_create(&of_tool("jira", JIRA)).is_ok());
    }

    #[test]
    fn a_jira_tenants_fields_are_checked_and_named() {
        let jira = || of_tool("jira", JIRA);
        for (field, value, message) in [
            ("jira_url", None, "jira_url is required"),
            ("jira_url", Some(""), "jira_url is required"),
            (
                "jira_url",
                Some("globex.atlassian.net"),
                "jira_url must be an http or https URL",
            ),
            (
                "jira_url",
                Some("https://bot:pw@globex.atlassian.net"),
                "jira_url must be an http or https URL",
            ),
            ("jira_email", None, "jira_email is required"),
            (
                "jira_email",
                Some("bot"),
                "jira_email must be an e-mail address",
            ),
            ("jira_api_token", None, "jira_api_token is required"),
            (
                "jira_api_token",
                Some(REDACTED),
                "jira_api_token is required",
            ),
            (
                "jira_api_token",
                Some("two words"),
                "jira_api_token must not contain whitespace",
            ),
            ("jira_project_key", None, "jira_project_key is required"),
            (
                "jira_project_key",
                Some("ops"),
                "jira_project_key must be 2 to 10 characters of A-Z, 0-9 or '_', starting with a letter",
            ),
            (
                "jira_project_key",
                Some("1OPS"),
                "jira_project_key must be 2 to 10 characters",
            ),
            (
                "jira_issue_type",
                Some(&*"x".repeat(61)),
                "jira_issue_type must be an issue type name of at most 60 characters",
            ),
        ] {
            let err = error_of(&with(jira(), field, value));
            assert!(err.starts_with(message), "{field}={value:?}: {err}");
        }
        // ServiceDesk Plus' fields are not a Jira tenant's.
        let mut r = jira();
        r.api_key = "sdp-key".into();
        assert!(
            error_of(&r).starts_with(
                "api_key is not a field of jira tenants (their fields: jira_url, jira_email, jira_api_token, jira_project_key, jira_issue_type)"
            ),
            "{}",
            error_of(&r)
        );
        // ... unless blank, as a form sends them.
        let mut r = jira();
        r.api_key = REDACTED.into();
        r.servicedesk_auth = " ".into();
        assert!(check_create(&r).is_ok());
    }

    #[test]
    fn a_zendesk_tenants_fields_are_checked_and_named() {
        let t = check_create(&of_tool("zendesk", ZENDESK)).unwrap();
        assert_eq!(
            t.settings_json(),
            serde_json::json!({"zendesk_subdomain": "initech", "zendesk_email": "bot@initech.example"})
        );
        assert_eq!(
            t.tool.secrets.keys().copied().collect::<Vec<_>>(),
            ["zendesk_api_token"]
        );
        let with_url = with(
            of_tool("zendesk", ZENDESK),
            "zendesk_url",
            Some("https://initech.example/zendesk"),
        );
        assert_eq!(
            check_create(&with_url).unwrap().settings_json()["zendesk_url"],
            "https://initech.example/zendesk"
        );
        for (field, value, message) in [
            ("zendesk_subdomain", None, "zendesk_subdomain is required"),
            (
                "zendesk_subdomain",
                Some("Initech Corp"),
                "zendesk_subdomain must match [a-z0-9][a-z0-9-]{0,62}",
            ),
            ("zendesk_email", None, "zendesk_email is required"),
            (
                "zendesk_email",
                Some("@initech.example"),
                "zendesk_email must be an e-mail address",
            ),
            ("zendesk_api_token", None, "zendesk_api_token is required"),
            (
                "zendesk_api_token",
                Some(""),
                "zendesk_api_token is required",
            ),
            (
                "zendesk_api_token",
                Some(&*"t".repeat(4097)),
                "zendesk_api_token must be at most 4096 bytes",
            ),
            (
                "zendesk_url",
                Some("ftp://initech.example"),
                "zendesk_url must be an http or https URL",
            ),
            (
                "jira_project_key",
                Some("OPS"),
                "jira_project_key is not a field of zendesk tenants",
            ),
        ] {
            let err = error_of(&with(of_tool("zendesk", ZENDESK), field, value));
            assert!(err.starts_with(message), "{field}={value:?}: {err}");
        }
    }

    #[test]
    fn unsaved_settings_are_checked_like_a_create() {
        let settings = |tool: &str, fields: &[(&str, &str)]| pb::ConnectionSettings {
            tool_type: tool.into(),
            tool_fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        };
        let c = check_connection_settings(&settings("jira", JIRA)).unwrap();
        let s = c.settings();
        assert_eq!(s.value("jira_project_key"), Some("OPS"));
        assert_eq!(
            s.secret("jira_api_token").unwrap().expose_secret(),
            "jira-token-123"
        );
        assert_eq!(
            check_connection_settings(&settings("jira", &JIRA[..3]))
                .err()
                .unwrap(),
            "jira_project_key is required"
        );
        assert_eq!(
            check_connection_settings(&settings("Jira", JIRA))
                .err()
                .unwrap(),
            "Unknown tool_type 'Jira'. Supported: servicedesk_plus, jira, zendesk."
        );
        // ServiceDesk Plus through the legacy fields.
        let legacy = pb::ConnectionSettings {
            tool_type: "servicedesk_plus".into(),
            servicedesk_url: "https://sdp.acme.example".into(),
            api_key: "key".into(),
            ..Default::default()
        };
        let s = check_connection_settings(&legacy).unwrap().settings();
        assert_eq!(s.value("servicedesk_auth"), Some("authtoken"));
        assert!(s.secret(API_KEY).is_some());
    }

    #[test]
    fn a_jira_tenant_is_updated_field_by_field() {
        let stored = serde_json::json!({
            "jira_url": "https://globex.atlassian.net", "jira_email": "bot@globex.example",
            "jira_project_key": "OPS", "jira_issue_type": "Incident",
            "kb_api_url": "https://kb.globex.example",
        });
        let secrets = vec!["jira_api_token".to_owned(), WEBHOOK_SECRET.to_owned()];
        let current = Current {
            tool: ToolType::Jira,
            settings: &stored,
            secrets: &secrets,
        };
        let u = check_update(
            &pb::UpdateTenantRequest {
                tool_type: Some("jira".into()),
                tool_fields: HashMap::from([
                    ("jira_project_key".into(), "SUP".into()),
                    ("jira_issue_type".into(), String::new()),
                    ("jira_api_token".into(), REDACTED.into()),
                    ("zendesk_url".into(), String::new()),
                ]),
                servicedesk_url: Some(String::new()),
                ..Default::default()
            },
            &current,
        )
        .unwrap();
        assert_eq!(
            u.settings.unwrap(),
            serde_json::json!({
                "jira_url": "https://globex.atlassian.net", "jira_email": "bot@globex.example",
                "jira_project_key": "SUP", "kb_api_url": "https://kb.globex.example",
            })
        );
        assert!(u.secrets.is_empty(), "the token is kept");
        assert_eq!(u.changed, ["jira_project_key", "jira_issue_type"]);
        let u = check_update(
            &pb::UpdateTenantRequest {
                tool_fields: HashMap::from([("jira_api_token".into(), "new-token".into())]),
                ..Default::default()
            },
            &current,
        )
        .unwrap();
        assert_eq!(u.secrets["jira_api_token"].expose_secret(), "new-token");
        assert!(u.settings.is_none());
        assert_eq!(u.changed, ["jira_api_token"]);
        for (r, message) in [
            (
                pb::UpdateTenantRequest {
                    tool_fields: HashMap::from([("jira_project_key".into(), "sup".into())]),
                    ..Default::default()
                },
                "jira_project_key must be 2 to 10 characters",
            ),
            (
                pb::UpdateTenantRequest {
                    tool_fields: HashMap::from([("jira_url".into(), String::new())]),
                    ..Default::default()
                },
                "jira_url is required",
            ),
            (
                pb::UpdateTenantRequest {
                    servicedesk_url: Some("https://sdp.example".into()),
                    ..Default::default()
                },
                "servicedesk_url is not a field of jira tenants",
            ),
            (
                pb::UpdateTenantRequest {
                    tool_type: Some("zendesk".into()),
                    ..Default::default()
                },
                "tool_type cannot be changed (this tenant's is jira)",
            ),
        ] {
            let err = check_update(&r, &current).err().expect(message);
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
        assert_eq!(t.tool.values["servicedesk_auth"], "zoho_oauth");
        assert_eq!(
            t.kb_api_url.as_deref(),
            Some("http://kb.acme.example/search")
        );
        assert_eq!(
            t.settings_json()["kb_api_url"],
            "http://kb.acme.example/search"
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
        let stored = serde_json::json!({
            "servicedesk_url": "https://old.example", "servicedesk_auth": "authtoken",
            "kb_api_url": "https://kb.example",
        });
        let secrets = vec![API_KEY.to_owned(), WEBHOOK_SECRET.to_owned()];
        let current = Current {
            tool: ToolType::ServicedeskPlus,
            settings: &stored,
            secrets: &secrets,
        };
        let u = check_update(
            &pb::UpdateTenantRequest {
                tenant_id: "acme".into(),
                api_key: Some(REDACTED.into()),
                tool_type: Some("servicedesk_plus".into()),
                ..Default::default()
            },
            &current,
        )
        .unwrap();
        assert!(u.changed.is_empty() && u.settings.is_none() && u.secrets.is_empty());
        let u = check_update(
            &pb::UpdateTenantRequest {
                tenant_id: "acme".into(),
                servicedesk_url: Some("https://new.example".into()),
                kb_api_url: Some(String::new()),
                api_key: Some("new-key".into()),
                clear_monthly_budget: true,
                is_active: Some(false),
                dedicated_queue: Some(true),
                ..Default::default()
            },
            &current,
        )
        .unwrap();
        assert_eq!(
            u.settings.unwrap(),
            serde_json::json!({"servicedesk_url": "https://new.example", "servicedesk_auth": "authtoken"})
        );
        assert_eq!(u.secrets[API_KEY].expose_secret(), "new-key");
        assert_eq!(u.monthly_budget_micros, Some(None));
        assert_eq!(u.is_active, Some(false));
        assert_eq!(u.dedicated_queue, Some(true));
        assert_eq!(
            u.changed,
            [
                "servicedesk_url",
                "api_key",
                "kb_api_url",
                "monthly_budget_micros",
                "is_active",
                "dedicated_queue"
            ]
        );
        // A tool field through tool_fields; kb_api_url stays where it is.
        let u = check_update(
            &pb::UpdateTenantRequest {
                tool_fields: HashMap::from([("servicedesk_auth".into(), "zoho_oauth".into())]),
                ..Default::default()
            },
            &current,
        )
        .unwrap();
        assert_eq!(
            u.settings.unwrap(),
            serde_json::json!({"servicedesk_url": "https://old.example", "servicedesk_auth": "zoho_oauth",
                               "kb_api_url": "https://kb.example"})
        );
        for (r, message) in [
            (
                pb::UpdateTenantRequest {
                    servicedesk_url: Some("nope".into()),
                    ..Default::default()
                },
                "servicedesk_url must be an http or https URL",
            ),
            (
                pb::UpdateTenantRequest {
                    servicedesk_url: Some(String::new()),
                    ..Default::default()
                },
                "servicedesk_url is required",
            ),
            (
                pb::UpdateTenantRequest {
                    tool_type: Some("jira".into()),
                    ..Default::default()
                },
                "tool_type cannot be changed (this tenant's is servicedesk_plus): create a new tenant for another tool",
            ),
            (
                pb::UpdateTenantRequest {
                    tool_fields: HashMap::from([("jira_api_token".into(), "tok".into())]),
                    ..Default::default()
                },
                "jira_api_token is not a field of servicedesk_plus tenants",
            ),
        ] {
            let err = check_update(&r, &current).err().expect(message);
            assert!(err.starts_with(message), "{err} / {message}");
        }
        // A stored key counts as present; a tenant without one must send one.
        let none = Vec::new();
        let keyless = Current {
            secrets: &none,
            ..current
        };
        let err = check_update(
            &pb::UpdateTenantRequest {
                servicedesk_url: Some("https://new.example".into()),
                ..Default::default()
            },
            &keyless,
        )
        .err()
        .unwrap();
        assert_eq!(err, "api_key is required");
    }

    #[test]
    fn stored_json_that_does_not_parse_reads_as_defaults() {
        assert_eq!(
            Preferences::from_stored(&serde_json::json!({"x": 1})),
            Preferences::default()
        );
        let stored = serde_json::json!({"sources": ["kb"], "note_format": "markdown", "max_words": 200, "mask_pii": true});
        assert_eq!(Preferences::from_stored(&stored).max_words, 200);
        // Another tool's tenant, as ServiceDesk Plus-only readers see it.
        let jira = serde_json::json!({"jira_url": "https://acme.atlassian.net", "kb_api_url": "https://kb.example"});
        let s = Settings::from_stored(&jira);
        assert_eq!(s.servicedesk_url, "");
        assert_eq!(s.kb_api_url.as_deref(), Some("https://kb.example"));
    }
}
