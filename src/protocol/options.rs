//! Defaults, limits and validation of every channel option: the one place they are defined.
//!
//! The binding exports this table to JavaScript (`DEFAULTS`, `LIMITS`), and every option a
//! caller passes is checked here, by [`parse_options`], with a message that names it. Neither the
//! JS layer nor the CLI keeps a copy of these numbers or rules.

use super::error::{ChannelError, Result};
use super::lock::LockTiming;
pub use super::message::MAX_PAYLOAD_DEPTH;
use super::outbox::{AckSettings, OutboxSettings};
use std::time::Duration;

/// How long `request()` and `waitResponse()` wait when no `timeoutMs` is given.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// The longest timeout a wait accepts (what a JavaScript timer can hold, about 24.8 days);
/// longer ones are capped to it.
pub const MAX_TIMEOUT_MS: u64 = 2_147_483_647;
/// The largest integer a JavaScript number holds exactly: the upper bound of byte sizes.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

pub const DEFAULT_MAX_MESSAGES: u32 = 100;
pub const DEFAULT_LOCK_TIMEOUT_MS: u32 = 500;
pub const DEFAULT_STALE_LOCK_MS: u32 = 5000;
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;
pub const DEFAULT_POLL_INTERVAL_MS: u32 = 100;
pub const DEFAULT_MAX_QUEUED: u32 = 10_000;
pub const DEFAULT_FILE_MODE: u32 = 0o600;
pub const DEFAULT_DIR_MODE: u32 = 0o700;
pub const DEFAULT_ACK_TIMEOUT_MS: u32 = 10_000;
pub const DEFAULT_MAX_BACKLOG: u32 = 5000;

/// The value type of an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// An integer between `min` and `max`.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// Permission bits, 0 to 0o777.
    Mode,
}

/// One option: its JavaScript name, kind, range and default.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    pub name: &'static str,
    pub kind: OptionKind,
    pub min: f64,
    pub max: f64,
    /// The default as a number (booleans: 0 or 1).
    pub default: f64,
    /// Why `min` is what it is, for the error message.
    pub min_reason: &'static str,
}

const U32_MAX: f64 = u32::MAX as f64;

const fn integer(name: &'static str, min: f64, max: f64, default: f64) -> OptionSpec {
    OptionSpec {
        name,
        kind: OptionKind::Integer,
        min,
        max,
        default,
        min_reason: "",
    }
}

const fn boolean(name: &'static str, default: bool) -> OptionSpec {
    OptionSpec {
        name,
        kind: OptionKind::Boolean,
        min: 0.0,
        max: 1.0,
        default: if default { 1.0 } else { 0.0 },
        min_reason: "",
    }
}

const fn mode(name: &'static str, default: u32) -> OptionSpec {
    OptionSpec {
        name,
        kind: OptionKind::Mode,
        min: 0.0,
        max: 0o777 as f64,
        default: default as f64,
        min_reason: "",
    }
}

const fn with_reason(mut spec: OptionSpec, reason: &'static str) -> OptionSpec {
    spec.min_reason = reason;
    spec
}

/// Every option a channel takes, in documentation order.
pub const OPTIONS: &[OptionSpec] = &[
    integer("maxMessages", 1.0, U32_MAX, DEFAULT_MAX_MESSAGES as f64),
    integer(
        "lockTimeoutMs",
        0.0,
        U32_MAX,
        DEFAULT_LOCK_TIMEOUT_MS as f64,
    ),
    integer("staleLockMs", 0.0, U32_MAX, DEFAULT_STALE_LOCK_MS as f64),
    with_reason(
        integer(
            "maxFileBytes",
            2.0,
            MAX_SAFE_INTEGER,
            DEFAULT_MAX_FILE_BYTES as f64,
        ),
        "the size of an empty message file, []",
    ),
    boolean("watch", true),
    integer(
        "pollIntervalMs",
        1.0,
        U32_MAX,
        DEFAULT_POLL_INTERVAL_MS as f64,
    ),
    integer("maxQueued", 1.0, U32_MAX, DEFAULT_MAX_QUEUED as f64),
    mode("mode", DEFAULT_FILE_MODE),
    mode("dirMode", DEFAULT_DIR_MODE),
    boolean("allowInsecure", false),
    boolean("acknowledge", true),
    integer("ackTimeoutMs", 1.0, U32_MAX, DEFAULT_ACK_TIMEOUT_MS as f64),
    integer("maxBacklog", 1.0, U32_MAX, DEFAULT_MAX_BACKLOG as f64),
];

/// An option value as the caller gave it, before validation.
#[derive(Debug, Clone, PartialEq)]
pub enum RawOption {
    Number(f64),
    Bool(bool),
    /// Left out (`undefined`): the default applies.
    Missing,
    /// Anything else, described for the error message (`a string ("100")`, `null`, ...).
    Other(String),
}

