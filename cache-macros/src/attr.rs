//! Typed parsing of the options of `#[cached(...)]`.
//!
//! Every option is parsed into its own typed field; a malformed value, an
//! unknown option or a repeated one is recorded in a [`Ctxt`] and parsing
//! goes on, so one build reports every mistake. A repeated option is
//! reported at its second occurrence, where the user's eye is.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Lit, LitStr, Meta, Path, Token};

use crate::ctxt::Ctxt;

/// The options of `#[cached]`, in the order the documentation lists them.
pub const OPTIONS: &[&str] = &[
    "namespace",
    "ttl",
    "key",
    "skip",
    "version",
    "cache_err",
    "cache_none",
    "store_if",
    "single_flight",
    "lock",
    "early_refresh",
    "local_ttl",
    "handler",
    "in_impl",
    "crate",
];

/// The default namespace, when none is given.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The longest namespace: the runtime's limit on names.
const MAX_NAMESPACE_LEN: usize = 64;

/// The parsed options of one `#[cached(...)]`.
#[derive(Default)]
pub struct Options {
    /// `namespace = "users"`, validated.
    pub namespace: Option<LitStr>,
    /// `ttl = "5m"`, in milliseconds.
    pub ttl_ms: Option<u64>,
    /// `key = <expr>`.
    pub key: Option<Expr>,
    /// `skip(a, b)`: the names, and the `skip` keyword for errors.
    pub skip: Option<(Ident, Vec<Ident>)>,
    /// `version = N`.
    pub version: Option<u32>,
    /// `cache_err`: its keyword, for errors.
    pub cache_err: Option<Path>,
    /// `cache_none`: its keyword, for errors.
    pub cache_none: Option<Path>,
    /// `store_if = path::to::fn`.
    pub store_if: Option<Path>,
    /// `single_flight = false`.
    pub single_flight: Option<bool>,
    /// `lock = "30s"`: a compute lock in the backend, with this lease (ms).
    pub lock_ms: Option<u64>,
    /// `early_refresh` or `early_refresh = 1.5`: XFetch with this beta.
    pub early_refresh: Option<f64>,
    /// `local_ttl = "10s"`: a typed in-process tier, entries living this long (ms).
    pub local_ttl_ms: Option<u64>,
    /// `handler` or `handler(...)`: an axum handler (see `handler.rs`).
    pub handler: Option<crate::handler::HandlerOptions>,
    /// `in_impl`: the function is an associated function.
    pub in_impl: bool,
    /// `crate = "path"`.
    pub krate: Option<Path>,
}

