//! `list_info.search_criteria`, as the v3 API reads it: a criterion is
//! `{field, condition, value | values, logical_operator?, children?}`; a
//! list joins its criteria left to right, each with its own
//! `logical_operator` (default `and`); a criterion's children join it the
//! same way, so `[{A, children: [B (or)]}, {C (and), children: [D (or)]}]`
//! is `(A or B) and (C or D)`.

use serde_json::Value;

use crate::state::MockRequest;

pub(crate) fn matches(r: &MockRequest, criteria: &Value) -> Result<bool, String> {
    match criteria {
        Value::Null => Ok(true),
        Value::Array(list) => join(r, list),
        Value::Object(_) => eval(r, criteria),
        _ => Err("search_criteria must be an object or a list".into()),
    }
}

fn join(r: &MockRequest, list: &[Value]) -> Result<bool, String> {
    let mut acc: Option<bool> = None;
    for c in list {
        let v = eval(r, c)?;
        acc = Some(match acc {
            None => v,
            Some(a) => combine(a, c, v)?,
        });
    }
    Ok(acc.unwrap_or(true))
}

fn combine(a: bool, c: &Value, b: bool) -> Result<bool, String> {
    match c
        .get("logical_operator")
        .and_then(Value::as_str)
        .unwrap_or("and")
        .to_ascii_lowercase()
        .as_str()
    {
        "and" => Ok(a && b),
        "or" => Ok(a || b),
        other => Err(format!("unknown logical_operator '{other}'")),
    }
}

fn eval(r: &MockRequest, c: &Value) -> Result<bool, String> {
    if !c.is_object() {
        return Err("a criterion must be an object".into());
    }
    let mut result = if c.get("field").is_some() {
        leaf(r, c)?
    } else {
        true
    };
    if let Some(children) = c.get("children") {
        let Value::Array(children) = children else {
            return Err("children must be a list".into());
        };
        for child in children {
            let v = eval(r, child)?;
            result = combine(result, child, v)?;
        }
    }
    Ok(result)
}

enum Field {
    Text(String),
    Num(i64),
    Missing,
}

fn field(r: &MockRequest, name: &str) -> Result<Field, String> {
    Ok(match name {
        "id" => Field::Num(i64::try_from(r.id).unwrap_or(i64::MAX)),
        "subject" => Field::Text(r.subject.clone()),
        "status" | "status.name" => Field::Text(r.status.clone()),
        "priority" | "priority.name" => Field::Text(r.priority.clone()),
        "created_time" => Field::Num(r.created_ms),
        "resolved_time" => r.resolved_ms.map_or(Field::Missing, Field::Num),
        "completed_time" => r.completed_ms.map_or(Field::Missing, Field::Num),
        other => return Err(format!("the field '{other}' cannot be searched")),
    })
}

/// A criterion value as text: `"Open"`, `{"name": "Open"}`, `{"id": "2"}`, `5`.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => o
            .get("name")
            .or_else(|| o.get("value"))
            .or_else(|| o.get("id"))
            .and_then(text_of),
        _ => None,
    }
}

fn num_of(v: &Value) -> Option<i64> {
    text_of(v)?.trim().parse().ok()
}

