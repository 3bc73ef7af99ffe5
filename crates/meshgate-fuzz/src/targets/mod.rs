//! The fuzz targets, each `run(input bytes)`: fuzz/fuzz_targets/ wraps each in
//! libFuzzer's entry point, [`crate::smoke`] calls them directly. docs/robustness.md
//! says what each checks.

pub mod flight_command;
pub mod governed_sql;
pub mod mesh_yaml;
pub mod policy_expr;
pub mod prepared_handle;
pub mod put_parameters;
pub mod session_cookie;
pub mod ticket;

/// Every target by name.
pub const ALL: &[(&str, fn(&[u8]))] = &[
    ("flight_command", flight_command::run),
    ("governed_sql", governed_sql::run),
    ("mesh_yaml", mesh_yaml::run),
    ("policy_expr", policy_expr::run),
    ("prepared_handle", prepared_handle::run),
    ("put_parameters", put_parameters::run),
    ("session_cookie", session_cookie::run),
    ("ticket", ticket::run),
];

/// The target called `name`.
pub fn by_name(name: &str) -> Option<fn(&[u8])> {
    ALL.iter().find(|(target, _)| *target == name).map(|(_, run)| *run)
}
