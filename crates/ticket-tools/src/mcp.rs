//! The ticket tools' MCP server over stdio: newline-delimited JSON-RPC 2.0,
//! as the Claude Code CLI speaks to the servers of its `--mcp-config`.
//!
//! It runs inside the agent's sandbox, so it decides nothing: it lists the
//! catalogue's tools and forwards each call to the [`Door`], which checks
//! the input, the caller's role and the tenant. The only check made here is
//! that the tool exists, so that a call the CLI would never make does not
//! travel. Requests are answered one at a time, in order.

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use crate::catalogue::TicketTool;
use crate::door::{DoorClient, DoorReply};

/// The MCP version answered when the client names none.
pub const DEFAULT_PROTOCOL_VERSION: &str = "2025-06-18";
/// The longest line read; a longer one is refused (-32600) and skipped.
pub const MAX_LINE: usize = 1024 * 1024;

const SERVER_NAME: &str = "csp-tickets";
const INSTRUCTIONS: &str = "These tools read the tickets, knowledge base and system inventory of \
     the tenant this chat session is bound to, and add internal notes to its tickets; they never \
     reach another tenant.";

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

/// Where tool calls go. [`DoorClient`] in production; a fake in tests.
#[async_trait]
pub trait Door: Send + Sync {
    /// Runs `tool` on `input`; failures are replies with `is_error` set.
    async fn call(&self, tool: &str, input: &Value) -> DoorReply;
}

#[async_trait]
impl Door for DoorClient {
    async fn call(&self, tool: &str, input: &Value) -> DoorReply {
        DoorClient::call(self, tool, input).await
    }
}

/// Serves MCP on `input`/`output` until `input` ends.
pub async fn serve<R, W>(door: &impl Door, mut input: R, mut output: W) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut line = Vec::new();
    loop {
        let answer = match read_line(&mut input, &mut line, MAX_LINE).await? {
            Line::Eof => return Ok(()),
            Line::TooLong => Some(error(
                Value::Null,
                INVALID_REQUEST,
                format!("the message is longer than {MAX_LINE} bytes"),
            )),
            Line::Complete if line.trim_ascii().is_empty() => None,
            Line::Complete => handle(door, &line).await,
        };
        if let Some(answer) = answer {
            let mut bytes = serde_json::to_vec(&answer).map_err(std::io::Error::other)?;
            bytes.push(b'\n');
            output.write_all(&bytes).await?;
            // The client waits for this answer before it sends more.
            output.flush().await?;
        }
    }
}

/// One incoming message's answer; `None` for notifications and responses.
async fn handle(door: &impl Door, line: &[u8]) -> Option<Value> {
    let Ok(message) = serde_json::from_slice::<Value>(line) else {
        return Some(error(Value::Null, PARSE_ERROR, "the message is not JSON"));
    };
    let Some(object) = message.as_object() else {
        return Some(error(
            Value::Null,
            INVALID_REQUEST,
            "a message must be a JSON-RPC 2.0 object",
        ));
    };
    let Some(id) = object.get("id").cloned() else {
        // A notification (initialized, cancelled…) gets no answer; a message
        // that is neither a notification nor a request is refused, without
        // an id to answer to.
        return match object.get("method") {
            Some(Value::String(_)) => None,
            _ => Some(error(
                Value::Null,
                INVALID_REQUEST,
                "a message needs a `method`",
            )),
        };
    };
    let Some(method) = object.get("method").and_then(Value::as_str) else {
        // An answer to a request of ours; this server sends none.
        if object.contains_key("result") || object.contains_key("error") {
            return None;
        }
        return Some(error(id, INVALID_REQUEST, "a request needs a `method`"));
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Some(error(id, INVALID_REQUEST, "`jsonrpc` must be \"2.0\""));
    }
    let params = object.get("params").unwrap_or(&Value::Null);
    Some(match method {
        "initialize" => result(id, initialize(params)),
        "ping" => result(id, json!({})),
        "tools/list" => result(id, list()),
        "tools/call" => match call(door, params).await {
            Ok(value) => result(id, value),
            Err(message) => error(id, INVALID_PARAMS, message),
        },
        other => error(
            id,
            METHOD_NOT_FOUND,
            format!("method not found: {}", bounded(other)),
        ),
    })
}

fn initialize(params: &Value) -> Value {
    let version = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_PROTOCOL_VERSION);
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": SERVER_NAME, "version": env!("CARGO_PKG_VERSION")},
        "instructions": INSTRUCTIONS,
    })
}