impl Options {
    /// The path generated code uses for the facade crate.
    pub fn krate(&self) -> TokenStream {
        match &self.krate {
            Some(path) => quote::quote!(#path),
            None => quote::quote!(::memocache),
        }
    }
}

/// Parses the tokens inside `#[cached(...)]`, recording errors in `cx`.
pub fn parse(args: TokenStream, cx: &mut Ctxt) -> Options {
    let mut options = Options::default();
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args) {
        Ok(metas) => metas,
        Err(e) => {
            cx.syn_error(e);
            return options;
        }
    };
    let mut seen: Vec<String> = Vec::new();
    for meta in metas {
        let Some(name) = option_name(meta.path()) else {
            cx.error_spanned_by(meta.path(), unknown(&quote::quote!(#meta).to_string()));
            continue;
        };
        if seen.contains(&name) {
            cx.error_spanned_by(meta.path(), format!("duplicate option `{name}`"));
            continue;
        }
        seen.push(name.clone());
        parse_one(&name, meta, &mut options, cx);
    }
    options
}

fn parse_one(name: &str, meta: Meta, options: &mut Options, cx: &mut Ctxt) {
    match name {
        "namespace" => {
            options.namespace = string(&meta, cx).filter(|lit| namespace_ok(lit, cx));
        }
        "ttl" => options.ttl_ms = duration(&meta, cx),
        "lock" => options.lock_ms = duration(&meta, cx),
        "local_ttl" => options.local_ttl_ms = duration(&meta, cx),
        "early_refresh" => options.early_refresh = beta(&meta, cx),
        "key" => options.key = value(&meta, cx, "`key = (id, name)`").cloned(),
        "skip" => options.skip = skip(&meta, cx),
        "version" => options.version = version(&meta, cx),
        "cache_err" => options.cache_err = flag(&meta, cx),
        "cache_none" => options.cache_none = flag(&meta, cx),
        "in_impl" => options.in_impl = flag(&meta, cx).is_some(),
        "store_if" => options.store_if = store_if(&meta, cx),
        "single_flight" => options.single_flight = boolean(&meta, cx),
        "crate" => options.krate = crate_path(&meta, cx),
        "handler" => options.handler = crate::handler::parse(&meta, cx),
        _ => cx.error_spanned_by(meta.path(), unknown(name)),
    }
}

/// The message for an unknown option, listing the valid ones.
fn unknown(name: &str) -> String {
    format!(
        "unknown option `{name}`; the options of #[cached] are: {}",
        OPTIONS.join(", ")
    )
}

fn option_name(path: &Path) -> Option<String> {
    match path.segments.len() {
        1 if path.leading_colon.is_none() => Some(path.segments[0].ident.unraw().to_string()),
        _ => None,
    }
}

/// The value of `name = value`, or an error showing `example`.
fn value<'a>(meta: &'a Meta, cx: &mut Ctxt, example: &str) -> Option<&'a Expr> {
    match meta {
        Meta::NameValue(nv) => Some(&nv.value),
        _ => {
            let name = option_name(meta.path()).unwrap_or_default();
            cx.error_spanned_by(meta, format!("`{name}` takes a value: {example}"));
            None
        }
    }
}

fn string(meta: &Meta, cx: &mut Ctxt) -> Option<LitStr> {
    let name = option_name(meta.path()).unwrap_or_default();
    let example = match name.as_str() {
        "namespace" => "`namespace = \"users\"`",
        "ttl" => "`ttl = \"5m\"`",
        "lock" => "`lock = \"30s\"`",
        "local_ttl" => "`local_ttl = \"10s\"`",
        _ => "`crate = \"memocache\"`",
    };
    match value(meta, cx, example)? {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => Some(lit.clone()),
        other => {
            cx.error_spanned_by(other, format!("`{name}` takes a string: {example}"));
            None
        }
    }
}

/// A duration option: a string such as `"5m"`, in milliseconds.
fn duration(meta: &Meta, cx: &mut Ctxt) -> Option<u64> {
    string(meta, cx).and_then(|lit| match parse_duration(&lit.value()) {
        Ok(ms) => Some(ms),
        Err(why) => {
            cx.error_spanned_by(&lit, why);
            None
        }
    })
}

/// `early_refresh` alone (beta 1.0) or `early_refresh = 1.5`.
fn beta(meta: &Meta, cx: &mut Ctxt) -> Option<f64> {
    const HOW: &str = "`early_refresh` takes a positive number (the XFetch beta, 1.0 by default): \
                       `early_refresh` or `early_refresh = 2.0`";
    let lit = match meta {
        Meta::Path(_) => return Some(1.0),
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(syn::ExprLit { lit, .. }) => lit.clone(),
            other => {
                cx.error_spanned_by(other, HOW);
                return None;
            }
        },
        Meta::List(_) => {
            cx.error_spanned_by(meta, HOW);
            return None;
        }
    };
    let parsed = match &lit {
        Lit::Float(f) => f.base10_parse::<f64>().ok(),
        Lit::Int(i) => i.base10_parse::<u32>().ok().map(f64::from),
        _ => None,
    };
    match parsed {
        Some(beta) if beta.is_finite() && beta > 0.0 => Some(beta),
        _ => {
            cx.error_spanned_by(&lit, HOW);
            None
        }
    }
}

fn flag(meta: &Meta, cx: &mut Ctxt) -> Option<Path> {
    match meta {
        Meta::Path(path) => Some(path.clone()),
        _ => {
            let name = option_name(meta.path()).unwrap_or_default();
            cx.error_spanned_by(
                meta,
                format!("`{name}` takes no value: write `{name}` alone"),
            );
            None
        }
    }
}

fn boolean(meta: &Meta, cx: &mut Ctxt) -> Option<bool> {
    match value(meta, cx, "`single_flight = false`")? {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Bool(b), ..
        }) => Some(b.value),
        other => {
            cx.error_spanned_by(other, "`single_flight` takes `true` or `false`");
            None
        }
    }
}

fn version(meta: &Meta, cx: &mut Ctxt) -> Option<u32> {
    match value(meta, cx, "`version = 2`")? {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) => match int.base10_parse::<u32>() {
            Ok(v) => Some(v),
            Err(_) => {
                cx.error_spanned_by(int, "`version` must fit in a `u32`");
                None
            }
        },
        other => {
            cx.error_spanned_by(other, "`version` takes an integer: `version = 2`");
            None
        }
    }
}

