//! The message record and its exact on-disk form.
//!
//! The reference writer is `serde_json::to_string_pretty(&Vec<FileMessage>)`. We reproduce it by
//! serializing each message once, at the indentation it has inside the array, and joining those
//! texts; the cached text of a message is then reused for every later rewrite of the outbox.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

/// Deepest payload nesting the reference reader can still parse inside a message file: its
/// `serde_json` stops at 128 levels, and the array and the message object take two of them.
pub const MAX_PAYLOAD_DEPTH: usize = 125;

/// How many messages the reference writer keeps in a file: a file this long may have lost older
/// messages to trimming.
pub const REFERENCE_CAP: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    Request,
    Response,
    Event,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Request => "request",
            MessageType::Response => "response",
            MessageType::Event => "event",
        }
    }
}

/// One message, with its fields in on-disk order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub timestamp: u64,
    #[serde(rename = "type")]
    pub kind: MessageType,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reply_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub method: Option<String>,
    pub payload: Value,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// Error responses, an extension (PROTOCOL-EXTENSIONS.md): a machine-readable code beside
    /// `error`. The reference reader ignores it.
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "string_or_nothing"
    )]
    pub error_code: Option<String>,
    /// Error responses, an extension: any JSON detail beside `error`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error_data: Option<Value>,
}

/// An optional extension field that must never make a message unreadable: a string is kept,
/// any other value is ignored.
fn string_or_nothing<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => Some(text),
        _ => None,
    })
}

impl Message {
    fn new(
        kind: MessageType,
        method: Option<&str>,
        reply_to: Option<&str>,
        payload: Value,
    ) -> Self {
        Message {
            id: uuid::Uuid::new_v4().to_string(),
            timestamp: now_ms(),
            kind,
            reply_to: reply_to.map(str::to_owned),
            method: method.map(str::to_owned),
            payload,
            error: None,
            error_code: None,
            error_data: None,
        }
    }

    pub fn request(method: &str, params: Value) -> Self {
        Self::new(MessageType::Request, Some(method), None, params)
    }

    pub fn response(request_id: &str, result: Value) -> Self {
        Self::new(MessageType::Response, None, Some(request_id), result)
    }

    pub fn error_response(request_id: &str, error: &str) -> Self {
        let mut message = Self::new(MessageType::Response, None, Some(request_id), Value::Null);
        message.error = Some(error.to_owned());
        message
    }

    pub fn event(name: &str, payload: Value) -> Self {
        Self::new(MessageType::Event, Some(name), None, payload)
    }

    /// The message as it appears inside a pretty-printed array: indented by one level, without
    /// the surrounding brackets and separators.
    pub fn encode(&self) -> String {
        let array = serde_json::to_string_pretty(std::slice::from_ref(self))
            .expect("a Message always serializes: its payload is a Value");
        strip_array_brackets(array)
    }
}

/// A JSON value pretty-printed at array-element indentation (used for entries we keep but cannot
/// read as messages, so that rewriting the file never destroys them).
pub fn encode_value(value: &Value) -> String {
    let array = serde_json::to_string_pretty(std::slice::from_ref(value))
        .expect("a Value always serializes");
    strip_array_brackets(array)
}

fn strip_array_brackets(mut array: String) -> String {
    // "[\n" + element + "\n]"
    array.truncate(array.len() - 2);
    array.split_off(2)
}

/// Joins element texts from [`Message::encode`] into the exact file content.
pub fn encode_file<'a>(entries: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.push(b'[');
    let mut empty = true;
    for entry in entries {
        out.extend_from_slice(if empty { b"\n" } else { b",\n" });
        out.extend_from_slice(entry.as_bytes());
        empty = false;
    }
    if !empty {
        out.push(b'\n');
    }
    out.push(b']');
    out
}

/// One element of a message file as read from disk.
#[derive(Debug)]
pub enum Entry {
    Valid(Message),
    /// An element that is JSON but not a message the reference would accept.
    Invalid {
        id: Option<String>,
        reason: String,
        value: Option<Value>,
    },
}

