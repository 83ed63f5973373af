//! Value checks against a parameter's `DataType` and `AllowedValues`.
//!
//! `AllowedValues` grammar (AWS's string form): comma-separated items, each one
//! of
//! * `-` — any value of the data type (`slowlog-log-slower-than`);
//! * `lo-hi`, `lo-` — an inclusive numeric range, open above when `hi` is
//!   missing; `lo` may be negative (`-1-`);
//! * anything else — a literal (`5000`, `-2`, `yes`, `volatile-lru`,
//!   `tls-dynamic`); numeric literals compare numerically for integer and
//!   numeric parameters.
//!
//! Two parameters have their own syntax: `notify-keyspace-events` (a set of
//! event-class letters, AWS lists no `AllowedValues`) and `rename-commands`
//! (space-separated `COMMAND new-name` pairs; `AllowedValues` lists the
//! commands that may be renamed).

use crate::{DataType, ParamDef};

/// Event-class letters Redis OSS and Valkey accept in `notify-keyspace-events`.
const KEYSPACE_EVENT_CLASSES: &str = "KEg$lshzxeAtmdn";

/// Checks `value` for `def`. The error is the message of an
/// `InvalidParameterValue` fault, e.g.
/// `Value bogus for parameter maxmemory-policy is invalid. Allowed values are: volatile-lru,…`.
///
/// Whether the parameter may be changed at all is a separate question: see
/// [`check_modifiable`].
pub fn validate(def: &ParamDef, value: &str) -> Result<(), String> {
    match def.name.as_str() {
        "notify-keyspace-events" => return keyspace_events(def, value),
        "rename-commands" => return rename_commands(def, value),
        _ => {}
    }
    let number = match def.data_type {
        DataType::Integer => match value.parse::<i64>() {
            Ok(n) => Some(n as f64),
            Err(_) => return Err(invalid(def, value, "The value must be an integer.")),
        },
        DataType::Numeric => match value.parse::<f64>() {
            Ok(n) if n.is_finite() => Some(n),
            _ => return Err(invalid(def, value, "The value must be a number.")),
        },
        DataType::String | DataType::Boolean => None,
    };
    let Some(allowed) = def.allowed_values.as_deref() else {
        return Ok(());
    };
    if allowed.split(',').any(|item| matches(item, value, number)) {
        Ok(())
    } else {
        Err(invalid(
            def,
            value,
            &format!("Allowed values are: {}", describe_allowed(allowed)),
        ))
    }
}

/// Refuses a parameter AWS reports as not modifiable, with ElastiCache's message
/// (`The parameter cluster-enabled cannot be modified.`).
///
/// Parameters with [`ParamDef::conditionally_modifiable`] set are refused too;
/// a caller that allows them while the group is attached to no cluster checks
/// that flag first.
pub fn check_modifiable(def: &ParamDef) -> Result<(), String> {
    if def.is_modifiable {
        Ok(())
    } else {
        Err(format!("The parameter {} cannot be modified.", def.name))
    }
}

fn invalid(def: &ParamDef, value: &str, why: &str) -> String {
    format!("Value {value} for parameter {} is invalid. {why}", def.name)
}

fn describe_allowed(allowed: &str) -> String {
    if allowed == "-" {
        "any integer".to_owned()
    } else {
        allowed.to_owned()
    }
}

/// One `AllowedValues` item.
enum Item<'a> {
    Any,
    Range { lo: f64, hi: Option<f64> },
    Literal(&'a str),
}

fn parse_item(item: &str) -> Item<'_> {
    if item == "-" {
        return Item::Any;
    }
    // A range's separator is a '-' after the first character (which may be
    // the sign of a negative lower bound).
    let split = item
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == '-')
        .map(|(i, _)| i);
    if let Some(i) = split {
        let (lo, hi) = (&item[..i], &item[i + 1..]);
        if let Ok(lo) = lo.parse::<f64>() {
            if hi.is_empty() {
                return Item::Range { lo, hi: None };
            }
            if let Ok(hi) = hi.parse::<f64>() {
                return Item::Range { lo, hi: Some(hi) };
            }
        }
    }
    Item::Literal(item)
}

fn matches(item: &str, value: &str, number: Option<f64>) -> bool {
    match parse_item(item) {
        Item::Any => true,
        Item::Range { lo, hi } => {
            let n = match number {
                Some(n) => n,
                None => match value.parse::<f64>() {
                    Ok(n) => n,
                    Err(_) => return false,
                },
            };
            n >= lo && hi.is_none_or(|hi| n <= hi)
        }
        Item::Literal(lit) => match (number, lit.parse::<f64>()) {
            (Some(n), Ok(l)) => n == l,
            _ => lit == value,
        },
    }
}

fn keyspace_events(def: &ParamDef, value: &str) -> Result<(), String> {
    match value.chars().find(|c| !KEYSPACE_EVENT_CLASSES.contains(*c)) {
        None => Ok(()),
        Some(_) => Err(invalid(
            def,
            value,
            &format!("Allowed characters are: {KEYSPACE_EVENT_CLASSES}"),
        )),
    }
}

fn rename_commands(def: &ParamDef, value: &str) -> Result<(), String> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if !words.len().is_multiple_of(2) {
        return Err(invalid(
            def,
            value,
            "The value must be a space-separated list of command and new name pairs.",
        ));
    }
    let renamable = def.allowed_values.as_deref().unwrap_or("");
    for pair in words.chunks(2) {
        let command = pair[0];
        let known = renamable
            .split(',')
            .any(|c| c.eq_ignore_ascii_case(command));
        if !known {
            return Err(invalid(
                def,
                value,
                &format!("Command {command} cannot be renamed."),
            ));
        }
    }
    Ok(())
}
