//! Where a key is built: names, argument digests and the key layout.
//!
//! An entry's key reads, left to right:
//!
//! ```text
//! {prefix}:{namespace}:{generation}:{function}[:v{version}]:{digest}
//! memocache:users:1795000000000000:app::users::load:v2:3f1c...e9 (32 hex digits)
//! ```
//!
//! - `prefix` and `namespace` are [`Name`]s: ASCII letters, digits, `_`, `.`
//!   and `-` only, so neither can hold the `:` separator or a glob character,
//!   and a pattern built from them (`prefix:users:*`) never matches `users2`.
//! - `generation` is the namespace's current generation (see the `namespace`
//!   module); flushing a namespace moves it on, which makes every older key
//!   unreachable at once.
//! - `function` is the module path and name given by the macro at compile
//!   time (or a handle's [`Name`]); it never comes from a caller.
//! - `digest` is the keyed BLAKE3 hash, cut to 128 bits, of the canonical
//!   encoding of the key arguments ([`canonical`]): nothing a caller passes
//!   appears in a key, so no argument can forge a separator, and keys stay
//!   bounded whatever the size of the arguments. A 128-bit cryptographic hash
//!   gives no collision an attacker can find (2^64 work for a generic one).

pub mod canonical;
pub(crate) mod int_arg;
mod recent;

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, Result};

/// The longest [`Name`]: keeps keys short and bounded.
pub const MAX_NAME_LEN: usize = 64;

