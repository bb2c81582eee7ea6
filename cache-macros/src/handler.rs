//! `#[cached(handler, ...)]`: axum 0.8 handlers.
//!
//! A handler is recognised by the `handler` option, never guessed: the
//! generated function has another signature than the user's (a first
//! extractor is added, and it returns `Response`), which must not happen to
//! an ordinary function by accident. A function that only an axum handler
//! would be (it returns `impl IntoResponse` or `Response`) without the
//! option gets an error saying to add it.
//!
//! For `async fn get_user(State(db): State<Db>, Path(id): Path<u64>) -> R`
//! it emits:
//!
//! - `get_user(head: RequestHead, State<Db>, Path<u64>) -> Response`: the
//!   user's extractors in their order, after one that hands the request's
//!   method and headers to the driver; the user's attributes
//!   (`#[debug_handler]` included) apply to it;
//! - `get_user_uncached`: the user's function, unchanged but for its name;
//! - `get_user_key(Path<u64>) -> Result<EntryKey>` and `get_user_remove`
//!   (async), taking the arguments that make the key (plus `&HeaderMap`
//!   when the handler has `vary` headers), for `#[cache_remove]`.
//!
//! All of it is wrapped in `__private::axum_handler!`, which, without the
//! `axum` feature, emits one clear error and the function unchanged.
//!
//! Which arguments make the key, by the last segment of their type:
//!
//! | extractor | in the key |
//! |---|---|
//! | `Path`, `Query`, `Json`, `Form` | the values their patterns bind (`Path(id)`: `id`), or `.0` |
//! | `TypedHeader` | the header's encoded value |
//! | `State` | no (`include(..)` adds it) |
//! | `Request`, `Body`, `Multipart`, `WebSocketUpgrade`, `BodyStream`, `RawBody` | rejected: a stream cannot be keyed |
//! | anything else (`Extension`, `HeaderMap`, custom) | a compile error until `include(..)` or `skip(..)` decides: it may carry identity |
//!
//! An argument whose pattern binds no name (`_: HeaderMap`) is unused by
//! the body, so it cannot change the response: it is not in the key.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::punctuated::Punctuated;
use syn::{parse_quote, Expr, FnArg, GenericParam, Ident, Lit, LitInt, LitStr, Meta, Token, Type};

use crate::ast::{span_of, Arg, Binding, Function};
use crate::attr::{Options, DEFAULT_NAMESPACE};
use crate::ctxt::Ctxt;
use crate::expand::{by_reference, Expander};

/// Extractors that read the body as a stream: nothing to key, nothing to replay.
const STREAMS: &[&str] = &[
    "Request",
    "Body",
    "Multipart",
    "WebSocketUpgrade",
    "BodyStream",
    "RawBody",
];

/// Extractors whose values are plain data of the request line or body.
const KEYED: &[&str] = &["Path", "Query", "Json", "Form"];

/// The options inside `handler(...)`.
#[derive(Default)]
pub struct HandlerOptions {
    /// `vary("accept-language", ...)`: lower-cased header names.
    pub vary: Vec<String>,
    /// `methods(POST, ...)`: upper-case method names.
    pub methods: Vec<String>,
    /// `status(404, ...)`.
    pub statuses: Vec<u16>,
    /// `max_body = "256KiB"`, in bytes.
    pub max_body: Option<u64>,
    /// `public`.
    pub public: bool,
    /// `include(user, ...)`: arguments keyed although they default to out
    /// (`State`) or to undecided (`Extension`, `HeaderMap`, custom).
    pub include: Vec<Ident>,
}

const HANDLER_OPTIONS: &str = "vary(\"header\", ..), methods(POST, ..), status(404, ..), \
                               max_body = \"1MiB\", public, include(arg, ..)";

