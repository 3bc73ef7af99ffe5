//! A blind mutational driver for the fuzz targets: the test suite's smoke pass.
//!
//! libFuzzer needs the code it fuzzes built with coverage instrumentation, a second
//! build of the whole stack that does not fit in the test suite's time on a small
//! machine. This driver runs the same targets from the ordinary test build: it starts
//! from the seed corpus, mutates inputs at random (bit and byte changes, inserted and
//! deleted ranges, splices of two inputs, SQL and YAML tokens) and keeps some of its
//! mutants to walk further from the seeds. Without coverage feedback it finds less
//! than libFuzzer in the same time; what it catches is a target that no longer builds
//! or crashes quickly. As under libFuzzer, a panic anywhere in the process is a crash:
//! the input is written to the artifacts folder and the process aborts; an input
//! that runs longer than the time limit is written and the process exits with 1.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Tokens spliced into inputs: SQL and YAML syntax the targets' parsers branch on.
const TOKENS: &[&[u8]] = &[
    b"SELECT ",
    b" FROM ",
    b" WHERE ",
    b" JOIN ",
    b" ON ",
    b" UNION ALL ",
    b" GROUP BY ",
    b" ORDER BY ",
    b" LIMIT ",
    b"(",
    b")",
    b"'",
    b"\"",
    b"--",
    b";",
    b" OR ",
    b" AND ",
    b" NOT ",
    b"NULL",
    b"1/0",
    b"*",
    b"::",
    b" AS ",
    b"CAST(",
    b"WITH ",
    b"EXPLAIN ",
    b"$1",
    b"?",
    b": ",
    b"\n- ",
    b"\n  ",
    b"{",
    b"}",
    b"[",
    b"]",
    b"&a ",
    b"*a",
    b"!!",
    b"~",
    b"0x",
    b"-9223372036854775808",
    b"1e309",
    b"\0",
    b"\xff\xfe",
];

/// Integers at the edges of what lengths and counts mean.
const EDGES: &[u64] = &[0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fff_ffff, 0xffff_ffff, u64::MAX, 1 << 31, 4096];

/// The most inputs kept in the corpus.
const MAX_CORPUS: usize = 4096;

/// What a run did.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub executions: u64,
    pub corpus: usize,
    pub elapsed: Duration,
}

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Options {
    pub budget: Duration,
    /// One input may run this long before it counts as a hang.
    pub timeout: Duration,
    pub max_len: usize,
    pub artifacts: PathBuf,
    /// The random generator's seed: the same seed and corpus give the same inputs.
    pub seed: u64,
}

/// The input being run, for the panic hook and the watchdog.
static CURRENT: Mutex<Vec<u8>> = Mutex::new(Vec::new());
/// When the current input started, in milliseconds since the run began (0: none).
static STARTED_MS: AtomicU64 = AtomicU64::new(0);

/// Runs `target` on mutants of `seeds` (every seed first) until the budget is spent.
pub fn run(target: fn(&[u8]), seeds: Vec<Vec<u8>>, options: &Options) -> std::io::Result<Report> {
    std::fs::create_dir_all(&options.artifacts)?;
    install_crash_hook(options.artifacts.clone());
    let began = Instant::now();
    spawn_watchdog(began, options.timeout, options.artifacts.clone());
    let mut corpus: Vec<Vec<u8>> = seeds
        .into_iter()
        .map(|mut seed| {
            seed.truncate(options.max_len);
            seed
        })
        .collect();
    let mut executions = 0u64;
    for seed in &corpus {
        execute(target, seed, began);
        executions += 1;
    }
    let mut rng = Rng(options.seed | 1);
    while began.elapsed() < options.budget {
        let input = mutant(&corpus, &mut rng, options.max_len);
        execute(target, &input, began);
        executions += 1;
        if rng.below(16) == 0 {
            if corpus.len() < MAX_CORPUS {
                corpus.push(input);
            } else {
                let slot = rng.below(corpus.len());
                corpus[slot] = input;
            }
        }
    }
    Ok(Report { executions, corpus: corpus.len(), elapsed: began.elapsed() })
}

fn execute(target: fn(&[u8]), input: &[u8], began: Instant) {
    set_current(input);
    STARTED_MS.store(began.elapsed().as_millis().max(1) as u64, Ordering::SeqCst);
    target(input);
    STARTED_MS.store(0, Ordering::SeqCst);
}

fn set_current(input: &[u8]) {
    let mut current = CURRENT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    current.clear();
    current.extend_from_slice(input);
}

