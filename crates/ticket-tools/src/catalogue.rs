//! The ticket tools as types: their names, what the model is told about
//! them, the JSON Schema of their inputs, the role each needs, and the
//! parser that turns a model's input into a checked [`ToolInput`].
//!
//! Each tool's fields are declared once ([`Field`] tables below); the JSON
//! Schema the model sees and the checks [`ToolInput::parse`] makes are both
//! read from that table, so the two cannot drift apart. None of the inputs
//! names a tenant: the tenant is whatever the chat session is bound to, and
//! the door knows that from the caller's token, never from the model.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use csp_domain::Role;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The MCP server's name in `--mcp-config`; the CLI names its tools
/// `mcp__<server>__<tool>`.
pub const SERVER_NAME: &str = "tickets";

/// How many results a search returns when the model does not say.
pub const DEFAULT_LIMIT: u32 = 5;

/// The tools a chat agent may call on its session's tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TicketTool {
    SearchSimilarTickets,
    SearchKb,
    LookupIp,
    GetTicket,
    AddInternalNote,
}

impl TicketTool {
    /// Every tool, in the order the model is shown them.
    pub const ALL: [TicketTool; 5] = [
        TicketTool::SearchSimilarTickets,
        TicketTool::SearchKb,
        TicketTool::LookupIp,
        TicketTool::GetTicket,
        TicketTool::AddInternalNote,
    ];

    /// The tool's name on the wire: in `tools/list`, in the door's path.
    pub const fn as_str(self) -> &'static str {
        match self {
            TicketTool::SearchSimilarTickets => "search_similar_tickets",
            TicketTool::SearchKb => "search_kb",
            TicketTool::LookupIp => "lookup_ip",
            TicketTool::GetTicket => "get_ticket",
            TicketTool::AddInternalNote => "add_internal_note",
        }
    }

    /// The name the CLI gives the tool, as the permission hook and the
    /// policy service see it: `mcp__tickets__<name>`.
    pub fn mcp_name(self) -> String {
        format!("mcp__{SERVER_NAME}__{}", self.as_str())
    }

    /// What the model is told the tool does.
    pub const fn description(self) -> &'static str {
        match self {
            TicketTool::SearchSimilarTickets => {
                "Finds resolved tickets of this session's tenant similar to a problem description, \
                 with how they were resolved."
            }
            TicketTool::SearchKb => {
                "Searches the knowledge base of this session's tenant for articles matching a query."
            }
            TicketTool::LookupIp => {
                "Looks up an IP address in the system inventory of this session's tenant: the host \
                 name, role, client and location recorded for it."
            }
            TicketTool::GetTicket => {
                "Reads one ticket of this session's tenant from its ticketing tool, by the ticket's id."
            }
            TicketTool::AddInternalNote => {
                "Adds an internal note to a ticket of this session's tenant: technicians see it, the \
                 requester does not. Only operators may use it."
            }
        }
    }

    /// The least role a user needs for the tool: reading is for every
    /// user, writing on a customer's ticket is for operators.
    pub const fn required_role(self) -> Role {
        match self {
            TicketTool::SearchSimilarTickets
            | TicketTool::SearchKb
            | TicketTool::LookupIp
            | TicketTool::GetTicket => Role::User,
            TicketTool::AddInternalNote => Role::Operator,
        }
    }

    /// The JSON Schema of the tool's input, as `tools/list` shows it.
    pub fn input_schema(self) -> Value {
        let mut properties = Map::new();
        for field in self.fields() {
            properties.insert(field.name.to_owned(), field.schema());
        }
        let required: Vec<&str> = self
            .fields()
            .iter()
            .filter(|f| f.required)
            .map(|f| f.name)
            .collect();
        json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    }

    fn fields(self) -> &'static [Field] {
        match self {
            TicketTool::SearchSimilarTickets => &[SIMILAR_QUERY, LIMIT],
            TicketTool::SearchKb => &[KB_QUERY, LIMIT],
            TicketTool::LookupIp => &[IP],
            TicketTool::GetTicket => &[TICKET_ID],
            TicketTool::AddInternalNote => &[TICKET_ID, NOTE_TEXT],
        }
    }

    /// "`query` (required) and `limit`", for messages to the model.
    fn accepted(self) -> String {
        let names: Vec<String> = self
            .fields()
            .iter()
            .map(|f| {
                if f.required {
                    format!("`{}` (required)", f.name)
                } else {
                    format!("`{}`", f.name)
                }
            })
            .collect();
        match names.split_last() {
            Some((last, [])) => format!("only {last}"),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => "no input".to_owned(),
        }
    }
}