pub fn spec(name: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|spec| spec.name == name)
}

fn describe(value: &RawOption) -> String {
    match value {
        RawOption::Number(n) => format_number(*n),
        RawOption::Bool(b) => b.to_string(),
        RawOption::Missing => "undefined".into(),
        RawOption::Other(text) => text.clone(),
    }
}

fn format_number(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{n:.0}")
    } else {
        n.to_string()
    }
}

fn expected(spec: &OptionSpec) -> String {
    match spec.kind {
        OptionKind::Boolean => "a boolean".into(),
        OptionKind::Mode => "permission bits (an integer from 0 to 0o777)".into(),
        OptionKind::Integer => {
            let reason = if spec.min_reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", spec.min_reason)
            };
            format!(
                "an integer from {}{reason} to {}",
                format_number(spec.min),
                format_number(spec.max)
            )
        }
    }
}

/// Checks one option; `Ok(None)` when it is left out.
fn check(spec: &OptionSpec, value: &RawOption) -> Result<Option<f64>> {
    let ok = match (spec.kind, value) {
        (_, RawOption::Missing) => return Ok(None),
        (OptionKind::Boolean, RawOption::Bool(b)) => return Ok(Some(f64::from(u8::from(*b)))),
        (OptionKind::Integer | OptionKind::Mode, RawOption::Number(n)) => {
            n.fract() == 0.0 && *n >= spec.min && *n <= spec.max
        }
        _ => false,
    };
    match value {
        RawOption::Number(n) if ok => Ok(Some(*n)),
        _ => Err(ChannelError::Invalid(format!(
            "options.{} must be {}, got {}",
            spec.name,
            expected(spec),
            describe(value)
        ))),
    }
}

/// Every option of a channel, parsed and checked (see [`parse_options`]).
#[derive(Debug, Clone)]
pub struct ChannelOptions {
    pub max_messages: usize,
    pub lock_timeout: Duration,
    pub stale_lock: Duration,
    pub max_file_bytes: u64,
    /// Use change notifications; otherwise poll every `poll_interval`.
    pub watch: bool,
    /// Polling period without a watcher, and the safety re-read period with one.
    pub poll_interval: Duration,
    /// Messages kept for `recv()` before the oldest are dropped (and reported).
    pub max_queued: usize,
    pub file_mode: u32,
    pub dir_mode: u32,
    /// Accept a directory owned by another user or writable by group or others.
    pub allow_insecure: bool,
    /// Publish acknowledgements as a reader and honour them as a writer (see `ack`).
    pub acknowledge: bool,
    /// An acknowledging reader silent for longer than this no longer holds messages back.
    pub ack_timeout: Duration,
    /// Most messages our outbox holds for slow acknowledging readers before sends are refused.
    pub max_backlog: usize,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        // The values are defined once, above (and exported to JavaScript from there).
        let ms = |ms: u32| Duration::from_millis(ms.into());
        ChannelOptions {
            max_messages: DEFAULT_MAX_MESSAGES as usize,
            lock_timeout: ms(DEFAULT_LOCK_TIMEOUT_MS),
            stale_lock: ms(DEFAULT_STALE_LOCK_MS),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            watch: true,
            poll_interval: ms(DEFAULT_POLL_INTERVAL_MS),
            max_queued: DEFAULT_MAX_QUEUED as usize,
            file_mode: DEFAULT_FILE_MODE,
            dir_mode: DEFAULT_DIR_MODE,
            allow_insecure: false,
            acknowledge: true,
            ack_timeout: ms(DEFAULT_ACK_TIMEOUT_MS),
            max_backlog: DEFAULT_MAX_BACKLOG as usize,
        }
    }
}

impl ChannelOptions {
    pub(crate) fn outbox_settings(&self) -> OutboxSettings {
        OutboxSettings {
            max_messages: self.max_messages,
            lock: LockTiming {
                timeout: self.lock_timeout,
                stale_after: self.stale_lock,
            },
            max_file_bytes: self.max_file_bytes,
            file_mode: self.file_mode,
            acknowledgements: self.acknowledge.then_some(AckSettings {
                reader_timeout: self.ack_timeout,
                max_backlog: self.max_backlog,
            }),
        }
    }
}