/// Splits a message file into its elements. `Err` when the file as a whole is not a JSON array.
/// An empty or all-whitespace file counts as `[]`, as the reference reads it. An element that is
/// not JSON (invalid UTF-8, `NaN`) is an invalid entry; the others are still read.
pub fn decode_file(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    Ok(split_file(bytes)?
        .into_iter()
        .map(|element| match element {
            Ok(raw) => decode_entry(raw),
            Err(broken) => Entry::Invalid {
                id: broken.id,
                reason: broken.reason,
                value: None,
            },
        })
        .collect())
}

/// An element of a message file that is not JSON, isolated from the elements around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenElement {
    /// The `id` it seems to have, read leniently.
    pub id: Option<String>,
    pub reason: String,
    /// Its bytes, to tell it apart from other broken elements.
    pub bytes: Vec<u8>,
}

/// One element of a message file: its JSON text, or why it has none.
pub type RawElement<'a> = Result<&'a RawValue, BrokenElement>;

/// The elements of a message file, unparsed (a cheap scan that checks the JSON syntax). When the
/// file is not valid JSON as a whole but is still an array, each element is checked on its own,
/// so one bad element does not cost the good ones.
pub fn split_file(bytes: &[u8]) -> Result<Vec<RawElement<'_>>, String> {
    let whole = std::str::from_utf8(bytes).map_err(|e| format!("not valid UTF-8 ({e})"));
    let strict_error = match &whole {
        Ok(text) if text.trim().is_empty() => return Ok(Vec::new()),
        Ok(text) => match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(elements) => return Ok(elements.into_iter().map(Ok).collect()),
            Err(e) if text.trim_start().starts_with('[') => {
                format!("not a valid JSON array ({e})")
            }
            Err(e) => format!("not a JSON array ({e})"),
        },
        Err(e) => e.clone(),
    };
    let elements = array_elements(bytes).ok_or(strict_error)?;
    Ok(elements.into_iter().map(parse_element).collect())
}

fn parse_element(bytes: &[u8]) -> RawElement<'_> {
    let broken = |reason: String| BrokenElement {
        id: lenient_id(bytes),
        reason,
        bytes: bytes.to_vec(),
    };
    let text = std::str::from_utf8(bytes).map_err(|e| broken(format!("not valid UTF-8 ({e})")))?;
    serde_json::from_str::<&RawValue>(text).map_err(|e| broken(format!("not valid JSON ({e})")))
}

/// Follows JSON text byte by byte by its brackets and string quotes alone, without judging it:
/// enough to find where the elements of an array start and end.
#[derive(Default)]
struct Brackets {
    depth: usize,
    in_string: bool,
    escaped: bool,
}

/// What a byte means at the array's top level.
#[derive(PartialEq)]
enum Mark {
    /// Part of an element (or blank between elements).
    Inside,
    /// A comma between two elements.
    Separator,
    /// A closing bracket with nothing open: the end of the array.
    End,
}

impl Brackets {
    fn step(&mut self, byte: u8) -> Mark {
        if self.in_string {
            match byte {
                _ if self.escaped => self.escaped = false,
                b'\\' => self.escaped = true,
                b'"' => self.in_string = false,
                _ => {}
            }
            return Mark::Inside;
        }
        match byte {
            b'"' => self.in_string = true,
            b'[' | b'{' => self.depth += 1,
            b']' | b'}' if self.depth == 0 => return Mark::End,
            b']' | b'}' => self.depth -= 1,
            b',' if self.depth == 0 => return Mark::Separator,
            _ => {}
        }
        Mark::Inside
    }

    /// Whether everything opened was closed.
    fn balanced(&self) -> bool {
        !self.in_string && self.depth == 0
    }
}