/// Parses `handler` or `handler(...)`.
pub fn parse(meta: &Meta, cx: &mut Ctxt) -> Option<HandlerOptions> {
    let mut out = HandlerOptions::default();
    let list = match meta {
        Meta::Path(_) => return Some(out),
        Meta::List(list) => list,
        Meta::NameValue(_) => {
            cx.error_spanned_by(
                meta,
                format!(
                    "`handler` takes no value: write `handler` or `handler({HANDLER_OPTIONS})`"
                ),
            );
            return None;
        }
    };
    let metas = match list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
        Ok(metas) => metas,
        Err(e) => {
            cx.syn_error(e);
            return None;
        }
    };
    let mut seen: Vec<String> = Vec::new();
    for meta in metas {
        let name = meta
            .path()
            .get_ident()
            .map(|i| i.unraw().to_string())
            .unwrap_or_default();
        if seen.contains(&name) {
            cx.error_spanned_by(meta.path(), format!("duplicate option `{name}`"));
            continue;
        }
        seen.push(name.clone());
        match name.as_str() {
            "vary" => out.vary = vary(&meta, cx),
            "methods" => out.methods = methods(&meta, cx),
            "status" => out.statuses = statuses(&meta, cx),
            "max_body" => out.max_body = max_body(&meta, cx),
            "public" => out.public = flag(&meta, cx),
            "include" => out.include = idents(&meta, cx, "`include(user)`"),
            _ => cx.error_spanned_by(
                meta.path(),
                format!("unknown option `{name}` of `handler`; its options are: {HANDLER_OPTIONS}"),
            ),
        }
    }
    Some(out)
}

fn list_of<T>(
    meta: &Meta,
    cx: &mut Ctxt,
    example: &str,
    item: fn(ParseStream) -> syn::Result<T>,
) -> Vec<T> {
    let Meta::List(list) = meta else {
        cx.error_spanned_by(meta, format!("this option takes a list: {example}"));
        return Vec::new();
    };
    match list.parse_args_with(|input: ParseStream| {
        Punctuated::<T, Token![,]>::parse_terminated_with(input, item)
    }) {
        Ok(items) => items.into_iter().collect(),
        Err(e) => {
            cx.syn_error(e);
            Vec::new()
        }
    }
}

/// Header names: lower-cased, checked to be tokens (RFC 9110 5.1).
fn vary(meta: &Meta, cx: &mut Ctxt) -> Vec<String> {
    let lits = list_of(meta, cx, "`vary(\"accept-language\")`", |input| {
        input.parse::<LitStr>()
    });
    let mut out: Vec<String> = Vec::new();
    for lit in lits {
        let name = lit.value().to_ascii_lowercase();
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token || name == "*" {
            cx.error_spanned_by(
                &lit,
                format!(
                    "`{}` is not a header name such as \"accept-language\"",
                    lit.value()
                ),
            );
        } else if out.contains(&name) {
            cx.error_spanned_by(&lit, format!("`{name}` is already in `vary`"));
        } else {
            out.push(name);
        }
    }
    out
}

fn methods(meta: &Meta, cx: &mut Ctxt) -> Vec<String> {
    let idents = idents(meta, cx, "`methods(POST)`");
    let mut out = Vec::new();
    for ident in idents {
        let name = ident.to_string();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_uppercase()) {
            cx.error_spanned_by(
                &ident,
                format!("`{name}` is not a method: write it in upper case, such as `POST`"),
            );
        } else {
            out.push(name);
        }
    }
    out
}

fn statuses(meta: &Meta, cx: &mut Ctxt) -> Vec<u16> {
    let lits = list_of(meta, cx, "`status(404)`", |input| input.parse::<LitInt>());
    lits.into_iter()
        .filter_map(|lit| match lit.base10_parse::<u16>() {
            Ok(code) if (100..=599).contains(&code) => Some(code),
            _ => {
                cx.error_spanned_by(&lit, "a status is a number from 100 to 599");
                None
            }
        })
        .collect()
}

fn idents(meta: &Meta, cx: &mut Ctxt, example: &str) -> Vec<Ident> {
    list_of(meta, cx, example, Ident::parse_any)
}