impl fmt::Display for TicketTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the [`TicketTool`]s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tool `{0}`; the ticket tools are {list}", list = tool_list())]
pub struct UnknownTool(String);

fn tool_list() -> String {
    TicketTool::ALL.map(TicketTool::as_str).join(", ")
}

impl FromStr for TicketTool {
    type Err = UnknownTool;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TicketTool::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownTool(shown(s)))
    }
}

/// The input of `search_similar_tickets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimilarQuery {
    /// Trimmed, 1 to 2000 characters.
    pub query: String,
    /// 1 to 20; `None` means [`DEFAULT_LIMIT`] (see [`SimilarQuery::limit`]).
    pub limit: Option<u32>,
}

impl SimilarQuery {
    /// How many tickets to return.
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT)
    }
}

/// The input of `search_kb`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KbQuery {
    /// Trimmed, 1 to 2000 characters.
    pub query: String,
    /// 1 to 20; `None` means [`DEFAULT_LIMIT`] (see [`KbQuery::limit`]).
    pub limit: Option<u32>,
}

impl KbQuery {
    /// How many articles to return.
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT)
    }
}

/// The input of `lookup_ip`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpQuery {
    pub ip: IpAddr,
}

/// The input of `get_ticket`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketRef {
    /// Trimmed, 1 to 128 characters, no control characters.
    pub ticket_id: String,
}

/// The input of `add_internal_note`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    /// Trimmed, 1 to 128 characters, no control characters.
    pub ticket_id: String,
    /// Trimmed, 1 to 10000 characters.
    pub text: String,
}

/// A tool's input, checked against its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolInput {
    Similar(SimilarQuery),
    Kb(KbQuery),
    Ip(IpQuery),
    Ticket(TicketRef),
    Note(NoteInput),
}

impl ToolInput {
    /// Checks the model's input for `tool`: an object with only the tool's
    /// fields, each of its type and within its limits. Text fields come
    /// back trimmed. The first problem found is returned, worded for the
    /// model so it can correct its call.
    pub fn parse(tool: TicketTool, input: &Value) -> Result<ToolInput, InputError> {
        let object = input.as_object().ok_or(InputError::NotAnObject {
            tool,
            accepted: tool.accepted(),
        })?;
        // A tenant field is answered before any other unknown one: the model
        // should learn that the tenant is not its choice, not merely that it
        // misspelled something.
        if let Some(name) = object.keys().find(|k| names_a_tenant(k)) {
            return Err(InputError::TenantField { field: shown(name) });
        }
        if let Some(name) = object
            .keys()
            .find(|k| !tool.fields().iter().any(|f| f.name == k.as_str()))
        {
            return Err(InputError::UnknownField {
                tool,
                field: shown(name),
                accepted: tool.accepted(),
            });
        }
        let mut checked = Map::new();
        for field in tool.fields() {
            match object.get(field.name).filter(|v| !v.is_null()) {
                Some(value) => {
                    checked.insert(field.name.to_owned(), field.check(value)?);
                }
                None if field.required => {
                    return Err(InputError::Missing {
                        field: field.name,
                        about: field.about,
                    });
                }
                None => {}
            }
        }
        // Every field was checked above, so the typed decoding cannot fail on
        // the model's input; an error here is a defect of the field tables.
        let checked = Value::Object(checked);
        let decoded = match tool {
            TicketTool::SearchSimilarTickets => decode(checked).map(ToolInput::Similar),
            TicketTool::SearchKb => decode(checked).map(ToolInput::Kb),
            TicketTool::LookupIp => decode(checked).map(ToolInput::Ip),
            TicketTool::GetTicket => decode(checked).map(ToolInput::Ticket),
            TicketTool::AddInternalNote => decode(checked).map(ToolInput::Note),
        };
        decoded.map_err(|e| InputError::Undecodable {
            tool,
            why: e.to_string(),
        })
    }

