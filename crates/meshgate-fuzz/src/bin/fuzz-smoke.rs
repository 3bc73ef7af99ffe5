//! Runs one fuzz target with the blind mutator ([`meshgate_fuzz::smoke`]) for a set
//! time: the test suite's smoke pass (scripts/fuzz-smoke.sh runs every target).
//!
//!     fuzz-smoke TARGET SECONDS ARTIFACTS_DIR [CORPUS_DIR ...]
//!
//! Every file in the corpus folders is a seed. Prints the executions; a crashing or
//! hanging input is saved in ARTIFACTS_DIR and the process fails.

#![allow(clippy::print_stdout, reason = "a command-line tool reporting its run")]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use meshgate_fuzz::smoke::{self, Options};
use meshgate_fuzz::targets;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, seconds, artifacts, corpora @ ..] = args.as_slice() else {
        eprintln!("usage: fuzz-smoke TARGET SECONDS ARTIFACTS_DIR [CORPUS_DIR ...]");
        return ExitCode::from(2);
    };
    let Some(run) = targets::by_name(target) else {
        let names: Vec<&str> = targets::ALL.iter().map(|(name, _)| *name).collect();
        eprintln!("fuzz-smoke: no target {target:?}; the targets: {}", names.join(", "));
        return ExitCode::from(2);
    };
    let Ok(seconds) = seconds.parse::<u64>() else {
        eprintln!("fuzz-smoke: SECONDS must be a whole number, not {seconds:?}");
        return ExitCode::from(2);
    };
    let mut seeds = Vec::new();
    for folder in corpora {
        let entries = match std::fs::read_dir(folder) {
            Ok(entries) => entries,
            Err(error) => {
                eprintln!("fuzz-smoke: cannot read the corpus folder {folder}: {error}");
                return ExitCode::from(2);
            }
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|entry| entry.ok().map(|entry| entry.path())).collect();
        paths.sort();
        seeds.extend(paths.iter().filter(|path| path.is_file()).filter_map(|path| std::fs::read(path).ok()));
    }
    let options = Options {
        budget: Duration::from_secs(seconds),
        timeout: Duration::from_secs(30),
        max_len: 65_536,
        artifacts: PathBuf::from(artifacts),
        seed: 0x6d65_7368_6761_7465,
    };
    let seed_count = seeds.len();
    match smoke::run(run, seeds, &options) {
        Ok(report) => {
            let seconds = report.elapsed.as_secs_f64();
            println!(
                "{target}: {} executions in {seconds:.0} s ({:.0}/s) from {seed_count} seeds, no crash",
                report.executions,
                report.executions as f64 / seconds.max(0.001)
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("fuzz-smoke: cannot write to {artifacts}: {error}");
            ExitCode::FAILURE
        }
    }
}
