//! Refuses statements nested too deeply to plan safely, before they are parsed.
//!
//! SQL's parser bounds nesting by parentheses and subqueries (DataFusion's
//! `sql_parser.recursion_limit`), but operator chains (`1+1+…`, `a OR b OR …`, `||`),
//! set operations, joins and chains of CTEs are parsed in loops into left-deep trees
//! that every later stage (planner, optimizer, verifier, execution, even dropping the
//! tree) walks recursively. Their depth is bounded here from the tokens alone, with no
//! recursion: within each parenthesised level, operators count until a sibling
//! starts (a comma, a clause keyword, a `WHEN`/`THEN`/`ELSE` of a `CASE`), and set
//! operations, joins and CTEs count for the whole level. The bound is the sum over
//! the levels open at any point. Wide statements (long IN lists, many select items,
//! thousands of `CASE` branches) stay cheap; only deep ones are refused.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::EngineError;

/// The deepest statement meshgate plans. Planning and execution run on threads with
/// [`PLANNING_STACK_BYTES`] of stack, which holds this depth in every shape tested
/// (tests/python/test_deep_queries.py) with a wide margin, in debug builds too.
pub const MAX_DEPTH: usize = 4_000;

/// The stack size meshgate's runtime threads need for [`MAX_DEPTH`].
pub const PLANNING_STACK_BYTES: usize = 256 * 1024 * 1024;

/// How deeply parentheses, subqueries and function calls may nest: DataFusion's
/// `sql_parser.recursion_limit`, left at its default.
pub const PARSER_RECURSION_LIMIT: usize = 50;

/// Operator classes from the loosest binding to the tightest: OR, AND, NOT,
/// comparisons (and IS, LIKE, IN, BETWEEN), `+ - ||`, `* / %`, everything else.
const CLASSES: usize = 7;
const OR: usize = 0;
const AND: usize = 1;
const NOT: usize = 2;
const COMPARISON: usize = 3;
const ADDITIVE: usize = 4;
const MULTIPLICATIVE: usize = 5;
const TIGHTEST: usize = 6;

#[derive(Debug, Default)]
struct Level {
    /// Operators of the current sibling expression, by class. An operator of one
    /// class ends the operands of the tighter classes before it: `a = 1 OR a = 2 OR …`
    /// nests once per OR, not once per operator.
    ops: [usize; CLASSES],
    /// Set operations, joins and CTEs: they nest across siblings.
    chain: usize,
    /// This level is a `CASE … END`.
    case: bool,
    /// In a FROM list, where commas are cross joins.
    from: bool,
}

impl Level {
    fn depth(&self) -> usize {
        self.ops.iter().sum::<usize>() + self.chain + 1
    }

    fn operator(&mut self, class: usize) {
        self.ops[class] += 1;
        for tighter in &mut self.ops[class + 1..] {
            *tighter = 0;
        }
    }

    fn sibling(&mut self) {
        self.ops = [0; CLASSES];
    }
}

/// How much planning work chains may cost together. DataFusion plans a chain with
/// cost quadratic in its length (each level asks the chain below it for its type), so
/// the cost of a statement is the sum of the depths at which its operators sit, and
/// this is that of one chain of [`MAX_DEPTH`]: several long chains side by side are
/// refused like one too deep. It bounds the longest uninterruptible planning step.
pub const MAX_COST: usize = MAX_DEPTH * MAX_DEPTH / 2;

/// A bound on how deeply a statement's syntax tree nests, and its planning cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub depth: usize,
    pub cost: usize,
}

