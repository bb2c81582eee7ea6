//! The one error type of the explicit API.

use std::fmt;
use std::time::Duration;

/// What went wrong, broadly. Match on it with a wildcard arm: kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The backend could not be reached, or dropped the connection.
    Connection,
    /// The backend did not answer within its time budget.
    Timeout,
    /// The circuit breaker is open: the backend failed repeatedly and is
    /// skipped until its cool-down ends.
    Unavailable,
    /// A value could not be encoded.
    Serialization,
    /// A stored value could not be decoded (corrupt, foreign or of an older schema).
    Deserialization,
    /// An argument was rejected before anything was sent: a bad namespace, URL,
    /// duration or configuration.
    InvalidInput,
    /// The cache was already initialised.
    AlreadyInitialized,
    /// The backend answered with an error of its own.
    Backend,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connection => "connection error",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Unavailable => "backend unavailable (circuit breaker open)",
            ErrorKind::Serialization => "serialization error",
            ErrorKind::Deserialization => "deserialization error",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::AlreadyInitialized => "already initialised",
            ErrorKind::Backend => "backend error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error of every fallible memocache call.
///
/// Cached functions never see it: for them a failing backend is a cache miss.
/// Its `Display` and `Debug` never contain passwords or key secrets.
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Source>,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a message saying what happened.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    pub(crate) fn timeout(budget: Duration) -> Self {
        Error::new(
            ErrorKind::Timeout,
            format!("no answer within the {budget:?} budget"),
        )
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The backend could not be reached.
    pub fn is_connection(&self) -> bool {
        self.kind == ErrorKind::Connection
    }

    /// The backend did not answer in time.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// The circuit breaker skipped the backend.
    pub fn is_unavailable(&self) -> bool {
        self.kind == ErrorKind::Unavailable
    }

    /// A value could not be encoded.
    pub fn is_serialization(&self) -> bool {
        self.kind == ErrorKind::Serialization
    }

    /// A stored value could not be decoded.
    pub fn is_deserialization(&self) -> bool {
        self.kind == ErrorKind::Deserialization
    }

    /// An argument or setting was rejected.
    pub fn is_invalid_input(&self) -> bool {
        self.kind == ErrorKind::InvalidInput
    }

    /// Whether the error says the backend is unhealthy (as opposed to bad input
    /// or a bad value): these count towards the circuit breaker.
    pub fn is_backend_failure(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Connection | ErrorKind::Timeout | ErrorKind::Backend
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "memocache: {}: {}", self.kind, self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(feature = "redis")]
impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
            ErrorKind::Connection
        } else {
            ErrorKind::Backend
        };
        // redis-rs errors name the command and the server's reply, never the
        // connection URL, so they are safe to show.
        Error::new(kind, format!("redis: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_and_message() {
        let e = Error::invalid("namespace `a:b` contains `:`");
        assert_eq!(
            e.to_string(),
            "memocache: invalid input: namespace `a:b` contains `:`"
        );
        assert!(e.is_invalid_input());
        assert!(!e.is_backend_failure());
    }

    #[test]
    fn timeouts_count_as_backend_failures() {
        let e = Error::timeout(Duration::from_millis(50));
        assert!(e.is_timeout() && e.is_backend_failure());
        assert!(e.to_string().contains("50ms"));
    }
}
