//! A checked tool input ⇄ its gRPC form (`ChatToolRequest.tool`), the way
//! the session-pool's door hands a call to the tickets service.
//!
//! The tickets service reads a call from the network, so
//! [`ToolInput::from_proto`] checks it again with the very rules of
//! [`ToolInput::parse`]: the door and the service cannot disagree on a limit.

use csp_proto::v1 as pb;
use pb::chat_tool_request::Tool;
use serde_json::{Map, Value, json};

use crate::catalogue::{InputError, TicketTool, ToolInput};

impl ToolInput {
    /// The input as `ChatToolRequest.tool`. An absent limit is 0, proto3's
    /// "not set".
    pub fn into_proto(self) -> Tool {
        match self {
            ToolInput::Similar(q) => Tool::SimilarTickets(pb::SimilarTicketsQuery {
                query: q.query,
                limit: q.limit.unwrap_or(0),
            }),
            ToolInput::Kb(q) => Tool::Kb(pb::KbSearch {
                query: q.query,
                limit: q.limit.unwrap_or(0),
            }),
            ToolInput::Ip(q) => Tool::Ip(pb::IpLookup {
                ip: q.ip.to_string(),
            }),
            ToolInput::Ticket(t) => Tool::Ticket(pb::TicketLookup {
                ticket_id: t.ticket_id,
            }),
            ToolInput::Note(n) => Tool::Note(pb::InternalNote {
                ticket_id: n.ticket_id,
                text: n.text,
            }),
        }
    }

    /// The input of a `ChatToolRequest`, checked as [`ToolInput::parse`]
    /// checks the model's. A limit of 0 is proto3's "not set".
    pub fn from_proto(tool: Tool) -> Result<ToolInput, InputError> {
        let limit = |n: u32| (n != 0).then_some(n);
        let (tool, input) = match tool {
            Tool::SimilarTickets(q) => (
                TicketTool::SearchSimilarTickets,
                query(q.query, limit(q.limit)),
            ),
            Tool::Kb(q) => (TicketTool::SearchKb, query(q.query, limit(q.limit))),
            Tool::Ip(q) => (TicketTool::LookupIp, json!({ "ip": q.ip })),
            Tool::Ticket(t) => (TicketTool::GetTicket, json!({ "ticket_id": t.ticket_id })),
            Tool::Note(n) => (
                TicketTool::AddInternalNote,
                json!({ "ticket_id": n.ticket_id, "text": n.text }),
            ),
        };
        ToolInput::parse(tool, &input)
    }
}

fn query(query: String, limit: Option<u32>) -> Value {
    let mut input = Map::new();
    input.insert("query".to_owned(), Value::String(query));
    if let Some(limit) = limit {
        input.insert("limit".to_owned(), Value::from(limit));
    }
    Value::Object(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_survives_the_round_trip() {
        let inputs = [
            (
                TicketTool::SearchSimilarTickets,
                json!({"query": "VPN drops"}),
            ),
            (
                TicketTool::SearchSimilarTickets,
                json!({"query": "VPN", "limit": 12}),
            ),
            (
                TicketTool::SearchKb,
                json!({"query": "printer", "limit": 1}),
            ),
            (TicketTool::SearchKb, json!({"query": "printer"})),
            (TicketTool::LookupIp, json!({"ip": "2001:db8::1"})),
            (TicketTool::GetTicket, json!({"ticket_id": "INC-42"})),
            (
                TicketTool::AddInternalNote,
                json!({"ticket_id": "42", "text": "Reset the token.\nClosed."}),
            ),
        ];
        for (tool, input) in inputs {
            let parsed = ToolInput::parse(tool, &input).unwrap();
            let back = ToolInput::from_proto(parsed.clone().into_proto()).unwrap();
            assert_eq!(back, parsed, "{tool} {input}");
        }
    }

    #[test]
    fn an_absent_limit_is_zero_on_the_wire() {
        let parsed = ToolInput::parse(TicketTool::SearchKb, &json!({"query": "x"})).unwrap();
        let Tool::Kb(kb) = parsed.into_proto() else {
            panic!("not a KB search")
        };
        assert_eq!(kb.limit, 0);
    }

    #[test]
    fn a_call_from_the_network_is_checked_again() {
        let cases = [
            (
                Tool::SimilarTickets(pb::SimilarTicketsQuery {
                    query: "x".into(),
                    limit: 21,
                }),
                "limit",
            ),
            (
                Tool::Kb(pb::KbSearch {
                    query: "  ".into(),
                    limit: 0,
                }),
                "query",
            ),
            (
                Tool::Ip(pb::IpLookup {
                    ip: "10.0.0.256".into(),
                }),
                "ip",
            ),
            (
                Tool::Ticket(pb::TicketLookup {
                    ticket_id: "a\nb".into(),
                }),
                "ticket_id",
            ),
            (
                Tool::Note(pb::InternalNote {
                    ticket_id: "1".into(),
                    text: "a".repeat(10_001),
                }),
                "text",
            ),
        ];
        for (tool, field) in cases {
            let err = ToolInput::from_proto(tool).unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
        }
    }
}