fn list() -> Value {
    // Bare names: the CLI prefixes `mcp__tickets__` itself.
    let tools: Vec<Value> = TicketTool::ALL
        .iter()
        .map(|tool| {
            json!({
                "name": tool.as_str(),
                "description": tool.description(),
                "inputSchema": tool.input_schema(),
            })
        })
        .collect();
    json!({ "tools": tools })
}

/// A `tools/call`: the tool must exist; its arguments go to the door as
/// they are, because the door is the one place that checks them.
async fn call(door: &impl Door, params: &Value) -> Result<Value, String> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or("tools/call needs the tool's `name`")?;
    let tool: TicketTool = name.parse().map_err(|e| format!("{e}"))?;
    let empty = json!({});
    let arguments = params
        .get("arguments")
        .filter(|a| !a.is_null())
        .unwrap_or(&empty);
    let reply = door.call(tool.as_str(), arguments).await;
    tracing::debug!(tool = tool.as_str(), is_error = reply.is_error, "tool call");
    Ok(json!({
        "content": [{"type": "text", "text": reply.text}],
        "isError": reply.is_error,
    }))
}

fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn error(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

/// A client's text quoted back in an error: short enough for a log line.
fn bounded(text: &str) -> String {
    const MAX: usize = 100;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

enum Line {
    /// `buf` holds a line, without its newline.
    Complete,
    /// The line was longer than the limit; it was read to its end and dropped.
    TooLong,
    Eof,
}

/// Reads one line into `buf` without ever holding more than `max` bytes of
/// it: a client that never sends a newline cannot exhaust memory.
async fn read_line<R: AsyncBufRead + Unpin>(
    input: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    let mut read_any = false;
    loop {
        let chunk = input.fill_buf().await?;
        if chunk.is_empty() {
            // A last line without a newline still counts.
            return Ok(match (read_any, too_long) {
                (false, _) => Line::Eof,
                (true, true) => Line::TooLong,
                (true, false) => Line::Complete,
            });
        }
        read_any = true;
        let (part, used, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        if !too_long {
            if buf.len() + part.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        input.consume(used);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records every call and answers with a fixed reply.
    struct FakeDoor {
        reply: DoorReply,
        calls: Mutex<Vec<(String, Value)>>,
    }

    impl FakeDoor {
        fn new(reply: DoorReply) -> Self {
            Self {
                reply,
                calls: Mutex::new(Vec::new()),
            }
        }

        fn calls(&self) -> Vec<(String, Value)> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Door for FakeDoor {
        async fn call(&self, tool: &str, input: &Value) -> DoorReply {
            self.calls
                .lock()
                .unwrap()
                .push((tool.to_owned(), input.clone()));
            self.reply.clone()
        }
    }

    /// Serves `lines` (each followed by a newline) and returns the answers.
    async fn exchange(door: &FakeDoor, lines: &[String]) -> Vec<Value> {
        let mut input = lines.join("\n");
        input.push('\n');
        run(door, input.as_bytes()).await
    }

    async fn run<R: AsyncBufRead + Unpin>(door: &FakeDoor, input: R) -> Vec<Value> {
        let mut output = Vec::new();
        serve(door, input, &mut output).await.unwrap();
        String::from_utf8(output)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn request(id: u64, method: &str, params: Value) -> String {
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
    }

    fn ok_door() -> FakeDoor {
        FakeDoor::new(DoorReply::ok(
            "INC-7: VPN drops, fixed by updating the client.",
        ))
    }

    #[tokio::test]
    async fn the_handshake_echoes_the_clients_version() {
        let door = ok_door();
        let answers = exchange(
            &door,
            &[
                request(
                    0,
                    "initialize",
                    json!({"protocolVersion": "2025-03-26", "capabilities": {},
                           "clientInfo": {"name": "claude-code", "version": "2.0.0"}}),
                ),
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string(),
                request(1, "initialize", json!({})),
                request(2, "ping", json!({})),
            ],
        )
        .await;
        assert_eq!(answers.len(), 3, "{answers:?}");
        assert_eq!(
            answers[0],
            json!({"jsonrpc": "2.0", "id": 0, "result": {
                "protocolVersion": "2025-03-26",
                "capabilities": {"tools": {"listChanged": false}},
                "serverInfo": {"name": "csp-tickets", "version": env!("CARGO_PKG_VERSION")},
                "instructions": INSTRUCTIONS,
            }})
        );
        assert_eq!(answers[1]["result"]["protocolVersion"], "2025-06-18");
        assert_eq!(answers[2], json!({"jsonrpc": "2.0", "id": 2, "result": {}}));
        assert!(door.calls().is_empty());
    }

    #[tokio::test]
    async fn the_list_has_every_tool_by_its_bare_name() {
        let answers = exchange(&ok_door(), &[request(1, "tools/list", json!({}))]).await;
        let tools = answers[0]["result"]["tools"].as_array().unwrap();
        assert_eq!(tools.len(), TicketTool::ALL.len());
        for (tool, listed) in TicketTool::ALL.iter().zip(tools) {
            assert_eq!(
                listed,
                &json!({
                    "name": tool.as_str(),
                    "description": tool.description(),
                    "inputSchema": tool.input_schema(),
                })
            );
        }
        assert_eq!(tools[0]["name"], "search_similar_tickets");
    }

    #[tokio::test]
    async fn a_call_goes_to_the_door_unchecked_and_its_reply_comes_back() {
        let door = ok_door();
        // The tenant field is the door's to refuse: one place decides.
        let arguments = json!({"query": "VPN", "tenant_id": "other-msp"});
        let answers = exchange(
            &door,
            &[
                request(
                    5,
                    "tools/call",
                    json!({"name": "search_similar_tickets", "arguments": arguments}),
                ),
                request(6, "tools/call", json!({"name": "get_ticket"})),
            ],
        )
        .await;
        assert_eq!(
            answers[0],
            json!({"jsonrpc": "2.0", "id": 5, "result": {
                "content": [{"type": "text", "text": "INC-7: VPN drops, fixed by updating the client."}],
                "isError": false,
            }})
        );
        assert_eq!(answers[1]["id"], 6);
        assert_eq!(
            door.calls(),
            vec![
                ("search_similar_tickets".to_owned(), arguments),
                ("get_ticket".to_owned(), json!({})),
            ]
        );
    }

    #[tokio::test]
    async fn the_doors_errors_are_tool_errors() {
        let door = FakeDoor::new(DoorReply::error("Only operators may add notes."));
        let answers = exchange(
            &door,
            &[request(
                7,
                "tools/call",
                json!({"name": "add_internal_note", "arguments": {"ticket_id": "1", "text": "x"}}),
            )],
        )
        .await;
        assert_eq!(
            answers[0]["result"],
            json!({"content": [{"type": "text", "text": "Only operators may add notes."}],
                   "isError": true})
        );
    }

    #[tokio::test]
    async fn an_unknown_tool_is_invalid_params_and_never_travels() {
        let door = ok_door();
        let answers = exchange(
            &door,
            &[
                request(
                    1,
                    "tools/call",
                    json!({"name": "delete_tenant", "arguments": {}}),
                ),
                request(2, "tools/call", json!({"name": "mcp__tickets__search_kb"})),
                request(3, "tools/call", json!({"arguments": {}})),
                request(4, "tools/call", json!(null)),
            ],
        )
        .await;
        assert_eq!(answers.len(), 4);
        for (i, answer) in answers.iter().enumerate() {
            assert_eq!(answer["id"], i + 1);
            assert_eq!(answer["error"]["code"], -32602, "{answer}");
            assert!(answer.get("result").is_none());
        }
        assert!(
            answers[0]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unknown tool `delete_tenant`"),
            "{}",
            answers[0]
        );
        assert!(door.calls().is_empty());
    }

    #[tokio::test]
    async fn notifications_and_responses_get_no_answer() {
        let door = ok_door();
        let answers = exchange(
            &door,
            &[
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string(),
                json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                       "params": {"requestId": 3}})
                .to_string(),
                // Even a notification of a method that exists does nothing.
                json!({"jsonrpc": "2.0", "method": "tools/call",
                       "params": {"name": "search_kb", "arguments": {"query": "x"}}})
                .to_string(),
                json!({"jsonrpc": "2.0", "id": 9, "result": {}}).to_string(),
                String::new(),
                "   ".to_owned(),
            ],
        )
        .await;
        assert!(answers.is_empty(), "{answers:?}");
        assert!(door.calls().is_empty());
    }

    #[tokio::test]
    async fn an_unknown_method_is_method_not_found() {
        let answers = exchange(
            &ok_door(),
            &[
                request(1, "resources/list", json!({})),
                json!({"jsonrpc": "2.0", "id": "abc", "method": "x".repeat(500)}).to_string(),
            ],
        )
        .await;
        assert_eq!(
            answers[0],
            json!({"jsonrpc": "2.0", "id": 1,
                   "error": {"code": -32601, "message": "method not found: resources/list"}})
        );
        assert_eq!(answers[1]["id"], "abc");
        assert_eq!(answers[1]["error"]["code"], -32601);
        assert!(answers[1]["error"]["message"].as_str().unwrap().len() < 150);
    }

    #[tokio::test]
    async fn bad_json_is_a_parse_error_with_a_null_id_and_serving_goes_on() {
        let answers = exchange(
            &ok_door(),
            &[
                "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ".to_owned(),
                "[1, 2]".to_owned(),
                json!({"id": 3, "method": "ping"}).to_string(),
                json!({"jsonrpc": "2.0", "id": 4}).to_string(),
                json!({"jsonrpc": "2.0"}).to_string(),
                request(5, "ping", json!({})),
            ],
        )
        .await;
        assert_eq!(
            answers[0],
            json!({"jsonrpc": "2.0", "id": null,
                   "error": {"code": -32700, "message": "the message is not JSON"}})
        );
        assert_eq!(answers[1]["error"]["code"], -32600);
        assert_eq!(answers[1]["id"], Value::Null);
        assert_eq!(answers[2]["error"]["code"], -32600);
        assert_eq!(answers[2]["id"], 3);
        assert_eq!(answers[3]["error"]["code"], -32600);
        assert_eq!(answers[4]["error"]["code"], -32600);
        assert_eq!(answers[4]["id"], Value::Null);
        assert_eq!(answers[5], json!({"jsonrpc": "2.0", "id": 5, "result": {}}));
    }

    #[tokio::test]
    async fn an_oversized_line_is_refused_and_the_next_one_answered() {
        let door = ok_door();
        let huge = request(
            1,
            "tools/call",
            json!({"name": "search_kb", "arguments": {"query": "x".repeat(MAX_LINE)}}),
        );
        let at_limit = {
            // Padding inside the JSON makes a line of exactly MAX_LINE bytes.
            let base = request(3, "ping", json!({}));
            let pad = MAX_LINE - base.len() - r#","pad":"""#.len();
            let line = format!(
                "{},\"pad\":\"{}\"}}",
                &base[..base.len() - 1],
                "p".repeat(pad)
            );
            assert_eq!(line.len(), MAX_LINE);
            line
        };
        let lines = [huge, request(2, "ping", json!({})), at_limit];
        // A small buffer makes the reader assemble lines from many chunks.
        let mut input = lines.join("\n");
        input.push('\n');
        let reader = tokio::io::BufReader::with_capacity(1000, input.as_bytes());
        let answers = run(&door, reader).await;
        assert_eq!(answers.len(), 3, "{answers:?}");
        assert_eq!(answers[0]["id"], Value::Null);
        assert_eq!(answers[0]["error"]["code"], -32600);
        assert_eq!(answers[1], json!({"jsonrpc": "2.0", "id": 2, "result": {}}));
        assert_eq!(answers[2]["id"], 3);
        assert!(answers[2]["result"].is_object(), "{}", answers[2]);
        assert!(door.calls().is_empty());
    }

    #[tokio::test]
    async fn a_last_line_without_a_newline_is_answered_then_eof_ends_serving() {
        let input = request(1, "ping", json!({}));
        let answers = run(&ok_door(), input.as_bytes()).await;
        assert_eq!(
            answers,
            vec![json!({"jsonrpc": "2.0", "id": 1, "result": {}})]
        );
        assert!(run(&ok_door(), &b""[..]).await.is_empty());
    }

    #[tokio::test]
    async fn it_speaks_over_a_pipe_one_answer_per_request() {
        let door = ok_door();
        let (client, server) = tokio::io::duplex(4096);
        let (server_read, server_write) = tokio::io::split(server);
        let serving = async {
            serve(&door, tokio::io::BufReader::new(server_read), server_write)
                .await
                .unwrap();
        };
        let talking = async move {
            let (client_read, mut client_write) = tokio::io::split(client);
            let mut answers = tokio::io::BufReader::new(client_read).lines();
            let mut ask = async |line: String| {
                client_write.write_all(line.as_bytes()).await.unwrap();
                client_write.write_all(b"\n").await.unwrap();
                let answer = answers.next_line().await.unwrap().unwrap();
                serde_json::from_str::<Value>(&answer).unwrap()
            };
            let init = ask(request(0, "initialize", json!({}))).await;
            assert_eq!(init["result"]["serverInfo"]["name"], "csp-tickets");
            let called = ask(request(
                1,
                "tools/call",
                json!({"name": "lookup_ip", "arguments": {"ip": "10.0.0.1"}}),
            ))
            .await;
            assert_eq!(called["result"]["isError"], false);
            // Dropping the client's end is the EOF that ends serving.
        };
        tokio::join!(serving, talking);
        assert_eq!(
            door.calls(),
            vec![("lookup_ip".to_owned(), json!({"ip": "10.0.0.1"}))]
        );
    }

    /// What the agent's side of the pipe may send: any bytes, or lines that
    /// look like JSON-RPC with each field present, absent or of a wrong type.
    mod properties {
        use super::*;
        use crate::catalogue::TicketTool;
        use csp_testkit::proptest_config;
        use proptest::prelude::*;

        fn any_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                "\\PC{0,12}".prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 16, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                    prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// A field's value: mostly a plausible one, else absent or any JSON,
        /// so that whole valid requests (and tool calls) are common.
        fn field(plausible: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
            prop_oneof![
                4 => plausible.prop_map(Some),
                1 => Just(None),
                1 => any_json().prop_map(Some),
            ]
        }

        fn message() -> impl Strategy<Value = String> {
            let method = prop_oneof![
                1 => Just(json!("initialize")),
                1 => Just(json!("ping")),
                1 => Just(json!("tools/list")),
                4 => Just(json!("tools/call")),
                1 => "[a-z/]{0,12}".prop_map(Value::from),
            ];
            let tool = prop_oneof![
                3 => prop::sample::select(TicketTool::ALL.to_vec()).prop_map(|t| json!(t.as_str())),
                1 => "\\PC{0,10}".prop_map(Value::from),
            ];
            let params = prop_oneof![
                3 => (tool, any_json())
                    .prop_map(|(name, arguments)| json!({"name": name, "arguments": arguments})),
                1 => any_json(),
            ];
            (
                field(Just(json!("2.0"))),
                field(any::<u32>().prop_map(Value::from)),
                field(method),
                field(params),
            )
                .prop_map(|(jsonrpc, id, method, params)| {
                    let mut object = serde_json::Map::new();
                    for (key, value) in [
                        ("jsonrpc", jsonrpc),
                        ("id", id),
                        ("method", method),
                        ("params", params),
                    ] {
                        if let Some(value) = value {
                            object.insert(key.to_owned(), value);
                        }
                    }
                    Value::Object(object).to_string()
                })
        }

        /// The answers written and the calls that reached the door.
        type Served = (Vec<Value>, Vec<(String, Value)>);

        /// Serves `input` to the end; every answer must be a JSON-RPC 2.0
        /// response with a result or a catalogued error with a message.
        fn answers(input: &[u8]) -> Result<Served, TestCaseError> {
            let door = ok_door();
            let mut output = Vec::new();
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(serve(&door, input, &mut output))
                .map_err(|e| TestCaseError::fail(format!("serving failed: {e}")))?;
            let text = String::from_utf8(output).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut answers = Vec::new();
            for line in text.lines() {
                let answer: Value = serde_json::from_str(line)
                    .map_err(|e| TestCaseError::fail(format!("{line}: {e}")))?;
                prop_assert_eq!(&answer["jsonrpc"], "2.0", "{}", line);
                prop_assert!(answer.get("id").is_some(), "no id: {}", line);
                match (answer.get("result"), answer.get("error")) {
                    (Some(_), None) => {}
                    (None, Some(error)) => {
                        let code = error["code"].as_i64().unwrap_or_default();
                        prop_assert!(
                            [
                                PARSE_ERROR,
                                INVALID_REQUEST,
                                METHOD_NOT_FOUND,
                                INVALID_PARAMS
                            ]
                            .contains(&code),
                            "uncatalogued error: {}",
                            line
                        );
                        prop_assert!(
                            error["message"].as_str().is_some_and(|m| !m.is_empty()),
                            "{}",
                            line
                        );
                    }
                    _ => prop_assert!(false, "neither a result nor an error: {}", line),
                }
                answers.push(answer);
            }
            Ok((answers, door.calls()))
        }

        proptest! {
            #![proptest_config(proptest_config(256))]

            #[test]
            fn arbitrary_bytes_get_only_well_formed_answers(
                input in prop::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..600),
            ) {
                let (_, calls) = answers(&input)?;
                // A tool call needs a whole valid request, which random bytes never are.
                prop_assert!(calls.is_empty());
            }

            #[test]
            fn json_rpc_like_lines_get_one_answer_per_request(
                lines in prop::collection::vec(message(), 1..6),
            ) {
                let input = lines.join("\n");
                let (answers, calls) = answers(input.as_bytes())?;
                prop_assert!(answers.len() <= lines.len());
                // Only a tool of the catalogue ever reaches the door.
                for (tool, _) in calls {
                    prop_assert!(TicketTool::ALL.iter().any(|t| t.as_str() == tool), "{} travelled", tool);
                }
            }
        }
    }
}