/// Builds channel options from what the caller passed, name by name. An unknown name, a wrong
/// type or a value out of range is `EINVAL` naming the option and the accepted values.
pub fn parse_options(
    values: impl IntoIterator<Item = (String, RawOption)>,
) -> Result<ChannelOptions> {
    let mut options = ChannelOptions::default();
    for (name, value) in values {
        let Some(spec) = spec(&name) else {
            let known: Vec<&str> = OPTIONS.iter().map(|spec| spec.name).collect();
            return Err(ChannelError::Invalid(format!(
                "options.{name} is not an option (known: {})",
                known.join(", ")
            )));
        };
        let Some(n) = check(spec, &value)? else {
            continue;
        };
        let ms = || Duration::from_millis(n as u64);
        let flag = n != 0.0;
        match spec.name {
            "maxMessages" => options.max_messages = n as usize,
            "lockTimeoutMs" => options.lock_timeout = ms(),
            "staleLockMs" => options.stale_lock = ms(),
            "maxFileBytes" => options.max_file_bytes = n as u64,
            "watch" => options.watch = flag,
            "pollIntervalMs" => options.poll_interval = ms(),
            "maxQueued" => options.max_queued = n as usize,
            "mode" => options.file_mode = n as u32,
            "dirMode" => options.dir_mode = n as u32,
            "allowInsecure" => options.allow_insecure = flag,
            "acknowledge" => options.acknowledge = flag,
            "ackTimeoutMs" => options.ack_timeout = ms(),
            "maxBacklog" => options.max_backlog = n as usize,
            other => unreachable!("option {other} has a spec but no field"),
        }
    }
    Ok(options)
}

/// A timeout in milliseconds: finite and not negative; `None` is the default. Longer than
/// [`MAX_TIMEOUT_MS`] is capped there.
pub fn parse_timeout(value: Option<f64>, argument: &str) -> Result<Duration> {
    let ms = value.unwrap_or(DEFAULT_TIMEOUT_MS as f64);
    if !ms.is_finite() || ms < 0.0 {
        return Err(ChannelError::Invalid(format!(
            "{argument} must be a finite number of milliseconds >= 0, got {}",
            format_number(ms)
        )));
    }
    Ok(Duration::from_millis(ms.min(MAX_TIMEOUT_MS as f64) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, value: RawOption) -> Result<ChannelOptions> {
        parse_options([(name.to_string(), value)])
    }

    fn message(result: Result<ChannelOptions>) -> String {
        match result {
            Err(error) => {
                assert_eq!(error.code(), "EINVAL");
                error.to_string()
            }
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn defaults_come_from_the_table() {
        let defaults = ChannelOptions::default();
        let parsed = parse_options(OPTIONS.iter().map(|spec| {
            let value = match spec.kind {
                OptionKind::Boolean => RawOption::Bool(spec.default != 0.0),
                _ => RawOption::Number(spec.default),
            };
            (spec.name.to_string(), value)
        }))
        .unwrap();
        assert_eq!(format!("{defaults:?}"), format!("{parsed:?}"));
    }

    #[test]
    fn every_option_names_itself_when_refused() {
        for spec in OPTIONS {
            let text = message(parse(
                spec.name,
                RawOption::Other("a string (\"x\")".into()),
            ));
            assert!(
                text.starts_with(&format!("options.{} must be ", spec.name)),
                "{text}"
            );
        }
    }

    #[test]
    fn the_cases_that_used_to_disagree_have_one_answer() {
        let zero = message(parse("pollIntervalMs", RawOption::Number(0.0)));
        assert_eq!(
            zero,
            "options.pollIntervalMs must be an integer from 1 to 4294967295, got 0"
        );
        let one = message(parse("maxFileBytes", RawOption::Number(1.0)));
        assert!(
            one.contains("from 2 (the size of an empty message file, [])"),
            "{one}"
        );
        let big = parse("maxFileBytes", RawOption::Number(5e9)).unwrap();
        assert_eq!(big.max_file_bytes, 5_000_000_000);
    }

    #[test]
    fn fractions_nan_and_unknown_names_are_refused() {
        assert!(message(parse("maxMessages", RawOption::Number(1.5))).contains("got 1.5"));
        assert!(message(parse("maxFileBytes", RawOption::Number(f64::NAN))).contains("got NaN"));
        assert!(message(parse("mode", RawOption::Number(0o1777 as f64))).contains("0o777"));
        assert!(message(parse("frobnicate", RawOption::Bool(true))).contains("not an option"));
        assert!(parse("watch", RawOption::Missing).unwrap().watch);
    }

    #[test]
    fn timeouts() {
        assert_eq!(
            parse_timeout(None, "timeoutMs").unwrap(),
            Duration::from_millis(DEFAULT_TIMEOUT_MS)
        );
        assert!(parse_timeout(Some(-1.0), "timeoutMs").is_err());
        assert_eq!(
            parse_timeout(Some(1e300), "timeoutMs").unwrap(),
            Duration::from_millis(MAX_TIMEOUT_MS)
        );
    }
}
