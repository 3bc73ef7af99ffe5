//! Ready-to-copy Python that reads a product over Flight SQL: ADBC, polars and
//! pandas, with the Flight URI the server advertises and the caller's user name (the
//! password is read from `MESHGATE_PASSWORD`, never written into the snippet).

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Snippet {
    pub label: &'static str,
    pub code: String,
}

/// Where the snippets connect when the server's Flight URI is not known.
const UNKNOWN_URI: &str = "grpc://MESHGATE_HOST:50051";

/// The snippets reading `domain.name` as `user`.
pub fn snippets(flight_uri: Option<&str>, user: &str, domain: &str, name: &str) -> Vec<Snippet> {
    let uri = py_str(flight_uri.unwrap_or(UNKNOWN_URI));
    let sql = py_str(&format!("SELECT * FROM {}.{}", ident(domain), ident(name)));
    let user = py_str(user);
    let connect = format!(
        "flightsql.connect(\n    {uri},\n    db_kwargs={{\"username\": {user}, \"password\": os.environ[\"MESHGATE_PASSWORD\"]}},\n    autocommit=True,\n)"
    );
    vec![
        Snippet {
            label: "ADBC",
            code: format!(
                "import os\n\nimport adbc_driver_flightsql.dbapi as flightsql\n\nwith {connect} as conn, conn.cursor() as cur:\n    cur.execute({sql})\n    table = cur.fetch_arrow_table()\nprint(table)\n"
            ),
        },
        Snippet {
            label: "polars",
            code: format!(
                "import os\n\nimport adbc_driver_flightsql.dbapi as flightsql\nimport polars as pl\n\nwith {connect} as conn:\n    df = pl.read_database({sql}, connection=conn)\nprint(df)\n"
            ),
        },
        Snippet {
            label: "pandas",
            code: format!(
                "import os\n\nimport adbc_driver_flightsql.dbapi as flightsql\nimport pandas as pd\n\nwith {connect} as conn:\n    df = pd.read_sql({sql}, conn)\nprint(df)\n"
            ),
        },
    ]
}

/// A SQL identifier, quoted unless it is a plain lower-case one.
fn ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|first| first.is_ascii_lowercase() || first == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain { name.to_owned() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

/// A Python string literal.
fn py_str(text: &str) -> String {
    let mut literal = String::with_capacity(text.len() + 2);
    literal.push('"');
    for c in text.chars() {
        match c {
            '\\' => literal.push_str("\\\\"),
            '"' => literal.push_str("\\\""),
            '\n' => literal.push_str("\\n"),
            c if c.is_control() => literal.push_str(&format!("\\u{:04x}", c as u32)),
            c => literal.push(c),
        }
    }
    literal.push('"');
    literal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_only_when_needed() {
        assert_eq!(ident("orders"), "orders");
        assert_eq!(ident("Orders"), "\"Orders\"");
        assert_eq!(ident("odd\"name"), "\"odd\"\"name\"");
        assert_eq!(py_str("SELECT * FROM \"A\""), "\"SELECT * FROM \\\"A\\\"\"");
    }

    #[test]
    fn snippets_name_the_uri_the_user_and_the_product() {
        let all = snippets(Some("grpc://127.0.0.1:4000"), "ana", "sales", "orders");
        assert_eq!(all.iter().map(|s| s.label).collect::<Vec<_>>(), ["ADBC", "polars", "pandas"]);
        for snippet in &all {
            assert!(snippet.code.contains("\"grpc://127.0.0.1:4000\""), "{}", snippet.code);
            assert!(snippet.code.contains("\"SELECT * FROM sales.orders\""), "{}", snippet.code);
            assert!(snippet.code.contains("{\"username\": \"ana\", \"password\": os.environ[\"MESHGATE_PASSWORD\"]}"));
        }
    }
}