/// A validated name: a namespace, a key prefix or a cache handle's name.
///
/// One to [`MAX_NAME_LEN`] ASCII letters, digits, `_`, `.` or `-`.
///
/// A clone writes no shared memory for a name from a `&'static str` (what
/// every cached function's namespace is): each call clones its namespace
/// into its key, and a reference count that every thread's calls move
/// would pass its cache line between them.
#[derive(Clone)]
pub struct Name(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Name {}

impl std::hash::Hash for Name {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Name {
    /// Validates `name`, saying which character or rule it breaks.
    ///
    /// ```
    /// use memocache_runtime::key::Name;
    /// assert!(Name::new("users").is_ok());
    /// let err = Name::new("users:*").unwrap_err();
    /// assert!(err.to_string().contains("`:`"));
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an empty
    /// or over-long name, or one with a character outside `[A-Za-z0-9_.-]`.
    pub fn new(name: &str) -> Result<Self> {
        Self::check(name, "name")?;
        Ok(Name(Repr::Shared(name.into())))
    }

    /// [`new`](Self::new) for a name that lives as long as the program,
    /// which is then not copied.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn new_static(name: &'static str) -> Result<Self> {
        Self::check(name, "name")?;
        Ok(Name(Repr::Static(name)))
    }

    pub(crate) fn check(name: &str, what: &str) -> Result<()> {
        if name.is_empty() {
            return Err(Error::invalid(format!("the {what} is empty")));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(Error::invalid(format!(
                "the {what} `{}...` is {} bytes long; the limit is {MAX_NAME_LEN}",
                name.chars().take(16).collect::<String>(),
                name.len()
            )));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(Error::invalid(format!(
                "the {what} `{}` contains `{}`; use only ASCII letters, digits, `_`, `.` and `-`",
                name.escape_debug(),
                bad.escape_debug()
            )));
        }
        Ok(())
    }

    /// Whether the name was made from a `&'static str` ([`Name::new_static`]).
    pub(crate) fn is_static(&self) -> bool {
        matches!(self.0, Repr::Static(_))
    }

    /// The name as a string.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(name) => name,
            Repr::Shared(name) => name,
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The 128-bit digest of a function's key arguments.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 16]);

impl Digest {
    /// The raw bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses 32 lowercase hexadecimal digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != 32 {
            return None;
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 16];
        for (i, pair) in hex.chunks(2).enumerate() {
            out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Some(Digest(out))
    }
}

impl crate::store::Weigh for Digest {
    fn weight(&self) -> usize {
        16
    }
}

impl Digest {
    /// The digest in lowercase hexadecimal, without formatting machinery:
    /// this is on every call's path.
    #[inline]
    pub fn push_hex(&self, out: &mut String) {
        // Both digits of a byte at once: one load per byte (every call's
        // key is written so).
        const PAIRS: [[u8; 2]; 256] = {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let mut pairs = [[0u8; 2]; 256];
            let mut b = 0;
            while b < 256 {
                pairs[b] = [HEX[b >> 4], HEX[b & 0xf]];
                b += 1;
            }
            pairs
        };
        let mut hex = [0u8; 32];
        for (pair, b) in hex.chunks_exact_mut(2).zip(self.0) {
            pair.copy_from_slice(&PAIRS[usize::from(b)]);
        }
        out.push_str(ascii(&hex));
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hex = String::with_capacity(32);
        self.push_hex(&mut hex);
        f.write_str(&hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// Hashes canonical argument encodings with keyed BLAKE3.
///
/// The BLAKE3 key is derived from the deployment secret (or from nothing):
/// with a secret, nobody without it can predict the key of given arguments.
/// Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct KeyHasher {
    key: [u8; 32],
    secret_set: bool,
    /// Names this hasher's key among the digests a thread remembers
    /// (`recent`); never 0.
    serial: u64,
}

/// The serial number of the next hasher.
static NEXT_HASHER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

const DIGEST_CONTEXT: &str = "memocache 2026-11 argument digest v1";

impl KeyHasher {
    /// A hasher keyed by `secret` (empty: no secret).
    pub fn new(secret: &[u8]) -> Self {
        KeyHasher {
            key: blake3::derive_key(DIGEST_CONTEXT, secret),
            secret_set: !secret.is_empty(),
            serial: NEXT_HASHER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The digest of already canonical bytes. Short ones are looked up
    /// first among the digests this thread made lately (see `recent`).
    #[inline]
    pub fn digest_bytes(&self, canonical: &[u8]) -> Digest {
        if let Some(digest) = recent::get(self.serial, canonical) {
            return Digest(digest);
        }
        let hash = blake3::keyed_hash(&self.key, canonical);
        let mut out = [0u8; 16];
        out.copy_from_slice(&hash.as_bytes()[..16]);
        recent::put(self.serial, canonical, out);
        Digest(out)
    }

    /// The digest of `args`, encoded canonically.
    ///
    /// # Errors
    /// When `args`' `Serialize` impl fails.
    pub fn digest<T: Serialize + ?Sized>(&self, args: &T) -> Result<Digest> {
        Ok(self.digest_bytes(&canonical::to_canonical_bytes(args)?))
    }
}

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher::new(b"")
    }
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyHasher")
            .field(
                "secret",
                &if self.secret_set {
                    "<redacted>"
                } else {
                    "<none>"
                },
            )
            .finish()
    }
}

/// Everything of an entry's key but the generation, which is read at call time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntryKey {
    /// The entry's namespace.
    pub namespace: Name,
    /// `function[:v{version}]:{digest}`: the part after the generation.
    pub tail: String,
    /// The digest of the arguments (the end of `tail`).
    pub digest: Digest,
}

impl EntryKey {
    /// The key of `function` (a module path and name, or a handle's name),
    /// at `version`, for arguments whose digest is `digest`.
    pub fn new(namespace: Name, function: &str, version: Option<u32>, digest: Digest) -> Self {
        let parts = Tail::new(function, version, digest);
        let mut tail = String::with_capacity(parts.len());
        parts.push_to(&mut tail);
        EntryKey {
            namespace,
            tail,
            digest,
        }
    }

    /// The key whose tail is `tail` (as found in a full key), if it ends
    /// with a digest.
    pub fn from_tail(namespace: Name, tail: &str) -> Option<Self> {
        let digest = Digest::from_hex(tail.get(tail.len().checked_sub(32)?..)?)?;
        Some(EntryKey {
            namespace,
            tail: tail.to_owned(),
            digest,
        })
    }

    /// The full key under `generation`.
    pub fn render(&self, prefix: &Name, generation: u64) -> String {
        self.render_at(prefix, &Decimal::of(generation))
    }

    /// [`render`](Self::render), with the generation written already (the
    /// manager keeps the digits of the generation it last saw).
    pub(crate) fn render_at(&self, prefix: &Name, generation: &Decimal) -> String {
        // Sized once and written piece by piece: this runs on every
        // backend read, where `format!` would regrow the string.
        let (prefix, namespace) = (prefix.as_str(), self.namespace.as_str());
        let generation = generation.as_str();
        let len = prefix.len() + namespace.len() + generation.len() + self.tail.len() + 3;
        let mut key = String::with_capacity(len);
        for part in [prefix, ":", namespace, ":", generation, ":", &self.tail] {
            key.push_str(part);
        }
        key
    }
}

/// What an entry's full key is rendered from: an [`EntryKey`], or the
/// borrowed [`KeyParts`] of one.
pub(crate) trait RenderKey {
    /// The entry's namespace.
    fn namespace(&self) -> &Name;
    /// The full key under the generation written `generation`.
    fn render_at(&self, prefix: &Name, generation: &Decimal) -> String;
}

impl RenderKey for EntryKey {
    fn namespace(&self) -> &Name {
        &self.namespace
    }
    fn render_at(&self, prefix: &Name, generation: &Decimal) -> String {
        EntryKey::render_at(self, prefix, generation)
    }
}

/// The pieces of an [`EntryKey`], borrowed: what a cached call reads with.
/// Its full key is written in one string, where an `EntryKey` first writes
/// its tail in a string of its own (one allocation fewer on every call).
pub(crate) struct KeyParts<'a> {
    pub(crate) namespace: &'a Name,
    pub(crate) function: &'a str,
    pub(crate) version: Option<u32>,
    pub(crate) digest: Digest,
}