fn store_if(meta: &Meta, cx: &mut Ctxt) -> Option<Path> {
    match value(meta, cx, "`store_if = is_complete`")? {
        Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => Some(p.path.clone()),
        other => {
            cx.error_spanned_by(
                other,
                "`store_if` takes the path of a function `fn(&Ret) -> bool`, such as \
                 `store_if = is_complete`; define a function for a closure's logic",
            );
            None
        }
    }
}

fn crate_path(meta: &Meta, cx: &mut Ctxt) -> Option<Path> {
    let lit = string(meta, cx)?;
    parse_crate_lit(&lit, cx)
}

/// The path of `crate = <value>` in `#[cache_remove]`, whose arguments are
/// not `Meta`s.
pub fn crate_path_of(name: &Ident, value: &Expr, cx: &mut Ctxt) -> Option<Path> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => parse_crate_lit(lit, cx),
        other => {
            cx.error_spanned_by(
                other,
                format!("`{name}` takes a string: `crate = \"memocache\"`"),
            );
            None
        }
    }
}

fn parse_crate_lit(lit: &LitStr, cx: &mut Ctxt) -> Option<Path> {
    match lit.parse_with(Path::parse_mod_style) {
        Ok(path) => Some(respan_path(path, lit.span())),
        Err(_) => {
            cx.error_spanned_by(
                lit,
                format!("`{}` is not a path, such as `memocache`", lit.value()),
            );
            None
        }
    }
}

/// The tokens of `path` at `span`, so that errors in paths built from it
/// point at the `crate = "..."` string.
fn respan_path(path: Path, span: Span) -> Path {
    let tokens: TokenStream = quote::quote!(#path)
        .into_iter()
        .map(|mut t| {
            t.set_span(span);
            t
        })
        .collect();
    syn::parse2(tokens).unwrap_or(path)
}

fn skip(meta: &Meta, cx: &mut Ctxt) -> Option<(Ident, Vec<Ident>)> {
    let Meta::List(list) = meta else {
        cx.error_spanned_by(meta, "`skip` takes a list of arguments: `skip(db, logger)`");
        return None;
    };
    let keyword = list.path.segments[0].ident.clone();
    let parsed = list.parse_args_with(|input: syn::parse::ParseStream| {
        Punctuated::<Ident, Token![,]>::parse_terminated_with(input, Ident::parse_any)
    });
    let names = match parsed {
        Ok(names) => names,
        Err(e) => {
            cx.syn_error(e);
            return None;
        }
    };
    let mut out: Vec<Ident> = Vec::new();
    for name in names {
        if out.iter().any(|seen| seen == &name) {
            cx.error_spanned_by(&name, format!("`{name}` is already skipped"));
        } else {
            out.push(name);
        }
    }
    Some((keyword, out))
}

/// Checks a namespace at compile time, with the runtime's rules: it becomes
/// part of every key, and a bad one would only fail at run time.
pub fn namespace_ok(lit: &LitStr, cx: &mut Ctxt) -> bool {
    let ns = lit.value();
    let why = if ns.is_empty() {
        Some("the namespace is empty".to_owned())
    } else if ns.len() > MAX_NAMESPACE_LEN {
        Some(format!(
            "the namespace is {} bytes long; the limit is {MAX_NAMESPACE_LEN}",
            ns.len()
        ))
    } else {
        ns.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .map(|bad| {
                format!(
                    "the namespace contains `{}`; use only ASCII letters, digits, `_`, `.` and `-`",
                    bad.escape_debug()
                )
            })
    };
    match why {
        Some(why) => {
            cx.error_spanned_by(lit, why);
            false
        }
        None => true,
    }
}

/// Parses a human duration such as `90s`, `5m` or `1h 30m` into
/// milliseconds. Units: `ms`, `s`, `m`, `h`, `d`.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    const HELP: &str = "write a duration such as \"500ms\", \"90s\", \"5m\", \"1h 30m\" or \"2d\"";
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(format!("the duration is empty; {HELP}"));
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!("`{text}` is not a duration; {HELP}"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}` is too long a duration"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("`{number}` in `{text}` has no unit; {HELP}")),
            other => return Err(format!("unknown unit `{other}` in `{text}`; {HELP}")),
        };
        total = number
            .checked_mul(unit_ms)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("`{text}` is too long a duration"))?;
        rest = rest[unit_len..].trim_start();
    }
    if total == 0 {
        return Err("a duration of zero does nothing; give a positive duration".to_owned());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("1h 30m"), Ok(5_400_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration(" 250ms "), Ok(250));
        assert_eq!(parse_duration("2d"), Ok(172_800_000));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m5").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