    /// The tool this input is for.
    pub fn tool(&self) -> TicketTool {
        match self {
            ToolInput::Similar(_) => TicketTool::SearchSimilarTickets,
            ToolInput::Kb(_) => TicketTool::SearchKb,
            ToolInput::Ip(_) => TicketTool::LookupIp,
            ToolInput::Ticket(_) => TicketTool::GetTicket,
            ToolInput::Note(_) => TicketTool::AddInternalNote,
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(value)
}

/// Why a tool's input was refused. The message is for the model: it names
/// the field and says what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("The input of {tool} must be a JSON object; it takes {accepted}.")]
    NotAnObject { tool: TicketTool, accepted: String },
    #[error(
        "`{field}` is not an input: these tools only ever read the tenant this chat session is bound to."
    )]
    TenantField { field: String },
    #[error("`{field}` is not an input of {tool}; it takes {accepted}.")]
    UnknownField {
        tool: TicketTool,
        field: String,
        accepted: String,
    },
    #[error("`{field}` is required: {about}")]
    Missing {
        field: &'static str,
        about: &'static str,
    },
    #[error("`{field}` must be {expected}.")]
    Invalid {
        field: &'static str,
        expected: String,
    },
    #[error("The input of {tool} could not be read: {why}")]
    Undecodable { tool: TicketTool, why: String },
}

impl InputError {
    /// The field the error is about, when it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            InputError::TenantField { field } | InputError::UnknownField { field, .. } => {
                Some(field)
            }
            InputError::Missing { field, .. } | InputError::Invalid { field, .. } => Some(field),
            InputError::NotAnObject { .. } | InputError::Undecodable { .. } => None,
        }
    }
}

/// `tenant_id`, `tenantId`, `Tenant`, `tenant-id`…: any spelling of a
/// tenant field, so that none of them slips through as a mere typo.
fn names_a_tenant(name: &str) -> bool {
    let folded: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    folded == "tenant" || folded == "tenantid"
}

/// A name the model sent, fit to be quoted back: bounded, one line.
fn shown(name: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = name
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if name.chars().count() > MAX {
        out.push('…');
    }
    out
}

/// One input field of a tool: the source of both its schema and its checks.
struct Field {
    name: &'static str,
    kind: Kind,
    required: bool,
    /// What the field is, for the schema and for a "missing" message.
    about: &'static str,
}

#[derive(Clone, Copy)]
enum Kind {
    /// Text of 1 to `max` characters once trimmed; `controls` allows control
    /// characters (a note's line breaks), which an id never has.
    Text { max: usize, controls: bool },
    /// A whole number from `min` to `max`, `default` when absent.
    Count { min: u32, max: u32, default: u32 },
    /// An IPv4 or IPv6 address.
    Ip,
}

const QUERY_MAX: usize = 2000;
const TICKET_ID_MAX: usize = 128;
const NOTE_MAX: usize = 10_000;

const SIMILAR_QUERY: Field = Field {
    name: "query",
    kind: Kind::Text {
        max: QUERY_MAX,
        controls: true,
    },
    required: true,
    about: "the problem to find similar resolved tickets for, described in a few sentences or keywords.",
};
const KB_QUERY: Field = Field {
    name: "query",
    kind: Kind::Text {
        max: QUERY_MAX,
        controls: true,
    },
    required: true,
    about: "what to look up in the knowledge base, in a few words or a question.",
};
const LIMIT: Field = Field {
    name: "limit",
    kind: Kind::Count {
        min: 1,
        max: 20,
        default: DEFAULT_LIMIT,
    },
    required: false,
    about: "how many results to return, 1 to 20 (5 when not given).",
};
const IP: Field = Field {
    name: "ip",
    kind: Kind::Ip,
    required: true,
    about: "an IPv4 or IPv6 address, such as 203.0.113.7 or 2001:db8::1.",
};
const TICKET_ID: Field = Field {
    name: "ticket_id",
    kind: Kind::Text {
        max: TICKET_ID_MAX,
        controls: false,
    },
    required: true,
    about: "the ticket's id in the tenant's ticketing tool, as it appears in the ticket.",
};
const NOTE_TEXT: Field = Field {
    name: "text",
    kind: Kind::Text {
        max: NOTE_MAX,
        controls: true,
    },
    required: true,
    about: "the note's text, plain text with line breaks.",
};

