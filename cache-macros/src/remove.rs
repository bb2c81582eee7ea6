//! `#[cache_remove(...)]`: parsing of its targets and code generation.
//!
//! A target `path::to::load_user(id)` becomes a call of the companion
//! `path::to::load_user_key(id)`, so a function that is not `#[cached]`, or
//! arguments of the wrong types, are ordinary compile errors at the user's
//! tokens. Keys are computed when the function is entered, from its
//! arguments as they were passed (the body may move them); entries are
//! removed after the body succeeds, or before it runs with `before`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, ReturnType, Token};

use crate::ast::{shape_of, span_of, Input, ShapeKind};
use crate::attr::namespace_ok;
use crate::ctxt::Ctxt;
use crate::fallback;
use crate::valid::find_impl_trait;

/// Expands `#[cache_remove(args)] item`.
pub fn cache_remove(args: TokenStream, item: TokenStream) -> TokenStream {
    let input: Input = match syn::parse2(item.clone()) {
        Ok(input) => input,
        Err(e) => return fallback::emit(item, e),
    };
    let mut cx = Ctxt::default();
    let targets = parse(args, &mut cx);
    check(&input, &mut cx);
    match cx.check() {
        Ok(()) => expand(&input, &targets),
        Err(e) => fallback::emit(item, e),
    }
}

/// What to remove, and when.
#[derive(Default)]
struct Targets {
    /// Calls of `_key` companions, one per entry.
    keys: Vec<Expr>,
    /// Namespaces to flush.
    namespaces: Vec<LitStr>,
    /// Remove before the body runs instead of after it succeeds.
    before: bool,
    /// `crate = "path"`: the facade's path.
    krate: Option<syn::Path>,
}

/// One element of the attribute's list, before it is checked.
enum Element {
    /// `name = value`, or `name` alone.
    Option(Ident, Option<Expr>),
    /// Anything else: a call of a cached function.
    Call(Expr),
}

impl Parse for Element {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(Ident::peek_any) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            let name = input.call(Ident::parse_any)?;
            input.parse::<Token![=]>()?;
            return Ok(Element::Option(name, Some(input.parse()?)));
        }
        let fork = input.fork();
        if fork.call(Ident::parse_any).is_ok() && (fork.is_empty() || fork.peek(Token![,])) {
            return Ok(Element::Option(input.call(Ident::parse_any)?, None));
        }
        Ok(Element::Call(input.parse()?))
    }
}

const VALID: &str = "a call of a #[cached] function such as `load_user(id)`, \
                     `namespace = \"users\"`, `before` or `crate = \"memocache\"`";

fn parse(args: TokenStream, cx: &mut Ctxt) -> Targets {
    let mut targets = Targets::default();
    let elements = match Punctuated::<Element, Token![,]>::parse_terminated.parse2(args) {
        Ok(elements) => elements,
        Err(e) => {
            cx.syn_error(e);
            return targets;
        }
    };
    let empty = elements.is_empty();
    let mut before_seen = false;
    for element in elements {
        match element {
            Element::Call(call) => match key_call(call) {
                Ok(key) => targets.keys.push(key),
                Err(other) => cx.error_spanned_by(
                    other,
                    format!("#[cache_remove] expects {VALID}; this is none of them"),
                ),
            },
            Element::Option(name, value) => match (name.to_string().as_str(), value) {
                ("namespace", Some(value)) => namespace(value, &mut targets, cx),
                ("before", None) if before_seen => {
                    cx.error_spanned_by(&name, "duplicate option `before`");
                }
                ("before", None) => {
                    before_seen = true;
                    targets.before = true;
                }
                ("before", Some(value)) => {
                    cx.error_spanned_by(value, "`before` takes no value: write `before` alone");
                }
                ("crate", Some(value)) if targets.krate.is_none() => {
                    targets.krate = crate::attr::crate_path_of(&name, &value, cx);
                }
                ("crate", _) if targets.krate.is_some() => {
                    cx.error_spanned_by(&name, "duplicate option `crate`");
                }
                ("namespace", None) => {
                    cx.error_spanned_by(&name, "`namespace` takes a value: `namespace = \"users\"`")
                }
                (other, _) => cx.error_spanned_by(
                    &name,
                    format!("unknown option `{other}`; #[cache_remove] expects {VALID}"),
                ),
            },
        }
    }
    if empty {
        cx.error_at(
            proc_macro2::Span::call_site(),
            format!("#[cache_remove] needs something to remove: {VALID}"),
        );
    }
    targets
}