impl KeyParts<'_> {
    /// The [`EntryKey`] these parts make.
    pub(crate) fn to_entry_key(&self) -> EntryKey {
        EntryKey::new(
            self.namespace.clone(),
            self.function,
            self.version,
            self.digest,
        )
    }
}

impl RenderKey for KeyParts<'_> {
    fn namespace(&self) -> &Name {
        self.namespace
    }

    /// What [`EntryKey::new`] then [`EntryKey::render_at`] write.
    #[inline]
    fn render_at(&self, prefix: &Name, generation: &Decimal) -> String {
        let (prefix, namespace) = (prefix.as_str(), self.namespace.as_str());
        let generation = generation.as_str();
        let tail = Tail::new(self.function, self.version, self.digest);
        let len = prefix.len() + namespace.len() + generation.len() + tail.len() + 3;
        let mut key = String::with_capacity(len);
        for part in [prefix, ":", namespace, ":", generation, ":"] {
            key.push_str(part);
        }
        tail.push_to(&mut key);
        key
    }
}

/// An entry key's tail, `function:[v{version}:]{digest}`, before it is
/// written: what [`EntryKey::new`] and [`KeyParts`] write.
struct Tail<'a> {
    function: &'a str,
    version: Option<Decimal>,
    digest: Digest,
}

impl<'a> Tail<'a> {
    fn new(function: &'a str, version: Option<u32>, digest: Digest) -> Self {
        Tail {
            function,
            version: version.map(|v| Decimal::of(u64::from(v))),
            digest,
        }
    }

    /// Its length: the function, a colon, 32 hex digits, and `v`, the
    /// version's digits and a colon for a version.
    #[inline]
    fn len(&self) -> usize {
        let version = self.version.as_ref().map_or(0, |v| v.as_str().len() + 2);
        self.function.len() + 33 + version
    }