impl Field {
    fn schema(&self) -> Value {
        let mut schema = match self.kind {
            Kind::Text { max, .. } => json!({"type": "string", "minLength": 1, "maxLength": max}),
            Kind::Count { min, max, default } => {
                json!({"type": "integer", "minimum": min, "maximum": max, "default": default})
            }
            Kind::Ip => json!({"type": "string"}),
        };
        schema["description"] = Value::String(capitalised(self.about));
        schema
    }

    /// The value, checked and normalised (text trimmed), or why not.
    fn check(&self, value: &Value) -> Result<Value, InputError> {
        let invalid = |expected: String| InputError::Invalid {
            field: self.name,
            expected,
        };
        match self.kind {
            Kind::Text { max, controls } => {
                let text = value
                    .as_str()
                    .ok_or_else(|| invalid(format!("a string of 1 to {max} characters")))?
                    .trim();
                let len = text.chars().count();
                if len == 0 {
                    return Err(invalid(format!(
                        "a non-empty string of at most {max} characters"
                    )));
                }
                if len > max {
                    return Err(invalid(format!(
                        "at most {max} characters long (it has {len})"
                    )));
                }
                if !controls && text.chars().any(char::is_control) {
                    return Err(invalid(
                        "free of control characters such as line breaks and tabs".to_owned(),
                    ));
                }
                Ok(Value::String(text.to_owned()))
            }
            Kind::Count { min, max, .. } => {
                let expected = || format!("a whole number from {min} to {max}");
                let n = value.as_u64().ok_or_else(|| invalid(expected()))?;
                if !(u64::from(min)..=u64::from(max)).contains(&n) {
                    return Err(invalid(expected()));
                }
                Ok(Value::from(n))
            }
            Kind::Ip => {
                let expected =
                    || "an IPv4 or IPv6 address such as 203.0.113.7 or 2001:db8::1".to_owned();
                let text = value.as_str().ok_or_else(|| invalid(expected()))?;
                let ip: IpAddr = text.trim().parse().map_err(|_| invalid(expected()))?;
                Ok(Value::String(ip.to_string()))
            }
        }
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(tool: TicketTool, input: Value) -> Result<ToolInput, InputError> {
        ToolInput::parse(tool, &input)
    }

    fn refusal(tool: TicketTool, input: Value) -> InputError {
        parse(tool, input).expect_err("the input should be refused")
    }

    #[test]
    fn names_round_trip_and_carry_the_server_prefix() {
        for tool in TicketTool::ALL {
            assert_eq!(tool.as_str().parse::<TicketTool>().unwrap(), tool);
            assert_eq!(tool.mcp_name(), format!("mcp__tickets__{}", tool.as_str()));
            assert_eq!(tool.to_string(), tool.as_str());
        }
        assert_eq!(
            TicketTool::SearchSimilarTickets.mcp_name(),
            "mcp__tickets__search_similar_tickets"
        );
        let err = "delete_ticket".parse::<TicketTool>().unwrap_err();
        assert!(err.to_string().contains("`delete_ticket`"), "{err}");
        assert!(err.to_string().contains("search_kb"), "{err}");
        // The MCP prefix is the CLI's business, not a name of ours.
        assert!("mcp__tickets__search_kb".parse::<TicketTool>().is_err());
    }

    #[test]
    fn only_the_note_needs_an_operator() {
        for tool in TicketTool::ALL {
            let expected = if tool == TicketTool::AddInternalNote {
                Role::Operator
            } else {
                Role::User
            };
            assert_eq!(tool.required_role(), expected, "{tool}");
        }
    }

    #[test]
    fn every_tool_is_described_for_the_model() {
        for tool in TicketTool::ALL {
            let d = tool.description();
            assert!(d.len() > 40 && d.ends_with('.'), "{tool}: {d}");
            assert!(d.contains("this session's tenant"), "{tool}: {d}");
        }
    }

    #[test]
    fn schemas_are_closed_and_list_the_parsers_fields() {
        for tool in TicketTool::ALL {
            let schema = tool.input_schema();
            assert_eq!(schema["type"], "object", "{tool}");
            assert_eq!(schema["additionalProperties"], false, "{tool}");
            let props: Vec<&str> = schema["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let mut fields: Vec<&str> = tool.fields().iter().map(|f| f.name).collect();
            fields.sort_unstable();
            assert_eq!(props, fields, "{tool}");
            assert!(
                !props.iter().any(|p| names_a_tenant(p)),
                "{tool} must not take a tenant"
            );
            for (name, prop) in schema["properties"].as_object().unwrap() {
                assert!(prop["description"].is_string(), "{tool}.{name}");
            }
        }
        assert_eq!(
            TicketTool::AddInternalNote.input_schema()["required"],
            json!(["ticket_id", "text"])
        );
        assert_eq!(
            TicketTool::SearchKb.input_schema()["required"],
            json!(["query"])
        );
        assert_eq!(
            TicketTool::SearchKb.input_schema()["properties"]["limit"],
            json!({"type": "integer", "minimum": 1, "maximum": 20, "default": 5,
                   "description": "How many results to return, 1 to 20 (5 when not given)."})
        );
    }

    /// The schema the model sees and the parser agree: what one accepts the
    /// other does, for valid inputs and for a sample of invalid ones.
    #[test]
    fn schemas_and_parser_agree_on_examples() {
        let cases = [
            (
                TicketTool::SearchSimilarTickets,
                json!({"query": "VPN drops"}),
                true,
            ),
            (
                TicketTool::SearchSimilarTickets,
                json!({"query": "VPN", "limit": 20}),
                true,
            ),
            (
                TicketTool::SearchSimilarTickets,
                json!({"query": "VPN", "limit": 21}),
                false,
            ),
            (
                TicketTool::SearchSimilarTickets,
                json!({"query": "VPN", "limit": 0}),
                false,
            ),
            (
                TicketTool::SearchSimilarTickets,
                json!({"query": ""}),
                false,
            ),
            (TicketTool::SearchSimilarTickets, json!({}), false),
            (
                TicketTool::SearchKb,
                json!({"query": "printer", "limit": 1}),
                true,
            ),
            (
                TicketTool::SearchKb,
                json!({"query": "printer", "tenant_id": "x"}),
                false,
            ),
            (TicketTool::LookupIp, json!({"ip": "10.0.0.1"}), true),
            (TicketTool::LookupIp, json!({"ip": 10}), false),
            (TicketTool::GetTicket, json!({"ticket_id": "INC-42"}), true),
            (
                TicketTool::GetTicket,
                json!({"ticket_id": "x".repeat(129)}),
                false,
            ),
            (
                TicketTool::AddInternalNote,
                json!({"ticket_id": "42", "text": "Rebooted."}),
                true,
            ),
            (
                TicketTool::AddInternalNote,
                json!({"ticket_id": "42"}),
                false,
            ),
        ];
        for (tool, input, valid) in cases {
            let validator = jsonschema::validator_for(&tool.input_schema()).unwrap();
            assert_eq!(validator.is_valid(&input), valid, "schema: {tool} {input}");
            assert_eq!(
                parse(tool, input.clone()).is_ok(),
                valid,
                "parser: {tool} {input}"
            );
        }
    }

    #[test]
    fn a_query_is_trimmed_and_bounded() {
        let ToolInput::Similar(q) = parse(
            TicketTool::SearchSimilarTickets,
            json!({"query": "  Outlook keeps asking\nfor a password  "}),
        )
        .unwrap() else {
            panic!("not a similar query")
        };
        assert_eq!(q.query, "Outlook keeps asking\nfor a password");
        assert_eq!(q.limit, None);
        assert_eq!(q.limit(), DEFAULT_LIMIT);

        let at_max = "é".repeat(2000);
        assert!(parse(TicketTool::SearchKb, json!({ "query": at_max })).is_ok());
        let err = refusal(TicketTool::SearchKb, json!({"query": "é".repeat(2001)}));
        assert_eq!(err.field(), Some("query"));
        assert_eq!(
            err.to_string(),
            "`query` must be at most 2000 characters long (it has 2001)."
        );
        for blank in ["", "   ", "\n\t"] {
            let err = refusal(TicketTool::SearchKb, json!({ "query": blank }));
            assert_eq!(err.field(), Some("query"), "{blank:?}");
            assert!(err.to_string().contains("non-empty"), "{err}");
        }
        let err = refusal(TicketTool::SearchKb, json!({"query": ["a", "b"]}));
        assert_eq!(
            err.to_string(),
            "`query` must be a string of 1 to 2000 characters."
        );
    }

    #[test]
    fn a_query_is_required() {
        let err = refusal(TicketTool::SearchSimilarTickets, json!({"limit": 3}));
        assert_eq!(err.field(), Some("query"));
        assert!(
            err.to_string().starts_with("`query` is required: "),
            "{err}"
        );
        // null is as good as absent, for optional and required fields alike.
        let err = refusal(TicketTool::SearchSimilarTickets, json!({"query": null}));
        assert_eq!(err.field(), Some("query"));
        let ToolInput::Kb(q) =
            parse(TicketTool::SearchKb, json!({"query": "x", "limit": null})).unwrap()
        else {
            panic!("not a KB query")
        };
        assert_eq!(q.limit(), 5);
    }

    #[test]
    fn a_limit_is_a_whole_number_from_1_to_20() {
        for ok in [1, 7, 20] {
            let ToolInput::Kb(q) =
                parse(TicketTool::SearchKb, json!({"query": "x", "limit": ok})).unwrap()
            else {
                panic!("not a KB query")
            };
            assert_eq!(q.limit, Some(ok));
            assert_eq!(q.limit(), ok);
        }
        for bad in [
            json!(0),
            json!(21),
            json!(-1),
            json!(2.5),
            json!("5"),
            json!(u64::MAX),
        ] {
            let err = refusal(
                TicketTool::SearchSimilarTickets,
                json!({"query": "x", "limit": bad}),
            );
            assert_eq!(
                err.to_string(),
                "`limit` must be a whole number from 1 to 20.",
                "{bad}"
            );
        }
    }

    #[test]
    fn an_ip_is_parsed_by_the_standard_library() {
        for (given, ip) in [
            ("203.0.113.7", "203.0.113.7"),
            (" 10.1.2.3 ", "10.1.2.3"),
            ("2001:db8::1", "2001:db8::1"),
            ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ] {
            let ToolInput::Ip(q) = parse(TicketTool::LookupIp, json!({ "ip": given })).unwrap()
            else {
                panic!("not an IP query")
            };
            assert_eq!(q.ip, ip.parse::<IpAddr>().unwrap());
        }
        for bad in [
            json!("10.0.0.256"),
            json!("10.0.0"),
            json!("host.example"),
            json!("10.0.0.1/24"),
            json!(""),
            json!(167772161),
        ] {
            let err = refusal(TicketTool::LookupIp, json!({ "ip": bad }));
            assert_eq!(err.field(), Some("ip"), "{bad}");
            assert!(err.to_string().contains("IPv4 or IPv6"), "{err}");
        }
    }

    #[test]
    fn a_ticket_id_is_short_and_on_one_line() {
        let ToolInput::Ticket(t) =
            parse(TicketTool::GetTicket, json!({"ticket_id": " INC-1042 "})).unwrap()
        else {
            panic!("not a ticket ref")
        };
        assert_eq!(t.ticket_id, "INC-1042");
        assert!(parse(TicketTool::GetTicket, json!({"ticket_id": "9".repeat(128)})).is_ok());
        let err = refusal(TicketTool::GetTicket, json!({"ticket_id": "9".repeat(129)}));
        assert_eq!(err.field(), Some("ticket_id"));
        assert!(err.to_string().contains("at most 128"), "{err}");
        for bad in ["INC\n42", "INC\t42", "INC\u{0}42", "INC\u{1b}[0m"] {
            let err = refusal(TicketTool::GetTicket, json!({ "ticket_id": bad }));
            assert_eq!(err.field(), Some("ticket_id"), "{bad:?}");
            assert!(err.to_string().contains("control characters"), "{err}");
        }
        let err = refusal(TicketTool::GetTicket, json!({"ticket_id": 42}));
        assert_eq!(err.field(), Some("ticket_id"));
    }

    #[test]
    fn a_note_has_a_ticket_and_up_to_10000_characters() {
        let ToolInput::Note(n) = parse(
            TicketTool::AddInternalNote,
            json!({"ticket_id": "42", "text": "Checked the VPN.\n\nReset the token.\n"}),
        )
        .unwrap() else {
            panic!("not a note")
        };
        assert_eq!(n.ticket_id, "42");
        assert_eq!(n.text, "Checked the VPN.\n\nReset the token.");
        assert!(
            parse(
                TicketTool::AddInternalNote,
                json!({"ticket_id": "42", "text": "a".repeat(10_000)})
            )
            .is_ok()
        );
        let err = refusal(
            TicketTool::AddInternalNote,
            json!({"ticket_id": "42", "text": "a".repeat(10_001)}),
        );
        assert_eq!(err.field(), Some("text"));
        assert!(err.to_string().contains("at most 10000"), "{err}");
        let err = refusal(
            TicketTool::AddInternalNote,
            json!({"ticket_id": "42", "text": " "}),
        );
        assert_eq!(err.field(), Some("text"));
        let err = refusal(TicketTool::AddInternalNote, json!({"text": "hello"}));
        assert_eq!(err.field(), Some("ticket_id"));
    }

    #[test]
    fn a_tenant_is_never_an_input() {
        for name in ["tenant_id", "tenant", "tenantId", "Tenant-ID", "TENANT"] {
            for tool in TicketTool::ALL {
                let err = refusal(tool, json!({ name: "other-msp" }));
                assert_eq!(
                    err.to_string(),
                    format!(
                        "`{name}` is not an input: these tools only ever read the tenant this \
                         chat session is bound to."
                    ),
                    "{tool}"
                );
            }
        }
        // Said even when the rest of the input is valid, and before other
        // unknown fields.
        let err = refusal(
            TicketTool::SearchKb,
            json!({"query": "x", "aaa": 1, "tenant_id": "acme"}),
        );
        assert!(matches!(err, InputError::TenantField { .. }), "{err}");
    }

    #[test]
    fn an_unknown_field_is_named_with_what_the_tool_takes() {
        let err = refusal(
            TicketTool::SearchKb,
            json!({"query": "x", "max_results": 3}),
        );
        assert_eq!(
            err.to_string(),
            "`max_results` is not an input of search_kb; it takes `query` (required) and `limit`."
        );
        let err = refusal(TicketTool::LookupIp, json!({"address": "10.0.0.1"}));
        assert_eq!(
            err.to_string(),
            "`address` is not an input of lookup_ip; it takes only `ip` (required)."
        );
        let err = refusal(
            TicketTool::AddInternalNote,
            json!({"ticket_id": "1", "text": "x", "public": true}),
        );
        assert_eq!(
            err.to_string(),
            "`public` is not an input of add_internal_note; it takes `ticket_id` (required) and \
             `text` (required)."
        );
        // A field name is quoted back bounded and on one line.
        let long = format!("{}\n", "z".repeat(100));
        let err = refusal(TicketTool::GetTicket, json!({ long: 1 }));
        assert_eq!(err.field().unwrap(), format!("{}…", "z".repeat(64)));
    }

    #[test]
    fn an_input_must_be_an_object() {
        for bad in [json!(null), json!("VPN"), json!(["VPN"]), json!(3)] {
            let err = refusal(TicketTool::SearchSimilarTickets, bad.clone());
            assert_eq!(
                err.to_string(),
                "The input of search_similar_tickets must be a JSON object; it takes `query` \
                 (required) and `limit`.",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_parsed_input_knows_its_tool() {
        let inputs = [
            (TicketTool::SearchSimilarTickets, json!({"query": "x"})),
            (TicketTool::SearchKb, json!({"query": "x"})),
            (TicketTool::LookupIp, json!({"ip": "::1"})),
            (TicketTool::GetTicket, json!({"ticket_id": "1"})),
            (
                TicketTool::AddInternalNote,
                json!({"ticket_id": "1", "text": "x"}),
            ),
        ];
        for (tool, input) in inputs {
            assert_eq!(parse(tool, input).unwrap().tool(), tool);
        }
    }
}

/// Whatever the model sends as a tool's input, [`ToolInput::parse`] answers
/// the typed input or an error naming the field, never a panic.
#[cfg(test)]
mod properties {
    use super::*;
    use csp_testkit::proptest_config;
    use proptest::prelude::*;
    use serde_json::json;

    fn checked(tool: TicketTool, input: &Value) -> Result<ToolInput, InputError> {
        let result = ToolInput::parse(tool, input);
        match &result {
            Ok(parsed) => assert_eq!(parsed.tool(), tool),
            Err(e) => {
                let message = e.to_string();
                assert!(!message.trim().is_empty());
                if let Some(field) = e.field() {
                    assert!(
                        message.contains(field),
                        "{message:?} does not name {field:?}"
                    );
                }
            }
        }
        result
    }

    fn valid(tool: TicketTool) -> Value {
        match tool {
            TicketTool::SearchSimilarTickets | TicketTool::SearchKb => {
                json!({"query": "VPN drops", "limit": 5})
            }
            TicketTool::LookupIp => json!({"ip": "10.0.0.1"}),
            TicketTool::GetTicket => json!({"ticket_id": "INC-42"}),
            TicketTool::AddInternalNote => json!({"ticket_id": "42", "text": "Rebooted."}),
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            Just(json!(u64::MAX)),
            "\\PC{0,30}".prop_map(Value::String),
            prop::sample::select(vec![1usize, 129, 2_001, 20_001])
                .prop_map(|n| json!("é".repeat(n))),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn tool() -> impl Strategy<Value = TicketTool> {
        prop::sample::select(TicketTool::ALL.to_vec())
    }

    proptest! {
        #![proptest_config(proptest_config(256))]

        #[test]
        fn any_json_is_an_input_or_an_error_naming_the_field(
            tool in tool(),
            input in json_value(),
        ) {
            let _ = checked(tool, &input);
        }

        #[test]
        fn a_valid_input_with_a_field_changed_is_named(
            tool in tool(),
            field in prop_oneof![
                prop::sample::select(vec![
                    "query", "limit", "ip", "ticket_id", "text", "tenant_id", "TenantId", "tenant-id",
                ])
                .prop_map(str::to_owned),
                "[a-z]{1,12}",
            ],
            value in prop::option::of(json_value()),
        ) {
            let mut input = valid(tool);
            let before = input.get(&field).cloned();
            match value {
                None => drop(input.as_object_mut().unwrap().remove(&field)),
                Some(v) => drop(input.as_object_mut().unwrap().insert(field.clone(), v)),
            }
            if let Err(e) = checked(tool, &input)
                && input.get(&field) != before.as_ref()
                && before.is_some() | input.get(&field).is_some()
            {
                prop_assert_eq!(e.field(), Some(field.as_str()));
            }
        }

        // Up to the depth serde_json reads from the wire (128).
        #[test]
        fn deep_nesting_is_refused_with_a_reason(tool in tool(), depth in 1usize..127) {
            let mut v = json!("x");
            for _ in 0..depth {
                v = json!([v]);
            }
            let mut input = valid(tool);
            let field = input.as_object().unwrap().keys().next().unwrap().clone();
            input[&field] = v;
            let e = checked(tool, &input).unwrap_err();
            prop_assert_eq!(e.field(), Some(field.as_str()));
        }
    }
}
