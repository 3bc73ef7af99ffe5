//! `when:` / `unless:` conditions: a small boolean language over the principal
//! (`'analyst' in principal.groups and principal.region_key = 3`), parsed at load,
//! type-checked against the declared attributes, evaluated in three-valued logic.

use std::collections::BTreeMap;
use std::fmt;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::principal::{AttrType, AttrValue, Principal};

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Const(bool),
    Not(Box<Condition>),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    /// `'group' in principal.groups`
    InGroups(String),
    /// `principal.attr <op> literal` (`principal.name` is a utf8 attribute)
    Compare {
        attr: String,
        op: CmpOp,
        value: AttrValue,
    },
    /// `principal.attr in (literal, ...)`
    In {
        attr: String,
        values: Vec<AttrValue>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl Condition {
    /// Parses `text`, checking attribute names and literal types against `attributes`.
    pub fn parse(text: &str, attributes: &BTreeMap<String, AttrType>) -> Result<Self, String> {
        let tokens = Tokenizer::new(&GenericDialect {}, text).tokenize().map_err(|error| error.to_string())?;
        let tokens: Vec<Token> = tokens.into_iter().filter(|t| !matches!(t, Token::Whitespace(_))).collect();
        let mut parser = Parser { tokens, position: 0, attributes };
        let condition = parser.or()?;
        match parser.peek() {
            None => Ok(condition),
            Some(token) => Err(format!("unexpected '{token}'")),
        }
    }

    /// `Some(true)`, `Some(false)`, or `None` when a needed attribute is missing.
    pub fn eval(&self, principal: &Principal) -> Option<bool> {
        match self {
            Self::Const(value) => Some(*value),
            Self::Not(inner) => inner.eval(principal).map(|value| !value),
            Self::And(left, right) => match (left.eval(principal), right.eval(principal)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Self::Or(left, right) => match (left.eval(principal), right.eval(principal)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            Self::InGroups(group) => Some(principal.in_group(group)),
            Self::Compare { attr, op, value } => {
                let actual = attribute(principal, attr)?;
                let ordering = compare(&actual, value)?;
                Some(match op {
                    CmpOp::Eq => ordering.is_eq(),
                    CmpOp::NotEq => !ordering.is_eq(),
                    CmpOp::Lt => ordering.is_lt(),
                    CmpOp::LtEq => ordering.is_le(),
                    CmpOp::Gt => ordering.is_gt(),
                    CmpOp::GtEq => ordering.is_ge(),
                })
            }
            Self::In { attr, values } => {
                let actual = attribute(principal, attr)?;
                Some(values.iter().any(|value| compare(&actual, value).is_some_and(|o| o.is_eq())))
            }
        }
    }
}

fn attribute(principal: &Principal, name: &str) -> Option<AttrValue> {
    if name == "name" {
        return Some(AttrValue::Utf8(principal.name.clone()));
    }
    principal.attribute(name).cloned()
}

fn compare(left: &AttrValue, right: &AttrValue) -> Option<std::cmp::Ordering> {
    match (left, right) {
        (AttrValue::Utf8(a), AttrValue::Utf8(b)) => Some(a.cmp(b)),
        (AttrValue::Int64(a), AttrValue::Int64(b)) => Some(a.cmp(b)),
        (AttrValue::Float64(a), AttrValue::Float64(b)) => a.partial_cmp(b),
        (AttrValue::Int64(a), AttrValue::Float64(b)) => (*a as f64).partial_cmp(b),
        (AttrValue::Float64(a), AttrValue::Int64(b)) => a.partial_cmp(&(*b as f64)),
        (AttrValue::Boolean(a), AttrValue::Boolean(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Const(value) => write!(f, "{value}"),
            Self::Not(inner) => write!(f, "not ({inner})"),
            Self::And(left, right) => write!(f, "({left} and {right})"),
            Self::Or(left, right) => write!(f, "({left} or {right})"),
            Self::InGroups(group) => write!(f, "'{group}' in principal.groups"),
            Self::Compare { attr, op, value } => {
                let op = match op {
                    CmpOp::Eq => "=",
                    CmpOp::NotEq => "<>",
                    CmpOp::Lt => "<",
                    CmpOp::LtEq => "<=",
                    CmpOp::Gt => ">",
                    CmpOp::GtEq => ">=",
                };
                write!(f, "principal.{attr} {op} {value}")
            }
            Self::In { attr, values } => {
                let values: Vec<String> = values.iter().map(ToString::to_string).collect();
                write!(f, "principal.{attr} in ({})", values.join(", "))
            }
        }
    }
}

struct Parser<'a> {
    tokens: Vec<Token>,
    position: usize,
    attributes: &'a BTreeMap<String, AttrType>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn keyword(&mut self, word: &str) -> bool {
        let matched = matches!(self.peek(), Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word));
        if matched {
            self.position += 1;
        }
        matched
    }

    fn expect(&mut self, expected: Token) -> Result<(), String> {
        match self.next() {
            Some(token) if token == expected => Ok(()),
            Some(token) => Err(format!("expected '{expected}', found '{token}'")),
            None => Err(format!("expected '{expected}' at the end")),
        }
    }

    fn or(&mut self) -> Result<Condition, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Condition::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, String> {
        let mut left = self.not()?;
        while self.keyword("and") {
            left = Condition::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Condition, String> {
        if self.keyword("not") {
            return Ok(Condition::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Condition, String> {
        if self.peek() == Some(&Token::LParen) {
            self.position += 1;
            let inner = self.or()?;
            self.expect(Token::RParen)?;
            return Ok(inner);
        }
        if self.keyword("true") {
            return Ok(Condition::Const(true));
        }
        if self.keyword("false") {
            return Ok(Condition::Const(false));
        }
        if let Some(Token::SingleQuotedString(group)) = self.peek().cloned() {
            self.position += 1;
            if !self.keyword("in") {
                return Err(format!("expected 'in principal.groups' after '{group}'"));
            }
            let attr = self.principal_field()?;
            if attr != "groups" {
                return Err(format!("'<text> in principal.{attr}': only principal.groups is a list"));
            }
            return Ok(Condition::InGroups(group));
        }
        let attr = self.principal_field()?;
        let ty = self.attr_type(&attr)?;
        if self.keyword("in") {
            self.expect(Token::LParen)?;
            let mut values = vec![self.literal(&attr, ty)?];
            while self.peek() == Some(&Token::Comma) {
                self.position += 1;
                values.push(self.literal(&attr, ty)?);
            }
            self.expect(Token::RParen)?;
            return Ok(Condition::In { attr, values });
        }
        let op = match self.next() {
            Some(Token::Eq) | Some(Token::DoubleEq) => CmpOp::Eq,
            Some(Token::Neq) => CmpOp::NotEq,
            Some(Token::Lt) => CmpOp::Lt,
            Some(Token::LtEq) => CmpOp::LtEq,
            Some(Token::Gt) => CmpOp::Gt,
            Some(Token::GtEq) => CmpOp::GtEq,
            Some(token) => return Err(format!("expected a comparison after principal.{attr}, found '{token}'")),
            None => return Err(format!("expected a comparison after principal.{attr}")),
        };
        let value = self.literal(&attr, ty)?;
        Ok(Condition::Compare { attr, op, value })
    }

    fn principal_field(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("principal") => {}
            Some(token) => return Err(format!("expected principal.<attribute>, found '{token}'")),
            None => return Err("expected principal.<attribute>".into()),
        }
        self.expect(Token::Period)?;
        match self.next() {
            Some(Token::Word(w)) => Ok(w.value),
            _ => Err("expected an attribute name after 'principal.'".into()),
        }
    }

    fn attr_type(&self, attr: &str) -> Result<AttrType, String> {
        if let Some(ty) = crate::principal::built_in_attribute(attr) {
            return Ok(ty);
        }
        if attr == "groups" {
            return Err("principal.groups is a list: write '<group>' in principal.groups".into());
        }
        self.attributes
            .get(attr)
            .copied()
            .ok_or_else(|| format!("unknown principal attribute '{attr}' (declare it under governance.attributes)"))
    }

    fn literal(&mut self, attr: &str, ty: AttrType) -> Result<AttrValue, String> {
        let negative = self.peek() == Some(&Token::Minus);
        if negative {
            self.position += 1;
        }
        let value = match (self.next(), ty) {
            (Some(Token::SingleQuotedString(text)), AttrType::Utf8) if !negative => Some(AttrValue::Utf8(text)),
            (Some(Token::Number(text, _)), AttrType::Int64) => {
                let text = if negative { format!("-{text}") } else { text };
                text.parse().ok().map(AttrValue::Int64)
            }
            (Some(Token::Number(text, _)), AttrType::Float64) => {
                let text = if negative { format!("-{text}") } else { text };
                text.parse().ok().map(AttrValue::Float64)
            }
            (Some(Token::Word(w)), AttrType::Boolean) if !negative && w.quote_style.is_none() => {
                match w.value.to_ascii_lowercase().as_str() {
                    "true" => Some(AttrValue::Boolean(true)),
                    "false" => Some(AttrValue::Boolean(false)),
                    _ => None,
                }
            }
            _ => None,
        };
        value.ok_or_else(|| format!("principal.{attr} is {}: compare it with a {} literal", ty.name(), ty.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> BTreeMap<String, AttrType> {
        [("region_key".to_owned(), AttrType::Int64), ("segment".to_owned(), AttrType::Utf8)].into()
    }

    fn ana() -> Principal {
        let mut principal = Principal::new("ana");
        principal.groups = vec!["analyst".into()];
        principal.attributes.insert("region_key".into(), AttrValue::Int64(3));
        principal
    }

    #[test]
    fn groups_names_and_attributes() {
        let eval = |text: &str| Condition::parse(text, &attrs()).unwrap().eval(&ana());
        assert_eq!(eval("'analyst' in principal.groups"), Some(true));
        assert_eq!(eval("'steward' in principal.groups or principal.name = 'ana'"), Some(true));
        assert_eq!(eval("not ('analyst' in principal.groups)"), Some(false));
        assert_eq!(eval("principal.region_key in (1, 3) and principal.region_key >= 3"), Some(true));
        assert_eq!(eval("true and false"), Some(false));
    }

    #[test]
    fn a_missing_attribute_is_unknown() {
        let eval = |text: &str| Condition::parse(text, &attrs()).unwrap().eval(&ana());
        assert_eq!(eval("principal.segment = 'BUILDING'"), None);
        assert_eq!(eval("not (principal.segment = 'BUILDING')"), None);
        assert_eq!(eval("principal.segment = 'BUILDING' or 'analyst' in principal.groups"), Some(true));
        assert_eq!(eval("principal.segment = 'BUILDING' and 'steward' in principal.groups"), Some(false));
    }

    #[test]
    fn mistakes_are_named() {
        let error = |text: &str| Condition::parse(text, &attrs()).unwrap_err();
        assert!(error("principal.country = 'FR'").contains("unknown principal attribute 'country'"));
        assert!(error("principal.region_key = 'EU'").contains("int64"));
        assert!(error("'analyst' in principal.segment").contains("only principal.groups"));
        assert!(error("'analyst' in principal.groups extra").contains("unexpected"));
        assert!(error("(true").contains("expected ')'"));
    }
}