    #[inline]
    fn push_to(&self, out: &mut String) {
        out.push_str(self.function);
        out.push(':');
        if let Some(version) = &self.version {
            out.push('v');
            out.push_str(version.as_str());
            out.push(':');
        }
        self.digest.push_hex(out);
    }
}

/// A generation in decimal, as keys hold it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decimal {
    digits: [u8; 20],
    /// Where the digits start in `digits` (they end at its end).
    at: u8,
}

impl Decimal {
    /// `n` in decimal.
    pub(crate) fn of(mut n: u64) -> Self {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Decimal {
            digits,
            at: at as u8,
        }
    }

    /// The digits.
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.digits[usize::from(self.at)..]
    }

    /// The digits, as a string.
    #[inline]
    pub(crate) fn as_str(&self) -> &str {
        ascii(self.as_bytes())
    }
}

/// `bytes` as a string when they are ASCII (digits, hex: always here), else
/// empty. Checked with `is_ascii`, which is a few word compares for a key's
/// pieces where `from_utf8` costs a hundred instructions or more: this is on
/// every call's path.
#[inline]
fn ascii(bytes: &[u8]) -> &str {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    } else {
        debug_assert!(false, "key pieces are ASCII digits");
        ""
    }
}

/// The key holding a namespace's current generation.
pub fn generation_key(prefix: &Name, namespace: &Name) -> String {
    let (prefix, namespace) = (prefix.as_str(), namespace.as_str());
    let mut key = String::with_capacity(prefix.len() + namespace.len() + 5);
    key.push_str(prefix);
    key.push(':');
    key.push_str(namespace);
    key.push_str(":gen");
    key
}