fn flag(meta: &Meta, cx: &mut Ctxt) -> bool {
    if matches!(meta, Meta::Path(_)) {
        true
    } else {
        cx.error_spanned_by(meta, "`public` takes no value: write `public` alone");
        false
    }
}

/// `max_body = "256KiB"` (units `B`, `KiB`, `MiB`) or a number of bytes.
fn max_body(meta: &Meta, cx: &mut Ctxt) -> Option<u64> {
    const HOW: &str = "`max_body` takes a size: `max_body = \"256KiB\"` (units B, KiB, MiB) \
                       or a number of bytes";
    let Meta::NameValue(nv) = meta else {
        cx.error_spanned_by(meta, HOW);
        return None;
    };
    let parsed = match &nv.value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<u64>().ok(),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => parse_size(&s.value()),
        _ => None,
    };
    match parsed {
        Some(bytes) if bytes > 0 => Some(bytes),
        _ => {
            cx.error_spanned_by(&nv.value, HOW);
            None
        }
    }
}

fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let number: u64 = text[..digits].parse().ok()?;
    let unit: u64 = match text[digits..].trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        _ => return None,
    };
    number.checked_mul(unit)
}

/// How an argument takes part in the key, from its type's last segment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Keyed,
    TypedHeader,
    State,
    Stream,
    Undecided,
}

fn role(ty: &Type) -> Role {
    let Type::Path(path) = ty else {
        return Role::Undecided;
    };
    let Some(last) = path.path.segments.last() else {
        return Role::Undecided;
    };
    let name = last.ident.to_string();
    match name.as_str() {
        "State" => Role::State,
        "TypedHeader" => Role::TypedHeader,
        n if KEYED.contains(&n) => Role::Keyed,
        n if STREAMS.contains(&n) => Role::Stream,
        _ => Role::Undecided,
    }
}

/// The names an argument binds.
fn names<'a>(arg: &Arg<'a>) -> Vec<&'a Ident> {
    match &arg.binding {
        Binding::Name(p) => vec![&p.ident],
        Binding::Pattern(names) => names.clone(),
    }
}

fn handler_options(options: &Options) -> &HandlerOptions {
    options
        .handler
        .as_ref()
        .expect("only called for #[cached(handler)]")
}

fn skipped(options: &Options, name: &Ident) -> bool {
    options
        .skip
        .as_ref()
        .is_some_and(|(_, names)| names.iter().any(|s| s == name))
}

fn included(options: &Options, name: &Ident) -> bool {
    handler_options(options).include.iter().any(|i| i == name)
}

/// The rules of a cached handler, each with its reason. Runs instead of the
/// return-type rules of ordinary functions: a handler returns any
/// `IntoResponse`, and the response is what is stored.
pub fn check(f: &Function, options: &Options, cx: &mut Ctxt) {
    let sig = &f.input.sig;
    // axum handlers are async functions; a sync one is not a handler.
    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            "#[cached(handler)] applies to `async fn` axum handlers",
        );
    }
    // A method's `self` is no extractor.
    if let Some(receiver) = f.receiver {
        cx.error_spanned_by(receiver, "an axum handler cannot take `self`");
    }
    // The generated handler must be nameable by the router without
    // turbofish; and a generic parameter would have to be in the key.
    for param in &sig.generics.params {
        if !matches!(param, GenericParam::Lifetime(_)) {
            cx.error_spanned_by(
                param,
                "#[cached(handler)] does not support generic handlers: write one handler per type",
            );
        }
    }
    for (option, path) in [
        ("cache_err", &options.cache_err),
        ("cache_none", &options.cache_none),
        ("store_if", &options.store_if),
    ] {
        if let Some(path) = path {
            cx.error_spanned_by(
                path,
                format!(
                    "`{option}` does not apply to handlers: the HTTP rules decide which responses \
                     are stored (2xx; `handler(status(404))` adds statuses)"
                ),
            );
        }
    }
    let handler = handler_options(options);
    for name in &handler.include {
        if !f.bound_names().any(|n| n == name) {
            cx.error_spanned_by(
                name,
                format!("`{name}` is not an argument of `{}`", f.name()),
            );
        } else if skipped(options, name) {
            cx.error_spanned_by(name, format!("`{name}` is both included and skipped"));
        }
    }
    for arg in &f.args {
        check_arg(arg, options, cx);
    }
}