/// The top-level elements of a JSON array, found by brackets and string quotes alone, without
/// judging the elements themselves. `None` when the bytes are not shaped like an array.
fn array_elements(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let body = trim(bytes).strip_prefix(b"[")?.strip_suffix(b"]")?;
    if trim(body).is_empty() {
        return Some(Vec::new());
    }
    body_elements(body)
}

/// Where the first element of a message file starts (after `[` and blanks), if it is an array.
pub fn first_element_at(bytes: &[u8]) -> Option<usize> {
    let blanks = |from: usize| {
        bytes[from..]
            .iter()
            .take_while(|byte| byte.is_ascii_whitespace())
            .count()
    };
    let open = blanks(0);
    (bytes.get(open) == Some(&b'[')).then(|| open + 1 + blanks(open + 1))
}

/// The elements of a message file after byte `from`, where an element ends: the rest must be
/// `]`, or `,`, more elements and `]`. Each element is checked on its own, as `split_file` does
/// for a file that is not valid as a whole. `None` when the rest is shaped otherwise.
pub fn split_rest(bytes: &[u8], from: usize) -> Option<Vec<RawElement<'_>>> {
    let rest = trim(bytes.get(from..)?);
    if rest == b"]" {
        return Some(Vec::new());
    }
    let body = rest.strip_prefix(b",")?.strip_suffix(b"]")?;
    if trim(body).is_empty() {
        return None;
    }
    Some(
        body_elements(body)?
            .into_iter()
            .map(parse_element)
            .collect(),
    )
}

/// The comma-separated top-level elements of an array's body (blanks trimmed).
fn body_elements(body: &[u8]) -> Option<Vec<&[u8]>> {
    let (mut elements, mut start, mut brackets) = (Vec::new(), 0, Brackets::default());
    for (index, &byte) in body.iter().enumerate() {
        match brackets.step(byte) {
            Mark::Inside => {}
            Mark::Separator => {
                elements.push(trim(&body[start..index]));
                start = index + 1;
            }
            Mark::End => return None, // closed more than it opened
        }
    }
    if !brackets.balanced() {
        return None;
    }
    elements.push(trim(&body[start..]));
    Some(elements)
}

fn trim(mut slice: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = slice {
        if !first.is_ascii_whitespace() {
            break;
        }
        slice = rest;
    }
    while let [rest @ .., last] = slice {
        if !last.is_ascii_whitespace() {
            break;
        }
        slice = rest;
    }
    slice
}

/// The `id` of an element that is not valid JSON, read leniently, to name it in a report.
fn lenient_id(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let after_key = &text[text.find("\"id\"")? + 4..];
    let value = after_key.trim_start().strip_prefix(':')?.trim_start();
    let value = value.strip_prefix('"')?;
    Some(value[..value.find('"')?].to_string())
}

/// The key of the stand-in for a message too large to read (see `compact_oversized`).
const OVERSIZED_KEY: &str = "ipckit_oversized_bytes";

/// How many bytes of an oversized element are kept to find its `id` in.
const OVERSIZED_HEAD: usize = 4096;

