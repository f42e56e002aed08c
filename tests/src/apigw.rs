//! API Gateway HTTP API (payload 2.0) events, as the `events/` files hold them.

use crate::stack::LOCAL_API_TOKEN;
use serde_json::{Value, json};

/// A request event for `method path` with an optional JSON body and the local token.
pub fn request(method: &str, path: &str, body: Option<&Value>) -> Value {
    let mut headers = json!({
        "accept": "application/json",
        "authorization": LOCAL_API_TOKEN,
        "host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        "user-agent": "curl/8.5.0",
    });
    if body.is_some() {
        headers["content-type"] = json!("application/json");
    }
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abcdef1234",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"},
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "25/Nov/2026:18:00:00 +0000",
            "timeEpoch": 1_795_629_600_000_i64
        },
        "body": body.map(Value::to_string),
        "isBase64Encoded": false
    })
}
