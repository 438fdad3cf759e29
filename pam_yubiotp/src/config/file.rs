//! The TOML file, parsed through the option table into a [`Layer`]: every
//! key optional, unknown keys and wrong types refused, and no error ever
//! quotes a value (it could be the API key pasted in the wrong place).

use toml::de::{DeTable, DeValue};

use super::options::{Input, Layer, OPTIONS, Opt, SECTIONS, TomlType, describe_unknown, split_key};

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or("").matches('\n').count() + 1
}

/// `` `a`, `b` `` for "expected one of" messages.
fn one_of(names: impl Iterator<Item = &'static str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The keys (and, at the top level, the sections) allowed in `section`.
fn expected(section: &str) -> String {
    let keys = OPTIONS
        .iter()
        .filter_map(|o| o.toml)
        .map(split_key)
        .filter(|(s, _)| *s == section)
        .map(|(_, k)| k);
    if section.is_empty() {
        one_of(keys.chain(SECTIONS.iter().copied().filter(|s| !s.is_empty())))
    } else {
        one_of(keys)
    }
}

fn unknown(raw: &str, section: &str) -> String {
    let shown = describe_unknown(raw);
    let shown = match shown.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(name) => format!("`{name}`"),
        None => shown,
    };
    format!(
        "unknown field {shown}, expected one of {}",
        expected(section)
    )
}

/// The value as the option's parser takes it, or `None` for a wrong type.
fn input<'a>(value: &'a DeValue<'_>, ty: TomlType) -> Option<Input<'a>> {
    match (ty, value) {
        (TomlType::Str, DeValue::String(s)) => Some(Input::Text(s)),
        (TomlType::Bool, DeValue::Boolean(b)) => Some(Input::Bool(*b)),
        (TomlType::Int | TomlType::Number, DeValue::Integer(i)) => {
            i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(Input::Int)
        }
        (TomlType::Number, DeValue::Float(f)) => f.as_str().parse().ok().map(Input::Float),
        (TomlType::StrOrList, DeValue::String(s)) => Some(Input::Text(s)),
        (TomlType::StrList | TomlType::StrOrList, DeValue::Array(a)) => a
            .iter()
            .map(|v| match v.get_ref() {
                DeValue::String(s) => Some(&**s),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(Input::List),
        _ => None,
    }
}

fn set(layer: &mut Layer, opt: &Opt, key: &str, value: &DeValue<'_>) -> Result<(), String> {
    let input = input(value, opt.toml_type).ok_or_else(|| {
        format!(
            "{key}: must be {} (value not shown)",
            opt.toml_type.describe()
        )
    })?;
    opt.set(layer, key, input)
        .map_err(|e| format!("{key}: {e}"))
}

fn walk(text: &str, table: &DeTable<'_>, section: &str, layer: &mut Layer) -> Result<(), String> {
    for (k, v) in table {
        let name: &str = k.get_ref();
        let at = |msg: String| format!("line {}: {msg}", line_of(text, k.span().start));
        if section.is_empty() && SECTIONS.contains(&name) {
            let DeValue::Table(t) = v.get_ref() else {
                return Err(at(format!("{name}: must be a table (value not shown)")));
            };
            walk(text, t, name, layer)?;
            continue;
        }
        let opt = OPTIONS
            .iter()
            .find(|o| o.toml.map(split_key) == Some((section, name)))
            .ok_or_else(|| at(unknown(name, section)))?;
        let dotted = opt.toml.unwrap_or(name);
        set(layer, opt, dotted, v.get_ref())
            .map_err(|e| format!("line {}: {e}", line_of(text, v.span().start)))?;
    }
    Ok(())
}

/// Parses the TOML text. The error names the line and, for unknown or
/// duplicate keys, the key (only as much of it as may be a name); never a
/// value.
///
/// # Errors
/// A one-line description.
pub fn parse_file(text: &str) -> Result<Layer, String> {
    let doc = DeTable::parse(text).map_err(|e| {
        let first = e.message().lines().next().unwrap_or("");
        // Only messages that name keys (never values) are passed on.
        let msg = if first.starts_with("duplicate key") {
            first.to_string()
        } else {
            "invalid value or syntax (value not shown)".to_string()
        };
        match e.span() {
            Some(s) => format!("line {}: {msg}", line_of(text, s.start)),
            None => msg,
        }
    })?;
    let mut layer = Layer::default();
    walk(text, doc.get_ref(), "", &mut layer)?;
    Ok(layer)
}