/// The pattern matching every entry of `namespace` at `generation`, for `SCAN`.
pub fn generation_pattern(prefix: &Name, namespace: &Name, generation: u64) -> String {
    format!("{prefix}:{namespace}:{generation}:*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reject_separators_and_globs() {
        for bad in ["", "a:b", "a*", "a?", "a[b]", "a b", "é", "a\nb", "a{b}"] {
            let err = Name::new(bad).unwrap_err();
            assert!(err.is_invalid_input(), "{bad:?} accepted");
        }
        assert!(Name::new(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(Name::new(&"x".repeat(MAX_NAME_LEN)).is_ok());
        assert!(Name::new("users.v2_eu-west").is_ok());
        assert!(Name::new_static("a:b").unwrap_err().is_invalid_input());
    }

    #[test]
    fn a_static_name_is_the_same_name_as_a_shared_one() {
        use std::collections::hash_map::DefaultHasher;
        use std::hash::{Hash, Hasher};
        let hash = |n: &Name| {
            let mut h = DefaultHasher::new();
            n.hash(&mut h);
            h.finish()
        };
        let (a, b) = (
            Name::new_static("users").unwrap(),
            Name::new("users").unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!(hash(&a), hash(&b));
        assert_eq!(a.cmp(&b), std::cmp::Ordering::Equal);
        assert!(a < Name::new("v").unwrap());
        assert_eq!(format!("{a} {a:?}"), format!("{b} {b:?}"));
    }

    #[test]
    fn digests_remembered_by_a_thread_stay_those_of_their_own_secret() {
        let (plain, secret) = (KeyHasher::new(b""), KeyHasher::new(b"s3cret"));
        let bytes = [0x10, 42];
        let first = plain.digest_bytes(&bytes);
        for _ in 0..3 {
            assert_eq!(plain.digest_bytes(&bytes), first);
            assert_ne!(secret.digest_bytes(&bytes), first, "another secret");
        }
        // A clone has the same key, and a new hasher with the same secret
        // makes the same digests as a fresh computation.
        assert_eq!(plain.clone().digest_bytes(&bytes), first);
        assert_eq!(KeyHasher::new(b"").digest_bytes(&bytes), first);
        let direct = blake3::keyed_hash(&plain.key, &bytes);
        assert_eq!(first.as_bytes()[..], direct.as_bytes()[..16]);
    }

    /// Golden: the digest of known arguments. A change here changes every key
    /// in every deployment: bump `DIGEST_CONTEXT` and say so in the changelog.
    #[test]
    fn golden_digests() {
        let h = KeyHasher::default();
        assert_eq!(
            h.digest(&(42u64, "alice")).unwrap().to_string(),
            GOLDEN_TUPLE
        );
        assert_eq!(h.digest(&()).unwrap().to_string(), GOLDEN_UNIT);
        let keyed = KeyHasher::new(b"s3cret");
        assert_eq!(
            keyed.digest(&(42u64, "alice")).unwrap().to_string(),
            GOLDEN_KEYED
        );
    }

    const GOLDEN_TUPLE: &str = "932899e582af1475758be19fd70256af";
    const GOLDEN_UNIT: &str = "91652fe8936a92273f4845859abb6e63";
    const GOLDEN_KEYED: &str = "e84a6181b07c778fd82c61f10c1a63aa";

    #[test]
    fn golden_key_layout() {
        let prefix = Name::new("memocache").unwrap();
        let digest = KeyHasher::default().digest(&(42u64, "alice")).unwrap();
        let key = EntryKey::new(Name::new("users").unwrap(), "app::load", Some(2), digest);
        assert_eq!(
            key.render(&prefix, 7),
            format!("memocache:users:7:app::load:v2:{GOLDEN_TUPLE}")
        );
        assert_eq!(
            generation_key(&prefix, &key.namespace),
            "memocache:users:gen"
        );
    }

    #[test]
    fn rendered_generations_are_plain_decimals() {
        let prefix = Name::new("p").unwrap();
        let digest = KeyHasher::default().digest(&7u8).unwrap();
        let key = EntryKey::new(Name::new("ns").unwrap(), "f", None, digest);
        for generation in [0, 7, 10, 99, 1_700_000_000_000_000, u64::MAX] {
            assert_eq!(
                key.render(&prefix, generation),
                format!("p:ns:{generation}:{}", key.tail)
            );
        }
    }

    #[test]
    fn parts_render_what_their_entry_key_renders() {
        let prefix = Name::new("app").unwrap();
        let namespace = Name::new("users").unwrap();
        let digest = KeyHasher::default().digest(&(42u64, "alice")).unwrap();
        for version in [None, Some(0), Some(7), Some(u32::MAX)] {
            for function in ["f", "app::load_user", "Type::<u8>::method"] {
                let key = EntryKey::new(namespace.clone(), function, version, digest);
                assert_eq!(key.tail.len(), key.tail.capacity(), "tail sized at once");
                let parts = KeyParts {
                    namespace: &namespace,
                    function,
                    version,
                    digest,
                };
                assert_eq!(RenderKey::namespace(&parts), &key.namespace);
                assert_eq!(parts.to_entry_key(), key);
                for generation in [0, 1_700_000_000_000_000, u64::MAX] {
                    let at = Decimal::of(generation);
                    let rendered = parts.render_at(&prefix, &at);
                    assert_eq!(rendered, key.render(&prefix, generation));
                    assert_eq!(rendered.len(), rendered.capacity(), "sized at once");
                }
            }
        }
    }

    #[test]
    fn keys_parse_back_from_their_tail() {
        let digest = KeyHasher::default().digest(&7u8).unwrap();
        let key = EntryKey::new(Name::new("ns").unwrap(), "app::f", Some(3), digest);
        let back = EntryKey::from_tail(Name::new("ns").unwrap(), &key.tail).unwrap();
        assert_eq!(back, key);
        assert!(EntryKey::from_tail(Name::new("ns").unwrap(), "app::f:xyz").is_none());
        assert_eq!(Digest::from_hex(&digest.to_string()), Some(digest));
    }

    #[test]
    fn debug_hides_the_secret() {
        let h = KeyHasher::new(b"hunter2");
        let shown = format!("{h:?}");
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("redacted"));
    }
}