/// Writes the current input as `<kind>-<hash>` in `artifacts`; returns its path.
fn save_current(artifacts: &Path, kind: &str) -> PathBuf {
    let input = CURRENT.lock().map(|input| input.clone()).unwrap_or_default();
    let path = artifacts.join(format!("{kind}-{:016x}", fnv1a(&input)));
    if let Err(error) = std::fs::write(&path, &input) {
        eprintln!("smoke: cannot write {}: {error}", path.display());
    }
    path
}

fn install_crash_hook(artifacts: PathBuf) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        let path = save_current(&artifacts, "crash");
        eprintln!("smoke: a panic while running the input saved as {}", path.display());
        std::process::abort();
    }));
}

fn spawn_watchdog(began: Instant, timeout: Duration, artifacts: PathBuf) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let started = STARTED_MS.load(Ordering::SeqCst);
            if started == 0 {
                continue;
            }
            let running = began.elapsed().saturating_sub(Duration::from_millis(started));
            if running > timeout {
                let path = save_current(&artifacts, "timeout");
                eprintln!("smoke: an input ran longer than {timeout:?}; saved as {}", path.display());
                std::process::exit(1);
            }
        }
    });
}

/// A new input from the corpus: one to four mutations of one of its inputs.
fn mutant(corpus: &[Vec<u8>], rng: &mut Rng, max_len: usize) -> Vec<u8> {
    let mut input = if corpus.is_empty() || rng.below(10) == 0 {
        (0..1 + rng.below(64)).map(|_| rng.byte()).collect()
    } else {
        corpus[rng.below(corpus.len())].clone()
    };
    for _ in 0..1 + rng.below(4) {
        mutate(&mut input, corpus, rng);
    }
    input.truncate(max_len);
    input
}

fn mutate(input: &mut Vec<u8>, corpus: &[Vec<u8>], rng: &mut Rng) {
    let len = input.len();
    match rng.below(8) {
        0 if len > 0 => input[rng.below(len)] ^= 1 << rng.below(8),
        1 if len > 0 => input[rng.below(len)] = [0, 1, 0x7f, 0x80, 0xff, rng.byte()][rng.below(6)],
        2 => {
            let at = rng.below(len + 1);
            let bytes: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.byte()).collect();
            input.splice(at..at, bytes);
        }
        3 if len > 0 => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(16)).min(len);
            input.drain(at..end);
        }
        4 if len > 0 => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(32)).min(len);
            let copy = input[at..end].to_vec();
            let to = rng.below(len + 1);
            input.splice(to..to, copy);
        }
        5 if !corpus.is_empty() => {
            let other = &corpus[rng.below(corpus.len())];
            let keep = rng.below(len + 1);
            input.truncate(keep);
            input.extend_from_slice(&other[rng.below(other.len() + 1)..]);
        }
        6 => {
            let value = EDGES[rng.below(EDGES.len())];
            let bytes =
                if rng.below(2) == 0 { (value as u32).to_le_bytes().to_vec() } else { value.to_le_bytes().to_vec() };
            let at = rng.below(len + 1);
            let end = (at + bytes.len()).min(len);
            input.splice(at..end, bytes);
        }
        _ => {
            let at = rng.below(len + 1);
            input.splice(at..at, TOKENS[rng.below(TOKENS.len())].iter().copied());
        }
    }
}

/// xorshift64*: small, fast, and the same everywhere for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_stay_within_the_length_and_vary() {
        let corpus = vec![b"SELECT 1".to_vec(), vec![0; 40]];
        let mut rng = Rng(7);
        let mutants: Vec<Vec<u8>> = (0..500).map(|_| mutant(&corpus, &mut rng, 32)).collect();
        assert!(mutants.iter().all(|m| m.len() <= 32));
        let distinct: std::collections::BTreeSet<_> = mutants.iter().collect();
        assert!(distinct.len() > 400, "only {} distinct mutants of 500", distinct.len());
    }

    #[test]
    fn the_same_seed_gives_the_same_inputs() {
        let corpus = vec![b"a: 1\n".to_vec()];
        let a: Vec<_> = {
            let mut rng = Rng(3);
            (0..50).map(|_| mutant(&corpus, &mut rng, 64)).collect()
        };
        let b: Vec<_> = {
            let mut rng = Rng(3);
            (0..50).map(|_| mutant(&corpus, &mut rng, 64)).collect()
        };
        assert_eq!(a, b);
    }
}
