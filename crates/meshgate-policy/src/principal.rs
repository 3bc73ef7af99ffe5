//! Who is asking: a principal's name, groups and typed attributes, taken from
//! validated credentials only.

use std::collections::BTreeMap;
use std::fmt;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

/// The type of a principal attribute, declared once in `governance.attributes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    Utf8,
    Int64,
    Float64,
    Boolean,
}

impl AttrType {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "utf8" | "string" => Some(Self::Utf8),
            "int64" => Some(Self::Int64),
            "float64" => Some(Self::Float64),
            "boolean" | "bool" => Some(Self::Boolean),
            _ => None,
        }
    }

    pub fn data_type(self) -> DataType {
        match self {
            Self::Utf8 => DataType::Utf8,
            Self::Int64 => DataType::Int64,
            Self::Float64 => DataType::Float64,
            Self::Boolean => DataType::Boolean,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Utf8 => "utf8",
            Self::Int64 => "int64",
            Self::Float64 => "float64",
            Self::Boolean => "boolean",
        }
    }
}

/// A typed attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Utf8(String),
    Int64(i64),
    Float64(f64),
    Boolean(bool),
}

impl AttrValue {
    pub fn attr_type(&self) -> AttrType {
        match self {
            Self::Utf8(_) => AttrType::Utf8,
            Self::Int64(_) => AttrType::Int64,
            Self::Float64(_) => AttrType::Float64,
            Self::Boolean(_) => AttrType::Boolean,
        }
    }

    pub fn to_scalar(&self) -> ScalarValue {
        match self {
            Self::Utf8(value) => ScalarValue::Utf8(Some(value.clone())),
            Self::Int64(value) => ScalarValue::Int64(Some(*value)),
            Self::Float64(value) => ScalarValue::Float64(Some(*value)),
            Self::Boolean(value) => ScalarValue::Boolean(Some(*value)),
        }
    }

    /// Converts a YAML or JSON scalar to `ty`; `None` when it has another type
    /// (an array where a string is declared, a string where a number is).
    pub fn from_yaml(value: &serde_norway::Value, ty: AttrType) -> Option<Self> {
        use serde_norway::Value;
        match (ty, value) {
            (AttrType::Utf8, Value::String(text)) => Some(Self::Utf8(text.clone())),
            (AttrType::Int64, Value::Number(number)) => number.as_i64().map(Self::Int64),
            (AttrType::Float64, Value::Number(number)) => number.as_f64().map(Self::Float64),
            (AttrType::Boolean, Value::Bool(flag)) => Some(Self::Boolean(*flag)),
            _ => None,
        }
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Utf8(value) => write!(f, "'{}'", value.replace('\'', "''")),
            Self::Int64(value) => write!(f, "{value}"),
            Self::Float64(value) => write!(f, "{value}"),
            Self::Boolean(value) => write!(f, "{value}"),
        }
    }
}

/// An authenticated principal.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Principal {
    pub name: String,
    pub groups: Vec<String>,
    pub attributes: BTreeMap<String, AttrValue>,
}

impl Principal {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    pub fn attribute(&self, name: &str) -> Option<&AttrValue> {
        self.attributes.get(name)
    }

    /// This principal acting for `purpose` (what the call says it is for): the built-in
    /// utf8 attribute `principal.purpose`, which policies test like any other. `None`
    /// leaves the principal without one.
    pub fn with_purpose(mut self, purpose: Option<&str>) -> Self {
        self.attributes.remove(PURPOSE_ATTRIBUTE);
        if let Some(purpose) = purpose {
            self.attributes.insert(PURPOSE_ATTRIBUTE.to_owned(), AttrValue::Utf8(purpose.to_owned()));
        }
        self
    }

    /// The purpose the principal acts for, if the call declared one.
    pub fn purpose(&self) -> Option<&str> {
        match self.attributes.get(PURPOSE_ATTRIBUTE) {
            Some(AttrValue::Utf8(purpose)) => Some(purpose),
            _ => None,
        }
    }
}

/// The built-in attribute a call's declared purpose travels in (utf8; never from
/// configuration or credentials, only from the call).
pub const PURPOSE_ATTRIBUTE: &str = "purpose";

/// The type of a built-in attribute (`principal.name`, `principal.purpose`).
pub fn built_in_attribute(name: &str) -> Option<AttrType> {
    matches!(name, "name" | PURPOSE_ATTRIBUTE).then_some(AttrType::Utf8)
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (groups: {}", self.name, self.groups.join(", "))?;
        for (name, value) in &self.attributes {
            write!(f, "; {name} = {value}")?;
        }
        write!(f, ")")
    }
}
