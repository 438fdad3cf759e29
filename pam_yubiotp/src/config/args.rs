//! Module arguments from the PAM line (`name=value` or a bare flag), parsed
//! through the option table into a [`Layer`].

use super::ConfigError;
use super::options::{ArgForm, Input, Layer, OPTIONS, describe_unknown};

/// Parses the module arguments. Unknown names, values on flags, flags
/// without values and malformed values are errors naming the argument,
/// never its value; an unknown argument is named only by a prefix that
/// looks like an option name (see [`describe_unknown`]).
///
/// # Errors
/// [`ConfigError`].
pub fn parse_args<S: AsRef<str>>(argv: &[S]) -> Result<Layer, ConfigError> {
    let mut layer = Layer::default();
    for raw in argv {
        let raw = raw.as_ref();
        let (name, value) = match raw.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (raw, None),
        };
        let Some((opt, arg)) = OPTIONS
            .iter()
            .find_map(|o| o.args.iter().find(|a| a.name == name).map(|a| (o, a)))
        else {
            return Err(ConfigError::new(format!(
                "unknown argument {}",
                describe_unknown(raw)
            )));
        };
        let input = match (arg.form, value) {
            (ArgForm::Flag, None) => Input::Flag,
            (ArgForm::Value, Some(v)) => Input::Text(v),
            (ArgForm::Flag, Some(_)) => {
                return Err(ConfigError::new(format!("argument {name}: takes no value")));
            }
            (ArgForm::Value, None) => {
                return Err(ConfigError::new(format!(
                    "argument {name}: needs a value ({name}=...)"
                )));
            }
        };
        opt.set(&mut layer, name, input)
            .map_err(|e| ConfigError::new(format!("argument {name}: {e}")))?;
    }
    Ok(layer)
}