/// [`Shape`] of `sql`, from its tokens; `None` when it does not tokenize.
pub fn statement_shape(sql: &str) -> Option<Shape> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql).tokenize().ok()?;
    let mut stack = vec![Level::default()];
    // The sum of the depths of the levels below the top one.
    let mut below = 0usize;
    let mut deepest = 0usize;
    let mut cost = 0usize;
    let mut operator = false;
    let mut significant = tokens.iter().filter(|token| !matches!(token, Token::Whitespace(_))).peekable();
    while let Some(token) = significant.next() {
        let next_is_paren = matches!(significant.peek(), Some(Token::LParen));
        match token {
            Token::LParen | Token::LBracket | Token::LBrace => {
                below += stack.last().map_or(0, Level::depth);
                stack.push(Level::default());
            }
            Token::RParen | Token::RBracket | Token::RBrace => pop(&mut stack, &mut below),
            Token::Comma => {
                if let Some(top) = stack.last_mut() {
                    top.sibling();
                    if top.from {
                        top.chain += 1;
                    }
                }
            }
            Token::Word(word) => {
                let Some(top) = stack.last_mut() else { continue };
                match word.keyword {
                    Keyword::CASE => {
                        below += top.depth();
                        stack.push(Level { case: true, ..Level::default() });
                    }
                    Keyword::END if top.case => pop(&mut stack, &mut below),
                    Keyword::WHEN | Keyword::THEN | Keyword::ELSE if top.case => top.sibling(),
                    Keyword::UNION | Keyword::INTERSECT | Keyword::EXCEPT | Keyword::MINUS | Keyword::JOIN => {
                        top.chain += 1;
                        top.sibling();
                        top.from = false;
                    }
                    Keyword::FROM => {
                        top.sibling();
                        top.from = true;
                    }
                    Keyword::SELECT
                    | Keyword::WHERE
                    | Keyword::GROUP
                    | Keyword::HAVING
                    | Keyword::ORDER
                    | Keyword::LIMIT
                    | Keyword::OFFSET
                    | Keyword::QUALIFY
                    | Keyword::WINDOW
                    | Keyword::ON
                    | Keyword::USING => {
                        top.sibling();
                        top.from = false;
                    }
                    // `name AS (…)`: a CTE (or a named window), which later ones may read.
                    Keyword::AS if next_is_paren => top.chain += 1,
                    Keyword::OR | Keyword::XOR => top.operator(OR),
                    Keyword::AND => top.operator(AND),
                    Keyword::NOT => top.operator(NOT),
                    Keyword::IS
                    | Keyword::LIKE
                    | Keyword::ILIKE
                    | Keyword::SIMILAR
                    | Keyword::RLIKE
                    | Keyword::REGEXP
                    | Keyword::BETWEEN
                    | Keyword::IN
                    | Keyword::OVERLAPS => top.operator(COMPARISON),
                    Keyword::DIV => top.operator(MULTIPLICATIVE),
                    Keyword::AT | Keyword::COLLATE => top.operator(TIGHTEST),
                    _ => {}
                }
            }
            Token::Number(..)
            | Token::Char(_)
            | Token::Period
            | Token::SemiColon
            | Token::Colon
            | Token::Placeholder(_)
            | Token::EOF => {}
            token if is_literal(token) => {}
            // Every other token is an operator of some kind (+, ||, =, ::, ->, …).
            token => {
                if let Some(top) = stack.last_mut() {
                    top.operator(class_of(token));
                }
                operator = true;
            }
        }
        let depth = below + stack.last().map_or(0, Level::depth);
        deepest = deepest.max(depth);
        if std::mem::take(&mut operator) {
            cost = cost.saturating_add(depth);
        }
    }
    Some(Shape { depth: deepest, cost })
}

fn pop(stack: &mut Vec<Level>, below: &mut usize) {
    if stack.len() > 1 {
        stack.pop();
        *below = below.saturating_sub(stack.last().map_or(0, Level::depth));
    }
}

fn class_of(token: &Token) -> usize {
    match token {
        Token::Eq
        | Token::DoubleEq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq
        | Token::Spaceship
        | Token::Tilde
        | Token::TildeAsterisk
        | Token::ExclamationMarkTilde
        | Token::ExclamationMarkTildeAsterisk
        | Token::DoubleTilde
        | Token::DoubleTildeAsterisk
        | Token::ExclamationMarkDoubleTilde
        | Token::ExclamationMarkDoubleTildeAsterisk => COMPARISON,
        Token::Plus | Token::Minus | Token::StringConcat => ADDITIVE,
        Token::Mul | Token::Div | Token::DuckIntDiv | Token::Mod => MULTIPLICATIVE,
        _ => TIGHTEST,
    }
}

fn is_literal(token: &Token) -> bool {
    matches!(
        token,
        Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::TripleSingleQuotedString(_)
            | Token::TripleDoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::TripleSingleQuotedByteStringLiteral(_)
            | Token::TripleDoubleQuotedByteStringLiteral(_)
            | Token::SingleQuotedRawStringLiteral(_)
            | Token::DoubleQuotedRawStringLiteral(_)
            | Token::TripleSingleQuotedRawStringLiteral(_)
            | Token::TripleDoubleQuotedRawStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::QuoteDelimitedStringLiteral(_)
            | Token::NationalQuoteDelimitedStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
    )
}