/// Copies a message file that is larger than `limit` bytes from `reader`, element by element,
/// replacing each element that does not fit (itself larger than `limit`, or beyond `limit` bytes
/// of copied elements) with a small stand-in naming its `id` and size: memory stays bounded by
/// `limit`, and the good messages around a huge one are still read. `Err`: not an array.
pub fn compact_oversized(reader: impl std::io::Read, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut out = b"[".to_vec();
    let mut element: Vec<u8> = Vec::new();
    let (mut size, mut started, mut closed) = (0usize, false, false);
    let mut brackets = Brackets::default();
    let finish = |element: &mut Vec<u8>, size: usize, out: &mut Vec<u8>| {
        let text = trim(element);
        if text.is_empty() {
            return; // nothing between two commas (or only blanks, however many)
        }
        if out.len() > 1 {
            out.push(b',');
        }
        if size <= limit && out.len() + size < limit {
            out.extend_from_slice(text);
        } else {
            let stand_in = match lenient_id(text) {
                Some(id) => serde_json::json!({ "id": id, OVERSIZED_KEY: size }),
                None => serde_json::json!({ OVERSIZED_KEY: size, "at": out.len() }),
            };
            out.extend_from_slice(stand_in.to_string().as_bytes());
        }
        element.clear();
    };
    let mut chunk = vec![0u8; 64 * 1024];
    let mut reader = std::io::BufReader::new(reader);
    loop {
        let read = reader
            .read(&mut chunk)
            .map_err(|e| format!("cannot be read ({e})"))?;
        if read == 0 {
            break;
        }
        for &byte in &chunk[..read] {
            if closed {
                if !byte.is_ascii_whitespace() {
                    return Err("not a JSON array (text after its end)".into());
                }
                continue;
            }
            if !started {
                match byte {
                    b'[' => started = true,
                    _ if byte.is_ascii_whitespace() => {}
                    _ => return Err("not a JSON array".into()),
                }
                continue;
            }
            match brackets.step(byte) {
                Mark::End if byte == b'}' => {
                    return Err("not a valid JSON array (unbalanced brackets)".into())
                }
                Mark::End => closed = true,
                Mark::Separator => {}
                Mark::Inside => {
                    if size == 0 && byte.is_ascii_whitespace() {
                        continue; // blanks before an element are not part of it
                    }
                    size += 1;
                    // Past what can be kept: only its head stays, to find its id in.
                    if size <= limit || element.len() < OVERSIZED_HEAD {
                        element.push(byte);
                    } else if element.len() > OVERSIZED_HEAD {
                        element.truncate(OVERSIZED_HEAD);
                    }
                    continue;
                }
            }
            finish(&mut element, size, &mut out);
            size = 0;
        }
    }
    if !closed {
        return Err("not a valid JSON array (it ends too early)".into());
    }
    out.push(b']');
    Ok(out)
}

/// The size of the message an element stands in for, when it is the stand-in of one too large
/// to read (see `compact_oversized`).
pub fn oversized_size(raw: &RawValue) -> Option<u64> {
    if !raw.get().contains(OVERSIZED_KEY) {
        return None;
    }
    let value: Value = serde_json::from_str(raw.get()).ok()?;
    value.get(OVERSIZED_KEY)?.as_u64()
}

/// The `id` of an element without building its payload, when it has a string `id`.
pub fn peek_id(raw: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    serde_json::from_str::<IdOnly>(raw.get()).ok()?.id
}