/// Body streams are rejected; identity-bearing extractors need a decision.
fn check_arg(arg: &Arg, options: &Options, cx: &mut Ctxt) {
    let ty = &arg.pat_type.ty;
    match role(ty) {
        Role::Stream => cx.error_at(
            span_of(ty),
            format!(
                "a cached handler cannot take `{}`: it reads the request body as a stream, which \
                 cannot be part of a key. Extract the body as data (`Json<T>`, `Form<T>`, \
                 `String`) or do not cache this handler",
                type_name(ty)
            ),
        ),
        Role::Undecided if options.key.is_none() => {
            let undecided: Vec<String> = names(arg)
                .into_iter()
                .filter(|n| !skipped(options, n) && !included(options, n))
                .map(ToString::to_string)
                .collect();
            if let Some(first) = undecided.first() {
                cx.error_at(
                    span_of(ty),
                    format!(
                        "`{}` may carry the caller's identity or anything else the response \
                         depends on: put it in the key with `handler(include({first}))`, or leave \
                         it out with `skip({first})` if the response never depends on it",
                        type_name(ty)
                    ),
                );
            }
        }
        _ => {}
    }
}

fn type_name(ty: &Type) -> String {
    quote!(#ty).to_string().replace(' ', "")
}

/// When a function is not marked `handler` but can only be one (it returns
/// `impl IntoResponse` or `Response`), says to add `handler`; returns
/// whether it did, so that the generic return-type errors stay quiet.
pub fn suggest(f: &Function, cx: &mut Ctxt) -> bool {
    let crate::ast::Output::Type(ty) = f.output else {
        return false;
    };
    let looks_like = match ty {
        Type::ImplTrait(it) => it.bounds.iter().any(|b| {
            matches!(b, syn::TypeParamBound::Trait(t)
                if t.path.segments.last().is_some_and(|s| s.ident == "IntoResponse"))
        }),
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Response" && s.arguments.is_empty()),
        _ => false,
    };
    if looks_like {
        cx.error_at(
            span_of(ty),
            "this looks like an axum handler: write `#[cached(handler)]` (with the `axum` feature) \
             to cache its responses",
        );
    }
    looks_like
}

/// One argument's part of the key: how to destructure it, and its `.arg(..)`s.
struct KeyPart {
    destructure: Option<TokenStream>,
    args: Vec<TokenStream>,
}

/// Expands a checked `#[cached(handler)]`.
pub fn expand(f: &Function, options: &Options, original: TokenStream) -> TokenStream {
    let expander = Expander::new(f, options);
    let krate = options.krate();
    let p = quote!(#krate::__private);
    let parts: Vec<Option<KeyPart>> = f
        .args
        .iter()
        .map(|arg| key_part(arg, options, &p))
        .collect();
    let handler = handler_fn(f, &expander, &parts, &p);
    let uncached = expander.uncached_fn();
    let key = key_fn(f, options, &expander, &parts, &p);
    let remove = remove_fn(f, options, &expander, &parts, &p);
    quote! {
        #p::axum_handler! {
            { #handler #uncached #key #remove }
            { #original }
        }
    }
}

/// The key part of `arg`, or `None` if it is not in the key.
fn key_part(arg: &Arg, options: &Options, p: &TokenStream) -> Option<KeyPart> {
    let forward = &arg.forward;
    let span = span_of(&arg.pat_type.ty);
    let role = role(&arg.pat_type.ty);
    let names = names(arg);
    if options.key.is_some() {
        // `key = ...` may use any argument: every one is passed on, and
        // patterns are destructured so the expression can name what they bind.
        let destructure = matches!(arg.binding, Binding::Pattern(_)).then(|| {
            let pat = by_reference(&arg.pat_type.pat);
            quote!(#[allow(unused_variables)] let #pat = &#forward;)
        });
        return Some(KeyPart {
            destructure,
            args: Vec::new(),
        });
    }
    if names.is_empty() {
        return None;
    }
    if role == Role::TypedHeader {
        return names.iter().all(|n| !skipped(options, n)).then(|| KeyPart {
            destructure: None,
            args: vec![quote_spanned!(span=> .arg(&#p::http::typed_header(&#forward)))],
        });
    }
    let keep = |n: &Ident| match role {
        Role::Keyed => !skipped(options, n),
        _ => included(options, n),
    };
    match &arg.binding {
        Binding::Name(ident) if keep(&ident.ident) => {
            let value = if role == Role::Keyed {
                quote_spanned!(span=> &#forward.0)
            } else {
                quote_spanned!(span=> &#forward)
            };
            Some(KeyPart {
                destructure: None,
                args: vec![quote_spanned!(span=> .arg(#value))],
            })
        }
        Binding::Name(_) => None,
        Binding::Pattern(names) => {
            let args: Vec<TokenStream> = names
                .iter()
                .filter(|n| keep(n))
                .map(|n| quote_spanned!(n.span()=> .arg(#n)))
                .collect();
            if args.is_empty() {
                return None;
            }
            let pat = by_reference(&arg.pat_type.pat);
            Some(KeyPart {
                destructure: Some(quote!(#[allow(unused_variables)] let #pat = &#forward;)),
                args,
            })
        }
    }
}

/// The handler static: its HTTP options.
fn handler_spec(f: &Function, options: &Options, p: &TokenStream) -> TokenStream {
    let handler = handler_options(options);
    let namespace = options
        .namespace
        .as_ref()
        .map_or_else(|| DEFAULT_NAMESPACE.to_owned(), LitStr::value);
    let name = f.name().unraw().to_string();
    let vary = &handler.vary;
    let methods = &handler.methods;
    let statuses = &handler.statuses;
    let max_body = handler.max_body.map(|bytes| {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        quote!(.max_body(#bytes))
    });
    let public = handler.public.then(|| quote!(.public(true)));
    quote! {
        static __MEMOCACHE_HANDLER: #p::http::HandlerSpec = #p::http::HandlerSpec::new(
            #namespace,
            ::core::concat!(::core::module_path!(), "::", #name),
        )
        .vary(&[#(#vary),*])
        .methods(&[#(#methods),*])
        .statuses(&[#(#statuses),*])
        #max_body #public;
    }
}

/// The key arguments, as a `KeyArgs` expression.
fn key_args(options: &Options, parts: &[Option<KeyPart>]) -> TokenStream {
    let destructure = parts
        .iter()
        .flatten()
        .filter_map(|part| part.destructure.as_ref());
    let args = parts.iter().flatten().flat_map(|part| part.args.iter());
    let key = options
        .key
        .as_ref()
        .map(|expr| quote_spanned!(span_of(expr)=> .arg(&(#expr))));
    quote! {{
        #(#destructure)*
        __MEMOCACHE_SPEC.args() #key #(#args)*
    }}
}

/// The handler itself: `RequestHead` first, then the user's extractors.
fn handler_fn(
    f: &Function,
    expander: &Expander,
    parts: &[Option<KeyPart>],
    p: &TokenStream,
) -> TokenStream {
    let attrs = &f.input.attrs;
    let vis = &f.input.vis;
    let mut sig = expander.signature(f.name().clone());
    sig.inputs
        .insert(0, parse_quote!(__memocache_request: #p::http::RequestHead));
    sig.output = parse_quote!(-> #p::http::Response);
    let spec = expander.spec();
    let handler = handler_spec(f, expander.options, p);
    let key = key_args(expander.options, parts);
    let call = expander.call_sibling("uncached");
    let ret_span = match &f.input.sig.output {
        syn::ReturnType::Type(_, ty) => span_of(ty),
        syn::ReturnType::Default => f.name().span(),
    };
    let into_response =
        quote_spanned!(ret_span=> #p::http::IntoResponse::into_response(__memocache_out));
    quote! {
        #(#attrs)*
        #vis #sig {
            #spec
            #handler
            #[allow(clippy::needless_borrow, clippy::needless_borrows_for_generic_args)]
            let __memocache_key = #key;
            #p::http::serve(
                &__MEMOCACHE_SPEC,
                &__MEMOCACHE_HANDLER,
                __memocache_request,
                __memocache_key,
                move || async move {
                    let __memocache_out = #call.await;
                    #into_response
                },
            )
            .await
        }
    }
}

/// The arguments of the `_key` and `_remove` companions: those in the key
/// (all of them with `key = ...`, which may use any), plus the request
/// headers when `vary` folds some in.
fn companion_sig(
    f: &Function,
    options: &Options,
    expander: &Expander,
    parts: &[Option<KeyPart>],
    suffix: &str,
    p: &TokenStream,
) -> (syn::Signature, Vec<Ident>) {
    let mut sig = expander.signature(expander.sibling_ident(suffix));
    let keep: Vec<bool> = parts.iter().map(Option::is_some).collect();
    let mut index = 0;
    sig.inputs = sig
        .inputs
        .into_iter()
        .filter(|input| match input {
            FnArg::Typed(_) => {
                index += 1;
                keep[index - 1]
            }
            FnArg::Receiver(_) => false,
        })
        .collect();
    let mut forwarded: Vec<Ident> = f
        .args
        .iter()
        .zip(&keep)
        .filter(|(_, keep)| **keep)
        .map(|(arg, _)| arg.forward.clone())
        .collect();
    if !handler_options(options).vary.is_empty() {
        sig.inputs
            .push(parse_quote!(__memocache_headers: &#p::http::HeaderMap));
        forwarded.push(Ident::new("__memocache_headers", Span::call_site()));
    }
    (sig, forwarded)
}

/// `name_key(key args) -> Result<EntryKey>`.
fn key_fn(
    f: &Function,
    options: &Options,
    expander: &Expander,
    parts: &[Option<KeyPart>],
    p: &TokenStream,
) -> TokenStream {
    let (mut sig, _) = companion_sig(f, options, expander, parts, "key", p);
    sig.asyncness = None;
    sig.output = parse_quote!(-> #p::Result<#p::EntryKey>);
    let spec = expander.spec();
    let handler = handler_spec(f, options, p);
    let key = key_args(options, parts);
    let headers = if handler_options(options).vary.is_empty() {
        quote!(::core::option::Option::None)
    } else {
        quote!(::core::option::Option::Some(__memocache_headers))
    };
    let doc = format!(
        "The cache key of handler `{}` for these extractors (`#[cached]` companion; for \
         `#[cache_remove]`).\n\n# Errors\nWhen an argument fails to serialize.",
        f.name()
    );
    expander.companion(
        &doc,
        &sig,
        quote! {
            #spec
            #handler
            #[allow(clippy::needless_borrow, clippy::needless_borrows_for_generic_args)]
            let __memocache_key = #key;
            #p::http::finish_key(&__MEMOCACHE_HANDLER, __memocache_key, #headers)
        },
    )
}

/// `name_remove(key args) -> Result<bool>`: removes one stored response.
fn remove_fn(
    f: &Function,
    options: &Options,
    expander: &Expander,
    parts: &[Option<KeyPart>],
    p: &TokenStream,
) -> TokenStream {
    let (mut sig, forwarded) = companion_sig(f, options, expander, parts, "remove", p);
    sig.output = parse_quote!(-> #p::Result<bool>);
    let key = expander.sibling_ident("key");
    let prefix = expander.associated.then(|| quote!(Self::));
    let doc = format!(
        "Removes the stored response of handler `{}` for these extractors; returns whether \
         one was there (`#[cached]` companion).\n\n# Errors\nA backend failure.",
        f.name()
    );
    expander.companion(
        &doc,
        &sig,
        quote!(#p::remove(#prefix #key(#(#forwarded),*)).await),
    )
}
