//! Errors of the catalog crate.

use std::fmt;

/// One configuration mistake, with the path of the setting it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every mistake found in a configuration; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        writeln!(f, "{count} configuration error{}:", if count == 1 { "" } else { "s" })?;
        for error in &self.0 {
            writeln!(f, "  {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Why a product cannot serve queries; named after the product by [`ProductError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The files differ from the declared schema.
    SchemaDrift,
    /// The store could not be reached or the files could not be listed or read.
    Unavailable,
    /// The files are not valid for the product's format.
    Corrupt,
}

/// A failure reading a product, naming it. Carried inside DataFusion errors as
/// `DataFusionError::External` so the protocol layer can map it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("product {product} {}: {detail}", kind_text(.kind))]
pub struct ProductError {
    pub product: String,
    pub kind: ProblemKind,
    pub detail: String,
}

/// Why a pinned Delta version (`events@v=42`, `events@ts=…`) cannot be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PinError {
    /// The pin does not parse, or the product is not a Delta table.
    #[error("{0}")]
    Invalid(String),
    /// The table has no such version, or none at that time.
    #[error("{0}")]
    NotFound(String),
    /// The product cannot be read.
    #[error(transparent)]
    Product(#[from] ProductError),
}

fn kind_text(kind: &ProblemKind) -> &'static str {
    match kind {
        ProblemKind::SchemaDrift => "does not match its declared schema",
        ProblemKind::Unavailable => "is unavailable",
        ProblemKind::Corrupt => "has unreadable files",
    }
}

/// A failure of the server's own spill files (creating, writing or reading them back):
/// never a product's problem, whichever scan the error passes through on its way up.
/// The directory is for the server's log; the message sent to clients leaves it out.
#[derive(Debug, thiserror::Error)]
#[error("the server cannot {action} ({})", describe_io(source.as_ref()))]
pub struct SpillError {
    /// What failed: "create a spill file", "write a spill file", "read a spill file back".
    pub action: &'static str,
    /// Where spill files go.
    pub directory: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// The I/O error behind a spill failure as its kind ("permission denied", "entity not
/// found"): errors that carry paths (temporary files name theirs) are not quoted. A
/// failure with no kind (the disk manager's own size limit) is quoted as it says itself.
fn describe_io(error: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::Other if io.raw_os_error().is_none() => io.to_string(),
                kind => kind.to_string(),
            };
        }
        current = error.source();
    }
    "an error of its spill files".to_owned()
}