/// Refuses `sql` when it may nest deeper than [`MAX_DEPTH`].
pub fn check_complexity(sql: &str) -> Result<(), EngineError> {
    let Some(shape) = statement_shape(sql) else { return Ok(()) };
    if shape.depth > MAX_DEPTH {
        return Err(EngineError::TooComplex(format!(
            "the statement nests about {} levels deep (operator chains, set operations, joins or CTEs); \
             meshgate plans at most {MAX_DEPTH}. Split long chains, for example `x IN (…)` instead of \
             many ORs, or several smaller queries",
            shape.depth
        )));
    }
    if shape.cost > MAX_COST {
        return Err(EngineError::TooComplex(format!(
            "its operator chains are too long together (as much planning as one chain of about {} \
             operators; meshgate plans at most one of {MAX_DEPTH}). Split the statement into smaller ones",
            ((shape.cost as f64) * 2.0).sqrt() as usize
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(sql: &str) -> usize {
        statement_shape(sql).unwrap().depth
    }

    #[test]
    fn chains_count_and_lists_do_not() {
        let chain = format!("SELECT {}", vec!["1"; 5000].join(" + "));
        assert!(bound(&chain) >= 4999);
        let ors =
            format!("SELECT * FROM t WHERE {}", (0..3000).map(|i| format!("a = {i}")).collect::<Vec<_>>().join(" OR "));
        assert!((2999..=3010).contains(&bound(&ors)), "{}", bound(&ors));
        let ands = format!(
            "SELECT * FROM t WHERE {}",
            (0..3000).map(|i| format!("a + {i} > 0")).collect::<Vec<_>>().join(" AND ")
        );
        assert!((2999..=3010).contains(&bound(&ands)), "{}", bound(&ands));
        let mixed = format!("SELECT {}", (0..3000).map(|i| format!("{i} * 2")).collect::<Vec<_>>().join(" + "));
        assert!(bound(&mixed) >= 3000);
        let products = format!("SELECT {}", vec!["2"; 3000].join(" * "));
        assert!(bound(&products) >= 2999);
        let list = format!(
            "SELECT * FROM t WHERE a IN ({})",
            (0..100_000).map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
        );
        assert!(bound(&list) < 10);
        let case = format!(
            "SELECT CASE {} ELSE 0 END FROM t",
            (0..10_000).map(|i| format!("WHEN a = {i} THEN {i}")).collect::<Vec<_>>().join(" ")
        );
        assert!(bound(&case) < 10);
        let wide = format!("SELECT {} FROM t", (0..10_000).map(|i| format!("a + {i}")).collect::<Vec<_>>().join(", "));
        assert!(bound(&wide) < 10);
    }

    #[test]
    fn set_operations_joins_and_ctes_count() {
        let unions = vec!["SELECT 1, 2"; 3000].join(" UNION ALL ");
        assert!(bound(&unions) >= 2999);
        let joins =
            format!("SELECT * FROM t0 {}", (1..3000).map(|i| format!(" JOIN t{i} ON a = b")).collect::<String>());
        assert!(bound(&joins) >= 2999);
        let commas = format!("SELECT * FROM {}", (0..3000).map(|i| format!("t{i}")).collect::<Vec<_>>().join(", "));
        assert!(bound(&commas) >= 2999);
        let ctes = format!(
            "WITH c0 AS (SELECT 1 AS x), {} SELECT * FROM c2999",
            (1..3000).map(|i| format!("c{i} AS (SELECT x FROM c{})", i - 1)).collect::<Vec<_>>().join(", ")
        );
        assert!(bound(&ctes) >= 2999);
    }

    #[test]
    fn nesting_adds_up_across_levels() {
        let nested = format!("SELECT {}1{}", "(1 + ".repeat(40), ")".repeat(40));
        assert!(bound(&nested) >= 80);
        assert!(check_complexity("SELECT a + b FROM t WHERE c = 1 AND d = 2").is_ok());
        let deep = format!("SELECT {}", vec!["'a'"; MAX_DEPTH + 10].join(" || "));
        assert!(matches!(check_complexity(&deep), Err(EngineError::TooComplex(_))));
        let chain = |n: usize| vec!["1"; n].join(" + ");
        assert!(check_complexity(&format!("SELECT {}", chain(MAX_DEPTH - 10))).is_ok());
        let wide = format!("SELECT {}, {}, {}", chain(3000), chain(3000), chain(3000));
        let refused = check_complexity(&wide).unwrap_err().to_string();
        assert!(refused.contains("too long together"), "{refused}");
        assert!(check_complexity(&format!("SELECT {}, {}", chain(2000), chain(2000))).is_ok());
    }
}