fn leaf(r: &MockRequest, c: &Value) -> Result<bool, String> {
    let name = c
        .get("field")
        .and_then(Value::as_str)
        .ok_or("field must be a string")?;
    let condition = c
        .get("condition")
        .and_then(Value::as_str)
        .ok_or("condition is required")?
        .to_ascii_lowercase();
    let values: Vec<&Value> = match (c.get("values"), c.get("value")) {
        (Some(Value::Array(vs)), _) => vs.iter().collect(),
        (_, Some(v)) => vec![v],
        _ => return Err(format!("a value for '{name}' is required")),
    };
    let f = field(r, name)?;
    let negated = matches!(
        condition.as_str(),
        "is not" | "!=" | "neq" | "not contains" | "not between"
    );
    let positive = match condition.as_str() {
        "is" | "=" | "eq" | "is not" | "!=" | "neq" => match &f {
            Field::Text(t) => values
                .iter()
                .filter_map(|v| text_of(v))
                .any(|v| v.eq_ignore_ascii_case(t)),
            Field::Num(n) => values.iter().filter_map(|v| num_of(v)).any(|v| v == *n),
            Field::Missing => false,
        },
        "contains" | "not contains" | "starts with" | "ends with" => {
            let Field::Text(t) = &f else {
                return Err(format!("'{condition}' needs a text field, not '{name}'"));
            };
            let t = t.to_lowercase();
            values.iter().filter_map(|v| text_of(v)).any(|v| {
                let v = v.to_lowercase();
                match condition.as_str() {
                    "starts with" => t.starts_with(&v),
                    "ends with" => t.ends_with(&v),
                    _ => t.contains(&v),
                }
            })
        }
        "greater than" | "gt" | "greater or equal" | "gte" | "lesser than" | "lt"
        | "lesser or equal" | "lte" => {
            let bound = values
                .first()
                .and_then(|v| num_of(v))
                .ok_or(format!("'{condition}' needs a number"))?;
            match f {
                Field::Num(n) => match condition.as_str() {
                    "greater than" | "gt" => n > bound,
                    "greater or equal" | "gte" => n >= bound,
                    "lesser than" | "lt" => n < bound,
                    _ => n <= bound,
                },
                Field::Missing => false,
                Field::Text(_) => return Err(format!("'{condition}' needs a number field")),
            }
        }
        "between" | "not between" => {
            let (Some(lo), Some(hi)) = (
                values.first().and_then(|v| num_of(v)),
                values.get(1).and_then(|v| num_of(v)),
            ) else {
                return Err(format!("'{condition}' needs two numbers"));
            };
            match f {
                Field::Num(n) => lo <= n && n <= hi,
                Field::Missing => false,
                Field::Text(_) => return Err(format!("'{condition}' needs a number field")),
            }
        }
        other => return Err(format!("unknown condition '{other}'")),
    };
    Ok(positive != negated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(status: &str, resolved: Option<i64>, completed: Option<i64>) -> MockRequest {
        MockRequest {
            resolved_ms: resolved,
            completed_ms: completed,
            status: status.into(),
            ..MockRequest::open(7, "VPN drops", "<p>x</p>", "High")
        }
    }

    #[test]
    fn status_and_time_windows_nest_as_documented() {
        let c = json!([
            {"field": "status.name", "condition": "is", "values": ["Resolved", "Closed"]},
            {"field": "resolved_time", "condition": "between", "values": ["100", "200"], "logical_operator": "and",
             "children": [{"field": "completed_time", "condition": "between", "values": ["100", "200"], "logical_operator": "or"}]}
        ]);
        assert!(matches(&req("Resolved", Some(150), None), &c).unwrap());
        assert!(matches(&req("closed", None, Some(200)), &c).unwrap());
        assert!(!matches(&req("Closed", None, Some(201)), &c).unwrap());
        assert!(!matches(&req("Open", Some(150), None), &c).unwrap());
        assert!(!matches(&req("Resolved", None, None), &c).unwrap());
    }

    #[test]
    fn single_values_objects_and_negations() {
        let r = req("Open", None, None);
        assert!(
            matches(
                &r,
                &json!({"field": "status", "condition": "is", "value": {"name": "Open"}})
            )
            .unwrap()
        );
        assert!(
            matches(
                &r,
                &json!({"field": "status.name", "condition": "is not", "value": "Closed"})
            )
            .unwrap()
        );
        assert!(
            matches(
                &r,
                &json!({"field": "subject", "condition": "contains", "value": "vpn"})
            )
            .unwrap()
        );
        assert!(
            matches(
                &r,
                &json!({"field": "id", "condition": "gte", "value": "7"})
            )
            .unwrap()
        );
        assert!(!matches(&r, &json!({"field": "id", "condition": "lt", "value": 7})).unwrap());
        assert!(
            matches(
                &r,
                &json!({"field": "resolved_time", "condition": "not between", "values": [1, 2]})
            )
            .unwrap()
        );
    }

    #[test]
    fn unknown_fields_and_conditions_are_errors() {
        let r = req("Open", None, None);
        assert!(
            matches(
                &r,
                &json!({"field": "udf_fields.x", "condition": "is", "value": "a"})
            )
            .is_err()
        );
        assert!(
            matches(
                &r,
                &json!({"field": "id", "condition": "like", "value": "a"})
            )
            .is_err()
        );
        assert!(
            matches(
                &r,
                &json!({"field": "id", "condition": "between", "values": [1]})
            )
            .is_err()
        );
        assert!(matches(&r, &json!("status")).is_err());
    }
}