fn namespace(value: Expr, targets: &mut Targets, cx: &mut Ctxt) {
    let Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Str(lit),
        ..
    }) = value
    else {
        cx.error_spanned_by(value, "`namespace` takes a string: `namespace = \"users\"`");
        return;
    };
    if targets
        .namespaces
        .iter()
        .any(|ns| ns.value() == lit.value())
    {
        cx.error_spanned_by(
            &lit,
            format!("namespace `{}` is already flushed", lit.value()),
        );
    } else if namespace_ok(&lit, cx) {
        targets.namespaces.push(lit);
    }
}

/// `f(args)` to `f_key(args)`, `recv.m(args)` to `recv.m_key(args)`.
/// The error is the element itself, to point at.
fn key_call(call: Expr) -> Result<Expr, Box<Expr>> {
    match call {
        Expr::Call(mut call) => {
            let Expr::Path(path) = &mut *call.func else {
                return Err(Box::new(Expr::Call(call)));
            };
            let Some(last) = path.path.segments.last_mut() else {
                return Err(Box::new(Expr::Call(call)));
            };
            last.ident = format_ident!("{}_key", last.ident, span = last.ident.span());
            Ok(Expr::Call(call))
        }
        Expr::MethodCall(mut call) => {
            call.method = format_ident!("{}_key", call.method, span = call.method.span());
            Ok(Expr::MethodCall(call))
        }
        other => Err(Box::new(other)),
    }
}

/// The function must have a body to wrap, and run at run time.
fn check(input: &Input, cx: &mut Ctxt) {
    if let Some(semi) = &input.semi {
        cx.error_spanned_by(semi, "#[cache_remove] needs a function body to wrap");
    }
    if let Some(c) = &input.sig.constness {
        cx.error_spanned_by(c, "#[cache_remove] cannot apply to a `const fn`");
    }
}

fn expand(input: &Input, targets: &Targets) -> TokenStream {
    let Input {
        attrs, vis, sig, ..
    } = input;
    let p = match &targets.krate {
        Some(krate) => quote!(#krate::__private),
        None => quote!(::memocache::__private),
    };
    let is_async = sig.asyncness.is_some();
    let name = sig.ident.unraw().to_string();
    let keys = &targets.keys;
    let count = keys.len();
    let awaited = is_async.then(|| quote!(.await));
    let (remove_key, flush) = if is_async {
        (quote!(#p::invalidate), quote!(#p::invalidate_namespace))
    } else {
        (
            quote!(#p::invalidate_blocking),
            quote!(#p::invalidate_namespace_blocking),
        )
    };
    let namespaces = &targets.namespaces;
    let invalidate = quote! {
        for __memocache_key in __memocache_keys {
            #remove_key(__memocache_key, __memocache_by) #awaited;
        }
        #( #flush(#namespaces, __memocache_by) #awaited; )*
    };
    let (before, after) = if targets.before {
        (invalidate, quote!())
    } else {
        let succeeded = succeeded(&sig.output);
        (quote!(), quote!(if #succeeded { #invalidate }))
    };
    let run = run_body(input, &p);
    quote! {
        #(#attrs)*
        #vis #sig {
            #[allow(clippy::needless_borrow, clippy::needless_borrows_for_generic_args)]
            let __memocache_keys: [#p::Result<#p::EntryKey>; #count] = [#(#keys),*];
            let __memocache_by: &'static str =
                ::core::concat!(::core::module_path!(), "::", #name);
            #before
            #[allow(clippy::redundant_closure_call)]
            let __memocache_out = #run;
            #after
            __memocache_out
        }
    }
}

/// The body as an expression: in a closure (sync) or an `async` block, so
/// that its `return`s and `?`s keep their meaning.
fn run_body(input: &Input, p: &TokenStream) -> TokenStream {
    let body = &input.body;
    let ret = match &input.sig.output {
        ReturnType::Type(_, ty) if find_impl_trait(ty).is_none() => Some(ty),
        _ => None,
    };
    match (input.sig.asyncness.is_some(), ret) {
        (true, Some(ret)) => quote!(#p::with_output::<#ret, _>(async move #body).await),
        (true, None) => quote!(async move #body.await),
        (false, Some(ret)) => quote!((move || -> #ret #body)()),
        (false, None) => quote!((move || #body)()),
    }
}

/// Whether the function's outcome counts as a success: `Ok` for a
/// `Result`, anything else otherwise.
fn succeeded(output: &ReturnType) -> TokenStream {
    match output {
        ReturnType::Type(_, ty) if matches!(shape_of(ty), ShapeKind::Result(..)) => {
            let span = span_of(ty);
            quote::quote_spanned!(span=> ::core::result::Result::is_ok(&__memocache_out))
        }
        _ => quote!(true),
    }
}