pub fn decode_entry(raw: &RawValue) -> Entry {
    match serde_json::from_str::<Message>(raw.get()) {
        Ok(message) if depth(&message.payload) > MAX_PAYLOAD_DEPTH => Entry::Invalid {
            id: Some(message.id),
            reason: format!("payload nested deeper than {MAX_PAYLOAD_DEPTH} levels"),
            value: None,
        },
        Ok(message) => Entry::Valid(message),
        Err(error) => {
            let value = serde_json::from_str::<Value>(raw.get()).ok();
            let id = value
                .as_ref()
                .and_then(|v| v.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            Entry::Invalid {
                id,
                reason: describe_entry_error(&error, value.as_ref()),
                value,
            }
        }
    }
}

fn describe_entry_error(error: &serde_json::Error, value: Option<&Value>) -> String {
    let Some(value) = value else {
        return format!("unreadable ({error})");
    };
    let Some(object) = value.as_object() else {
        return "not a JSON object".to_string();
    };
    for field in ["id", "timestamp", "type", "payload"] {
        if !object.contains_key(field) {
            return format!("missing field `{field}`");
        }
    }
    // serde's text names the field and the expectation; the position is meaningless here.
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// Nesting depth of a JSON value: scalars are 0, `[]` and `{}` are 1.
pub fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacting_keeps_what_fits_and_stands_in_for_the_rest_whatever_the_strings_hold() {
        let tricky = r#"{"id":"a","s":"],[{\"\\","n":[1,{"x":"}"}]}"#;
        let big = format!(r#"{{"id":"big","payload":"{}"}}"#, "x".repeat(300));
        let file = format!("[\n  {tricky},\n  {big} , {{\"id\":\"c\"}}\n]\n");
        let out = compact_oversized(file.as_bytes(), 200).unwrap();
        let values: Vec<Value> = serde_json::from_slice(&out).unwrap();
        assert_eq!(values.len(), 3);
        assert_eq!(values[0], serde_json::from_str::<Value>(tricky).unwrap());
        assert_eq!(values[1]["id"], "big");
        // Its size, blanks after it included.
        let size = values[1][OVERSIZED_KEY].as_u64().unwrap();
        assert!(
            (big.len() as u64..big.len() as u64 + 2).contains(&size),
            "{size}"
        );
        assert_eq!(values[2]["id"], "c");
        assert!(out.len() < 200);
        for broken in ["", "{}", "[1,", "[\"]", "[1]]", "[1] x", "[}]"] {
            assert!(
                compact_oversized(broken.as_bytes(), 200).is_err(),
                "{broken:?}"
            );
        }
        assert_eq!(compact_oversized(&b"[ ]"[..], 200).unwrap(), b"[]");
    }
    use serde_json::json;

    fn reference_of(message: &Message) -> ipckit::FileMessage {
        serde_json::from_str(&serde_json::to_string(message).unwrap()).unwrap()
    }

    fn assert_same_bytes_as_reference(messages: &[Message]) {
        let ours = encode_file(
            messages
                .iter()
                .map(|m| m.encode())
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        );
        let theirs: Vec<ipckit::FileMessage> = messages.iter().map(reference_of).collect();
        let theirs = serde_json::to_string_pretty(&theirs).unwrap();
        assert_eq!(String::from_utf8(ours).unwrap(), theirs);
    }

    #[test]
    fn empty_file_is_two_brackets() {
        assert_eq!(encode_file(std::iter::empty()), b"[]");
        assert_same_bytes_as_reference(&[]);
    }

    #[test]
    fn bytes_match_reference_for_plain_payloads() {
        let mut request = Message::request("ping", json!({"b": "x", "a": 1}));
        request.id = "7b050898-0934-40e7-92b5-f2c4cc9805ed".into();
        request.timestamp = 1795551882081;
        let text = String::from_utf8(encode_file([request.encode().as_str()])).unwrap();
        assert_eq!(text.len(), 190, "the example of PROTOCOL.md is 190 bytes");
        assert!(text.contains("\"a\": 1,\n      \"b\": \"x\""));
        assert_same_bytes_as_reference(&[
            request,
            Message::response("abc", json!(true)),
            Message::error_response("abc", "it broke"),
            Message::event("tick", Value::Null),
        ]);
    }

    #[test]
    fn bytes_match_reference_for_unicode() {
        assert_same_bytes_as_reference(&[Message::event(
            "名前",
            json!({"text": "héllo ✓ 🚀 \u{0001}\u{001f}\t\n\r\"\\ \u{2028}", "κλειδί": "値"}),
        )]);
    }

    #[test]
    fn bytes_match_reference_for_nested_payloads() {
        let mut deep = json!("leaf");
        for level in 0..40 {
            deep = if level % 2 == 0 {
                json!([deep, {}])
            } else {
                json!({"z": deep, "a": []})
            };
        }
        assert_same_bytes_as_reference(&[Message::request("nest", deep)]);
    }

    #[test]
    fn bytes_match_reference_for_big_integers_and_floats() {
        assert_same_bytes_as_reference(&[Message::request(
            "numbers",
            json!({
                "max_u64": u64::MAX, "min_i64": i64::MIN, "max_i64": i64::MAX,
                "floats": [0.1, 1e308, 1e-7, -0.0, 123.456, 5e-324, 1.7976931348623157e308, 2.5e15, 1e21]
            }),
        )]);
    }

    #[test]
    fn reads_what_the_reference_writes_including_extras_and_nulls() {
        let file = br#"[
  {"id": "a", "timestamp": 1, "type": "request", "method": "m", "payload": {}, "extra": [1, 2]},
  {"id": "b", "timestamp": 2, "type": "response", "reply_to": "a", "method": null, "payload": null, "error": null}
]"#;
        let entries = decode_file(file).unwrap();
        match &entries[..] {
            [Entry::Valid(a), Entry::Valid(b)] => {
                assert_eq!(a.method.as_deref(), Some("m"));
                assert_eq!(b.reply_to.as_deref(), Some("a"));
                assert_eq!(b.error, None);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_bad_element_is_isolated_and_described() {
        let file = br#"[
  {"id": "a", "timestamp": 1, "type": "request", "payload": 1},
  {"id": "b", "timestamp": 2, "type": "Request", "payload": 1},
  {"id": "c", "timestamp": 3, "type": "event"},
  {"id": "d", "timestamp": -4, "type": "event", "payload": 1},
  7,
  {"id": "e", "timestamp": 5, "type": "event", "payload": 1}
]"#;
        let entries = decode_file(file).unwrap();
        let reasons: Vec<String> = entries
            .iter()
            .map(|entry| match entry {
                Entry::Valid(m) => format!("ok {}", m.id),
                Entry::Invalid { id, reason, .. } => format!("bad {id:?} {reason}"),
            })
            .collect();
        assert_eq!(reasons[0], "ok a");
        assert!(
            reasons[1].starts_with("bad Some(\"b\") unknown variant `Request`"),
            "{}",
            reasons[1]
        );
        assert_eq!(reasons[2], "bad Some(\"c\") missing field `payload`");
        assert!(
            reasons[3].starts_with("bad Some(\"d\") invalid value"),
            "{}",
            reasons[3]
        );
        assert_eq!(reasons[4], "bad None not a JSON object");
        assert_eq!(reasons[5], "ok e");
    }

    #[test]
    fn whole_file_errors_are_described() {
        assert!(decode_file(b"").unwrap().is_empty());
        assert!(decode_file(b"  \n").unwrap().is_empty());
        assert!(decode_file(b"[")
            .unwrap_err()
            .starts_with("not a valid JSON array"));
        assert!(decode_file(b"{}")
            .unwrap_err()
            .starts_with("not a JSON array"));
        assert!(decode_file(b"null")
            .unwrap_err()
            .starts_with("not a JSON array"));
        assert!(decode_file(b"\xEF\xBB\xBF[]")
            .unwrap_err()
            .starts_with("not a JSON array"));
        assert!(decode_file(b"[\"\xff")
            .unwrap_err()
            .starts_with("not valid UTF-8"));
    }

    #[test]
    fn depth_limit_is_the_reference_readers() {
        fn nested(levels: usize) -> Value {
            (0..levels).fold(json!(1), |inner, _| json!([inner]))
        }
        let file_with = |levels: usize| {
            String::from_utf8(encode_file([Message::request("d", nested(levels))
                .encode()
                .as_str()]))
            .unwrap()
        };
        assert_eq!(depth(&nested(MAX_PAYLOAD_DEPTH)), MAX_PAYLOAD_DEPTH);
        let readable: Result<Vec<ipckit::FileMessage>, _> =
            serde_json::from_str(&file_with(MAX_PAYLOAD_DEPTH));
        assert!(
            readable.is_ok(),
            "reference must read depth {MAX_PAYLOAD_DEPTH}"
        );
        let unreadable: Result<Vec<ipckit::FileMessage>, _> =
            serde_json::from_str(&file_with(MAX_PAYLOAD_DEPTH + 1));
        assert!(unreadable.is_err(), "reference must fail one level deeper");
        // Our reader isolates the too-deep element instead of failing the file.
        let entries = decode_file(file_with(MAX_PAYLOAD_DEPTH + 1).as_bytes()).unwrap();
        assert!(
            matches!(&entries[..], [Entry::Invalid { reason, .. }] if reason.contains("deeper than 125"))
        );
    }

    #[test]
    fn very_deep_input_is_an_error_not_a_crash() {
        let text = format!("[{}{}, 1]", "[".repeat(100_000), "]".repeat(100_000));
        let entries = decode_file(text.as_bytes()).unwrap();
        assert!(matches!(
            &entries[..],
            [Entry::Invalid { id: None, .. }, Entry::Invalid { .. }]
        ));
    }

    #[test]
    fn error_code_and_data_are_written_beside_error_and_ignored_by_the_reference() {
        let mut message = Message::error_response("r-1", "disk full");
        message.error_code = Some("ENOSPC".into());
        message.error_data = Some(json!({"free": 0}));
        let text = String::from_utf8(encode_file([message.encode().as_str()])).unwrap();
        assert!(text.contains(
            "\"error\": \"disk full\",\n    \"error_code\": \"ENOSPC\",\n    \"error_data\": {"
        ));
        let theirs: Vec<ipckit::FileMessage> = serde_json::from_str(&text).unwrap();
        assert_eq!(theirs[0].error.as_deref(), Some("disk full"));
        let [Entry::Valid(ours)] = &decode_file(text.as_bytes()).unwrap()[..] else {
            panic!("not one valid message");
        };
        assert_eq!(ours, &message);
        // Without them the bytes are the reference's.
        assert_same_bytes_as_reference(&[Message::error_response("r-2", "no")]);
    }

    #[test]
    fn a_non_string_error_code_is_ignored_not_fatal() {
        let text = r#"[{"id": "a", "timestamp": 1, "type": "response", "reply_to": "r",
            "payload": null, "error": "x", "error_code": 42, "error_data": null}]"#;
        let [Entry::Valid(message)] = &decode_file(text.as_bytes()).unwrap()[..] else {
            panic!("not one valid message");
        };
        assert_eq!(message.error_code, None);
        assert_eq!(message.error_data, None);
    }

    #[test]
    fn a_bad_element_is_isolated_from_the_good_ones_around_it() {
        let good = |n: u32| {
            Message {
                timestamp: 1,
                ..Message::event("e", serde_json::json!(n))
            }
            .encode()
        };
        let mut file = Vec::new();
        file.extend_from_slice(b"[\n");
        file.extend_from_slice(good(1).as_bytes());
        file.extend_from_slice(b",\n  {\"id\": \"bad-utf8\", \"payload\": \"\xff\xfe\"},\n");
        file.extend_from_slice(
            b"  {\"id\": \"nan\", \"timestamp\": 1, \"type\": \"event\", \"payload\": NaN},\n",
        );
        file.extend_from_slice(
            b"  {\"id\": \"brackets \\\" ] } in a string\", \"payload\": [NaN]},\n",
        );
        file.extend_from_slice(good(2).as_bytes());
        file.extend_from_slice(b"\n]");
        let entries = decode_file(&file).unwrap();
        let summary: Vec<_> = entries
            .iter()
            .map(|entry| match entry {
                Entry::Valid(m) => format!("ok {}", m.payload),
                Entry::Invalid { id, reason, .. } => {
                    format!("bad {} {}", id.as_deref().unwrap_or("-"), &reason[..14])
                }
            })
            .collect();
        assert_eq!(
            summary,
            [
                "ok 1",
                "bad bad-utf8 not valid UTF-",
                "bad nan not valid JSON",
                "bad brackets \\ not valid JSON",
                "ok 2"
            ]
        );
        // Still not an array at all: the file is refused as a whole.
        assert!(decode_file(b"[1, [2").is_err());
        assert!(decode_file(b"[1, \"2]").is_err());
        assert_eq!(decode_file(b"[ ]").unwrap().len(), 0);
    }
}
